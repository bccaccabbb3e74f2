"""Airflow CLI commands, one after the other, in one Airflow process (``make demo``'s driver).

Runs with the Airflow environment (``.venv-airflow/bin/python scripts/airflow_runs.py``) and
reads one command a line on stdin, as the JSON list of its arguments, e.g.
``["dags", "test", "realtor_pipeline", "-c", "{\\"group_number\\": 1}"]``. Each command goes
through Airflow's own parser and entry point, as ``airflow <arguments>`` would (the same
function, the same arguments, the same logs on stdout), then the line
``[airflow_runs] exit <code>`` says how it ended: 0, the code of a ``SystemExit`` (``airflow
dags test`` exits with "DagRun failed" when the run failed), or 1 after the traceback of any
other exception. End of input ends the process.

Why: every ``airflow`` command pays Airflow's start-up again (interpreter, imports, the
configuration, parsing the DAG files and the provider they import, and for ``dags test`` the
in-process Execution API, a FastAPI app built on first use): about 8 s a run on 2 cores, over
a minute for the demo's eight runs. Here they are paid once. Nothing else changes: each
command is a ``dags test`` of its own, with its own DAG run, and the tasks still run as
processes of the local runtime.
"""

from __future__ import annotations

import json
import sys
import traceback

MARKER = "[airflow_runs] exit"


def run(arguments: list[str]) -> int:
    """``airflow <arguments>`` in this process; its exit code."""
    from airflow.cli import cli_parser

    try:
        args = cli_parser.get_parser().parse_args(arguments)
        args.func(args)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, flush=True)  # SystemExit("DagRun failed"): the CLI prints it and exits 1
        return 1
    except Exception:
        traceback.print_exc(file=sys.stdout)
        return 1
    return 0


def main() -> int:
    from airflow.configuration import write_default_airflow_configuration_if_needed

    write_default_airflow_configuration_if_needed()  # what ``airflow``'s main does first
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            arguments = json.loads(line)
        except json.JSONDecodeError:
            arguments = None
        if not isinstance(arguments, list) or not all(isinstance(a, str) for a in arguments):
            print(f"not a JSON list of strings: {line.strip()!r}\n{MARKER} 2", flush=True)
            continue
        code = run(arguments)
        sys.stderr.flush()
        print(f"{MARKER} {code}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
