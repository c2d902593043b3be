"""The documentation (README.md, mkdocs.yml, docs/) cannot drift from the code.

* The site builds with `mkdocs build --strict` (a broken link or anchor, a page left out of the
  navigation, any warning fails it), and its pages render in headless Chromium from local files
  only.
* Every shell command of a fenced code block (```console blocks: the lines after `$ `; ```sh,
  ```bash and ```shell blocks: every line) is checked, page by page, in a project folder of its
  own that holds the checkout's grids/ and sites/ and the files the page writes (a code block with
  `title="PATH"` is that file):
    - RUN: commands that take seconds without a pool or training (`--help`, `sweep validate`,
      `sweep submit --dry-run [--show]`, a small `sweep data simulate`, `sweep status`, `collect`
      and `report` of a sweep the page made for real) run through `sweep.cli.main` and must exit as
      the page says (`# exit N` after the command; 0 when it says nothing); the output lines a
      console block shows after the command must appear in that order (a `…` stands for any text);
    - SYNTHETIC: `sweep status`, `collect` and `report` of a sweep that only a parsed command of
      the page would have made run for real on a synthetic finished sweep of that name, model and
      axes (tests/synthetic.py), without checking their output;
    - PARSED: commands that need an HTCondor pool or training (PARSE_ONLY says why for each) are
      parsed by sweep's own argparse parser, and every file they read must be in the project or
      made by an earlier command of the same page (or be one of the reader's own files the page
      names in a `<!-- docs-test: reader-files: ... -->` comment); every sweep they name must be a
      grid's or chain's;
    - other commands (`bash scripts/demo.sh`, `tools/condor-pool start`, benchmarks) are not run:
      every path of the checkout they name must exist.
* Every YAML block is checked: a full grid is validated for real (`sweep validate`, in a project
  with the small data it names), a pipeline file with both its grids, a site profile through a
  grid that names it, a beam-test channel map by its reader, and a fragment (some sections of a
  grid) merged into grids/demo.yaml (or grids/cnn.yaml for clusterizer keys) and validated. A
  block titled with a file of the checkout must hold the same YAML as that file.
* The reference pages list every grid key, hyperparameter (with its default), simulation
  parameter (with its default), ranking metric, pipeline and site-profile key, command and option,
  exit status and file name that the code knows, and nothing the code does not know.
* `@pytest.mark.training`: the first tutorial runs for real, training included (about a minute on
  2 cores), and the JSON records it leaves hold no field that the files reference leaves out.

mkdocs and mkdocs-material are the `docs` dependency group (`pip install -e '.[docs]'`, which
`bash scripts/docs.sh` does): without them the build test fails, saying so.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import io
import os
import importlib
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

DOCS = REPO / "docs"
README = REPO / "README.md"
PAGES = [README, *sorted(DOCS.rglob("*.md"))]
README_LIMIT = 10 * 1024

#: Why a command is only parsed, by its (sub)command.
PARSE_ONLY = {
    "submit": "submits to an HTCondor pool, or trains on this machine (--local)",
    "search": "an adaptive search: a driver job on a pool, or trials trained here",
    "chain": "the two-step chain: grids trained, a simulation and an evaluation (minutes)",
    "resubmit": "reruns runs on a pool or trains them here",
    "evaluate": "evaluates models on simulated or real waveforms (minutes)",
    "data simulate": "simulates more than 2,000 waveforms, or with a trained model",
    "export onnx": "exports a trained model (TensorFlow, seconds to a minute)",
    "export tensorboard": "reads a finished sweep's runs (tests/test_tracking.py opens the export with TensorBoard)",
    "export mlflow": "reads a finished sweep's runs (tests/test_tracking.py opens the store with MLflow)",
    "dashboard": "serves until Ctrl-C (tests/test_dashboard.py queries the real server)",
    "logs": "a run's logs (tests/test_logs.py; --follow follows a running job)",
    "data inspect": "reads the reader's own beam-test files",
    "data import": "reads the reader's own beam-test files",
    "status --watch": "follows a sweep until it ends",
    "chain record": "a chain's status, collect or report reads the record its run leaves",
}
#: `sweep data simulate` runs for real up to this many waveforms (seconds).
SIMULATE_RUN_LIMIT = 2000
#: What a path of the checkout looks like in a command that is not sweep's.
REPO_PATH = re.compile(r"(?<![\w./-])((?:scripts|tools|bench|grids|sites|templates|tests|docs)/[\w./-]*[\w-])")
PROJECT_PATH = re.compile(r"(?<![\w./-])((?:results|jobs|data|evaluation)/[\w./-]*[\w-])")


# ----------------------------------------------------------------------------- reading the pages
@dataclass
class Block:
    page: Path
    line: int
    lang: str
    title: str | None
    text: str


@dataclass
class Command:
    page: Path
    line: int
    text: str  # as written, without prompt and comment
    expect: int  # exit status the page says (0 unless `# exit N`)
    output: list[str]  # the lines a console block shows after it


FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,})(?P<info>[^`\n]*)$")


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of a Markdown page."""
    out, lines, i = [], page.read_text(encoding="utf-8").splitlines(), 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        info, indent, fence = m["info"].strip(), len(m["indent"]), m["fence"]
        lang = info.split()[0] if info else ""
        title = re.search(r'title="([^"]+)"', info)
        body, j = [], i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            body.append(lines[j][indent:])
            j += 1
        out.append(Block(page, i + 1, lang, title.group(1) if title else None, "\n".join(body) + "\n"))
        i = j + 1
    return out


def commands(block: Block) -> list[Command]:
    """The shell commands of a console or sh block, with the exit status and output shown."""
    out: list[Command] = []
    console = block.lang == "console"
    pending = ""
    for k, raw in enumerate(block.text.splitlines()):
        if console and not raw.startswith("$ ") and not pending:
            if out:
                out[-1].output.append(raw)
            continue
        line = raw[2:] if console and raw.startswith("$ ") else raw
        if not line.strip() or (not pending and line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        line, pending = pending + line, ""
        text, expect = _strip_comment(line)
        out.append(Command(block.page, block.line + 1 + k, text, expect, []))
    return out


def _strip_comment(line: str) -> tuple[str, int]:
    """(the command without a trailing `# comment`, the exit status the comment says)."""
    in_single = in_double = False
    for i, c in enumerate(line):
        if c == "'" and not in_double:
            in_single = not in_single
        elif c == '"' and not in_single:
            in_double = not in_double
        elif c == "#" and not in_single and not in_double and (i == 0 or line[i - 1].isspace()):
            m = re.search(r"\bexit (\d+)", line[i:])
            return line[:i].rstrip(), int(m.group(1)) if m else 0
    return line.rstrip(), 0


def reader_files(page: Path) -> set[str]:
    """The reader's own files a page names in `<!-- docs-test: reader-files: A B -->`."""
    text = page.read_text(encoding="utf-8")
    return {f for m in re.finditer(r"<!--\s*docs-test:\s*reader-files:(.*?)-->", text, re.S)
            for f in m.group(1).split()}


def sweep_argv(text: str) -> list[str] | None:
    """The arguments of a `sweep` command (None for another program)."""
    words = shlex.split(text)
    while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
        words = words[1:]
    if words and words[0] == "sudo":
        words = words[1:]
    if words and words[0] in ("sweep", ".venv/bin/sweep"):
        return words[1:]
    return None


def all_commands() -> list[tuple[Command, list[str] | None]]:
    return [(c, sweep_argv(c.text)) for page in PAGES for b in blocks(page)
            if b.lang in ("console", "sh", "bash", "shell") for c in commands(b)]


def all_yaml() -> list[Block]:
    return [b for page in PAGES for b in blocks(page) if b.lang in ("yaml", "yml")]


# ----------------------------------------------------------------------------- running sweep
def run_sweep(argv: list[str], root: Path) -> tuple[int, str]:
    """`sweep ARGV` in the project `root`, in this process: (exit status, stdout + stderr)."""
    from sweep.cli import main

    out = io.StringIO()
    cwd = Path.cwd()
    os.chdir(root)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                code = main(list(argv))
            except SystemExit as exc:  # --help, and usage errors
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    finally:
        os.chdir(cwd)
    return code, out.getvalue()


def parse(argv: list[str]):
    """sweep's own parser on ARGV; a usage error fails the test."""
    from sweep.cli import build_parser

    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return build_parser().parse_args(argv)
    except SystemExit as exc:
        raise AssertionError(f"sweep {shlex.join(argv)}: not a valid command line: {err.getvalue().strip()}") from exc


def shown_output_appears(shown: list[str], actual: str) -> str | None:
    """None when every shown line appears in the actual output, in order (whitespace runs
    compared as one space; a `…` stands for any text within the line); else the first missing."""
    def norm(s: str) -> str:
        return " ".join(s.split())

    lines = [norm(line) for line in actual.splitlines()]
    at = 0
    for want in (norm(s) for s in shown):
        if not want:
            continue
        parts = [p.strip() for p in want.split("…") if p.strip()]
        for i in range(at, len(lines)):
            pos, ok = 0, True
            for p in parts:
                j = lines[i].find(p, pos)
                if j < 0:
                    ok = False
                    break
                pos = j + len(p)
            if ok:
                at = i + 1
                break
        else:
            return want
    return None


# ----------------------------------------------------------------------------- a page's project
@dataclass
class Project:
    """A project folder for one page: the checkout's grids/ and sites/, the page's files, and what
    the page's commands made (really, or by a command that was only parsed)."""

    root: Path
    small: Path  # a small real dataset
    reader: set[str] = field(default_factory=set)
    made: set[str] = field(default_factory=set)  # paths (and folder prefixes ending in /) made by parsed commands
    real_sweeps: set[str] = field(default_factory=set)  # sweeps made for real
    synthetic: set[str] = field(default_factory=set)

    @classmethod
    def for_page(cls, page: Path, tmp: Path, small: Path) -> Project:
        root = tmp / re.sub(r"\W", "_", str(page.relative_to(REPO)))
        shutil.copytree(REPO / "grids", root / "grids")
        shutil.copytree(REPO / "sites", root / "sites")
        project = cls(root, small, reader_files(page))
        for b in blocks(page):
            if b.title:
                path = root / b.title
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(b.text, encoding="utf-8")
        for b in blocks(page):
            if b.title and b.lang in ("yaml", "yml"):
                project.provide_named_files(yaml.safe_load(b.text))
        return project

    def provide_named_files(self, doc) -> None:
        """What a grid names that a reader has: its dataset (the small one), its image (empty)."""
        if not isinstance(doc, dict) or "sweep" not in doc:
            return
        data = doc.get("data") or {}
        if isinstance(data, dict) and isinstance(data.get("path"), str) and not (self.root / data["path"]).exists():
            (self.root / data["path"]).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(self.small, self.root / data["path"])
        image = (doc.get("condor") or {}).get("container_image")
        if isinstance(image, str) and "://" not in image and not image.startswith("/"):
            (self.root / image).parent.mkdir(parents=True, exist_ok=True)
            (self.root / image).touch()

    def exists(self, rel: str) -> bool:
        rel = rel.rstrip("/")
        return ((self.root / rel).exists() or rel in self.reader
                or any(rel == m.rstrip("/") or (m.endswith("/") and rel.startswith(m)) for m in self.made))

    def grid_doc(self, rel: str) -> dict:
        doc = yaml.safe_load((self.root / rel).read_text(encoding="utf-8"))
        assert isinstance(doc, dict), rel
        return doc

    def known_sweeps(self) -> dict[str, tuple[str, dict]]:
        """sweep or chain name -> ("grid", doc) or ("chain", doc), from every YAML file of grids/."""
        known: dict[str, tuple[str, dict]] = {}
        for path in (self.root / "grids").glob("*.yaml"):
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
            if isinstance(doc, dict) and doc.get("sweep"):
                known[str(doc["sweep"])] = ("grid", doc)
            elif isinstance(doc, dict) and doc.get("chain"):
                known[str(doc["chain"])] = ("chain", doc)
                known[f"{doc['chain']}-clusters"] = ("grid", {"model": "cnn", "axes": {}})
        return known

    def made_by(self, args) -> None:
        """Record what a parsed command would have made."""
        cmd = args.command
        if cmd in ("submit", "search") and (self.root / args.grid).is_file():
            doc = self.grid_doc(str(args.grid))
            self.made |= {f"jobs/{doc['sweep']}/", f"results/{doc['sweep']}/"}
            if isinstance((doc.get("data") or {}).get("path"), str):
                self.made.add(doc["data"]["path"])
        elif cmd == "chain" and (self.root / args.pipeline).is_file():
            doc = self.grid_doc(str(args.pipeline))
            name = doc["chain"]
            self.made |= {f"jobs/{name}/", f"results/{name}/", f"jobs/{name}-clusters/", f"results/{name}-clusters/",
                          (doc.get("simulate") or {}).get("path", f"data/{name}-cnn.npz")}
            peaks = self.grid_doc(doc["peaks"]["grid"])
            self.made |= {f"jobs/{peaks['sweep']}/", f"results/{peaks['sweep']}/"}
        elif cmd == "data" and getattr(args, "out", None) is not None:
            self.made.add(str(args.out))
        elif cmd == "evaluate":
            self.made.add(f"{args.out}/")
        elif cmd == "collect" and getattr(args, "output", None):
            self.made.add(str(args.output))


def input_files(args) -> list[str]:
    """The files a command line reads."""
    files = [str(getattr(args, k)) for k in ("grid", "pipeline") if getattr(args, k, None) is not None]
    for key in ("params", "peak_model", "cluster_model", "input", "channel_map"):
        if getattr(args, key, None) is not None:
            files.append(str(getattr(args, key)))
    return files + [str(f) for f in getattr(args, "files", None) or []]


@dataclass
class Checked:
    command: Command
    how: str  # "run", "synthetic", "parsed", "other"
    reason: str = ""


def check_command(cmd: Command, argv: list[str] | None, project: Project, training: bool) -> Checked:
    """Run, parse or path-check one command of a page (see the module docstring)."""
    where = f"{cmd.page.relative_to(REPO)}:{cmd.line}: `{cmd.text}`"
    if argv is None:
        for path in REPO_PATH.findall(cmd.text):
            assert (REPO / path).exists(), f"{where}: {path} is not in the checkout"
        for path in PROJECT_PATH.findall(cmd.text):
            assert project.exists(path), f"{where}: {path} is made by no earlier command of the page"
        return Checked(cmd, "other")
    if "--help" in argv or "-h" in argv:
        code, out = run_sweep(argv, project.root)
        assert code == cmd.expect, f"{where}: exit {code}, the page says {cmd.expect}\n{out}"
        return Checked(cmd, "run")
    args = parse(argv)
    name = args.command + (f" {args.data_command}" if args.command == "data" else
                           f" {args.export_command}" if args.command == "export" else "")
    reason = None
    if name == "validate" or (name == "submit" and args.dry_run):
        pass
    elif name == "data simulate":
        if args.peak_model is not None or args.waveforms > SIMULATE_RUN_LIMIT:
            reason = PARSE_ONLY["data simulate"]
    elif name == "submit" and training and args.local:
        pass
    elif name in ("status", "collect", "report"):
        if name == "status" and args.watch:
            reason = PARSE_ONLY["status --watch"]
        elif args.sweep is not None and project.known_sweeps().get(args.sweep, ("",))[0] == "chain":
            reason = PARSE_ONLY["chain record"]
        elif args.sweep is not None and args.sweep not in project.real_sweeps:
            return _synthetic(cmd, argv, args, project, where)
    else:
        reason = PARSE_ONLY[name]
    if reason is not None:  # parsed: the files it reads exist or were made before on the page
        for path in input_files(args):
            assert project.exists(path), f"{where}: {path} is neither in the project nor made before on the page"
        if getattr(args, "sweep", None) is not None:
            assert args.sweep in project.known_sweeps(), f"{where}: no grid or chain names the sweep {args.sweep!r}"
        project.made_by(args)
        return Checked(cmd, "parsed", reason)
    code, out = run_sweep(argv, project.root)
    assert code == cmd.expect, f"{where}: exit {code}, the page says {cmd.expect}\n{out}"
    missing = shown_output_appears(cmd.output, out)
    assert missing is None, f"{where}: the page shows {missing!r}, which the command does not print:\n{out}"
    if code == 0 and name in ("submit",) and args.local:
        project.real_sweeps.add(project.grid_doc(str(args.grid))["sweep"])
    return Checked(cmd, "run")


def _synthetic(cmd: Command, argv: list[str], args, project: Project, where: str) -> Checked:
    from tests.synthetic import make_sweep

    known = project.known_sweeps()
    assert args.sweep in known, f"{where}: no grid or chain names the sweep {args.sweep!r}"
    if args.sweep not in project.synthetic:
        doc = known[args.sweep][1]
        axes = ({k: v for k, v in (doc.get("axes") or {}).items() if isinstance(v, list)}
                or {"optimizer": ["adam", "sgd"]})
        make_sweep(project.root, args.sweep, model=doc.get("model", "lstm"), axes=axes, corrupt=0, missing=0)
        project.synthetic.add(args.sweep)
    code, out = run_sweep(argv, project.root)
    assert code == cmd.expect, f"{where}: exit {code} on a synthetic sweep, the page says {cmd.expect}\n{out}"
    return Checked(cmd, "synthetic", "on a synthetic finished sweep of the grid's name, model and axes")


def check_page(page: Path, tmp: Path, small: Path, training: bool = False) -> list[Checked]:
    project = Project.for_page(page, tmp, small)
    done = []
    for b in blocks(page):
        if b.lang in ("console", "sh", "bash", "shell"):
            for cmd in commands(b):
                done.append(check_command(cmd, sweep_argv(cmd.text), project, training))
    return done


# ----------------------------------------------------------------------------- the site
def mkdocs_or_fail():
    try:
        import material  # noqa: F401 - imported only to learn whether it is installed
        import mkdocs  # noqa: F401 - likewise
    except ImportError:
        pytest.fail("mkdocs and mkdocs-material are not installed: install the docs group with "
                    "`.venv/bin/python -m pip install -e '.[docs]'` (or run `bash scripts/docs.sh`)")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    mkdocs_or_fail()
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
                           str(REPO / "mkdocs.yml"), "--site-dir", str(out)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    return out


def test_the_site_builds_strictly_with_every_page_in_its_navigation(site):
    built = {p.relative_to(site).with_suffix(".md").as_posix() for p in site.rglob("*.html")
             if p.name != "404.html"}
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert pages <= built, pages - built
    nav = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    assert nav["theme"]["font"] is False and "search" in nav["plugins"]  # offline: no web fonts, local search
    assert not any(isinstance(p, dict) and "social" in p for p in nav["plugins"])


def test_the_site_uses_only_local_assets(site):
    for html in site.rglob("*.html"):
        text = html.read_text(encoding="utf-8")
        for m in re.finditer(r'<(?:link|script|img)\b[^>]*\b(?:href|src)="([^"]+)"', text):
            url = m.group(1)
            assert not re.match(r"(?:https?:)?//", url), f"{html.relative_to(site)}: loads {url} from the network"
            if url.startswith(("data:", "#")):
                continue
            local = url.split("#")[0].split("?")[0]
            # root-absolute links only in 404.html, which a server answers from the site's root
            target = (site / local.lstrip("/") if local.startswith("/") else html.parent / local).resolve()
            assert target.exists(), f"{html.relative_to(site)}: {url} is not in the built site"


def _chromium() -> str:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser"),
                      shutil.which("google-chrome")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("chromium is not installed: this test needs it (Debian: apt-get install -y chromium; "
                "scripts/setup.sh installs it)")


def _browser(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                           "--disable-component-update", "--disable-sync", "--no-first-run", "--enable-logging=stderr",
                           "--v=0", f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("page", ["index.html", "reference/grid.html"])
def test_a_page_renders_in_headless_chromium(site, page, tmp_path):
    from PIL import Image

    binary = _chromium()
    path = site / page
    dom = _browser(binary, tmp_path / "p1", "--virtual-time-budget=10000", "--dump-dom", path.as_uri())
    assert "<title>" in dom.stdout, dom.stderr[-2000:]
    title = re.search(r"<title>(.*?)</title>", dom.stdout, re.S).group(1)
    assert "sweep" in title, title
    assert 'class="md-nav' in dom.stdout and "Tutorial" in dom.stdout and "Reference" in dom.stdout
    # Material's JavaScript ran: its bundle turns the page's "no-js" class into "js"
    assert '<html lang="en" class="no-js">' in path.read_text(encoding="utf-8")
    assert re.search(r'<html[^>]*class="[^"]*\bjs\b', dom.stdout) and "no-js" not in dom.stdout.split(">", 2)[1]
    assert "ERR_FILE_NOT_FOUND" not in dom.stderr, dom.stderr[-3000:]
    # Material's CSS applied: the header is drawn in the palette's indigo
    shot = tmp_path / "shot.png"
    _browser(binary, tmp_path / "p2", f"--screenshot={shot}", "--window-size=1200,800", path.as_uri())
    with Image.open(shot) as img:
        r, g, b = img.convert("RGB").getpixel((600, 10))
    assert b > r + 40 and b > g + 40, f"the header is not Material's indigo: {(r, g, b)}"


# ----------------------------------------------------------------------------- commands and grids
def test_the_readme_is_short():
    size = len(README.read_bytes())
    assert size <= README_LIMIT, f"README.md is {size:,} bytes; at most {README_LIMIT:,} (the rest belongs in docs/)"


def test_every_command_is_a_known_kind():
    found = all_commands()
    assert len(found) > 40
    for cmd, argv in found:
        assert cmd.text and not cmd.text.startswith("$"), cmd
        if argv is not None and "--help" not in argv:
            args = parse(argv)
            name = args.command + (f" {args.data_command}" if args.command == "data" else
                                   f" {args.export_command}" if args.command == "export" else "")
            assert name in ("validate", "status", "collect", "report", "data simulate") or name in PARSE_ONLY, name


@pytest.mark.parametrize("page", [p for p in PAGES if p.name != "laptop.md"], ids=lambda p: str(p.relative_to(REPO)))
def test_the_commands_of_a_page(page, tmp_path, small_dataset):
    check_page(page, tmp_path, small_dataset)


def test_the_first_tutorials_commands_without_training(tmp_path, small_dataset):
    """Everything of tutorial 1 but the training (`submit --local` is parsed; status, collect and
    report then run on a synthetic sweep): the training test runs it whole."""
    check_page(DOCS / "tutorial" / "laptop.md", tmp_path, small_dataset)


def _merge(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _validate_doc(doc: dict, name: str, project: Path, expect: int = 0) -> None:
    path = project / "grids" / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    code, out = run_sweep(["validate", f"grids/{name}"], project)
    assert code == expect, out


@pytest.mark.parametrize("block", all_yaml(), ids=lambda b: f"{b.page.relative_to(REPO)}:{b.line}")
def test_every_yaml_block(block, tmp_path, small_dataset):
    doc = yaml.safe_load(block.text)
    assert isinstance(doc, dict), "a YAML block is a mapping"
    if block.title and (REPO / block.title).is_file():
        assert doc == yaml.safe_load((REPO / block.title).read_text()), f"{block.title} differs from the checkout's"
    project = Project.for_page(block.page, tmp_path, small_dataset)
    where = f"{block.page.relative_to(REPO)}:{block.line}"
    if set(doc) == {"channels"}:  # a beam-test channel map, read as `sweep data import` reads it
        from sweep.physics.beamtest import load_channel_map

        path = project.root / (block.title or "channels.yaml")
        path.write_text(block.text, encoding="utf-8")
        load_channel_map(path)
        return
    if "chain" in doc:
        from sweep.cli import _grid_checks
        from sweep.core.pipeline import load_pipeline

        path = project.root / (block.title or "grids/pipeline.yaml")
        path.write_text(block.text, encoding="utf-8")
        load_pipeline(path, project.root, checks=_grid_checks())
        return
    if block.title and block.title.startswith("sites/"):
        grid = {"sweep": "site-check", "model": "lstm", "site": Path(block.title).stem,
                "data": {"path": "data/x.npz"}, "axes": {"optimizer": ["adam"]}}
        if doc.get("shared_filesystem") is False:
            grid["condor"] = {"container_image": "docker://tensorflow/tensorflow:2.18.0"}
        _validate_doc(grid, "site-check.yaml", project.root)
        return
    if "sweep" in doc:
        rel = block.title or "grids/block.yaml"
        (project.root / rel).parent.mkdir(parents=True, exist_ok=True)
        (project.root / rel).write_text(block.text, encoding="utf-8")
        project.provide_named_files(doc)
        shown_as_invalid = any(argv and argv[:2] == ["validate", rel] and c.expect != 0
                               for c, argv in ((c, sweep_argv(c.text)) for c in
                                               (c for b in blocks(block.page) if b.lang == "console"
                                                for c in commands(b))))
        if shown_as_invalid:  # a grid the page shows refused: its command checks the message
            return
        code, out = run_sweep(["validate", rel], project.root)
        assert code == 0, f"{where}: the grid is not valid:\n{out}"
        return
    # a fragment: the sections of a grid, merged into a shipped grid of the right model
    from sweep.core import schema

    cnn_only = set(schema.CNN_PARAMS) - set(schema.LSTM_PARAMS)
    names = set(doc.get("params") or {}) | set(doc.get("axes") or {})
    base = "cnn.yaml" if doc.get("model") == "cnn" or names & cnn_only else "demo.yaml"
    merged = _merge(yaml.safe_load((REPO / "grids" / base).read_text()), doc)
    for name in doc.get("axes") or {}:  # swept by the fragment: no longer fixed by the base
        (merged.get("params") or {}).pop(name, None)
    for name in doc.get("params") or {}:
        (merged.get("axes") or {}).pop(name, None)
    if "search" in merged and "zip" in merged:
        merged.pop("zip")
    project.provide_named_files(merged)
    _validate_doc(merged, "fragment.yaml", project.root)


# ----------------------------------------------------------------------------- reference pages
def table_rows(page: Path | str, header: str) -> list[list[str]]:
    """The rows of every table of a page (or of a page's text) whose header row starts with
    `header` (cells stripped)."""
    rows, inside = [], False
    text = page.read_text(encoding="utf-8") if isinstance(page, Path) else page
    for line in text.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if not inside and cells and cells[0] == header:
                inside = "header"
                continue
            if inside == "header":  # the separator row
                inside = True
                continue
            if inside:
                rows.append(cells)
        else:
            inside = False
    return rows


def code_of(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def section(page: Path, heading: str) -> str:
    """The text of one `## heading` section of a page."""
    text = page.read_text(encoding="utf-8")
    m = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert m, f"{page.name} has no section '## {heading}'"
    return m.group(1)


def test_the_grid_reference_has_every_key_and_no_other():
    from sweep.core import schema

    expected = set(schema.TOP_LEVEL_KEYS)
    expected |= {f"data.{k}" for k in schema.DATA_KEYS} | {f"data.simulate.{k}" for k in schema.SIMULATE_KEYS}
    expected |= {f"resources.{k}" for k in schema.RESOURCE_KEYS} | {f"condor.{k}" for k in schema.CONDOR_KEYS}
    expected |= {f"condor.memory_escalation.{k}" for k in schema.MEMORY_ESCALATION_KEYS}
    expected |= {f"search.{k}" for k in schema.SEARCH_KEYS} | {f"axes.NAME.{k}" for k in schema.RANGE_KEYS}
    expected |= {f"notify.{k}" for k in schema.NOTIFY_KEYS}
    page = DOCS / "reference" / "grid.md"
    documented = [code_of(r[0])[0] for r in table_rows(page, "key")]
    assert len(documented) == len(set(documented)), "a key is documented twice"
    assert set(documented) == expected, {"undocumented": expected - set(documented),
                                         "unknown": set(documented) - expected}
    defaults = {code_of(r[0])[0]: r[2] for r in table_rows(page, "key")}
    for key, value in schema.DEFAULT_RESOURCES.items():
        assert f"`{value}`" == defaults[f"resources.{key}"], key


def test_the_grid_reference_has_every_hyperparameter_with_its_default():
    from sweep.core import schema

    rows = table_rows(DOCS / "reference" / "grid.md", "model")
    documented = {}
    for model, name, default, *_ in rows:
        for m in (("lstm", "cnn") if model == "both" else (model,)):
            documented[(m, code_of(name)[0])] = default
    expected = {(m, n) for m, params in schema.PARAMS_BY_MODEL.items() for n in params}
    assert set(documented) == expected, {"undocumented": expected - set(documented),
                                         "unknown": set(documented) - expected}
    for (model, name), cell in documented.items():
        values = code_of(cell)
        if len(values) > 1:  # "lstm `adam`, cnn `rmsprop`"
            values = [code_of(part)[0] for part in cell.split(",") if part.strip().startswith(model)]
        assert yaml.safe_load(values[0]) == schema.PARAMS_BY_MODEL[model][name].default, (model, name, cell)
    for name in (*schema.OPTIMIZERS, *schema.ACTIVATIONS, *schema.CLASSIFICATION_LOSSES, *schema.REGRESSION_LOSSES,
                 *schema.CNN_HEADS, *schema.SAMPLERS, *schema.PRUNERS, *schema.JOB_FLAVOURS,
                 *schema.JOB_DURATION_CATEGORIES):
        assert f"`{name}`" in (DOCS / "reference" / "grid.md").read_text(), name
    text = (DOCS / "reference" / "grid.md").read_text()
    for scheme in (*schema.DATA_URL_SCHEMES, *schema.CONTAINER_URL_SCHEMES):
        assert f"`{scheme}://`" in text, scheme


def test_the_grid_reference_has_every_metric_and_its_direction():
    from sweep.core import schema

    rows = table_rows(DOCS / "reference" / "grid.md", "metric")
    documented = {(r[1], code_of(r[0])[0]): ("max" if r[2] == "higher" else "min") for r in rows}
    expected = {(m, k): d for m in schema.MODELS for k, d in schema.metrics_for(m).items()}
    assert documented == expected


def test_the_grid_reference_has_every_simulation_parameter_with_its_default():
    from sweep.physics.simulate import SimulationParams

    rows = table_rows(DOCS / "reference" / "grid.md", "parameter")
    documented = {code_of(r[0])[0]: yaml.safe_load(code_of(r[1])[0]) for r in rows}
    expected = {}
    for f in dataclasses.fields(SimulationParams):
        expected[f.name] = list(f.default) if isinstance(f.default, tuple) else f.default
    assert set(documented) == set(expected), set(documented) ^ set(expected)
    for name, value in expected.items():
        assert documented[name] == value, (name, documented[name], value)


def test_the_pipeline_and_site_reference_have_every_key():
    from sweep.core import pipeline, schema

    page = DOCS / "reference" / "pipeline.md"
    chain = {code_of(r[0])[0] for r in table_rows(section(page, "Pipeline file"), "key")}
    expected = set(pipeline.PIPELINE_KEYS) | {f"peaks.{k}" for k in pipeline.PEAKS_KEYS}
    expected |= {f"clusters.{k}" for k in pipeline.STAGE_KEYS}
    expected |= {f"simulate.{k}" for k in pipeline.SIMULATE_KEYS} | {f"evaluate.{k}" for k in pipeline.EVALUATE_KEYS}
    assert chain == expected, chain ^ expected
    defaults = {code_of(r[0])[0]: r[2] for r in table_rows(section(page, "Pipeline file"), "key")}
    for key, value in pipeline.EVALUATE_DEFAULTS.items():
        assert yaml.safe_load(code_of(defaults[f"evaluate.{key}"])[0]) == value, key
    site = {code_of(r[0])[0] for r in table_rows(section(page, "Site profile"), "key")}
    assert site == set(schema.SITE_KEYS) | {f"data.{k}" for k in schema.SITE_DATA_KEYS}


def _subparsers():
    from sweep.cli import build_parser

    parser = build_parser()
    out = {}

    def walk(p, prefix):
        for action in p._actions:
            if isinstance(action, type(parser._subparsers._group_actions[0])):
                for name, sub in action.choices.items():
                    if any(isinstance(a, type(action)) for a in sub._actions):
                        walk(sub, f"{prefix} {name}")
                    else:
                        out[f"{prefix} {name}".strip()] = sub
    walk(parser, "")
    return parser, out


def test_the_command_reference_has_every_command_and_option():
    parser, commands_ = _subparsers()
    page = DOCS / "reference" / "cli.md"
    text = page.read_text(encoding="utf-8")
    headings = re.findall(r"^## `sweep ([^`]+)`$", text, re.M)
    assert set(headings) == set(commands_), set(headings) ^ set(commands_)
    for name, sub in [("Global options", parser), *((f"`sweep {n}`", s) for n, s in commands_.items())]:
        rows = table_rows(section(page, name), "option")
        documented = {w.split()[0] for r in rows for w in code_of(r[0])}
        known = {s for a in sub._actions for s in a.option_strings
                 if sub is parser or not isinstance(a, argparse._HelpAction)}
        positionals = {a.dest.upper() for a in sub._actions if not a.option_strings and a.dest != "command"}
        assert documented == known | positionals, (name, {"undocumented": (known | positionals) - documented,
                                                          "unknown": documented - known - positionals})


def test_the_exit_codes_page_has_every_error_kind_and_status():
    from sweep import cli
    from sweep.core import names

    rows = table_rows(DOCS / "reference" / "exit-codes.md", "status")
    pairs = {(r[0], code_of(r[1])[0]) for r in rows if code_of(r[1])}
    expected = {(str(code), kind.__name__) for kind, code in cli.EXIT_STATUS}
    assert expected <= pairs and not {p for p in pairs if p[1].endswith("Error")} - expected, pairs ^ expected
    statuses = {r[0] for r in rows}
    assert {str(cli.EXIT_OK), str(cli.EXIT_ERROR), str(cli.EXIT_BAD_INPUT), "130",
            str(names.JOB_EXIT_BAD_INPUT), str(names.JOB_EXIT_ENVIRONMENT), str(names.JOB_EXIT_CHECKPOINT)} <= statuses


def test_the_files_page_names_every_file_sweep_writes():
    from sweep.chain import run as chain_run
    from sweep.chain import stages, steps
    from sweep.core import names

    text = (DOCS / "reference" / "files.md").read_text(encoding="utf-8")
    file_names = [v for k, v in vars(names).items() if k.isupper() and isinstance(v, str)
                  and (re.fullmatch(r"\.?[\w-]+\.[a-z]+", v) or k.endswith("_DIR"))]
    file_names += [stages.CHAIN_RECORD, stages.CHAIN_LOG, stages.CLUSTERS_GRID, stages.EVALUATION_DIR,
                   chain_run.FROZEN_PIPELINE, chain_run.CHAIN_SUBMIT, steps.STEP_EVENTS]
    missing = sorted({n for n in file_names if n not in text})
    assert not missing, f"docs/reference/files.md does not name {missing}"


def test_the_records_table_is_the_registry_and_each_record_s_fields_are_documented():
    """The files page's records table lists exactly sweep.records.RECORDS (file, schema version, the
    one writer), and every field of the records whose fields it documents is on it."""
    import dataclasses

    from sweep.records import RECORDS

    rows = {r[0]: r for r in table_rows(DOCS / "reference" / "files.md", "record")}
    assert set(rows) == {r.kind for r in RECORDS}, set(rows) ^ {r.kind for r in RECORDS}
    for record in RECORDS:
        kind, file, version, writer, _ = rows[record.kind]
        assert record.file in file and version == str(record.schema_version), (record, rows[record.kind])
        assert f"`{record.owner}`" in writer, (record, writer)
    for record in RECORDS:
        if record.file not in RECORDS_DOCUMENTED:
            continue
        section = _fields_documented(RECORDS_DOCUMENTED[record.file])
        module, name = record.model.rsplit(".", 1)
        model = getattr(importlib.import_module(module), name)
        missing = [f.name for f in dataclasses.fields(model) if f"`{f.name}`" not in section]
        assert not missing and "`schema_version`" in section, f"{record.file}: {missing} not on docs/reference/files.md"


#: The sections of the files page that document each record's fields.
RECORDS_DOCUMENTED = {"metrics.json": "### metrics.json", "run.json": "### run.json", "model.json": "### model.json",
                      "sweep.json": "## sweep.json", "best.json": "## best.json", "step.json": "## step.json",
                      "chain.json": "## chain.json"}


# ----------------------------------------------------------------------------- the first tutorial, for real
RECORDS = RECORDS_DOCUMENTED


def _fields_documented(heading: str) -> str:
    text = (DOCS / "reference" / "files.md").read_text(encoding="utf-8")
    start = text.index(heading + "\n")
    end = re.compile(r"^#{2,3} ", re.M).search(text, start + len(heading) + 1)
    return text[start:end.start() if end else None]


@pytest.mark.training
def test_the_first_tutorial_for_real(tmp_path, small_dataset):
    import json

    done = check_page(DOCS / "tutorial" / "laptop.md", tmp_path, small_dataset, training=True)
    assert [c.how for c in done].count("run") == len(done), [(c.command.text, c.how) for c in done]
    root = next(tmp_path.iterdir())
    run = next(p for p in (root / "results" / "first").iterdir() if (p / "metrics.json").is_file())
    files = {"metrics.json": run / "metrics.json", "run.json": run / "run.json", "model.json": run / "model.json",
             "sweep.json": root / "jobs" / "first" / "sweep.json",
             "best.json": root / "results" / "first" / "best" / "best.json"}
    for record, path in files.items():
        documented = _fields_documented(RECORDS[record])
        for key in json.loads(path.read_text()):
            assert f"`{key}`" in documented, f"{record}'s field {key!r} is not on docs/reference/files.md"
    assert (root / "results" / "first" / "report.html").is_file()
