"""The Airflow Assets the DAGs share: one definition each, imported by producer and consumer.

``LIVE_DRIFT``: a window of live traffic drifted (``realtor_monitor`` emits an event);
``realtor_pipeline`` runs on that event as well as on its cron, so new data is fetched now
rather than at the next scheduled run.
"""

from __future__ import annotations

from airflow.sdk import Asset

LIVE_DRIFT = Asset("realtor://live-drift")
