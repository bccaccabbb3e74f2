"""The resource budget is computed, fits the single-node VM, and docs/cluster.md shows it."""

from __future__ import annotations

from cluster_helpers import REPO, load_tool

res = load_tool("resources")


def test_single_node_fits_4_vcpu_16_gib_with_headroom():
    ok, summary = res.fits("single-node")
    assert ok, summary
    cpu, mem, _, _ = res.totals(res.all_rows("single-node"))
    assert cpu <= 0.85 * 4000
    assert mem <= 0.75 * 16384


def test_every_row_has_requests_and_limits():
    for row in res.all_rows("single-node"):
        assert row.cpu_req > 0, row
        assert row.mem_req > 0, row
        assert row.cpu_lim >= row.cpu_req, row
        assert row.mem_lim >= row.mem_req, row


def test_multi_node_topologies_scale_per_node_components():
    one = {(r.app, r.component): r.replicas for r in res.all_rows("single-node")}
    three = {(r.app, r.component): r.replicas for r in res.all_rows("three-node")}
    assert three[("metallb", "speaker")] == 3 * one[("metallb", "speaker")]
    assert three[("postgres", "postgres instance")] == 3
    assert three[("longhorn", "csi-attacher")] == 3


def test_docs_table_is_current():
    doc = (REPO / "docs/cluster.md").read_text()
    start, end = "<!-- resource-table:start -->", "<!-- resource-table:end -->"
    assert start in doc
    assert end in doc
    table = doc.split(start, 1)[1].split(end, 1)[0].strip()
    assert table == res.markdown("single-node").strip(), (
        "regenerate with: python cluster/tools/resources.py --markdown"
    )
