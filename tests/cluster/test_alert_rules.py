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
import subprocess
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
from tests.support.programs import require

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


# --- the rules evaluated by Prometheus' own rule engine (promtool test rules) ---------------

#: one replica's labels, as the ServiceMonitor's scrape gives them (two replicas: pods a, b)
POD_A = '{job="serving", pod="serving-a"}'
POD_B = '{job="serving", pod="serving-b"}'


def annotations(alert: str, cause: str | None, value: str) -> dict[str, str]:
    """The rule's annotations of ``alert`` as Prometheus renders them for ``value``."""
    doc = yaml.safe_load(COMPOSE_RULES.read_text())
    [rule] = [
        r
        for g in doc["groups"]
        for r in g["rules"]
        if r["alert"] == alert and r["labels"].get("cause") == cause
    ]
    out = {}
    for key, text in rule["annotations"].items():
        text = text.replace('{{ $value | printf "%.2f" }}', value)
        out[key] = text.replace("{{ $value | humanizeDuration }}", value)
    return out


def alerts_at(eval_time: str, name: str, *expected: dict) -> dict:
    return {"eval_time": eval_time, "alertname": name, "exp_alerts": list(expected)}


def scenarios() -> list[dict]:
    healthy_age = "300+0x300"  # a window 5 minutes old, all along
    drift = annotations("LiveDriftDetected", None, "0.67")
    return [
        {  # two replicas export the drifted window: one alert, after 5 minutes, naming 0.67
            "interval": "1m",
            "input_series": [
                *(
                    {"series": f"realtor_live_window_drifted{pod}", "values": "0 0 0 1x20"}
                    for pod in (POD_A, POD_B)
                ),
                *(
                    {"series": f"realtor_live_drift_share{pod}", "values": "0.17 0.17 0.17 0.67x20"}
                    for pod in (POD_A, POD_B)
                ),
                {"series": f"realtor_live_window_age_seconds{POD_A}", "values": healthy_age},
                {"series": f"realtor_live_window_read_errors_total{POD_A}", "values": "0x30"},
            ],
            "alert_rule_test": [
                alerts_at("6m", "LiveDriftDetected"),  # pending: drifted for 3 minutes
                alerts_at(
                    "10m",
                    "LiveDriftDetected",
                    {"exp_labels": {"severity": "warning"}, "exp_annotations": drift},
                ),
                alerts_at("10m", "LiveMonitorStale"),
            ],
        },
        {  # a stable window: nothing
            "interval": "1m",
            "input_series": [
                {"series": f"realtor_live_window_drifted{POD_A}", "values": "0x30"},
                {"series": f"realtor_live_drift_share{POD_A}", "values": "0.33x30"},
                {"series": f"realtor_live_window_age_seconds{POD_A}", "values": healthy_age},
                {"series": f"realtor_live_window_read_errors_total{POD_A}", "values": "0x30"},
            ],
            "alert_rule_test": [
                alerts_at("20m", "LiveDriftDetected"),
                alerts_at("20m", "LiveMonitorStale"),
            ],
        },
        {  # the window grows old: 10,000 s at first, a minute more each minute
            "interval": "1m",
            "input_series": [
                {"series": f"realtor_live_window_drifted{POD_A}", "values": "0x40"},
                {"series": f"realtor_live_window_age_seconds{POD_A}", "values": "10000+60x40"},
                {"series": f"realtor_live_window_read_errors_total{POD_A}", "values": "0x40"},
            ],
            "alert_rule_test": [
                alerts_at("20m", "LiveMonitorStale"),  # over 3 h since 14m: pending
                alerts_at(
                    "30m",
                    "LiveMonitorStale",
                    {
                        "exp_labels": {"severity": "warning", "cause": "old-window"},
                        "exp_annotations": annotations(
                            "LiveMonitorStale", "old-window", "3h 16m 40s"
                        ),
                    },
                ),
            ],
        },
        {  # serving up, no window ever: after 3 hours
            "interval": "1m",
            "input_series": [
                {"series": f"realtor_live_window_read_errors_total{POD_A}", "values": "0x240"},
            ],
            "alert_rule_test": [
                alerts_at("2h50m", "LiveMonitorStale"),
                alerts_at(
                    "3h10m",
                    "LiveMonitorStale",
                    {
                        "exp_labels": {"severity": "warning", "cause": "no-window"},
                        "exp_annotations": annotations("LiveMonitorStale", "no-window", ""),
                    },
                ),
            ],
        },
        {  # serving down (nothing scraped): no monitor alert (the scrape's own alerts say it)
            "interval": "1m",
            "input_series": [{"series": 'up{job="serving", pod="serving-a"}', "values": "0x240"}],
            "alert_rule_test": [alerts_at("4h", "LiveMonitorStale")],
        },
    ]


def test_prometheus_fires_the_alerts_as_documented(tmp_path) -> None:
    promtool = require("promtool")
    tests = tmp_path / "live-drift.test.yaml"
    tests.write_text(
        yaml.safe_dump(
            {
                "rule_files": [str(COMPOSE_RULES)],
                "evaluation_interval": "1m",
                "tests": scenarios(),
            },
            sort_keys=False,
        )
    )
    done = subprocess.run(
        [promtool, "test", "rules", str(tests)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
