"""ClassAd expressions from a grid (condor.requirements) are parsed with HTCondor's own parser
at validation: a broken one is reported with the grid's line and nothing is written; a valid
one reaches the submit file exactly as written."""

from __future__ import annotations

import htcondor2
import pytest

from sweep.cli import main
from sweep.core.errors import GridError
from sweep.core.expand import expand
from sweep.core.render import render_sweep
from sweep.submit.prepare import prepare

GRID = """\
sweep: x
model: lstm
data: {{path: data/d.npz}}
axes:
  optimizer: [adam]
condor:
  requirements: '{req}'
"""


@pytest.mark.parametrize("req, why", [
    ('OpSysAndVer == "AlmaLinux9', "a double quote is not closed"),
    ('(Arch == "X86_64"', "1 '(' but 0 ')'"),
    ('Arch == "X86_64")', "0 '(' but 1 ')'"),
    ("True; Foo = 1", "one expression only"),  # would add an attribute
    ("True] [Foo = 1", "one expression only"),  # would be cut silently by a naive parse
    ("Memory >", ""),
    ("True /* the rest", ""),
    # balanced, and one expression once sweep wrapped it in parentheses: HTCondor's own clauses,
    # appended with &&, would then bind to the second True only
    ("True) || (True", "a ')' closes a '(' that the expression did not open"),
    ('Arch == "X86_64") || (Memory > 0', "a ')' closes a '(' that the expression did not open"),
])
def test_a_broken_expression_is_refused_with_its_line(write_grid, tmp_path, capsys, req, why):
    grid = write_grid(GRID.format(req=req))
    assert main(["--root", str(tmp_path), "validate", str(grid)]) == 2
    err = capsys.readouterr().err
    assert f"{grid}:7:17: condor.requirements: expected a ClassAd expression" in err, err
    assert why in err and "Traceback" not in err
    assert main(["--root", str(tmp_path), "submit", str(grid), "--local", "--no-progress"]) == 2
    assert not (tmp_path / "jobs").exists() and not (tmp_path / "results").exists()
    with pytest.raises(GridError):
        prepare(grid, tmp_path)  # the submit stage checks expressions even when the caller does not


@pytest.mark.parametrize("req", [
    'OpSysAndVer == "AlmaLinux9" && Arch == "X86_64"',
    '(Memory > 2048) || (TARGET.HasGPU =?= true && member("a;b]", {"a;b]"}))',  # ; and ] inside quotes are fine
    'regexp("^node[0-9]+", Machine)',
])
def test_a_valid_expression_reaches_the_submit_file_as_written(write_grid, tmp_path, req):
    grid = write_grid(GRID.format(req=req))
    spec = prepare(grid, tmp_path).spec
    (run,) = render_sweep(spec, expand(spec), tmp_path).runs
    # one parenthesized expression: the clauses HTCondor appends with && apply to all of it
    assert htcondor2.Submit(run.submit_text)["requirements"] == f"({req})"


def test_the_submit_file_keeps_the_expression_one_clause_even_unchecked(write_grid, tmp_path):
    """Rendering wraps the expression in parentheses whatever validated it: a grid loaded without
    the ClassAd check cannot make HTCondor's default clauses apply to a part of it only."""
    import classad2

    from sweep.core.grid import load_grid

    grid = write_grid(GRID.format(req="True) || (True"))
    spec = load_grid(grid, tmp_path)  # no expression check handed in
    (run,) = render_sweep(spec, expand(spec), tmp_path).runs
    text = htcondor2.Submit(run.submit_text)["requirements"]
    assert text == "(True) || (True)"
    # HTCondor appends its clauses as `(...) && (defaults)`: the user's text stays one operand
    ad = classad2.ClassAd(f"[Arch = \"X86_64\"; r = ({text}) && (Arch == \"none\"); "
                          "escaped = (True) || (True) && (Arch == \"none\")]")
    assert ad.eval("r") is False and ad.eval("escaped") is True  # as written, the grid's text escaped

