"""A run's configuration in two parts: what every run of a sweep shares, and the run's own.

Submitting 10,000 runs used to write 10,000 config.yaml and 10,000 job.sub files, and the
writes were most of the submit's time (issue 27). Now a sweep has one config.yaml (the shared
part: model, fixed hyperparameters, data, resources, ranking, provenance) and one submit
description, each named by its content (``jobs/<sweep>/configs/<digest>/config.yaml``,
``jobs/<sweep>/job-<digest>.sub``: a DAG still running when the grid is rendered again keeps
what it was submitted with). Each run's own part (its ids, name, repeat, seed, swept values and,
for a pruned search trial, what to report) travels as one job argument, ``--run <text>``, which
the DAG's ``VARS`` (or a direct submission's item data) give each job. The text is URL-safe
base64 of compact JSON: letters, digits, ``-`` and ``_`` only, so no quoting layer (DAG file,
submit description, argument list, shell) can change it, and nothing in it can start a submit
command.

The job merges the two (:func:`merge`) into the configuration it always read; a complete
config.yaml without ``--run`` (``sweep reproduce``, a chain's step) still works. The submit side
rebuilds a run's part from the manifest's record of the run (:func:`run_part`), which holds the
same fields, and finds the version of the shared part a job read by the digest the job recorded
(:func:`read_shared`). Standard library only (and PyYAML in read_shared): the job imports this
before TensorFlow.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from pathlib import Path
from typing import Any, Protocol

from .names import CONFIG_FILE, DIGEST_LENGTH

#: The keys of a run's own part (every other key of its configuration is the sweep's).
RUN_KEYS = ("run_id", "config_id", "name", "repeat", "seed", "params", "progress")
#: The longest `--run` text a job accepts (a run's part is a few hundred characters).
MAX_RUN_TEXT = 64 * 1024


def run_part(run_id: str, config_id: str, name: str, repeat: int, seed: int, swept: dict[str, Any],
             progress: dict[str, Any] | None = None) -> dict[str, Any]:
    """A run's own part of its configuration: its ids, name, repeat, seed, the values of its
    swept hyperparameters (`params`: the shared part holds the fixed ones), and `progress` (a
    pruned search trial's column and trial number) when given."""
    part: dict[str, Any] = {"run_id": run_id, "config_id": config_id, "name": name, "repeat": repeat,
                            "seed": seed, "params": dict(swept)}
    if progress is not None:
        part["progress"] = progress
    return part


class RunFields(Protocol):
    """What a run's part is made of: a run of a grid (core.expand.RunSpec) and a run the manifest
    recorded (records.manifest.RunEntry) both have these."""

    @property
    def run_id(self) -> str:
        """The run's id."""

    @property
    def config_id(self) -> str:
        """Its configuration's id."""

    @property
    def name(self) -> str:
        """Its readable name."""

    @property
    def repeat(self) -> int:
        """Its repeat index."""

    @property
    def seed(self) -> int:
        """Its training seed."""

    @property
    def swept(self) -> dict[str, Any]:
        """Its swept hyperparameters' values."""


def part_of(run: RunFields, progress: dict[str, Any] | None = None) -> dict[str, Any]:
    """:func:`run_part` of `run`."""
    return run_part(run.run_id, run.config_id, run.name, run.repeat, run.seed, run.swept, progress)


def encode(part: dict[str, Any]) -> str:
    """A run's part as the text of its `--run` argument: URL-safe base64 of compact JSON, unpadded."""
    raw = json.dumps(part, separators=(",", ":"), sort_keys=True, allow_nan=False).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode(text: str) -> dict[str, Any]:
    """The run's part from the text of its `--run` argument.

    Raises:
        ValueError: not what :func:`encode` writes (too long, not base64, not a JSON object, a key
            that is not a run's, or `params` that is not a mapping).
    """
    if len(text) > MAX_RUN_TEXT:
        raise ValueError(f"--run: {len(text)} characters, more than a run's part ever has ({MAX_RUN_TEXT})")
    try:
        part = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"--run: not a run's part (URL-safe base64 of JSON): {exc}") from None
    if not isinstance(part, dict):
        raise ValueError("--run: expected a JSON object")
    unknown = sorted(set(part) - set(RUN_KEYS))
    if unknown:
        raise ValueError(f"--run: unexpected key {unknown[0][:40]!r} (a run's part has {', '.join(RUN_KEYS)})")
    if not isinstance(part.get("params", {}), dict):
        raise ValueError("--run: params must be a mapping")
    return part


def merge(shared: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    """The run's whole configuration: the sweep's `shared` part with the run's `part`; `params`
    is the shared (fixed) hyperparameters updated with the run's, keys sorted as a run's are."""
    params = {**(shared.get("params") or {}), **(part.get("params") or {})}
    return {**shared, **part, "params": {key: params[key] for key in sorted(params)}}


def read_shared(configs: Path, sha256: str | None) -> tuple[dict[str, Any], Path, bool] | None:
    """A version of a sweep's shared config.yaml from `configs` (jobs/<sweep>/configs/, one
    folder per version, named by the first digits of its sha256): the one whose sha256 is
    `sha256` (what a job recorded it read: run.json's config_sha256) when it is there unchanged,
    else the newest readable one.

    Returns:
        (the shared part, its file, whether it is the version `sha256` names); None when no
        version is readable.
    """
    import yaml

    named = configs / sha256[:DIGEST_LENGTH] / CONFIG_FILE if sha256 else None
    others = sorted((p for p in configs.glob(f"*/{CONFIG_FILE}") if p != named), key=_mtime, reverse=True)
    for path in ([named] if named else []) + others:
        try:
            data = path.read_bytes()
            if path == named and hashlib.sha256(data).hexdigest() != sha256:
                continue  # changed since: not what the job read
            shared = yaml.safe_load(data.decode("utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        if isinstance(shared, dict):
            return shared, path, path == named
    return None


def whole(configs: Path, sha256: str | None, run: RunFields) -> tuple[dict[str, Any], Path, bool] | None:
    """`run`'s whole configuration, rebuilt on the submit side: the version of the shared part
    :func:`read_shared` finds for `sha256` merged with the run's own part (`run`: its manifest
    entry). Returns (the configuration, the shared file, whether it is the version `sha256`
    names); None when no version is readable."""
    found = read_shared(configs, sha256)
    if found is None:
        return None
    shared, path, exact = found
    return merge(shared, part_of(run)), path, exact


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
