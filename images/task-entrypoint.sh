#!/bin/sh
# The ENTRYPOINT of every pipeline task image (images/task.Dockerfile sets TASK_MODULE from its
# TASK build argument): the task's command line, so the KubernetesPodOperator passes only args.
exec python -m "${TASK_MODULE:?TASK_MODULE is set by images/task.Dockerfile}" "$@"
