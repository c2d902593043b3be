"""sweep: HTCondor hyperparameter sweeps for the IDEA drift-chamber cluster-counting models.

The folders read like the pipeline (see docs/explanation/architecture.md):

* ``sweep.core``     – pure logic: grid parsing/validation, expansion, ids, rendering, ranking,
                       the error base, the shared names, the run states. Neither HTCondor nor
                       TensorFlow, nothing of sweep outside the core.
* ``sweep.records``  – what a sweep leaves on disk (manifest, run folders, event log), read by
                       several stages.
* ``sweep.submit``   – grid -> files on disk -> a backend (local executor, HTCondor pool); status.
* ``sweep.job``      – the execute-side process (where TensorFlow trains).
* ``sweep.collect``  – run folders -> leaderboard, exports, best models, reports.
* ``sweep.physics``  – the waveform simulator, datasets, readers, baselines, the chain evaluation.
* ``sweep.cli``      – argument parsing; delegates to the stages above.

* ``sweep.api``      – sweep from Python: ``sweep.load``, ``sweep.load_grid``, ``sweep.submit_grid``.

``import sweep`` stays light: it reads the version, and the API's names import sweep.api (and
what it needs) the first time one is used. No module of sweep imports this one.
"""

from .core.version import __version__

__all__ = ["__version__", "load", "load_grid", "submit_grid"]
_API = {"load", "load_grid", "submit_grid", "Sweep", "Chain"}


def __getattr__(name: str):  # PEP 562: the API on first use, so `sweep --help` imports none of it
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'sweep' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _API)
