"""ClassAd expressions from a grid, checked with HTCondor's own parser (classad2) before they
reach a submit file: a requirements expression that does not parse would otherwise fail inside
DAGMan after every retry, or at submission after the manifest says "submitting"."""

from __future__ import annotations

import secrets


def check_expression(text: str) -> None:
    """Accept exactly one ClassAd expression.

    The expression is parsed inside a ClassAd as it is written (no parentheses added) and
    followed by an attribute with a random name, so that text which closes the expression and
    goes on (``True; X = 1``, ``True] [X = 1``, a comment that swallows the rest) is refused, not
    silently cut; and text that only parses once wrapped in parentheses (``True) || (True``,
    which would make the clauses HTCondor appends with ``&&`` apply to its last part) is
    refused too. The submit files carry the expression in parentheses (render.condor_context).

    Raises:
        ValueError: saying what is wrong (unbalanced quotes or parentheses, not an expression).
    """
    import classad2

    end = f"sweep_end_{secrets.token_hex(4)}"
    try:
        ad = classad2.ClassAd(f"[sweep_expression = {text}; {end} = 1]")
        keys = sorted(str(k).lower() for k in ad.keys())
    except Exception:  # noqa: BLE001 - the bindings raise their own ClassAdException type
        keys = None
    if keys == sorted(["sweep_expression", end]):
        return
    raise ValueError(f"not a ClassAd expression that HTCondor can parse{_diagnose(text)}")


def _diagnose(text: str) -> str:
    """A hint at the usual mistakes: an unbalanced quote or parenthesis, more than one expression."""
    outside, quoted, escaped = [], False, False
    for ch in text:
        if quoted:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = False
            continue
        if ch == '"':
            quoted = True
        else:
            outside.append(ch)
    if quoted:
        return ": a double quote is not closed"
    rest = "".join(outside)
    if rest.count("(") != rest.count(")"):
        return f": {rest.count('(')} '(' but {rest.count(')')} ')'"
    depth = 0
    for ch in rest:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            return (": a ')' closes a '(' that the expression did not open (sweep puts the expression in "
                    "parentheses, and HTCondor adds its own clauses with &&: write one expression)")
    if any(c in rest for c in ";[]"):
        return ": ';', '[' or ']' outside quotes (one expression only)"
    return ""
