"""A run's self-contained HTML report: inline SVG charts, one style block, no scripts, no network."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, StrictUndefined

from flywheel.server.plugin_api import line_chart

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Credit run {{ run_id }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 960px; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; } td, th { border: 1px solid #ddd; padding: 4px 8px; }
th { background: #f4f4f4; text-align: left; } .num { text-align: right; font-variant-numeric: tabular-nums; }
.passed { color: #1a7f37; } .failed { color: #b42318; } svg { max-width: 100%; height: auto; }
</style></head><body>
<h1>Credit run report</h1>
<p>Run <code>{{ run_id }}</code>, model <code>credit.gbm</code> v{{ version }}, dataset <b>{{ dataset.name }}</b>
v{{ dataset.version }} (<code>{{ dataset.sha256[:12] }}</code>, {{ dataset.rows }} rows), feature set
<b>{{ feature_set.name }}</b> v{{ feature_set.version }}.</p>
<h2 class="{{ 'passed' if not failures else 'failed' }}">{{ "Passed" if not failures else "Failed" }}
the evaluation policy</h2>
{% if failures %}<ul>{% for f in failures %}<li>{{ f.threshold }}{% if f.feature %} ({{ f.feature }}){% endif %}:
{{ fmt(f.value) }} against a limit of {{ f.limit }}</li>{% endfor %}</ul>{% endif %}
<table><tr><th>metric (test split)</th><th>value</th><th>train</th></tr>
{% for name in ("auc", "gini", "ks") %}<tr><td>{{ name | upper }}</td><td class="num">{{ fmt(m[name]) }}</td>
<td class="num">{{ fmt(m.train[name]) }}</td></tr>{% endfor %}
<tr><td>PSI of the score (train vs test)</td><td class="num">{{ fmt(m.score_psi) }}</td><td></td></tr>
<tr><td>rows (train / validation / test)</td><td class="num">{{ m.rows.train }} / {{ m.rows.validation }} /
{{ m.rows.test }}</td><td></td></tr>
{% if m.rows.train_scored is defined and m.rows.train_scored < m.rows.train %}<tr><td>train rows scored (a seeded
sample, for the train column, the score's PSI and the bands)</td><td class="num">{{ m.rows.train_scored }}</td>
<td></td></tr>{% endif %}</table>
{{ roc }}
{{ ks }}
{{ distribution }}
<h2>Calibration by score band</h2>
{{ calibration_chart }}
<table><tr><th>band</th><th>PD range</th><th>rows</th><th>mean predicted</th><th>observed bad rate</th></tr>
{% for b in m.calibration %}<tr><td>{{ b.band }}</td><td>{{ fmt(b.lower) }} to {{ fmt(b.upper) }}</td>
<td class="num">{{ b.rows }}</td><td class="num">{{ fmt(b.mean_predicted) }}</td>
<td class="num">{{ fmt(b.observed_bad_rate) }}</td></tr>{% endfor %}</table>
<h2>Confusion at cutoffs</h2>
<table><tr><th>PD cutoff</th><th>declined bad</th><th>declined good</th><th>approved good</th><th>approved bad</th>
<th>decline rate</th></tr>
{% for c in m.confusion %}<tr><td>{{ c.cutoff }}</td><td class="num">{{ c.true_bad }}</td>
<td class="num">{{ c.false_bad }}</td><td class="num">{{ c.true_good }}</td><td class="num">{{ c.false_good }}</td>
<td class="num">{{ fmt(c.decline_rate) }}</td></tr>{% endfor %}</table>
<h2>Features: stability and importance</h2>
<table><tr><th>feature</th><th>description</th><th>transform</th><th>PSI</th><th>gain</th></tr>
{% for f in features %}<tr><td><code>{{ f.name }}</code></td><td>{{ f.description }}</td><td>{{ f.transform }}
{% if f.monotone %}(monotone {{ "%+d" | format(f.monotone) }}){% endif %}</td>
<td class="num">{{ fmt(m.feature_psi.get(f.name)) }}</td><td class="num">{{ fmt(gain.get(f.name)) }}</td></tr>
{% endfor %}</table>
</body></html>
"""

_env = Environment(undefined=StrictUndefined, autoescape=True)
_template = _env.from_string(_TEMPLATE)


def fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def render_report(*, run_id, metrics: dict, failures, features, version: int, dataset, feature_set) -> str:
    m = metrics
    dist = m["score_distribution"]
    mids = [(a + b) / 2 for a, b in zip(dist["edges"], dist["edges"][1:])]
    bands = [b for b in m["calibration"] if b["rows"]]
    charts = {
        "roc": line_chart({"model": m["roc"], "chance": [(0.0, 0.0), (1.0, 1.0)]}, title="ROC curve (test split)",
                          x_label="false positive rate", y_label="true positive rate", zero_based=True),
        "ks": line_chart({"bad": [(s, b) for s, b, _ in m["ks_curve"]], "good": [(s, g) for s, _, g in m["ks_curve"]]},
                         title=f"KS curve: KS = {fmt(m['ks'])}", x_label="share of applicants, riskiest first",
                         y_label="cumulative share", zero_based=True),
        "distribution": line_chart({"good": list(zip(mids, dist["good"])), "bad": list(zip(mids, dist["bad"]))},
                                   title="Score distribution by class (test split)", x_label="probability of default",
                                   y_label="share of class", zero_based=True),
        "calibration_chart": line_chart(
            {"predicted": [(b["band"], b["mean_predicted"]) for b in bands],
             "observed": [(b["band"], b["observed_bad_rate"]) for b in bands]},
            title="Predicted vs observed bad rate by band", x_label="score band", y_label="bad rate", zero_based=True),
    }
    gain = {r["feature"]: r["gain"] for r in m.get("importance", [])}
    return _template.render(run_id=run_id, version=version, dataset=dataset, feature_set=feature_set, m=m,
                            failures=failures, features=features, gain=gain, fmt=fmt, **charts)


