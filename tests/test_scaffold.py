"""`sweep init`: a new project from what sweep ships, every grid of it valid as written, nothing
overwritten (an existing file, even a link, stops it before it writes anything). The installed
wheel does the same outside the checkout: tests/test_packaging.py."""

from __future__ import annotations

import pytest

from sweep.cli import main
from tests.conftest import REPO


def test_init_writes_the_shipped_grids_and_sites_and_each_grid_validates(tmp_path, capsys):
    project = tmp_path / "p"
    assert main(["--root", str(tmp_path), "init", str(project)]) == 0
    out = capsys.readouterr().out
    assert f"{project}: a new project: grids/ (9 files), sites/ (4 files), README.md, data/" in out
    for folder in ("grids", "sites"):
        shipped = sorted(p.name for p in (REPO / folder).glob("*.yaml"))
        assert sorted(p.name for p in (project / folder).iterdir()) == shipped
        for name in shipped:
            assert (project / folder / name).read_bytes() == (REPO / folder / name).read_bytes()
    assert (project / "data").is_dir() and not (project / "templates").exists()
    assert "sweep submit grids/demo.yaml --local" in (project / "README.md").read_text()
    for grid in sorted((project / "grids").glob("*.yaml")):
        assert main(["--root", str(project), "validate", str(grid)]) == 0, capsys.readouterr()
        assert "valid;" in capsys.readouterr().out


def test_init_overwrites_nothing_and_writes_nothing_when_a_file_is_there(tmp_path, capsys):
    project = tmp_path / "p"
    (project / "grids").mkdir(parents=True)
    (project / "grids" / "demo.yaml").write_text("mine\n")
    (project / "README.md").symlink_to(tmp_path / "elsewhere.md")
    assert main(["--root", str(project), "init"]) == 2
    err = capsys.readouterr().err
    assert "already holds README.md, grids/demo.yaml: sweep init overwrites nothing" in err
    assert sorted(p.name for p in project.rglob("*")) == ["README.md", "demo.yaml", "grids"]
    assert (project / "grids" / "demo.yaml").read_text() == "mine\n" and not (tmp_path / "elsewhere.md").exists()


def test_init_with_the_templates(tmp_path, capsys):
    assert main(["--root", str(tmp_path), "init", "--templates"]) == 0
    assert "templates/ (3 files)" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "templates").iterdir()) == sorted(
        p.name for p in (REPO / "templates").glob("*.j2"))


def test_version(capsys):
    from sweep import __version__

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"sweep {__version__}"
