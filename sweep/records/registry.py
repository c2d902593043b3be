"""Every record sweep writes and reads back, in one table (:data:`RECORDS`, also
``sweep.records.RECORDS``) for the documentation and the tests: its kind, where it lives, the one
module that writes it, its model, its schema version, who reads it, and what it holds.

tests/test_records.py checks that every record module is in the table and that each record's
file is written by its owner module alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core import names
from . import (beamtest, best, chain, checkpoint, deployment, evaluation, localexit, lock, manifest, metrics, modelinfo,
               progress, runinfo, step)


@dataclass(frozen=True)
class RecordKind:
    """One kind of record."""

    kind: str  # a short name: "manifest", "run", ...
    file: str  # its file name
    path: str  # where it lives, as a pattern
    owner: str  # the one module that writes it
    model: str  # the dataclass it is read into and written from
    schema_version: int  # the version this sweep writes (and the newest it reads)
    readers: tuple[str, ...]  # the modules that read it back (through the owner's module)
    description: str  # one line for users


RECORDS: tuple[RecordKind, ...] = (
    RecordKind("manifest", names.MANIFEST, "jobs/<sweep>/sweep.json", "sweep.records.manifest",
               "sweep.records.manifest.Manifest", manifest.SCHEMA_VERSION,
               ("sweep.submit.prepare", "sweep.submit.stage", "sweep.submit.status", "sweep.submit.backends.htcondor",
                "sweep.search.driver", "sweep.search.stage", "sweep.collect.gather", "sweep.collect.report_html"),
               "a sweep's runs (every run it ever recorded), submissions, learnt memory, code archive, dataset and "
               "a search's settings"),
    RecordKind("chain", chain.CHAIN_RECORD, "results/<chain>/chain.json", "sweep.records.chain",
               "sweep.records.chain.ChainRecord", chain.SCHEMA_VERSION,
               ("sweep.chain.stages", "sweep.chain.run", "sweep.chain.report"),
               "a chain's stages: each one's state, inputs hash, leader, dataset or evaluation, and its queued jobs"),
    RecordKind("step", names.STEP_RESULT, "results/<chain>/steps/<stage>-<inputs hash>/step.json",
               "sweep.records.step", "sweep.records.step.StepRecord", step.SCHEMA_VERSION, ("sweep.chain.steps",),
               "how a chain's simulation or evaluation job ended and what it made (written by the job)"),
    RecordKind("run", names.RUN_INFO, "results/<sweep>/<run-id>/run.json", "sweep.records.runinfo",
               "sweep.records.runinfo.RunInfo", runinfo.SCHEMA_VERSION, ("sweep.records.runs",),
               "how a run's job ended (status, exit status, error), where and with what it ran (written by the job)"),
    RecordKind("metrics", names.METRICS, "results/<sweep>/<run-id>/metrics.json", "sweep.records.metrics",
               "sweep.records.metrics.Metrics", metrics.SCHEMA_VERSION, ("sweep.records.runs",),
               "a run's test metrics at its best epoch, how training went, what it trained on; a pruned trial's "
               "stop (written last by the job: its presence means trained)"),
    RecordKind("progress", names.PROGRESS_FILE, "results/<sweep>/<run-id>/progress.json", "sweep.records.progress",
               "sweep.records.progress.Progress", progress.SCHEMA_VERSION,
               ("sweep.search.trials", "sweep.submit.status"),
               "a local run's watched values after each epoch and its last epoch's live line, for a search's "
               "driver and `sweep status` (local backend; written by the job)"),
    RecordKind("model", names.MODEL_INFO, "results/<sweep>/<run-id>/model.json (and <stage>-leader.json)",
               "sweep.records.modelinfo", "sweep.records.modelinfo.ModelInfo", modelinfo.SCHEMA_VERSION,
               ("sweep.physics.scorers",),
               "what a trained model was trained on, checked where it is applied (written by the job)"),
    RecordKind("checkpoint", checkpoint.CHECKPOINT_STATE, "<job scratch>/checkpoint/state.json",
               "sweep.records.checkpoint", "sweep.records.checkpoint.CheckpointState", checkpoint.SCHEMA_VERSION,
               ("sweep.job.checkpoint",),
               "where a training job's checkpoint stands (epochs done, history, early stopping), to resume from"),
    RecordKind("local-exit", names.LOCAL_RECORD, "results/<sweep>/<run-id>/.local-exit.json",
               "sweep.records.localexit", "sweep.records.localexit.LocalExit", localexit.SCHEMA_VERSION,
               ("sweep.records.runs",), "how a job of the local backend ended (exit status, why it was killed), "
               "and while it runs its process and host"),
    RecordKind("lock", names.LOCK_FILE, "jobs/<sweep>/.sweep.lock", "sweep.records.lock",
               "sweep.records.lock.LockHolder", lock.SCHEMA_VERSION, ("sweep.records.lock",),
               "who holds a sweep's lock (host, pid, start time, command, since when, a random token)"),
    RecordKind("best", names.BEST_INDEX, "results/<sweep>/best/best.json", "sweep.records.best",
               "sweep.records.best.BestIndex", best.SCHEMA_VERSION, (),
               "the index of the best runs copied by `sweep collect --best` (for people and their scripts)"),
    RecordKind("evaluation", evaluation.EVALUATION, "<out>/evaluation.json, results/<chain>/evaluation/evaluation.json",
               "sweep.records.evaluation", "sweep.records.evaluation.Evaluation", evaluation.SCHEMA_VERSION,
               ("sweep.chain.report",), "an evaluation of a peak finder and a clusterizer at every level, with its "
               "headline figures"),
    RecordKind("beamtest", beamtest.BEAMTEST_EVALUATION, "<out>/beamtest.json", "sweep.records.beamtest",
               "sweep.records.beamtest.BeamTestEvaluation", beamtest.SCHEMA_VERSION, ("sweep.collect.report_beamtest",),
               "a peak finder's and a clusterizer's counts on beam-test data without truth: per run and channel, "
               "their Poisson fits, angle scaling and pseudo-track resolutions"),
    RecordKind("deployment", deployment.DEPLOYMENT, "results/<sweep>/onnx/<run-id>/deploy.json, "
               "results/<chain>/onnx/{peaks,clusters}/deploy.json", "sweep.records.deployment",
               "sweep.records.deployment.Deployment", deployment.SCHEMA_VERSION, ("sweep.deploy.consumer",),
               "what an exported ONNX model expects (sampling, window, normalization, finder, working point or "
               "histogram), where it came from, and how it was checked against Keras"),
)
