"""The HTML report of a beam-test evaluation (report.html beside its beamtest.json): the counts per
run and channel with their Poisson fits, the scaling with the track angle, the pseudo-track
resolutions, and the plots, in one self-contained page."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..core.names import REPORT
from ..fsutil import atomic_write_text
from ..records.base import RecordError
from ..records.beamtest import BEAMTEST_EVALUATION, BeamTestEvaluation, read_beamtest_evaluation

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>beam-test evaluation</title>
<style>body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#eee}td.l,th.l{text-align:left}
img{max-width:100%;border:1px solid #ddd;margin:4px 0}</style></head><body>
<h1>Beam-test evaluation (no truth)</h1>
<p>{{ ev.n_waveforms }} waveforms of {{ ev.input or "a dataset" }}, sampled every {{ "%.4f" % ev.dt_ns }} ns;
peak model {{ ev.models.peak or "none" }} at threshold {{ ev.threshold }}{% if ev.prior is not none %}
(expected count at signal fraction {{ ev.prior }}){% endif %}, cluster model
{{ ev.models.cluster or "none" }}; √t clusterization from t0 = {{ ev.t0_ns }} ns; DERIV at its default
thresholds; dE/dx the truncated mean of the lowest {{ "%.0f" % (100 * ev.truncation) }} % of a
pseudo-track's charges.</p>
{% if ev.warnings %}<h3>Warnings</h3><ul>{% for w in ev.warnings %}<li>{{ w }}</li>{% endfor %}</ul>{% endif %}
{% for title, rows in tables %}<h2>{{ title }}</h2><table>
<tr>{% for h in rows[0] %}<th{% if loop.index <= 2 %} class="l"{% endif %}>{{ h }}</th>{% endfor %}</tr>
{% for row in rows[1:] %}<tr>{% for c in row %}<td{% if loop.index <= 2 %} class="l"{% endif %}>{{ c }}</td>
{%- endfor %}</tr>{% endfor %}
</table>{% endfor %}
{% for line in skipped %}<p class="warn">{{ line }}</p>{% endfor %}
{% for img in images %}<img alt="{{ img.name }}" src="data:image/png;base64,{{ img.data }}">{% endfor %}
</body></html>
"""


def _pm(v: Any, e: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return f"{v:.{digits}g} ± {e:.2g}" if e is not None else f"{v:.{digits}g}"


def tables(ev: BeamTestEvaluation) -> list[tuple[str, list[list[str]]]]:
    """(title, rows with a header first) of the counts, the angle scaling and the pseudo-tracks."""
    out = []
    rows = [["run", "channel", "angle", "events", "count", "mean", "χ²/ndf", "var/mean"]]
    for g in ev.groups:
        for m, fit in g["fits"].items():
            chi2 = "–" if fit.get("chi2") is None else f"{fit['chi2']:.1f}/{fit['ndf']}"
            rows.append([Path(g["file"]).name, str(g["channel"]),
                         "–" if g.get("angle_deg") is None else f"{g['angle_deg']:g}°", str(g["events"]), m,
                         _pm(fit["mean"], fit["mean_err"]), chi2, _pm(fit.get("var_over_mean"), None)])
    out.append(("Counts per event, with their Poisson fits", rows))
    if ev.angles:
        rows = [["channel", "count", "exponent b (1 expected)", "mean ratio", "1/cos α ratio"]]
        for ch, per in ev.angles.items():
            for m, s in per.items():
                rows.append([ch, m, _pm(s.get("exponent"), s.get("exponent_err")),
                             _pm(s["ratio"], s["ratio_err"]), f"{s['expected_ratio']:.3f}"])
        out.append(("Scaling with the track angle: mean ∝ (1/cos α)^b", rows))
    for g in ev.groups:
        pt = g["pseudo_tracks"]
        if not pt["hits"]:
            continue
        rows = [["quantity", "unit"] + [f"N={n} ({m} tracks)" for n, m in zip(pt["hits"], pt["tracks"], strict=True)]]
        for name, res in pt["resolution"].items():
            rows.append([name, pt["unit"] if name != "dedx" else "charge"]
                        + [_pm(100 * r, 100 * e) + " %" for r, e in zip(res, pt["resolution_err"][name], strict=True)])
        out.append((f"Pseudo-tracks of {Path(g['file']).name} channel {g['channel']}: σ/μ", rows))
    return out


def write_beamtest_report(folder: Path) -> Path:
    """Write `folder`/report.html from its beamtest.json and PNGs; returns its path.

    Raises:
        RecordError: no beamtest.json there, or one that cannot be read.
    """
    import jinja2

    ev = read_beamtest_evaluation(folder)
    if ev is None:
        raise RecordError(folder / BEAMTEST_EVALUATION, "no beam-test evaluation here")
    from .report_html import embedded_pngs

    images, skipped = embedded_pngs([folder / Path(name).name for name in ev.plots or []])
    html = jinja2.Environment(autoescape=True).from_string(_TEMPLATE).render(
        ev=ev, tables=tables(ev), images=images, skipped=skipped)
    out = folder / REPORT
    atomic_write_text(out, html)
    return out
