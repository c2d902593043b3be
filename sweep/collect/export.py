"""Which trained models `sweep export onnx NAME` exports, and where: a sweep's run (its best,
the N-th ranked, or a run named by id) or a chain's two leaders with the chain's working point.
No TensorFlow here: the export itself is sweep.physics.export's."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..core.errors import InputError, ResultsError
from ..core.names import SweepPaths

#: the export folder inside a sweep's or chain's results
ONNX_DIR = "onnx"


@dataclass(frozen=True)
class ExportTarget:
    """A .keras file to export, the folder to export it to, and a peak finder's working point."""

    model: Path
    out: Path
    threshold: float | None
    what: str  # for messages: "run 68934086ec0f of demo", "the peak leader of chain c"


def export_targets(name: str, root: Path, *, rank: int | None = None, run: str | None = None,
                   out: Path | None = None, threshold: float | None = None) -> list[ExportTarget]:
    """The models to export for sweep or chain ``name`` (see the module doc); ``out`` (default
    results/<name>/onnx/<run id>, or …/onnx/peaks and …/onnx/clusters for a chain).

    Raises:
        InputError: --rank or --run for a chain, a rank past the leaderboard, a run without a model.
        ResultsError: no such sweep or chain, or no ranked run.
    """
    from ..core.names import MANIFEST
    from ..records.chain import CHAIN_RECORD, read_chain

    paths = SweepPaths(root.resolve())
    is_chain = not (paths.jobs(name) / MANIFEST).is_file() and (paths.results(name) / CHAIN_RECORD).is_file()
    if is_chain:
        record = read_chain(paths.results(name))
        if rank is not None or run is not None:
            raise InputError(f"{name} is a chain: it exports its two leaders; --rank and --run choose a sweep's run")
        base = out or paths.results(name) / ONNX_DIR
        simulate = record.stage("simulate")
        working_point = threshold if threshold is not None else (simulate.threshold if simulate else None)
        targets = []
        for stage in ("peaks", "clusters"):
            entry = record.stage(stage)
            if entry is None or entry.leader is None:
                raise ResultsError(f"chain {name} has no {stage} leader yet: run the chain first")
            targets.append(ExportTarget(root / entry.leader.model, base / stage,
                                        working_point if stage == "peaks" else None,
                                        f"the {stage} leader of chain {name}"))
        return targets
    from ..collect.gather import collect

    board = collect(name, root, write_csv=False)
    ranked = list(board.table["run_id"]) if "run_id" in board.table else []
    if run is None:
        position = rank or 1
        if position > len(ranked):
            raise InputError(f"sweep {name} has {len(ranked)} ranked run(s): no rank {position}")
        run = str(ranked[position - 1])
    model = paths.results(name) / run / "model.keras"
    if not model.is_file():
        raise InputError(f"sweep {name} has no trained model for run {run} ({model})")
    return [ExportTarget(model, out or paths.results(name) / ONNX_DIR / run, threshold, f"run {run} of {name}")]
