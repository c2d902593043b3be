"""What a job says while it trains, after each epoch: every run its live line (epoch k of n, the
watched validation column, losses, elapsed seconds: records.progress.Live), which `sweep status`
shows; and a search trial with a pruner the value its pruner watches, after which it waits until
the driver has judged that epoch, and stops when the driver's pruner said so.

Live lines: on the local backend in progress.json (beside the values), on a pool as the job
attribute ChirpSweepLive through chirp's *delayed* update (set_job_attr_delayed): the starter
carries it to the shadow in its regular updates, which carries it to the schedd in its own
(STARTER_UPDATE_INTERVAL, SHADOW_QUEUE_UPDATE_INTERVAL: 5 and 15 minutes on a default pool, 2 s on
the tests' pool). That costs the schedd no message of its own however many jobs run, needs no
I/O proxy (the starter allows delayed updates of attributes named Chirp* by default), and is
as late as those intervals: a pool's `sweep status` shows where a job was minutes ago.

Waiting for the verdict is what Optuna's own trials do (report, then should_prune): a trial is
stopped at exactly the epoch its pruner says, however busy the machine or the schedd, and never
trains past a prune to its end. It costs each epoch the driver's reaction time (a fraction of a
second here, one poll of the schedd on a pool, 1-5 s): nothing against epochs of minutes. A
driver that does not answer within VERDICT_TIMEOUT_S (killed and not yet restarted, say) is not
waited for again by this job, which then trains on as a job without a driver would.

The driver answers in the run's results folder: progress.seen (how many epochs it has judged)
and prune.request (stop). On the local backend that folder is the job's working folder, and the
job reports in progress.json there (sweep.records.progress). On an HTCondor pool it is the job's
initial folder on the submit node: the job (submitted with want_io_proxy, so the starter serves
chirp) sets SweepProgress in its ClassAd to every value so far ("0.81,0.85,..") and reads the two
files through chirp's remote reads, within a second. (A condor_qedit -forward of an attribute,
how SweepPrune reaches the job, is forwarded at once only the first time for a job, later ones
about half a minute later, measured on 23.9: too slow to wait for after every epoch.)
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import time
from pathlib import Path

from ..core.names import ATTR_LIVE, ATTR_PROGRESS, ATTR_PRUNE, PROGRESS_SEEN, PRUNE_REQUEST
from ..records.progress import Live, format_live, write_progress

#: How long a trial waits for its driver's verdict on an epoch before it trains on without.
VERDICT_TIMEOUT_S = 60.0
#: A pool job sends its live line at most once per epoch and once per this many seconds (each
#: send is a call to the starter on the execute node; the schedd sees the last one at the
#: shadow's next regular update, however many were sent).
LIVE_MIN_INTERVAL_S = 1.0


class _Channel:
    """What both channels share: report, then (a pruned trial) wait for the verdict (see the
    module's docstring)."""

    kind = ""
    #: How often the job looks for the verdict while it waits.
    tick_s = 0.05

    def __init__(self, log=print, prunable: bool = False):
        self.log = log
        self.prunable = prunable  # a search trial whose driver judges each epoch
        self.driver_silent = False

    def publish(self, values: list[float], live: Live | None = None) -> None:
        """Make the values so far visible to the driver, and the live line to `sweep status`."""
        raise NotImplementedError

    def judged(self) -> int:
        """How many epochs the driver has judged (0 before its first verdict)."""
        raise NotImplementedError

    def stop_requested(self) -> bool:
        """Whether the driver asked the job to stop (its pruner said so)."""
        raise NotImplementedError

    def report(self, values: list[float], live: Live | None = None) -> None:
        """Publish the values so far and the live line, then, for a pruned trial, wait until the
        driver has judged the last epoch or asked the job to stop (at most VERDICT_TIMEOUT_S, once)."""
        self.publish(values, live)
        if not self.prunable or self.driver_silent:
            return
        deadline = time.monotonic() + VERDICT_TIMEOUT_S
        while self.judged() < len(values) and not self.stop_requested():
            if time.monotonic() > deadline:
                self.driver_silent = True
                self.log(f"progress: the driver did not judge epoch {len(values)} within {VERDICT_TIMEOUT_S:.0f}s; "
                         "training on without waiting for it")
                return
            time.sleep(self.tick_s)


def epochs_judged(folder: Path) -> int:
    """How many epochs the local driver has judged (progress.seen; 0 when it has not yet)."""
    try:
        return int((folder / PROGRESS_SEEN).read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


class FileChannel(_Channel):
    """The local backend's channel: files in the job's working folder (its results folder)."""

    kind = "file"

    def __init__(self, folder: Path, log=print, prunable: bool = False):
        super().__init__(log, prunable)
        self.folder = folder

    def publish(self, values: list[float], live: Live | None = None) -> None:
        """progress.json, written atomically (sweep.records.progress)."""
        write_progress(self.folder, values, live)

    def judged(self) -> int:
        """progress.seen, written by the driver."""
        return epochs_judged(self.folder)

    def stop_requested(self) -> bool:
        """prune.request, created by the driver."""
        return (self.folder / PRUNE_REQUEST).exists()


class ChirpChannel(_Channel):
    """HTCondor's channel: the job's ClassAd and its submit-side folder through chirp (htchirp,
    else the condor_chirp tool)."""

    kind = "chirp"
    tick_s = 0.5  # each look is a chirp call through the shadow to the submit node

    def __init__(self, log=print, prunable: bool = False):
        super().__init__(log, prunable)
        self.live_refused = False
        self.live_sent_at = -math.inf
        try:
            import htchirp  # noqa: F401 - imported only to learn whether the chirp client is installed

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

    def _get(self, attr: str) -> str:
        try:
            return self._call("get_job_attr", attr).strip()
        except Exception:  # noqa: BLE001 - undefined until the driver sets it (chirp answers an error)
            return ""

    def _read(self, name: str) -> str:
        """The first bytes of a file in the job's submit-side folder ("" while there is none)."""
        try:
            if self._client == "htchirp":
                import htchirp

                with htchirp.HTChirp(timeout=20) as chirp:
                    data = chirp.read(name, 64)
                return (data.decode("ascii", "replace") if isinstance(data, bytes) else str(data)).strip()
            return self._call("read", name, "64").strip()
        except Exception:  # noqa: BLE001 - no such file yet (chirp answers an error)
            return ""

    def publish(self, values: list[float], live: Live | None = None) -> None:
        """A pruned trial's SweepProgress (a ClassAd string of every value so far, at once); the
        live line as ChirpSweepLive by a delayed update (no message of its own to the schedd). A
        site that refuses delayed updates loses the live line, said once, never the training."""
        if self.prunable:
            text = ",".join("nan" if math.isnan(v) else f"{v:.6g}" for v in values)
            self._call("set_job_attr", ATTR_PROGRESS, f'"{text}"')
        if live is not None and not self.live_refused and time.monotonic() - self.live_sent_at >= LIVE_MIN_INTERVAL_S:
            self.live_sent_at = time.monotonic()
            try:
                self._call("set_job_attr_delayed", ATTR_LIVE, f'"{format_live(live)}"')
            except Exception as exc:  # noqa: BLE001 - the starter may refuse delayed updates
                self.live_refused = True
                self.log(f"progress: the execute node refused the live line ({type(exc).__name__}: {exc}); "
                         "`sweep status` shows no epoch for this job")

    def judged(self) -> int:
        """progress.seen in the submit-side folder, written by the driver."""
        try:
            return int(self._read(PROGRESS_SEEN) or 0)
        except ValueError:
            return 0

    def stop_requested(self) -> bool:
        """prune.request in the submit-side folder, or SweepPrune set true, by the driver."""
        return bool(self._read(PRUNE_REQUEST)) or self._get(ATTR_PRUNE).lower() == "true"


def open_channel(config: dict, out_dir: Path, log=print):
    """The run's channel: pruned by its driver when its config has `progress` (a search trial with
    a pruner), live lines only otherwise. None when no channel works here (a trial then trains to
    its end and is never pruned; said in the log)."""
    prunable = bool(config.get("progress"))
    chirp_config = os.environ.get("_CONDOR_CHIRP_CONFIG", ".chirp.config")
    if os.path.isfile(chirp_config):
        try:
            return ChirpChannel(log, prunable)
        except OSError as exc:
            log(f"progress: {exc}; this job reports no progress" + (" and is not pruned" if prunable else ""))
            return None
    if os.environ.get("_CONDOR_SCRATCH_DIR"):
        if prunable:
            log("progress: no chirp in this job (submitted without want_io_proxy?); it is not pruned")
        else:
            log("progress: no chirp in this job: `sweep status` shows no epoch for it")
        return None
    return FileChannel(out_dir, log, prunable)
