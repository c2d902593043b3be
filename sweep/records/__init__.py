"""What a sweep leaves on disk, read by more than one stage (below submit and collect, which
never import each other). Where a run stands is sweep.core.states.RunState.

Every record (a JSON file sweep writes and reads back) is a dataclass with a schema version,
written by exactly one module here and read through the same model; ``RECORDS`` lists them
(sweep.records.registry). Only the standard library is imported at module level: the job
process imports its records before it knows whether numpy is installed.

base.py        schema versions, migrations, RecordError, reading a record key by key
manifest.py    jobs/<sweep>/sweep.json: the sweep's runs, submissions and learnt memory
chain.py       results/<chain>/chain.json: a chain's stages
runinfo.py     results/<sweep>/<run-id>/run.json: how a run's job ended (written by the job)
metrics.py     results/<sweep>/<run-id>/metrics.json: a run's metrics (written by the job)
progress.py    results/<sweep>/<run-id>/progress.json: a trial's values per epoch (written by the job)
modelinfo.py   model.json beside a trained model: what it was trained on (written by the job)
checkpoint.py  checkpoint/state.json: where a training job stands (written by the job)
step.py        step.json of a chain's simulation or evaluation job (written by the job)
localexit.py   results/<sweep>/<run-id>/.local-exit.json: how a local job ended
best.py        results/<sweep>/best/best.json: the best runs collect copied
evaluation.py  evaluation.json: an evaluation's figures
beamtest.py    beamtest.json: an evaluation's figures on beam-test data, without truth
deployment.py  deploy.json beside an exported ONNX model: what it expects, how it was checked
lock.py        jobs/<sweep>/.sweep.lock: one command at a time on a sweep's folder
runs.py        results/<sweep>/<run-id>/: whether a run left a valid result, and why not
events.py      results/<sweep>/events.log: HTCondor's job event log, one record per job
study.py       results/<sweep>/study.journal: a search's Optuna study
registry.py    RECORDS: every record, its file, owner, version, readers
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    """``sweep.records.RECORDS``, imported on first use (the job imports single records)."""
    if name == "RECORDS":
        from .registry import RECORDS

        return RECORDS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
