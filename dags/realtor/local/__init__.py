"""The ``local`` runtime: a task's command line as a subprocess in the tasks' virtualenv.

Same contract as the pod: ``python -m tasks.<name> <arguments>`` with the Airflow process's
environment plus the task's own variables, the working directory at the repository root, and
the JSON result read from the file named by ``XCOM_RETURN_PATH`` (a temporary file here,
``/airflow/xcom/return.json`` in a pod). The subprocess's stdout and stderr go into the task
log line by line as they come. A non-zero exit fails the task with the last lines of stderr;
exit 2 (bad arguments) fails it without retries, since a retry would fail the same way.

With ``preload`` (``PIPELINE_LOCAL_PRELOAD``, on by default), the process is forked from a
launcher that imported the task's module and the libraries its runs import once
(``realtor/launcher.py``, one per task module, started on first use, ended with this process):
the same command line, environment, working directory, streams, exit code and peak RSS, without
the interpreter's start and the imports of every run (about 3 s of a validate, drift_check or
promote on 2 cores, more for train).

One module per job: :mod:`.environment` (the task's environment), :mod:`.process` (a fresh
interpreter per run), :mod:`.launcher_client` (runs forked by a launcher), :mod:`.pool` (the
launchers of this process) and :mod:`.operator` (the Airflow operator that runs a task).
"""

from realtor.local.environment import task_environment
from realtor.local.operator import EXIT_BAD_ARGUMENTS, STDERR_TAIL_LINES, LocalTaskOperator
from realtor.local.pool import close_launchers, launcher_for, start_launchers

__all__ = [
    "EXIT_BAD_ARGUMENTS",
    "STDERR_TAIL_LINES",
    "LocalTaskOperator",
    "close_launchers",
    "launcher_for",
    "start_launchers",
    "task_environment",
]
