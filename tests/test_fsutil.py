"""Atomic writes in a folder someone else can write (sweep.fsutil): a link planted under the
temporary name or the target's name never makes sweep write, truncate or chmod another file.
Real files, real links, in a temporary folder."""

from __future__ import annotations

import os
import stat
import threading

import pytest

from sweep.fsutil import (LinkedPathError, atomic_file, atomic_folder, atomic_write_json, atomic_write_text,
                          write_text_if_changed)


def _victim(tmp_path):
    victim = tmp_path / "elsewhere" / "precious.conf"
    victim.parent.mkdir()
    victim.write_text("do not touch\n")
    victim.chmod(0o600)
    return victim


def _plant_predictable_temp_names(folder, name, victim):
    """Links under every temporary name the writer used to pick (.{name}.{pid}.{tid}.tmp)."""
    for tid in {threading.get_ident(), threading.main_thread().ident}:
        os.symlink(victim, folder / f".{name}.{os.getpid()}.{tid}.tmp")


def test_a_link_planted_under_the_temporary_name_is_never_written_through(tmp_path):
    folder = tmp_path / "jobs"
    folder.mkdir()
    victim = _victim(tmp_path)
    _plant_predictable_temp_names(folder, "run_job.sh", victim)
    atomic_write_text(folder / "run_job.sh", "#!/bin/sh\n", mode=0o755)
    assert victim.read_text() == "do not touch\n"  # not truncated, not rewritten
    assert stat.S_IMODE(victim.stat().st_mode) == 0o600  # not chmodded through the link
    assert (folder / "run_job.sh").read_text() == "#!/bin/sh\n"
    assert stat.S_IMODE((folder / "run_job.sh").stat().st_mode) == 0o755
    assert not (folder / "run_job.sh").is_symlink()


def test_temporary_names_are_unpredictable_and_none_is_left(tmp_path):
    seen = set()
    for _ in range(3):
        with atomic_file(tmp_path / "a.txt") as fh:
            seen.add(os.path.basename(fh.name) if isinstance(fh.name, str) else None)
            seen |= {p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")}
            fh.write("x")
    assert len(seen - {None}) == 3  # a fresh random name each time
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_a_target_that_is_a_link_is_refused_naming_it(tmp_path):
    victim = _victim(tmp_path)
    target = tmp_path / "sweep.json"
    os.symlink(victim, target)
    for write in (lambda: atomic_write_json(target, {"a": 1}), lambda: atomic_write_text(target, "x"),
                  lambda: write_text_if_changed(target, "x")):
        with pytest.raises(LinkedPathError) as err:
            write()
        assert str(target) in str(err.value) and "symbolic link" in str(err.value)
        assert isinstance(err.value, OSError)
    assert target.is_symlink() and victim.read_text() == "do not touch\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere", "sweep.json"]  # no temporary file left


def test_the_umask_still_applies_without_permissions(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "f", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == 0o640


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "f"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_file(target) as fh:
            fh.write("new")
            raise RuntimeError("killed half-way")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["f"]


def test_atomic_folder_ignores_planted_links_and_refuses_a_linked_target(tmp_path):
    victim_dir = tmp_path / "elsewhere"
    victim_dir.mkdir()
    (victim_dir / "keep").write_text("keep")
    results = tmp_path / "results"
    results.mkdir()
    for suffix in ("tmp", "old"):  # the names it used to pick
        os.symlink(victim_dir, results / f".best.{os.getpid()}.{suffix}")
    with atomic_folder(results / "best") as tmp:
        (tmp / "best.json").write_text("{}")
    assert (results / "best" / "best.json").read_text() == "{}"
    assert (victim_dir / "keep").read_text() == "keep"
    os.symlink(victim_dir, results / "report")
    with pytest.raises(LinkedPathError, match="report"):
        with atomic_folder(results / "report") as tmp:
            (tmp / "x").write_text("x")
    assert sorted(p.name for p in victim_dir.iterdir()) == ["keep"]
