"""Prometheus metrics of the service, in a registry of its own (one per app).

The names the Grafana dashboard (``cluster/apps/monitoring/dashboards/realtor-serving.json``)
queries: ``realtor_predictions_total``, ``realtor_prediction_latency_seconds`` (histogram) and
``realtor_model_version_info{version}``. The rest describe requests per endpoint and status,
the model's lifecycle, the predicted prices and the inference log.
"""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
)  # fmt: skip
PRICE_BUCKETS = (
    25e3, 50e3, 100e3, 150e3, 200e3, 250e3, 300e3, 400e3, 500e3, 750e3, 1e6, 1.5e6, 2e6, 3e6,
    5e6, 10e6,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)

CONTENT_TYPE = CONTENT_TYPE_LATEST


class ServingMetrics:
    """Every metric the service exports; ``render()`` is the body of GET /metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "realtor_http_requests_total",
            "HTTP requests by endpoint, method and status code",
            ["endpoint", "method", "status"],
            registry=r,
        )
        self.request_latency = Histogram(
            "realtor_http_request_duration_seconds",
            "HTTP request latency by endpoint, method and status code",
            ["endpoint", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.predictions = Counter(
            "realtor_predictions_total",
            "Rows predicted (one per record; a batch of 10 counts 10)",
            ["model_version"],
            registry=r,
        )
        self.prediction_latency = Histogram(
            "realtor_prediction_latency_seconds",
            "Time a successful /predict took in the service, queueing included",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.predicted_price = Histogram(
            "realtor_predicted_price_dollars",
            "Predicted prices, in dollars",
            buckets=PRICE_BUCKETS,
            registry=r,
        )
        self.micro_batch_rows = Histogram(
            "realtor_micro_batch_rows",
            "Rows per predict call of the micro-batcher (concurrent requests combined)",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.explanations = Counter(
            "realtor_explanations_total", "Explanations served", ["model_version"], registry=r
        )
        self.input_warnings = Counter(
            "realtor_input_warnings_total",
            "Out-of-distribution warnings given with /predict and /explain answers",
            ["feature", "kind"],
            registry=r,
        )
        self.model_version_info = Gauge(
            "realtor_model_version_info",
            "1 for the model version being served",
            ["model_name", "version", "alias", "run_id"],
            registry=r,
        )
        self.model_loaded = Gauge(
            "realtor_model_loaded", "1 once a model is loaded and served", registry=r
        )
        self.fast_path_enabled = Gauge(
            "realtor_fast_path_enabled",
            "1 if the served version uses the compiled fast path, 0 if its own predict",
            registry=r,
        )
        self.reloads = Counter(
            "realtor_model_reloads_total", "Model versions loaded and swapped in", registry=r
        )
        self.reload_failures = Counter(
            "realtor_model_reload_failures_total",
            "Model versions that failed to load (the previous one kept serving)",
            registry=r,
        )
        self.load_seconds = Histogram(
            "realtor_model_load_seconds",
            "Time from the decision to load a version to its swap",
            buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300),
            registry=r,
        )
        self.preparations = Counter(
            "realtor_model_preparations_total",
            "Versions prepared (loaded, compiled, checked), by where: worker or serving_process",
            ["where"],
            registry=r,
        )
        self.preparation_fallbacks = Counter(
            "realtor_model_preparation_fallbacks_total",
            "Versions prepared in the serving process because a worker could not (requests "
            "waited for that load)",
            registry=r,
        )
        self.preparation_worker_failures = Counter(
            "realtor_model_preparation_worker_failures_total",
            "Preparation workers that died or timed out (the previous version kept serving)",
            ["reason"],
            registry=r,
        )
        self.prepared_in_worker = Gauge(
            "realtor_model_prepared_in_worker",
            "1 if the served version was prepared off the request path, in a worker process",
            registry=r,
        )
        self.handover_seconds = Histogram(
            "realtor_model_handover_seconds",
            "What a worker-prepared version cost the serving process: map and unpickle",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=r,
        )
        self.preparation_cpu_seconds = Histogram(
            "realtor_model_preparation_cpu_seconds",
            "CPU the preparation worker spent on a version (download, compile, check, explainer)",
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
            registry=r,
        )
        self.registry_up = Gauge(
            "realtor_registry_up", "1 if the last poll of the model registry succeeded", registry=r
        )
        self.registry_poll_failures = Counter(
            "realtor_registry_poll_failures_total",
            "Polls of the model registry that failed",
            registry=r,
        )
        self.inference_logged = Counter(
            "realtor_inference_log_rows_written_total",
            "Predictions written to the ledger's inference_log table",
            registry=r,
        )
        self.inference_dropped = Counter(
            "realtor_inference_log_rows_dropped_total",
            "Predictions not logged: queue_full (writer behind) or db_error (ledger down)",
            ["reason"],
            registry=r,
        )
        self.inference_queue = Gauge(
            "realtor_inference_log_queue_rows",
            "Predictions waiting for the ledger writer",
            registry=r,
        )
        self.inference_exported = Counter(
            "realtor_inference_log_rows_exported_total",
            "Logged predictions exported to the lake (raw/inference/ Parquet)",
            registry=r,
        )
        self.inference_export_failures = Counter(
            "realtor_inference_export_failures_total", "Failed exports to the lake", registry=r
        )
        for reason in ("queue_full", "db_error"):
            self.inference_dropped.labels(reason)
        for where in ("worker", "serving_process"):
            self.preparations.labels(where)
        for reason in ("died", "timeout"):
            self.preparation_worker_failures.labels(reason)
        self._version_lock = threading.Lock()
        self._version_labels: tuple[str, str, str, str] | None = None

    def set_model(
        self, name: str, version: str, alias: str, run_id: str | None, fast: bool
    ) -> None:
        """The served version changed: one info series at 1, the former one removed."""
        labels = (name, version, alias, run_id or "")
        with self._version_lock:
            if self._version_labels is not None and self._version_labels != labels:
                self.model_version_info.remove(*self._version_labels)
            self.model_version_info.labels(*labels).set(1)
            self._version_labels = labels
        self.model_loaded.set(1)
        self.fast_path_enabled.set(1 if fast else 0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
