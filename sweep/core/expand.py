"""Expand a GridSpec into runs: Cartesian product of dimensions, exclusion, sampling, repeats.

Identity: a configuration's id is a short hash of its canonical content (model, every
hyperparameter, data reference, base seed). Resources are deliberately not part of it, so
raising request_memory does not turn a finished configuration into a new one. Repeat k>0 of a
configuration lives in `<id>-r<k>`, so raising `repeats` later keeps the earlier folders.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from dataclasses import dataclass
from typing import Any

from .canonical import canonical_json
from .errors import GridError, GridIssue
from .gridspec import GridSpec, count_points
from .schema import PARAMS_BY_MODEL

ID_LENGTH = 12


@dataclass(frozen=True)
class RunSpec:
    """One run: a configuration (all its hyperparameters) and a repeat index, with its seed."""

    sweep: str
    model: str
    config_id: str  # hash of the configuration (shared by its repeats)
    run_id: str  # folder name: config_id, or config_id-r<k> for repeat k > 0
    name: str  # readable label built from the swept values
    repeat: int
    seed: int  # the training seed of this run
    params: dict[str, Any]  # every hyperparameter
    swept: dict[str, Any]  # just the swept ones (for tables)


def config_identity(spec: GridSpec, params: dict[str, Any]) -> dict[str, Any]:
    """What defines a configuration's result, and so its id.

    Args:
        spec: the grid (model, data reference, base seed).
        params: every hyperparameter of the configuration.

    Returns:
        A JSON-serialisable mapping; parameters marked ``omit_default_from_id`` are left out at
        their default, so that adding such a parameter keeps the ids of existing configurations.
    """
    schema = PARAMS_BY_MODEL.get(spec.model, {})
    params = {k: v for k, v in params.items()
              if not (k in schema and schema[k].omit_default_from_id and v == schema[k].default)}
    return {
        "model": spec.model,
        "params": params,
        "data": {"path": spec.data.path_text, "balanced": spec.data.balanced,
                 "max_samples": spec.data.max_samples},
        "seed": spec.seed,
    }


def config_id(identity: dict[str, Any]) -> str:
    """The first ID_LENGTH hex digits of the SHA-256 of the identity's canonical JSON."""
    return hashlib.sha256(canonical_json(identity).encode()).hexdigest()[:ID_LENGTH]


def run_seed(base_seed: int, cid: str, repeat: int) -> int:
    """Seed of one run: depends on the base seed, the configuration and the repeat index."""
    digest = hashlib.sha256(f"{base_seed}:{cid}:{repeat}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


_NAME_BAD = re.compile(r"[^A-Za-z0-9_.+-]+")


def readable_name(swept: dict[str, Any]) -> str:
    """A short label from the swept values (letters, digits, _ . + - only; at most 80)."""
    parts = []
    for value in swept.values():
        if isinstance(value, list):
            value = "x".join(str(v) for v in value)
        parts.append(_NAME_BAD.sub("_", str(value)))
    return "-".join(parts)[:80] or "default"


def _point(spec: GridSpec, combo: tuple[int, ...]) -> dict[str, Any]:
    """The parameters of one point of the product, given the index of each dimension's value."""
    point: dict[str, Any] = {}
    for dim, i in zip(spec.dimensions, combo, strict=True):
        point.update(zip(dim.names, dim.values[i], strict=True))
    return point


def _combos(spec: GridSpec) -> list[tuple[int, ...]]:
    """Every point of the product that no exclude rule drops, as value indices (points are made
    only for what is kept: a sample of a large grid never builds the rest)."""
    combos = itertools.product(*(range(len(d.values)) for d in spec.dimensions))
    if not spec.exclude:
        return list(combos)
    return [c for c in combos if not _excluded(_point(spec, c), spec.exclude)]


def _excluded(point: dict[str, Any], rules: list[dict[str, Any]]) -> bool:
    return any(all(canonical_json(point[k]) == canonical_json(v) for k, v in rule.items()) for rule in rules)


_MASK64 = (1 << 64) - 1


def _sample(spec: GridSpec, combos: list[tuple[int, ...]], n: int) -> list[int]:
    """Positions of the n points with the smallest seeded hash of their content, in grid order.

    A point's chance does not depend on its position, so growing an axis keeps the earlier
    choice where it can: a point of the old grid is in the new sample only if it was in the old
    one, and the old sample loses only the places that new points take (index sampling would
    reshuffle everything and retrain what was already done). Each (parameters, values) of a
    dimension is hashed once; a point's key mixes the sum of its dimensions' hashes (so the
    order of the axes in the file does not matter either)."""
    part = [[int.from_bytes(hashlib.sha256(f"sample:{spec.seed}:{canonical_json(dict(zip(d.names, v, strict=True)))}"
                                           .encode()).digest()[:8], "little") for v in d.values]
            for d in spec.dimensions]

    def key(combo: tuple[int, ...]) -> int:
        z = sum(p[i] for p, i in zip(part, combo, strict=True)) & _MASK64  # splitmix64's finaliser
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        return z ^ (z >> 31)

    keys = [key(c) for c in combos]
    return sorted(sorted(range(len(combos)), key=keys.__getitem__)[:n])


def run_of_point(spec: GridSpec, point: dict[str, Any]) -> RunSpec:
    """The run of one point of a search grid's space: the grid's fixed parameters with the
    point's values. Its id is the content hash of its parameters, as a grid run's is, so a trial
    that samples a point run before (by a grid or an earlier trial) finds its result.

    Args:
        spec: a validated search grid.
        point: a value for every swept parameter (its lists and intervals).

    Returns:
        The run (repeat 0, seeded from the grid's seed and the configuration).
    """
    params = {**spec.fixed, **point}
    params = {k: params[k] for k in sorted(params)}
    swept = {k: point[k] for k in spec.swept if k in point}
    cid = config_id(config_identity(spec, params))
    return RunSpec(sweep=spec.name, model=spec.model, config_id=cid, run_id=cid, name=readable_name(swept),
                   repeat=0, seed=run_seed(spec.seed, cid, 0), params=params, swept=swept)


def expand(spec: GridSpec) -> list[RunSpec]:
    """All runs of the grid, in a stable order.

    Args:
        spec: a validated grid.

    Returns:
        One RunSpec per configuration and repeat: the product of the dimensions, without the
        excluded combinations, sampled when the grid says so.

    Raises:
        GridError: when the exclusion rules leave no configuration.
    """
    combos = _combos(spec)
    if not combos:
        line, col = spec.located.where(("exclude",), prefer_key=True) if spec.located else (0, 0)
        raise GridError([GridIssue(spec.file, line, col, "exclude",
                                   f"the grid expands to zero configurations: all {count_points(spec)} "
                                   "combinations are excluded")])
    if spec.sample is not None and spec.sample < len(combos):
        combos = [combos[i] for i in _sample(spec, combos, spec.sample)]
    points = [_point(spec, c) for c in combos]

    runs: list[RunSpec] = []
    order = spec.swept
    for point in points:
        params = {**spec.fixed, **point}
        params = {k: params[k] for k in sorted(params)}
        swept = {k: point[k] for k in order}
        cid = config_id(config_identity(spec, params))
        name = readable_name(swept)
        for k in range(spec.repeats):
            runs.append(RunSpec(sweep=spec.name, model=spec.model, config_id=cid,
                                run_id=cid if k == 0 else f"{cid}-r{k}", name=name, repeat=k,
                                seed=run_seed(spec.seed, cid, k), params=params, swept=swept))
    return runs
