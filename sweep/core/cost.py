"""A run's predicted training cost, so that a sweep starts its longest runs first (issue 27).

Four jobs of unequal length on two cores keep 1.56 cores busy on average when the longest one
starts last: the sweep's last minutes are one long job on an idle node. Ordered longest first
(DAGMan node priorities, the local backend's queue), the short jobs fill in around the long ones.

The prediction is the work of one training: one sample's multiply-adds through the model plus
the per-sample work that does not grow with the layers (OVERHEAD_PER_SAMPLE), times the samples,
times the epochs. For the small peak finders the overhead is most of it: without it the
prediction put a 2-epoch 32x64x1 LSTM (12 s of training) before a 6-epoch 16x32x1 one (24 s).
Only the order within a sweep matters, so constant factors are left out, and early stopping,
which no one can predict, is not guessed: `epochs` is the most a run may train. Where some runs
of the sweep ran before (a resubmission after failures or evictions), their measured seconds per
epoch replace the prediction and calibrate the others (start_order). Pure: no TensorFlow; the
layer arithmetic follows sweep/job/models.py (tests/test_cost.py checks it against Keras's
parameter counts).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

from .expand import RunSpec

#: The peak finder's window (samples) and the clusterizer's input length (bins), as the models have them.
LSTM_WINDOW = 15
CNN_LENGTH = 1024


#: Per-sample work of a training step besides the forward pass's multiply-adds (Keras's per-batch
#: work spread over the batch, the data pipeline, the parts of the backward pass that do not scale
#: with the layers), in multiply-adds. Measured on this project's 2-core machines (issue 27): at
#: 1 CPU the demo grid's 96x128x1 LSTM trained 2.4x as long as its 32x64x1 one, where their
#: multiply-adds alone say 8.6x (bench_throughput.py at the realistic size), which gives 3.0e5;
#: with it the predicted costs of bench_makespan.py's 16 configurations rank as their measured
#: trainings did (Spearman 0.97, against 0.72 with the multiply-adds alone). A run's own measured
#: epochs, where there are some, replace the prediction (start_order).
OVERHEAD_PER_SAMPLE = 300_000


def lstm_operations(params: dict[str, Any]) -> float:
    """Multiply-adds of one window through the LSTM peak finder (its recurrence runs once per
    sample of the window)."""
    units = [int(u) for u in params["topology"]]
    recurrence = 4 * (units[0] * (1 + units[0]) + units[0])  # four gates, input of 1, the state, bias
    dense = units[0] * units[1] + units[1] + units[1] * units[2] + units[2] + units[2] + 1
    return LSTM_WINDOW * recurrence + dense


def cnn_operations(params: dict[str, Any]) -> float:
    """Multiply-adds of one 1024-bin input through the CNN clusterizer."""
    length, channels, operations = CNN_LENGTH, 1, 0.0
    for filters, kernel in zip(params["filters"], params["kernel_sizes"], strict=True):
        for _ in range(int(params.get("convs_per_block", 1))):
            operations += length * kernel * channels * filters
            channels = filters
        if params["pool_size"] > 1:
            length //= params["pool_size"]
    features = channels if params.get("head") == "global_average" else channels * length
    for units in params["dense_units"]:
        operations += features * units
        features = units
    return operations + features


def predicted_cost(model: str, params: dict[str, Any], samples: int | None) -> float:
    """The work of training one run: (one sample's multiply-adds + OVERHEAD_PER_SAMPLE) ×
    `samples` (the grid's data.max_samples; None counts as 1, the same for every run of a sweep)
    × `epochs`."""
    per_sample = lstm_operations(params) if model == "lstm" else cnn_operations(params)
    return (per_sample + OVERHEAD_PER_SAMPLE) * (samples or 1) * int(params.get("epochs", 1))


def start_order(runs: Sequence[RunSpec], samples: int | None,
                measured: dict[str, float] | None = None) -> dict[str, int]:
    """Run id -> its place when the costliest runs start first (0 first; equal costs keep the
    order of `runs`).

    Args:
        runs: the runs to order.
        samples: the grid's data.max_samples.
        measured: run id -> the seconds one epoch of that run took when it ran before (an
            earlier, failed or evicted attempt: its history.csv), where known. A measured run's
            cost is that × its epochs; every other run's prediction is put into seconds by the
            median, over the measured runs, of measured ÷ predicted seconds of an epoch. Measures
            that are not finite and positive are ignored.
    """
    known = {run_id: s for run_id, s in (measured or {}).items() if math.isfinite(s) and s > 0}
    epoch = {run.run_id: predicted_cost(run.model, run.params, samples) / int(run.params.get("epochs", 1))
             for run in runs}
    ratios = [known[run.run_id] / epoch[run.run_id] for run in runs if run.run_id in known and epoch[run.run_id]]
    scale = statistics.median(ratios) if ratios else 1.0

    def cost(run: RunSpec) -> float:
        per_epoch = known.get(run.run_id, epoch[run.run_id] * scale)
        return per_epoch * int(run.params.get("epochs", 1))

    ordered = sorted(runs, key=lambda run: -cost(run))
    return {run.run_id: place for place, run in enumerate(ordered)}
