"""A search trial's job and its driver: after each epoch the job reports the value the pruner
watches, and asks whether it should stop (the driver's pruner decided).

On an HTCondor pool the channel is the job's own ClassAd, through chirp (the job is submitted
with want_io_proxy, so the starter serves chirp on the execute node): the job sets
SweepProgress to every value so far ("0.81,0.85,..": the driver may poll less often than
epochs end) and reads SweepPrune, which the driver sets with condor_qedit -forward; the job
trains on meanwhile, so a prune can come an epoch or more late (or after the last epoch).
On the local backend it is files in the run's folder, which is the job's working folder there:
progress.json (written atomically by the job), prune.request (created by the driver) and
progress.seen (how many epochs the driver has judged). There the job waits after each report
until the driver has judged it, as Optuna's own trials do (report, then should_prune): a trial
is stopped at exactly the epoch its pruner says, however busy the machine. A driver that does
not answer within VERDICT_TIMEOUT_S (killed, say) is not waited for again.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import time
from pathlib import Path

from ..core.names import ATTR_PROGRESS, ATTR_PRUNE, PROGRESS_FILE, PROGRESS_SEEN, PRUNE_REQUEST
from ..fsutil import atomic_write_json

#: How long a local trial waits for its driver's verdict on an epoch before it trains on without.
VERDICT_TIMEOUT_S = 60.0
#: How often it looks for the verdict meanwhile.
VERDICT_TICK_S = 0.05


def epochs_judged(folder: Path) -> int:
    """How many epochs the local driver has judged (progress.seen; 0 when it has not yet)."""
    try:
        return int((folder / PROGRESS_SEEN).read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


class FileChannel:
    """The local backend's channel: files in the job's working folder (its results folder)."""

    kind = "file"

    def __init__(self, folder: Path, log=print):
        self.folder, self.log = folder, log
        self.driver_silent = False

    def report(self, values: list[float]) -> None:
        """Write the values so far, then wait for the driver's verdict on the last one (see the
        module's docstring)."""
        atomic_write_json(self.folder / PROGRESS_FILE, {"values": values})
        if self.driver_silent:
            return
        deadline = time.monotonic() + VERDICT_TIMEOUT_S
        while epochs_judged(self.folder) < len(values) and not self.stop_requested():
            if time.monotonic() > deadline:
                self.driver_silent = True
                self.log(f"progress: the driver did not judge epoch {len(values)} within {VERDICT_TIMEOUT_S:.0f}s; "
                         "training on without waiting for it")
                return
            time.sleep(VERDICT_TICK_S)

    def stop_requested(self) -> bool:
        return (self.folder / PRUNE_REQUEST).exists()


class ChirpChannel:
    """HTCondor's channel: the job's ClassAd through chirp (htchirp, else the condor_chirp tool)."""

    kind = "chirp"

    def __init__(self):
        try:
            import htchirp  # noqa: F401

            self._client = "htchirp"
        except ImportError:
            self._client = shutil.which("condor_chirp") or ""
            if not self._client:
                raise OSError("neither the htchirp package nor condor_chirp is available to this job") from None

    def _call(self, *args: str) -> str:
        if self._client == "htchirp":
            import htchirp

            with htchirp.HTChirp(timeout=20) as chirp:
                return getattr(chirp, args[0])(*args[1:]) or ""
        out = subprocess.run([self._client, *args], capture_output=True, text=True, timeout=30, check=True)
        return out.stdout

    def report(self, values: list[float]) -> None:
        text = ",".join("nan" if math.isnan(v) else f"{v:.6g}" for v in values)
        self._call("set_job_attr", ATTR_PROGRESS, f'"{text}"')  # a ClassAd string

    def stop_requested(self) -> bool:
        try:
            value = self._call("get_job_attr", ATTR_PRUNE)
        except Exception:  # noqa: BLE001 - undefined until the driver sets it (chirp answers an error)
            return False
        return value.strip().lower() == "true"


def open_channel(config: dict, out_dir: Path, log=print):
    """The trial's channel, or None for a grid run (its config has no `progress`) or when no
    channel works here (the trial then trains to its end and is never pruned; said in the log)."""
    if not config.get("progress"):
        return None
    chirp_config = os.environ.get("_CONDOR_CHIRP_CONFIG", ".chirp.config")
    if os.path.isfile(chirp_config):
        try:
            return ChirpChannel()
        except OSError as exc:
            log(f"progress: {exc}; this trial reports nothing and is not pruned")
            return None
    if os.environ.get("_CONDOR_SCRATCH_DIR"):
        log("progress: no chirp in this job (submitted without want_io_proxy?); it is not pruned")
        return None
    return FileChannel(out_dir, log)
