"""`corpus attribution`: the credit list that CC BY and contract terms require.

Public-domain items (CC0, PDM) are listed too, as a courtesy, and marked as not required.
Partner strings are escaped, so a title cannot inject Markdown links or HTML.
"""

from __future__ import annotations

import re

from pipeline.audit.tables import COLUMNS, attribution, csv_text, licence_name

_MARKDOWN_SPECIAL = re.compile(r"[\\`*\[\]|~]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")


def md_escape(value: object) -> str:
    """Plain text for Markdown: no emphasis, links, raw HTML or line breaks survive."""
    if isinstance(value, list | tuple):
        value = ", ".join(str(v) for v in value)
    text = " ".join(str(value if value is not None else "").split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN_SPECIAL.sub(lambda m: "\\" + m.group(0), text)


def _entry(row: dict) -> str:
    name = md_escape(licence_name(row["licence_id"]))
    lic = f"[{name}]({row['licence_url']})" if row["licence_url"] else name
    author = f" by {md_escape(row['author'])}" if row["author"] else ""
    return (
        f"- **{md_escape(row['title'])}**{author}; source: {md_escape(row['source'])}; "
        f"licence: {lic}  \n  {md_escape(row['attribution'])}"
    )


def attribution_markdown(decisions: list[dict], version: str | None = None) -> str:
    rows = attribution(decisions)
    required = [r for r in rows if r["required"]]
    courtesy = [r for r in rows if not r["required"]]
    heading = f"# Attribution: corpus version {md_escape(version)}" if version else "# Attribution"
    lines = [
        heading,
        "",
        f"## Required ({len(required)}): Creative Commons BY and contract licences",
        "",
        *([_entry(r) for r in required] or ["None."]),
        "",
        f"## Courtesy ({len(courtesy)}): public domain, attribution not required",
        "",
        *([_entry(r) for r in courtesy] or ["None."]),
        "",
    ]
    return "\n".join(lines)


def attribution_csv(decisions: list[dict]) -> str:
    """Every listed item with a `required` column; cells neutralised against formulas."""
    return csv_text(attribution(decisions), COLUMNS["attribution"])
