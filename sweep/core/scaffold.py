"""`sweep init [DIR]`: a project a physicist can start from, written from what sweep ships (the
checkout's grids/ and sites/, or the wheel's copies): the grids (peak finder, clusterizer, demo,
search, the chain), the site profiles, a short README, and on request the templates to edit.
Nothing is overwritten: when any file it would write exists, it writes none."""

from __future__ import annotations

import os
from pathlib import Path

from . import names
from .errors import InputError

#: what sweep ships that a project starts from: folder -> the files' suffix
SHIPPED = {"grids": ".yaml", names.SITES_DIR: ".yaml"}
TEMPLATES = "templates"

PROJECT_README = """\
# A sweep project

Made by `sweep init`. Everything sweep writes goes under `jobs/` and `results/`; datasets under
`data/` (a grid with `data.simulate` makes its own the first time).

    sweep validate grids/demo.yaml          # check a grid, nothing written
    sweep submit grids/demo.yaml --local    # 4 small LSTM trainings on this machine
    sweep collect demo                      # the leaderboard
    sweep chain grids/chain.yaml --local    # peak finder -> its peaks -> clusterizer -> evaluation

`grids/`: lstm.yaml and cnn.yaml (the two models' sweeps), demo.yaml, search.yaml (Optuna),
chain.yaml with its grids. `sites/`: the site profiles a grid names with `site:` (ReCaS, CERN,
the OSPool, a local pool); a profile here wins over the one sweep ships. `templates/` (with
`sweep init --templates`): the submit file, job wrapper and report templates, to edit.
"""


def project_files(templates: bool = False) -> dict[Path, Path]:
    """{path in the project: the shipped file it is copied from}."""
    out: dict[Path, Path] = {}
    folders = dict(SHIPPED, **({TEMPLATES: ".j2"} if templates else {}))
    for folder, suffix in folders.items():
        source = names.shipped_folder(folder)
        for path in sorted(source.glob(f"*{suffix}")):
            out[Path(folder) / path.name] = path
    return out


def init_project(dest: Path, templates: bool = False) -> list[Path]:
    """Write a new project into ``dest`` (made if missing): the shipped grids and site profiles,
    README.md, an empty data/ folder, and with ``templates`` the templates. Returns the files
    written (relative to ``dest``).

    Raises:
        InputError: a file it would write is already there (all of them named; nothing written).
    """
    files = project_files(templates)
    readme = Path("README.md")
    there = sorted(str(p) for p in [*files, readme] if (dest / p).exists() or (dest / p).is_symlink())
    if there:
        raise InputError(f"{dest}: already holds {', '.join(there)}: sweep init overwrites nothing (choose another "
                         "folder, or move these away)")
    written = []
    for rel, source in [*files.items(), (readme, None)]:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        data = source.read_bytes() if source is not None else PROJECT_README.encode()
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        written.append(rel)
    (dest / "data").mkdir(exist_ok=True)
    return written
