"""How many CPUs this job was given, and TensorFlow's thread settings from that.

HTCondor sets OMP_NUM_THREADS etc. to the allocated cores, but TensorFlow ignores those; it
must be told through its own intra-/inter-op settings or it spreads over the whole node.
"""

from __future__ import annotations

import os
import re


def _read_ad_number(path: str, attribute: str) -> float | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                m = re.match(rf"^\s*{attribute}\s*=\s*([0-9.]+)\s*$", line, re.IGNORECASE)
                if m:
                    return float(m.group(1))
    except OSError:
        return None
    return None


def allocated_cpus(config_cpus: int | None = None) -> tuple[int, str]:
    """(cpus, where the number came from), in order of authority."""
    if os.environ.get("SWEEP_CPUS", "").isdigit():
        return max(1, int(os.environ["SWEEP_CPUS"])), "SWEEP_CPUS (local backend)"
    machine_ad = os.environ.get("_CONDOR_MACHINE_AD")
    if machine_ad:
        cpus = _read_ad_number(machine_ad, "Cpus")
        if cpus:
            return max(1, int(cpus)), "HTCondor machine ad (Cpus)"
    job_ad = os.environ.get("_CONDOR_JOB_AD")
    if job_ad:
        cpus = _read_ad_number(job_ad, "RequestCpus")
        if cpus:
            return max(1, int(cpus)), "HTCondor job ad (RequestCpus)"
    if config_cpus:
        return int(config_cpus), "config request_cpus"
    try:
        return len(os.sched_getaffinity(0)), "CPU affinity"
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1, "os.cpu_count()"


def thread_settings(cpus: int) -> tuple[int, int]:
    """(intra_op, inter_op) threads for `cpus` cores.

    SWEEP_INTRA_OP / SWEEP_INTER_OP override (benchmarks); 0 means TensorFlow's own default
    (one thread per core of the whole machine, as an unpinned job would get).
    """
    intra = cpus
    inter = 1 if cpus == 1 else 2
    if os.environ.get("SWEEP_INTRA_OP", "").isdigit():
        intra = int(os.environ["SWEEP_INTRA_OP"])
    if os.environ.get("SWEEP_INTER_OP", "").isdigit():
        inter = int(os.environ["SWEEP_INTER_OP"])
    return max(0, intra), max(0, inter)


def apply_before_import(intra: int, inter: int) -> None:
    """Set TensorFlow's thread pools through the environment, before tensorflow is imported."""
    if intra:
        os.environ["TF_NUM_INTRAOP_THREADS"] = str(intra)
    if inter:
        os.environ["TF_NUM_INTEROP_THREADS"] = str(inter)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
