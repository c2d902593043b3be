"""Can this interpreter run a sweep job? Standard library only, and nothing heavy is imported: a
module's presence is found with importlib.util.find_spec and its version read from its installed
metadata, so the check costs milliseconds (not TensorFlow's seconds of import) and also runs on
the submit node against a grid's condor.python before anything is queued:

    /path/to/python -I .../sweep/job/envcheck.py      # prints the problem, exits 3; or exits 0

Used by `python -m sweep.job` before it reads its configuration: a job whose interpreter lacks
TensorFlow ends at once with exit status 3 and one line ("environment: ..."), which the DAG does
not retry, instead of a traceback after the retries.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import sys

#: The job's exit status when its interpreter cannot run it (missing or too old modules):
#: sweep.core.names.JOB_EXIT_ENVIRONMENT, spelt out since this file also runs as a bare script.
EXIT_ENVIRONMENT = 3

#: The oldest Python a job runs on: the package's own requires-python (the job imports enum.StrEnum,
#: new in 3.11; a 3.10 node would fail with an ImportError traceback instead of this check's line).
OLDEST_PYTHON = (3, 11)

#: module -> (distribution names that provide it, oldest usable version)
REQUIRED = {
    "yaml": (("PyYAML",), (5, 1)),
    "numpy": (("numpy",), (1, 26)),
    "sklearn": (("scikit-learn",), (1, 3)),
    "tensorflow": (("tensorflow", "tensorflow-cpu", "tensorflow-intel", "tensorflow-macos", "tf-nightly"), (2, 16)),
    # the first release without a published safe_mode bypass (sweep.physics.scorers.KERAS_SAFE_MODE_FIXED)
    "keras": (("keras",), (3, 13, 2)),
}


def _version_tuple(text: str) -> tuple[int, ...]:
    """"2.16.1" -> (2, 16, 1); "3.0.0rc1" -> (3, 0, 0); stops at the first part that is not a number."""
    parts: list[int] = []
    for piece in text.split(".")[:3]:
        digits = ""
        for c in piece:
            if not c.isdigit():
                break
            digits += c
        if not digits:
            break
        parts.append(int(digits))
        if len(digits) < len(piece):
            break
    return tuple(parts)


def problems() -> list[str]:
    """What this interpreter lacks to run a sweep job: one phrase per missing or too old module."""
    out = []
    if sys.version_info[:2] < OLDEST_PYTHON:
        out.append(f"Python {sys.version.split()[0]} is older than {'.'.join(map(str, OLDEST_PYTHON))}")
    for module, (dists, oldest) in REQUIRED.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            out.append(f"no module named {module}")
            continue
        version = None
        for dist in dists:
            try:
                version = importlib.metadata.version(dist)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
        if version is not None and _version_tuple(version) < oldest:
            out.append(f"{module} {version} is older than {'.'.join(map(str, oldest))}")
    return out


def describe(found: list[str]) -> str:
    """The one line a job prints (and collect shows) for what `problems` found."""
    return f"environment: {'; '.join(found)} (interpreter {sys.executable})"


if __name__ == "__main__":
    found = problems()
    if found:
        print(describe(found), file=sys.stderr)
    sys.exit(EXIT_ENVIRONMENT if found else 0)
