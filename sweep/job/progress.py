"""A search trial's job and its driver: after each epoch the job reports the value the pruner
watches, and asks whether it should stop (the driver's pruner decided).

On an HTCondor pool the channel is the job's own ClassAd, through chirp (the job is submitted
with want_io_proxy, so the starter serves chirp on the execute node): the job sets
SweepProgress to every value so far ("0.81,0.85,..": the driver may poll less often than
epochs end) and reads SweepPrune, which the driver sets with condor_qedit -forward. On the local backend
it is two files in the run's folder, which is the job's working folder there: progress.json
(written atomically by the job, sweep.records.progress) and prune.request (created by the driver).
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from pathlib import Path

from ..core.names import ATTR_PROGRESS, ATTR_PRUNE, PRUNE_REQUEST
from ..records.progress import write_progress


class FileChannel:
    """The local backend's channel: files in the job's working folder (its results folder)."""

    kind = "file"

    def __init__(self, folder: Path):
        self.folder = folder

    def report(self, values: list[float]) -> None:
        write_progress(self.folder, values)

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
    return FileChannel(out_dir)
