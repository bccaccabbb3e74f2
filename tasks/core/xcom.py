"""The XCom contract: a task's small JSON result in one file.

The KubernetesPodOperator's sidecar reads ``/airflow/xcom/return.json``; the local runtime
points ``XCOM_RETURN_PATH`` at a file of its own and reads the same JSON. Data never travels
this way: only keys, counts, hashes and decisions.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_result(path: Path, result: dict[str, Any]) -> None:
    """Write ``result`` atomically (temporary file and rename) so a reader never sees half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(result, sort_keys=True, default=str))
    os.replace(tmp, path)


def read_result(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())
