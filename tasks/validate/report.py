"""A self-contained HTML page of a validation result (no scripts, no external assets).

Great Expectations' data docs are a site (an index, static assets and a page per run); a
single page the UI and a reviewer can open from the object store is handier, so the validate
step renders the same results here.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#222}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.6rem}
.badge{display:inline-block;padding:.15rem .6rem;border-radius:.8rem;color:#fff;font-weight:600}
.pass{background:#2e7d32}.warn{background:#ef6c00}.fail{background:#c62828}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
td,th{border:1px solid #ddd;padding:.3rem .6rem;text-align:left;vertical-align:top}
th{background:#f5f5f5}tr.bad td{background:#fdecea}
code{font-size:.85rem}ul{margin:.3rem 0}
"""


def render_validation_html(report: dict[str, Any]) -> str:
    """The page for ``report`` (the dict the validate step stores as validation.json)."""
    result = report["result"]
    outcome = result["outcome"]
    batch = report["batch"]
    rows = [
        ("batch", f"{result['batch_id']} (group {batch['group_number']}, day {batch['day']}, "
                  f"batch number {batch['batch_number']})"),
        ("raw object", batch["raw_key"]),
        ("status", result["status"]),
        ("rows in / kept / dropped",
         f"{result['rows_in']:,} / {result['rows_out']:,} / {result['rows_dropped']:,}"),
        ("curated object", result.get("curated_key") or "-"),
        ("quarantine", result.get("quarantine_key") or "-"),
        ("Great Expectations", report.get("gx_version", "?")),
    ]  # fmt: skip
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Validation of batch {result['batch_id']}: {escape(outcome)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Validation of batch {result['batch_id']} "
        f"<span class='badge {escape(outcome)}'>{escape(outcome)}</span></h1>",
        _table(["", ""], rows, header=False),
        "<h2>Reasons</h2><ul>",
        *[f"<li>{escape(r)}</li>" for r in result["reasons"]],
        "</ul>",
        "<h2>Rows dropped by rule</h2>",
    ]
    by_rule = result.get("dropped_by_rule") or {}
    if by_rule:
        parts.append(_table(["rule", "rows"], [(k, f"{v:,}") for k, v in by_rule.items()]))
    else:
        parts.append("<p>none</p>")
    thresholds = report.get("thresholds", {})
    parts.append("<h2>Thresholds</h2>")
    parts.append(_table(["setting", "value"], [(k, str(v)) for k, v in thresholds.items()]))
    parts.append("<h2>Expectations</h2>")
    exp_rows = []
    bad_rows = []
    for i, item in enumerate(report.get("expectations", [])):
        sample = ", ".join(json.dumps(v, default=str) for v in item.get("sample") or [])
        observed = item.get("observed")
        exp_rows.append(
            (
                item["rule"],
                item["level"],
                item["expectation"],
                "yes" if item["success"] else "NO",
                f"{item.get('unexpected_count', 0):,}",
                "" if observed is None else str(observed),
                sample,
            )
        )
        if not item["success"]:
            bad_rows.append(i)
    parts.append(
        _table(
            ["rule", "level", "expectation", "met", "unexpected", "observed", "examples"],
            exp_rows,
            bad=set(bad_rows),
        )
    )
    skipped = report.get("skipped_rules") or []
    if skipped:
        parts.append("<h2>Not checked</h2><ul>")
        parts.extend(f"<li>{escape(s)}</li>" for s in skipped)
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _table(
    head: list[str],
    rows: list[tuple[str, ...]],
    *,
    header: bool = True,
    bad: set[int] = frozenset(),
) -> str:
    out = ["<table>"]
    if header:
        out.append("<tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>")
    for i, row in enumerate(rows):
        cls = " class='bad'" if i in bad else ""
        cells = "".join(
            f"<th>{escape(str(c))}</th>"
            if (not header and j == 0)
            else f"<td>{escape(str(c))}</td>"
            for j, c in enumerate(row)
        )
        out.append(f"<tr{cls}>{cells}</tr>")
    out.append("</table>")
    return "".join(out)
