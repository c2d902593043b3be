"""The one canonical text of a value: for comparing grid values and hashing configurations."""

from __future__ import annotations

import json
from typing import Any


def canonical_json(value: Any) -> str:
    """Compact JSON with sorted keys and ASCII escapes: equal values give equal text.

    Args:
        value: any JSON-serialisable value (numbers, strings, lists, mappings).

    Returns:
        The text; ``1`` and ``1.0`` stay different, as YAML keeps them.

    Raises:
        TypeError: when the value is not JSON-serialisable.
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
