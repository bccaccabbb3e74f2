"""Render every topology as Argo CD would and run every check of checks.py on it, offline.

Prints, per topology, the objects rendered from charts and from our tree and the errors of
each check, then one line per error. Exit status 1 on any error.

Usage: python cluster/tools/validate_manifests.py [--topology NAME] [--check NAME] [--quiet]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

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


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topology", action="append", choices=render.TOPOLOGIES)
    parser.add_argument("--check", action="append", choices=sorted(checks.CHECKS))
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    vendor.root()  # one line and exit 1 when nothing is vendored
    return run(args.topology or render.TOPOLOGIES, args.check or list(checks.CHECKS), args.quiet)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
