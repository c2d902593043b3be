"""`sweep report CHAIN`: one HTML page with the chain's stages, its evaluation (peak, cluster and
track level, π/K separation) beside both stage sweeps' leaderboards, and links to their own
reports (written too)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.errors import ResultsError, printable
from ..core.names import REPORT, SweepPaths
from ..fsutil import atomic_write_text
from ..records.base import NewerRecordError, RecordError
from ..records.evaluation import EVALUATION, Evaluation, read_evaluation
from ..physics.tracklevel import verdicts
from .stages import EVALUATION_DIR, chain_record, stage_lines

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>chain {{ name }}</title>
<style>body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#eee}td.l,th.l{text-align:left}
img{max-width:100%;border:1px solid #ddd;margin:4px 0}pre{background:#f6f6f6;padding:8px}</style></head><body>
<h1>Two-step chain {{ name }}</h1>
<h2 id="stages">Stages</h2>
<pre>{% for line in stages %}{{ line }}
{% endfor %}</pre>
{% if warnings %}<h3>Warnings</h3><ul>{% for w in warnings %}<li>{{ w }}</li>{% endfor %}</ul>{% endif %}
<h2 id="evaluation">Evaluation with both leaders</h2>
{% if evaluation %}
<p>{{ evaluation.n_waveforms }} held-out waveforms (seed {{ evaluation.seed }}).</p>
{% for title, rows in evaluation.tables %}<h3>{{ title }}</h3><table>
<tr>{% for h in rows[0] %}<th{% if loop.first %} class="l"{% endif %}>{{ h }}</th>{% endfor %}</tr>
{% for row in rows[1:] %}<tr>{% for c in row %}<td{% if loop.first %} class="l"{% endif %}>{{ c }}</td>
{%- endfor %}</tr>{% endfor %}
</table>{% endfor %}
{% for line in evaluation.skipped %}<p class="warn">{{ line }}</p>{% endfor %}
{% for img in evaluation.images %}<img alt="{{ img.name }}" src="data:image/png;base64,{{ img.data }}">{% endfor %}
{% else %}<p>No evaluation yet.</p>{% endif %}
{% for board in boards %}<h2 id="{{ board.stage }}">Leaderboard of stage {{ board.stage }}: sweep {{ board.sweep }}</h2>
{% if board.report %}<p><a href="{{ board.report }}">the sweep's own report</a></p>{% endif %}
{{ board.table | safe }}
{% endfor %}
</body></html>
"""


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def evaluation_tables(ev: Evaluation) -> list[tuple[str, list[list[str]]]]:
    """The evaluation's figures as (title, rows) tables: peak, cluster, track level, π/K."""
    tables = []
    peaks = ev.peaks
    rows = [["finder", "efficiency", "purity", "eff × purity", "F1"]]
    for finder in ("lstm", "deriv"):
        m = (peaks.get(finder) or {}).get("peak")
        if m:
            rows.append([finder.upper(), *(_fmt(m.get(k)) for k in ("efficiency", "purity", "eff_purity", "f1"))])
    tables.append(("Peak level (natural mix, ± tolerance)", rows))
    rows = [["method", "mean true", "bias (rel.)", "resolution (rel.)"]]
    for method, m in ev.clusters.items():
        rows.append([method, _fmt(m.get("mean_true")), _fmt(m.get("rel_bias")), _fmt(m.get("rel_resolution"))])
    tables.append(("Cluster level (per cell, against the TRUE count)", rows))
    tracks = ev.tracks
    if tracks:
        rows = [["estimator", "chosen on calibration tracks", "resolution", "density response β", "mean ÷ true",
                 "dE/dx ÷ this", "× Poisson"]]
        dedx = tracks["dedx"]
        rows.append([f"dE/dx (truncated mean, {dedx['source']})", f"keep {dedx['truncation']:.0%} of the length",
                     _pm(dedx, "resolution"), "", "", "1", ""])
        for method, d in tracks["dndx"].items():
            resp = d.get("response") or {}
            rows.append([f"dN/dx {method}", printable(str(d.get("option", ""))), _pm(d, "resolution"),
                         _pm(resp, "slope"), _pm(d, "counted_over_true"), _pm(d, "dedx_over_dndx"),
                         _fmt(d.get("ratio_to_poisson"))])
        rows.append(["Poisson limit", "", _fmt(tracks.get("poisson_limit")), "", "", "", "1"])
        title = (f"Track level ({tracks.get('n_tracks')} tracks × {tracks.get('cells')} cells, "
                 f"{_fmt(tracks.get('momentum_gev'))} GeV/c)")
        tables.append((title, rows))
    sep = ev.separation
    if sep:
        rows = [["momentum (GeV/c)", "dE/dx", *(f"dN/dx {k}" for k in sep["dndx"])]]
        for i, mom in enumerate(sep["momenta_gev"]):
            rows.append([_fmt(mom), _pm_at(sep["dedx"], sep.get("dedx_err"), i),
                         *(_pm_at(v, (sep.get("dndx_err") or {}).get(k), i) for k, v in sep["dndx"].items())])
        tables.append(("π/K separation (σ)", rows))
        calibrated = sep.get("calibrated") or {}
        if calibrated:
            rows = [["momentum (GeV/c)", *(f"{k}: π mean ÷ true, K mean ÷ true, density response" for k in calibrated)]]
            for i, mom in enumerate(sep["momenta_gev"]):
                rows.append([_fmt(mom), *(f"{_fmt(c['counted_over_true'][i][0])}, "
                                          f"{_fmt(c['counted_over_true'][i][1])}, "
                                          f"{_pm_at(c['density_slope'], c['density_slope_err'], i)}"
                                          for c in calibrated.values())])
            title = "Calibrated dN/dx on the π/K tracks (calibrated at each momentum on pions and kaons of its own)"
            tables.append((title, rows))
    lines = verdicts(tracks, sep)
    if lines:
        tables.insert(0, ("Verdict", [["what the evaluation says"], *([printable(line)] for line in lines)]))
    return tables


def _pm(d: dict, key: str) -> str:
    """d[key] ± d[key_err] (the error when there is one)."""
    err = d.get(f"{key}_err")
    return _fmt(d.get(key)) + (f" ± {_fmt(err)}" if isinstance(err, (int, float)) else "")


def _pm_at(values: list, errors: list | None, i: int) -> str:
    err = errors[i] if errors and i < len(errors) else None
    return _fmt(values[i]) + (f" ± {_fmt(err)}" if isinstance(err, (int, float)) else "")


def write_chain_report(name: str, root: Path, top: int = 3, output: Path | None = None) -> Path:
    """Write results/<chain>/report.html (or `output`); returns its path.

    Raises:
        ResultsError: no such chain; RecordError (a ResultsError): its record or evaluation was
            written by a newer sweep.
    """
    import jinja2

    from ..collect.gather import collect
    from ..collect.leaderboard import select
    from ..collect.report_html import embedded_pngs, write_report

    record = chain_record(root, name)
    if record is None:
        raise ResultsError(f"no chain {name} (results/{name}/chain.json)")
    paths = SweepPaths(root.resolve())
    results = paths.results(name)
    out = Path(output) if output else results / REPORT
    ev_dir = results / EVALUATION_DIR
    evaluation = None
    try:
        ev = read_evaluation(ev_dir)
    except NewerRecordError:
        raise
    except RecordError:  # unreadable: the page goes on without it, as without any
        ev = None
    if ev:
        images, skipped = embedded_pngs(sorted(ev_dir.glob("*.png")))  # made by a step job
        try:
            tables = evaluation_tables(ev)
        except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
            tables = []
            skipped.append(f"{EVALUATION}: its figures are not of the form this sweep reads ({type(exc).__name__}: "
                           f"{printable(str(exc))[:200]}): not shown")
        evaluation = {"n_waveforms": ev.n_waveforms, "seed": ev.seed, "tables": tables, "images": images,
                      "skipped": skipped}
    boards = []
    for stage in ("peaks", "clusters"):
        entry = record.stage(stage)
        sweep = entry.sweep if entry else None
        if not sweep or not (paths.jobs(sweep) / "sweep.json").is_file():
            continue
        board = collect(sweep, root, write_csv=False)
        sel = select(board, top=max(top, 5))
        report = None
        try:
            report_path = write_report(sweep, root, top=top)
            report = Path("..") / sweep / report_path.name if out.parent == results else report_path.resolve().as_uri()
        except Exception:  # noqa: BLE001 - the chain's page does not depend on a stage's own report
            report = None
        boards.append({"stage": stage, "sweep": sweep, "report": str(report) if report else None,
                       "table": sel.frame.to_html(index=False, escape=True, na_rep="", float_format="%.4g")})
    evaluated = record.stage("evaluate")
    warnings = (evaluated.warnings if evaluated else None) or []
    html = jinja2.Environment(autoescape=True).from_string(_TEMPLATE).render(
        name=name, stages=stage_lines(record), evaluation=evaluation, boards=boards, warnings=warnings)
    atomic_write_text(out, html)
    return out
