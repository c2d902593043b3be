"""A search's Optuna study on disk: results/<sweep>/study.journal, an Optuna JournalFileBackend
with its open-lock (O_EXCL, NFS-safe). The driver (sweep.search) is its only writer; collect and
report read it. No job ever opens it, so no shared file system is needed."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # optuna is imported when a study is opened
    import optuna
    from optuna.storages import JournalStorage


def storage(path: Path) -> JournalStorage:
    """The journal storage of `path` (its folder is created)."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path))))


def load_study(path: Path, name: str) -> optuna.Study:
    """The study `name` of an existing journal (read by collect and report).

    Raises:
        KeyError: the journal holds no such study.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=name, storage=storage(path))
