"""The live-drift alerts and dashboard panels query metrics serving really exports.

No Prometheus runs here, so the rule cannot be evaluated; what can silently break is a name.
Each metric named by the PrometheusRule (cluster), the compose rules file and the Grafana
dashboard must be one that serving's registry (:class:`serving.metrics.ServingMetrics` with
the :class:`serving.monitor_metrics.LiveWindowCollector` that ``build_service`` registers)
exports, read from a real ledger holding a drifted window. The compose rules are the cluster
rule's groups, and docs/monitoring.md names the rule and its alerts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from cluster_helpers import CLUSTER, REPO
from prometheus_client.parser import text_string_to_metric_families

from serving.metrics import ServingMetrics
from serving.monitor_metrics import LiveWindowCollector
from tasks.core.ledger import Ledger, MonitorWindow
from tests.support.postgres import fresh_database

RULE = CLUSTER / "apps/monitoring/base/prometheus-rule.yaml"
COMPOSE_RULES = REPO / "compose/prometheus/rules/realtor-live-drift.yaml"
DASHBOARD = CLUSTER / "apps/monitoring/dashboards/realtor-serving.json"
MODEL = "realtor-alerts"

#: PromQL words that are not metric names (operators, modifiers; functions are followed by "(")
KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
#: label lists of by/without/on/ignoring/group_left/group_right, then selectors, ranges, strings
NOT_NAMES = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)"
    r"|\{[^}]*\}|\[[^\]]*\]|\"[^\"]*\"|'[^']*'"
)
IDENTIFIER = re.compile(r"(?<![\w:$])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()")
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gauge": ("",),
    "info": ("_info",),
}


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects."""
    stripped = NOT_NAMES.sub(" ", expr)
    names = set(IDENTIFIER.findall(stripped))
    return {n for n in names if n.lower() not in KEYWORDS and not n.startswith("__")}


def test_metric_names_of_an_expression() -> None:
    expr = (
        'max by (feature) (realtor_live_feature_drift{feature!="x"}) and on() '
        "(sum(rate(realtor_predictions_total[$__rate_interval])) > 3 * 3600) "
        "unless absent(up)"
    )
    assert metric_names(expr) == {"realtor_live_feature_drift", "realtor_predictions_total", "up"}


def rule_exprs() -> list[str]:
    doc = yaml.safe_load(RULE.read_text())
    return [rule["expr"] for group in doc["spec"]["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [t["expr"] for p in panels for t in p.get("targets", [])]


def exported(text: str) -> set[str]:
    """Sample names of a /metrics body, with the suffixes each family's type gives."""
    names = set()
    for family in text_string_to_metric_families(text):
        names.update(family.name + s for s in SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


@pytest.fixture(scope="module")
def ledger_url() -> Iterator[str]:
    with fresh_database("realtor_alerts") as url:
        Ledger.open(url).engine.dispose()  # migrated
        yield url


def scrape(ledger_url: str) -> str:
    """The body of serving's /metrics, as build_service registers it."""
    metrics = ServingMetrics()
    metrics.registry.register(LiveWindowCollector.of(ledger_url, MODEL))
    return metrics.render().decode()


def add_drifted_window(ledger_url: str) -> None:
    ledger = Ledger.open(ledger_url, upgrade=False)
    end = datetime.now(UTC) - timedelta(minutes=5)
    with ledger.session() as session:
        session.add(
            MonitorWindow(
                first_log_id=1,
                last_log_id=600,
                window_start=end - timedelta(hours=1),
                window_end=end,
                rows=600,
                consumed=True,
                model_name=MODEL,
                model_version="3",
                reference_batch_ids=[1],
                decision="drifted",
                reasons=["live drift share 0.67 >= 0.50 since v3 was trained: state"],
                drift_share=0.67,
                feature_scores={
                    f: {"method": "wasserstein", "score": 0.3, "threshold": 0.1, "drifted": True}
                    for f in ("bed", "bath", "state")
                },
            )
        )
    ledger.engine.dispose()


def test_rules_and_panels_name_only_metrics_serving_exports(ledger_url: str) -> None:
    before = exported(scrape(ledger_url))
    # no window yet: only the counter the stale rule's absent() pairs with
    assert "realtor_live_window_read_errors_total" in before
    assert "realtor_live_window_age_seconds" not in before
    add_drifted_window(ledger_url)
    after = exported(scrape(ledger_url))
    rule_names = set().union(*map(metric_names, rule_exprs()))
    assert rule_names >= {"realtor_live_window_drifted", "realtor_live_window_age_seconds"}
    assert rule_names - after == set(), "the PrometheusRule names metrics serving does not export"
    panel_names = set().union(*map(metric_names, dashboard_exprs()))
    assert {"realtor_live_drift_share", "realtor_live_feature_drift"} <= panel_names
    assert panel_names - after == set(), "the dashboard names metrics serving does not export"


def test_compose_has_the_cluster_rules_and_docs_name_them() -> None:
    rule = yaml.safe_load(RULE.read_text())
    compose = yaml.safe_load(COMPOSE_RULES.read_text())
    assert compose == {"groups": rule["spec"]["groups"]}
    prometheus = yaml.safe_load((REPO / "compose/prometheus/prometheus.yml").read_text())
    assert prometheus["rule_files"] == ["/etc/prometheus/rules/*.yaml"]
    compose_file = (REPO / "docker-compose.yaml").read_text()
    assert "./compose/prometheus/rules:/etc/prometheus/rules:ro" in compose_file
    kustomization = yaml.safe_load((RULE.parent / "kustomization.yaml").read_text())
    assert RULE.name in kustomization["resources"]
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert alerts == {"LiveDriftDetected", "LiveMonitorStale"}
    doc = (REPO / "docs/monitoring.md").read_text()
    for name in (*alerts, rule["metadata"]["name"]):
        assert f"`{name}`" in doc, name
    for r in (r for g in rule["spec"]["groups"] for r in g["rules"]):
        assert r["labels"]["severity"] == "warning"
        assert (
            r["annotations"]["summary"] and "docs/monitoring.md" in r["annotations"]["description"]
        )
