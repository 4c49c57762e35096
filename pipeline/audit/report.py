"""`corpus audit`: one version's report for rights managers, as files that open offline.

`report.html` is self-contained (inline CSS, charts as inline SVG, no script, no external
reference, and a Content-Security-Policy that forbids loading anything), so it can be
mailed or archived with the version. Every table on the page is also exported as
`<table>.csv` (cells neutralised against spreadsheet formulas) and `<table>.json`, beside
the training-data summary (`summary.json`, `summary.md`) and `attribution.md`.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Sequence
from pathlib import Path

from jinja2 import Environment, PackageLoader
from markupsafe import Markup, escape

from pipeline.audit.attribution import attribution_markdown
from pipeline.audit.summary import summary_markdown, training_data_summary
from pipeline.audit.tables import COLUMNS, EXPIRING_DAYS, OPEN_ENDED, all_tables, csv_text

TITLES = {
    "version": "Version facts (manifest beside the decision records)",
    "by_partner": "Items by partner",
    "by_licence_family": "Items by licence family",
    "by_licence": "Items by licence",
    "by_territory": "Accepted items by territory of the grant",
    "expiry_by_month": "Accepted items by month their licence ends",
    "expiring_soon": "Accepted items whose licence ends soon",
    "refusals_by_reason": "Refused items by reason",
    "refusals_by_partner": "Refused items by partner and reason",
    "refused_items": "Refused items",
    "accepted_items": "Accepted items",
    "changes_summary": "Changes since the parent version",
    "changes": "Items added, removed or updated since the parent version",
    "attribution": "Attribution list",
}
COLLAPSE_OVER = 50
MAX_CHART_ROWS = 30
COLOURS = {
    "accepted": "#2e7d32",
    "refused": "#c62828",
    "granted": "#1565c0",
    "excluded": "#ef6c00",
    "items": "#455a64",
    "added": "#2e7d32",
    "removed": "#c62828",
    "updated": "#f9a825",
    "unchanged": "#90a4ae",
}
_RC = {
    "svg.fonttype": "none",
    "text.parse_math": False,
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
_SVG_METADATA = {"Creator": None, "Date": None, "Format": None, "Type": None}


def write_report(
    out_dir: Path,
    manifest: dict,
    decisions: list[dict],
    parent_manifest: dict | None = None,
    parent_decisions: list[dict] | None = None,
    *,
    expiring_days: int = EXPIRING_DAYS,
    withdrawal: dict | None = None,
) -> dict[str, Path]:
    """Write the report and its exports into `out_dir`; returns file name -> path.
    `withdrawal` (by, at, items) puts a warning on a version a later one withdrew."""
    decisions = list(decisions)
    tables = all_tables(manifest, decisions, parent_manifest, parent_decisions, expiring_days)
    summary = training_data_summary(manifest, decisions)
    texts: dict[str, str] = {}
    for name, rows in tables.items():
        texts[f"{name}.csv"] = csv_text(rows, COLUMNS[name])
        texts[f"{name}.json"] = _json(rows)
    texts["summary.json"] = _json(summary)
    texts["summary.md"] = summary_markdown(summary)
    texts["attribution.md"] = attribution_markdown(decisions, manifest.get("version"))
    texts["report.html"] = render_html(
        manifest,
        tables,
        parent_manifest=parent_manifest,
        parent_decisions_given=parent_decisions is not None,
        expiring_days=expiring_days,
        exports=sorted(texts),
        withdrawal=withdrawal,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, text in texts.items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8", newline="")
        written[name] = path
    return written


def _json(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


# --- charts ---


def chart_svgs(tables: dict[str, list[dict]]) -> dict[str, str]:
    """Inline SVG per chart with something to draw; an empty table gets no chart."""
    charts = {}
    partners = tables["by_partner"]
    if partners:
        charts["partners"] = _bars(
            [r["partner"] for r in partners],
            {k: [r[k] for r in partners] for k in ("accepted", "refused")},
            "Items by partner: accepted and refused",
        )
    families = tables["by_licence_family"]
    if families:
        charts["families"] = _bars(
            [r["family"] for r in families],
            {k: [r[k] for r in families] for k in ("accepted", "refused")},
            "Items by licence family: accepted and refused",
        )
    territories = _top(tables["by_territory"], lambda r: r["granted"] + r["excluded"])
    if territories:
        charts["territories"] = _bars(
            [r["territory"] for r in territories],
            {k: [r[k] for r in territories] for k in ("granted", "excluded")},
            "Accepted items by territory: granted and excluded",
            stacked=False,
        )
    labels, values = timeline(tables["expiry_by_month"])
    if labels:
        charts["expiry"] = _bars(
            labels, {"items": values}, "Accepted items by end of licence", horizontal=False
        )
    reasons = tables["refusals_by_reason"]
    if reasons:
        charts["refusals"] = _bars(
            [r["reason"] for r in reasons],
            {"refused": [r["items"] for r in reasons]},
            "Refused items by reason",
        )
    item_changes = [r for r in tables["changes_summary"] if r["subject"] == "items"]
    item_changes = [r for r in item_changes if r["change"] in COLOURS]
    if item_changes:
        charts["changes"] = _bars(
            [r["change"] for r in item_changes],
            {"items": [r["count"] for r in item_changes]},
            "Items since the parent version",
            horizontal=False,
            bar_colours=[COLOURS[r["change"]] for r in item_changes],
        )
    return charts


def _top(rows: list[dict], weight) -> list[dict]:
    """The heaviest rows, in their original order, so a long table still makes a legible chart."""
    if len(rows) <= MAX_CHART_ROWS:
        return rows
    keep = {id(r) for r in sorted(rows, key=weight, reverse=True)[:MAX_CHART_ROWS]}
    return [r for r in rows if id(r) in keep]


def timeline(rows: list[dict]) -> tuple[list[str], list[int]]:
    """Expiry counts on a continuous axis: every month over four years or less, else years."""
    counts = {r["month"]: r["items"] for r in rows if r["month"] != OPEN_ENDED}
    if not counts:
        return [], []
    (y0, m0), (y1, m1) = (tuple(map(int, m.split("-"))) for m in (min(counts), max(counts)))
    if (y1 - y0) * 12 + m1 - m0 < 48:
        months = [divmod(i, 12) for i in range(y0 * 12 + m0 - 1, y1 * 12 + m1)]
        labels = [f"{y:04d}-{m + 1:02d}" for y, m in months]
        return labels, [counts.get(label, 0) for label in labels]
    years = [str(y) for y in range(y0, y1 + 1)]
    return years, [sum(n for m, n in counts.items() if m.startswith(y)) for y in years]


def _bars(
    labels: list[str],
    series: dict[str, list[float]],
    label: str,
    *,
    horizontal: bool = True,
    stacked: bool = True,
    bar_colours: list[str] | None = None,
) -> str:
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    count = len(labels)
    lanes = 1 if stacked else len(series)
    size = (7.0, 0.9 + 0.3 * count * lanes) if horizontal else (7.0, 3.0)
    with matplotlib.rc_context({**_RC, "svg.hashsalt": label}):
        figure = Figure(figsize=size)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        width = 0.8 / lanes
        base = [0.0] * count
        for lane, (name, values) in enumerate(series.items()):
            shift = 0.0 if stacked else (lane - (lanes - 1) / 2) * width
            where = [i + shift for i in range(count)]
            colour = bar_colours or COLOURS.get(name, "#455a64")
            if horizontal:
                bars = axes.barh(where, values, width, left=base, color=colour, label=name)
            else:
                bars = axes.bar(where, values, width, bottom=base, color=colour, label=name)
            axes.bar_label(
                bars, labels=[f"{v:g}" if v else "" for v in values], label_type="center"
            )
            if stacked:
                base = [b + v for b, v in zip(base, values, strict=True)]
        value_axis, label_axis = (
            (axes.xaxis, axes.yaxis) if horizontal else (axes.yaxis, axes.xaxis)
        )
        value_axis.set_major_locator(MaxNLocator(integer=True))
        label_axis.set_ticks(range(count), labels)
        if horizontal:
            axes.invert_yaxis()
        elif count > 8:
            axes.tick_params(axis="x", labelrotation=60)
        if len(series) > 1:
            axes.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        out = io.StringIO()
        figure.savefig(out, format="svg", metadata=_SVG_METADATA, bbox_inches="tight")
    return _inline(out.getvalue(), label)


def _inline(svg: str, label: str) -> str:
    """Matplotlib's SVG document as an element of an HTML page: no prolog, no namespace
    URLs (HTML parsing supplies them), no group ids that would repeat across charts."""
    svg = svg[svg.index("<svg") :]
    root_end = svg.index(">")
    root = re.sub(r'\s+xmlns(?::xlink)?="[^"]*"', "", svg[:root_end])
    root = root.replace("<svg", f'<svg role="img" class="chart" aria-label="{escape(label)}"', 1)
    return root + re.sub(r'<g id="[^"]*"', "<g", svg[root_end:])


# --- HTML ---


def render_html(
    manifest: dict,
    tables: dict[str, list[dict]],
    *,
    parent_manifest: dict | None = None,
    parent_decisions_given: bool = False,
    expiring_days: int = EXPIRING_DAYS,
    exports: Sequence[str] = (),
    withdrawal: dict | None = None,
) -> str:
    env = Environment(
        loader=PackageLoader("pipeline.audit", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["cell"] = _cell
    env.globals["align"] = _align
    template = env.get_template("report.html.j2")
    charts = {name: Markup(svg) for name, svg in chart_svgs(tables).items()}
    facts = {r["fact"]: r["value"] for r in tables["version"]}
    return template.render(
        manifest=manifest,
        facts=facts,
        tables=tables,
        columns=COLUMNS,
        titles=TITLES,
        charts=charts,
        parent_manifest=parent_manifest,
        parent_decisions_given=parent_decisions_given,
        expiring_days=expiring_days,
        open_ended=sum(r["items"] for r in tables["expiry_by_month"] if r["month"] == OPEN_ENDED),
        collapse_over=COLLAPSE_OVER,
        policy_json=json.dumps(manifest.get("policy") or {}, indent=2, sort_keys=True),
        shards=manifest.get("shards") or [],
        exports=exports,
        withdrawal=withdrawal,
    )


def _cell(table: str, column: str, row: dict):
    """A cell's HTML: escaped text; CC deed URLs (generated, never partner text) as links."""
    value = row.get(column)
    if table == "attribution" and column == "licence_url" and value:
        return Markup('<a href="{0}">{0}</a>').format(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return value


def _align(value: object) -> Markup:
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    return Markup(' class="num"') if numeric else Markup("")
