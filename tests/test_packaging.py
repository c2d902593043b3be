"""A wheel built from the project works without the checkout: it carries the default templates,
and an installed (not editable) sweep validates, renders, trains a run locally, collects and
reports from a project folder elsewhere.

The wheel is installed into a fresh virtual environment outside the checkout with --no-deps;
the third-party packages come from this test's own environment through a .pth file (one line
naming its site-packages), so nothing is downloaded but the build backend. sweep itself comes
only from the wheel: the test checks where it was imported from.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.synthetic import make_sweep

TEMPLATES = ("job.sub.j2", "run_job.sh.j2", "report.html.j2")


def test_every_package_of_the_source_is_listed_for_the_wheel():
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {p.parent for p in (REPO / "sweep").rglob("*.py")}
    found = {".".join(f.relative_to(REPO).parts) for f in folders}
    data = {"sweep.templates", "sweep.sites", "sweep.grids"}  # package data: the checkout's templates/, sites/, grids/
    assert listed == found | data, (listed ^ (found | data))
    assert all((f / "__init__.py").is_file() for f in folders), "a folder of sweep/ without __init__.py"


#: import name -> distribution name, where they differ
DISTRIBUTION = {"yaml": "pyyaml", "sklearn": "scikit-learn", "htcondor2": "htcondor", "classad2": "htcondor",
                "tensorflow": "tensorflow-cpu", "optuna_dashboard": "optuna-dashboard"}
#: The optional extras a user installs for a feature (the test and docs extras are the checkout's).
USER_EXTRAS = ("mlflow",)


def test_every_third_party_import_is_declared_with_a_minimum():
    import ast

    imported = set()
    for path in (REPO / "sweep").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"sweep"}
    declared = {}
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    for requirement in project["dependencies"] + [r for extra in USER_EXTRAS for r in extras[extra]]:
        name, _, rest = re.match(r"([A-Za-z0-9_.-]+)(.*)", requirement).group(1, 0, 2)
        declared[name.lower()] = rest
    assert "numpy" in third_party and "jinja2" in third_party  # the scan sees imports at all
    for module in sorted(third_party):
        dist = DISTRIBUTION.get(module, module)
        assert dist in declared, f"{module} is imported but {dist} is not a dependency"
        assert ">=" in declared[dist], f"{dist} has no minimum version"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(a fresh venv's bin/ with the wheel installed, the wheel's path)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"  # build from a copy: the build leaves build/ and *.egg-info beside the sources
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    for name in ("sweep", "templates", "sites", "grids"):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp / "dist"
    run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "-q", "-w", str(dist)], cwd=tmp)
    wheel = next(dist.glob("sweep-*.whl"))
    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp)
    where = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    purelib = Path(run([str(venv / "bin" / "python"), "-c", where], cwd=tmp).strip())
    (purelib / "_sweep_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q", "--no-deps",
         "--no-index", str(wheel)], cwd=tmp)
    return venv / "bin", wheel


def run(argv: list[str], cwd: Path, expect: int = 0) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == expect, f"{argv}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def test_the_wheel_carries_the_templates_and_every_package(installed):
    _, wheel = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"sweep/templates/{t}" for t in TEMPLATES} <= names
    for init in (REPO / "sweep").rglob("__init__.py"):
        assert init.relative_to(REPO).as_posix() in names
    # one source of truth: the packaged templates are the checkout's templates/, byte for byte
    with zipfile.ZipFile(wheel) as zf:
        for t in TEMPLATES:
            assert zf.read(f"sweep/templates/{t}") == (REPO / "templates" / t).read_bytes()
        sites = sorted(p.name for p in (REPO / "sites").glob("*.yaml"))
        assert sites == ["cern.yaml", "local-pool.yaml", "ospool.yaml", "recas.yaml"]
        for name in sites:
            assert zf.read(f"sweep/sites/{name}") == (REPO / "sites" / name).read_bytes()
        for grid in (REPO / "grids").glob("*.yaml"):  # what `sweep init` writes into a project
            assert zf.read(f"sweep/grids/{grid.name}") == grid.read_bytes()


@pytest.mark.training
def test_an_installed_sweep_works_without_the_checkout(installed, tmp_path):
    bin_dir, _ = installed
    sweep = str(bin_dir / "sweep")
    project = tmp_path / "project"
    # a project from the wheel alone: its grids and site profiles, every grid valid as written
    assert run([sweep, "--version"], cwd=tmp_path).strip().startswith("sweep ")
    out = run([sweep, "init", str(project)], cwd=tmp_path)
    assert "grids/ (9 files), sites/ (4 files)" in out, out
    for grid in sorted((project / "grids").glob("*.yaml")):
        assert "valid;" in run([sweep, "validate", f"grids/{grid.name}"], cwd=project), grid

    where = run([str(bin_dir / "python"), "-c", ("import sweep, sweep.core.render as r; "
                                                  "print(sweep.__file__); print(r.BUILTIN_TEMPLATES)")],
                cwd=project).split()
    assert all(Path(p).is_relative_to(bin_dir.parent) for p in where), where  # not the checkout
    assert not Path(where[0]).is_relative_to(REPO)

    out = run([sweep, "validate", "grids/demo.yaml"], cwd=project)
    assert "valid; sweep 'demo'" in out
    out = run([sweep, "submit", "grids/demo.yaml", "--dry-run", "--show"], cwd=project)
    assert "would submit 4" in out and re.search(r"^universe\s+= vanilla", out, re.M), out
    assert not (project / "jobs").exists()
    # the shipped site profiles come with the wheel (init copied them into the project, whose own win)
    (project / "grids" / "cern.yaml").write_text((project / "grids" / "demo.yaml").read_text()
                                                 + "site: cern\ncondor: {python: /usr/bin/python3}\n")
    out = run([sweep, "submit", "grids/cern.yaml", "--dry-run", "--show"], cwd=project)
    assert re.search(r"^\+JobFlavour\s+= \"", out, re.M) and "project/sites/cern.yaml" in out, out

    # a real (tiny) run on this machine: render, the job wrapper, training, collect
    run([sweep, "data", "simulate", "--out", "data/tiny.npz", "--waveforms", "120", "--no-progress"], cwd=project)
    (project / "grids" / "tiny.yaml").write_text(
        "sweep: tiny\nmodel: lstm\ndata: {path: data/tiny.npz, max_samples: 600}\n"
        "params: {topology: [8, 8, 1], epochs: 1, patience: 1, batch_size: 64}\n"
        "axes:\n  optimizer: [adam]\nresources: {request_cpus: 1, request_memory: 1GB, runtime: 10m}\n")
    out = run([sweep, "submit", "grids/tiny.yaml", "--local", "--no-progress"], cwd=project)
    assert "local: 1 of 1 runs finished, 0 failed" in out and "ranked by f1" in out, out
    # the job runs the archive of the installed package, and nothing else goes on its path (never
    # site-packages, which would shadow another interpreter's standard library)
    wrapper = (project / "jobs" / "tiny" / "run_job.sh").read_text()
    assert 'PYTHONPATH="$CODE${PYTHONPATH:+:$PYTHONPATH}"' in wrapper and "site-packages" not in wrapper
    code = json.loads((project / "jobs" / "tiny" / "sweep.json").read_text())["code"]
    (run_info,) = (project / "results" / "tiny").glob("*/run.json")
    origin = json.loads(run_info.read_text())["code"]
    assert {k: origin[k] for k in code} == code and origin["loaded_from"].endswith(f"/jobs/tiny/{code['archive']}")

    make_sweep(project, "syn", axes={"optimizer": ["adam", "sgd"], "learning_rate": [0.001, 0.01]},
               corrupt=0, missing=0)
    out = run([sweep, "report", "syn"], cwd=project)
    html = (project / "results" / "syn" / "report.html").read_text()
    assert "report written to results/syn/report.html" in out and "<img src=\"data:image/png;base64," in html
