"""Render every topology as Argo CD would and run every check of checks/ on it, offline.

Prints, per topology, the objects rendered from charts and from our tree and the errors of
each check, then one line per error. Exit status 1 on any error.

Usage: python cluster/tools/validate_manifests.py [--topology NAME] [--check NAME] [--quiet]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import checks
import render
import vendor


def run(topologies, names, quiet=False) -> int:
    total = 0
    for name in topologies:
        start = time.monotonic()
        topo = render.render_topology(name)
        errors = {"render": list(topo.errors)}
        for check in names:
            errors[check] = checks.CHECKS[check](topo)
        charts = sum(1 for o in topo.objects if o.from_chart)
        ours = len(topo.objects) - charts
        counts = ", ".join(f"{k} {len(v)}" for k, v in errors.items())
        print(
            f"{name}: {charts} objects from {len(topo.charts)} charts, {ours} from our tree; "
            f"errors: {counts} ({time.monotonic() - start:.1f}s)"
        )
        for check, errs in errors.items():
            for err in errs:
                print(f"  ERROR {check}: {err}", file=sys.stderr)
            total += len(errs)
    if not quiet:
        print(
            f"charts and schemas from {vendor.root()}; Kubernetes {checks.k8s_version()} (strict)"
        )
    return 1 if total else 0


def chart_table(topo: render.Topology) -> str:
    """Markdown: every chart, the version rendered, its objects and the images it runs."""
    rows = [
        "| Application | chart | version (app) | objects | images |",
        "|---|---|---|---:|---|",
    ]
    for chart in sorted(topo.charts, key=lambda c: c.app):
        meta = yaml.safe_load((vendor.charts_dir() / chart.chart / "Chart.yaml").read_text("utf-8"))
        applied = [o for o in chart.objects if o.phase in checks.APPLIED]
        images = sorted({i for o in applied for i in checks.all_images(o) if i})
        rows.append(
            f"| {chart.app} | {meta['name']} | {meta['version']} ({meta.get('appVersion', '')}) "
            f"| {len(applied)} | {'<br>'.join(f'`{i}`' for i in images)} |"
        )
    return "\n".join(rows)


def budget_table(topo: render.Topology) -> str:
    rows = checks.budget_rows(topo)
    cpu = sum(r * c for _, r, c, _ in rows)
    mem = sum(r * m for _, r, _, m in rows)
    lines = ["| what | x | CPU request | memory request |", "|---|---:|---:|---:|"]
    for what, replicas, c, m in sorted(rows, key=lambda r: -r[1] * r[2]):
        lines.append(f"| {what} | {replicas} | {c}m | {m}Mi |")
    lines.append(f"| **total** ({topo.name}) | | **{cpu}m** | **{mem}Mi** |")
    cap_cpu, cap_mem = checks.VM_CPU_M * topo.nodes, checks.VM_MEM_MI * topo.nodes
    lines.append("")
    lines.append(
        f"{topo.nodes} x 4 vCPU / 16 GiB: requests use {100 * cpu / cap_cpu:.0f}% of the CPU and "
        f"{100 * mem / cap_mem:.0f}% of the memory (budget: at most "
        f"{100 * checks.MAX_CPU_SHARE:.0f}% and {100 * checks.MAX_MEM_SHARE:.0f}%)."
    )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topology", action="append", choices=render.TOPOLOGIES)
    parser.add_argument("--check", action="append", choices=sorted(checks.CHECKS))
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--markdown", choices=["charts", "budget"], help="print a docs table")
    args = parser.parse_args(argv)
    vendor.root()  # one line and exit 1 when nothing is vendored
    if args.markdown:
        topo = render.render_topology((args.topology or ["single-node"])[0])
        print(chart_table(topo) if args.markdown == "charts" else budget_table(topo))
        return 0
    return run(args.topology or render.TOPOLOGIES, args.check or list(checks.CHECKS), args.quiet)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
