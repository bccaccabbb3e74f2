# One Dockerfile for every pipeline step image (the images of dags/realtor/specs.py's TASKS).
# Each image's folder, images/<image>/, holds its own locked requirements.txt, so an
# image carries only what its task imports. Build from the repository root:
#   docker build -f images/task.Dockerfile --build-arg IMAGE=train --build-arg TASK=train \
#     -t docker.io/realtor-mlops/train:<commit-sha> .
# The ENTRYPOINT is the task's command line, so the KubernetesPodOperator passes only arguments.
FROM python:3.11-slim-bookworm

ARG IMAGE
ARG TASK

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LOG_FORMAT=json \
    HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib \
    TASK_MODULE=tasks.${TASK}

WORKDIR /app
COPY images/${IMAGE}/requirements.txt /tmp/requirements.txt
RUN pip install --no-deps -r /tmp/requirements.txt && rm /tmp/requirements.txt

COPY pyproject.toml README.md LICENSE /app/
COPY tasks/ /app/tasks/
# The entrypoint is a file of this repository (not written by a RUN), so what the image runs can
# be read and run without building it (make cluster-run).
COPY --chmod=0755 images/task-entrypoint.sh /usr/local/bin/task
RUN pip install --no-deps /app \
    && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin task

# The pod runs with a read-only root filesystem: only /tmp (an emptyDir) is writable.
USER 10001
ENTRYPOINT ["/usr/local/bin/task"]
