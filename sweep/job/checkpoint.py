"""Resume a run at its last finished epoch: after an eviction, a preemption, a killed starter or a
held-then-released job, training goes on from there instead of from epoch 1.

At the end of every epoch (inside an HTCondor job: whenever it hands it over, saves_each_epoch)
the job writes checkpoint/ (names.CHECKPOINT_DIR): the whole model
(weights and optimizer state, as `model.save` keeps them), the dropout layers' random-seed state
(which `model.save` does not keep), the
EarlyStopping state (wait, best, best epoch and best weights) and the per-epoch history rows, each
file atomically and the state file last, so a kill at any moment leaves the previous
checkpoint or the new one. Under HTCondor, the job also ends with CHECKPOINT_EXIT_CODE once
`every` seconds have passed since it started: HTCondor then transfers checkpoint/ to the spool
(transfer_checkpoint_files) and starts the job again at once, and a job that starts on another
machine later receives the last spooled checkpoint. The data pipeline repeats one seeded shuffle
and a resumed job skips the batches already seen, so a resumed run sees the same batches in the
same order as a straight one.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from ..core.errors import SweepError
from ..core.names import CHECKPOINT_DIR, JOB_EXIT_CHECKPOINT
from ..fsutil import atomic_write_with
from ..records.base import NewerRecordError, RecordError
from ..records.checkpoint import CHECKPOINT_STATE, CheckpointState, EarlyStoppingState, read_state, write_state
from .phases import PhaseClock

#: The job's exit status that asks HTCondor to save checkpoint/ and run it again (checkpoint_exit_code).
CHECKPOINT_EXIT_CODE = JOB_EXIT_CHECKPOINT
STATE = CHECKPOINT_STATE  # checkpoint/state.json (sweep.records.checkpoint), written last
MODEL = "model.keras"
BEST = "best_weights.npz"
SEEDS = "seed_states.npz"


class CheckpointExit(SweepError):
    """Raised after a checkpoint when it is time to hand it to HTCondor (exit CHECKPOINT_EXIT_CODE);
    the job process catches it, it never reaches a user."""


def folder(out_dir: Path) -> Path:
    """<out_dir>/checkpoint/, where the run's checkpoint is."""
    return out_dir / CHECKPOINT_DIR


def load(out_dir: Path, key: str) -> CheckpointState | None:
    """The checkpoint in out_dir made under `key` (the run and its dataset), or None: none, one of
    another run or of the same run on a dataset that has changed since, or unreadable.

    Raises:
        NewerRecordError: its state was written by a newer sweep (the job fails and says so).
    """
    try:
        state = read_state(folder(out_dir))
    except NewerRecordError:
        raise
    except RecordError:
        return None
    if state is None or state.key != key or not (folder(out_dir) / MODEL).is_file():
        return None
    return state


def restore(out_dir: Path, state: CheckpointState):
    """(model, best_weights or None) of a checkpoint."""
    from ..physics.scorers import load_keras_model

    # the checkpoint was spooled by HTCondor and may come from another execute node: safe mode
    model = load_keras_model(folder(out_dir) / MODEL, compile=True)
    seeds = folder(out_dir) / SEEDS
    if seeds.is_file():  # Keras does not save the dropout layers' random state: put it back
        with np.load(seeds) as f:
            for i, variable in enumerate(_seed_states(model)):
                variable.assign(f[f"s{i}"])
    best = None
    if (folder(out_dir) / BEST).is_file():
        with np.load(folder(out_dir) / BEST) as f:
            best = [f[f"w{i}"] for i in range(len(f.files))]
    return model, best


def make_callback(out_dir: Path, key: str, rows: list, stopper, every_s: float | None,
                  restored: CheckpointState | None, best_weights, clock: PhaseClock | None = None):
    """The callback that writes the checkpoint after each epoch (inside an HTCondor job: only when
    it hands it over, saves_each_epoch), and raises CheckpointExit once `every_s` seconds have
    passed since this process started (never when None). With a restored
    checkpoint, `stopper` (the run's EarlyStopping) gets its saved state back at train begin.
    `clock` gets the seconds spent writing checkpoints (phase ``checkpoints``)."""
    clock = clock if clock is not None else PhaseClock()
    import keras

    started = time.monotonic()

    if restored:
        es = restored.early_stopping

        original_begin = stopper.on_train_begin

        def on_train_begin(logs=None):  # EarlyStopping resets itself here: put the saved state back
            original_begin(logs)
            stopper.wait = es.wait
            stopper.best = es.best
            stopper.best_epoch = es.best_epoch
            stopper.best_weights = best_weights

        stopper.on_train_begin = on_train_begin

    each_epoch = saves_each_epoch()

    class Checkpoint(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if self.model.stop_training:  # EarlyStopping ends the run here: nothing left to resume
                return
            due = every_s is not None and time.monotonic() - started >= every_s and epoch + 1 < self.params["epochs"]
            if each_epoch or due:
                with clock.phase("checkpoints"):
                    save(out_dir, key, self.model, rows, stopper, epoch + 1)
            if due:
                raise CheckpointExit(f"checkpoint after epoch {epoch + 1}")

    return Checkpoint()


def save(out_dir: Path, key: str, model, rows: list, stopper, epochs_done: int) -> None:
    """Write the checkpoint after `epochs_done` epochs, under `key` (the run and its dataset): the
    model, its dropout layers' seed states, the EarlyStopping `stopper`'s best weights and state,
    and the history `rows`; each file atomically, the state last."""
    ckpt = folder(out_dir)
    ckpt.mkdir(exist_ok=True)
    atomic_write_with(ckpt / MODEL, model.save)
    _write_npz(ckpt / SEEDS, {f"s{i}": v.numpy() for i, v in enumerate(_seed_states(model))})
    if stopper.best_weights is not None:
        _write_npz(ckpt / BEST, {f"w{i}": w for i, w in enumerate(stopper.best_weights)})
    best = stopper.best
    write_state(ckpt, CheckpointState(key=key, epochs_done=epochs_done, rows=rows, early_stopping=EarlyStoppingState(
        wait=int(stopper.wait), best=None if best is None else float(best), best_epoch=int(stopper.best_epoch))))


def _seed_states(model) -> list:
    """The random-seed state variables of the model's layers (dropout), in model order."""
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]


def _write_npz(path: Path, arrays: dict) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:  # a file object: np.savez would add .npz to a name
            np.savez(fh, **arrays)

    atomic_write_with(path, write)


def saves_each_epoch() -> bool:
    """Whether the job writes its checkpoint after every epoch: outside HTCondor (the local
    backend, a reproduction), where a killed job starts again in the same folder and finds it.
    Inside an HTCondor job the scratch folder is gone after an eviction, a hold or a killed
    starter, and only what the job hands over with CHECKPOINT_EXIT_CODE is kept (spooled): the
    job writes its checkpoint only then, not at every epoch for nothing (issue 27's fixed cost:
    0.2-0.3 s of a demo job's 8 epochs, more for longer trainings)."""
    return not os.environ.get("_CONDOR_JOB_AD")


def every_seconds() -> float | None:
    """How often the job hands its checkpoint to HTCondor: SWEEP_CHECKPOINT_EVERY_S (set by the
    submit file), only inside an HTCondor job (the local backend restarts nothing)."""
    if not os.environ.get("_CONDOR_JOB_AD"):
        return None
    text = os.environ.get("SWEEP_CHECKPOINT_EVERY_S")
    try:
        return float(text) if text else None
    except ValueError:
        return None
