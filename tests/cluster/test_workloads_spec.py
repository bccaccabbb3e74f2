"""cluster/tools/workloads: how a container's spec becomes a process here (pure parts)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "cluster" / "tools"))

from workloads import compose_spec, environment, network  # noqa: E402
from workloads.image import read_image, stage_files  # noqa: E402

SOURCES = environment.Sources(
    "apps",
    {("apps", "cm"): {"A": "from-cm", "B": "b"}},
    {
        ("apps", "sec"): {
            "PASSWORD": "p4ss",
            "URL": "postgresql://u@db.data.svc.cluster.local:5432/x",
        }
    },
)


def test_env_follows_kubernetes_order_refs_and_expansion():
    container = {
        "envFrom": [
            {"configMapRef": {"name": "cm"}},
            {"secretRef": {"name": "sec"}, "prefix": "S_"},
        ],
        "env": [
            {"name": "A", "value": "from-env"},
            {"name": "P", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "PASSWORD"}}},
            {"name": "Q", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "B"}}},
            {"name": "R", "value": "x-$(P)-$(UNKNOWN)-$$(P)"},
            {
                "name": "O",
                "valueFrom": {"secretKeyRef": {"name": "gone", "key": "k", "optional": True}},
            },
        ],
    }
    env = environment.container_env(container, {"HOME": "/tmp", "A": "image"}, SOURCES)
    assert env["A"] == "from-env" and env["HOME"] == "/tmp"
    assert env["S_PASSWORD"] == "p4ss" and env["P"] == "p4ss" and env["Q"] == "b"
    assert env["R"] == "x-p4ss-$(UNKNOWN)-$(P)"
    assert "O" not in env


def test_a_missing_secret_key_is_what_the_kubelet_refuses():
    container = {
        "env": [{"name": "P", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "nope"}}}]
    }
    with pytest.raises(environment.EnvError, match="CreateContainerConfigError"):
        environment.container_env(container, {}, SOURCES)


@pytest.mark.parametrize(
    ("container", "expected"),
    [
        ({}, ["ep", "cmd"]),
        ({"args": ["a"]}, ["ep", "a"]),
        ({"command": ["c"]}, ["c"]),  # command drops CMD
        ({"command": ["c"], "args": ["$(X)"]}, ["c", "1"]),
        ({"command": [], "args": ["a"]}, ["ep", "a"]),  # an empty command is no command
    ],
)
def test_command_and_args_replace_entrypoint_and_cmd(container, expected):
    assert environment.argv(container, ["ep"], ["cmd"], {"X": "1"}) == expected


def test_service_names_map_to_local_ports_from_their_namespace():
    net = network.Network()
    net.add("data", "realtor-pg-rw", 5432, 40001)
    text = "postgresql://u:p@realtor-pg-rw.data.svc.cluster.local:5432/x realtor-pg-rw:5432 realtor-pg-rw.data:5433"
    assert net.rewrite(text, "apps") == (
        "postgresql://u:p@127.0.0.1:40001/x realtor-pg-rw:5432 realtor-pg-rw.data:5433"
    )
    assert net.rewrite("realtor-pg-rw:5432", "data") == "127.0.0.1:40001"


def test_a_task_image_is_read_from_its_dockerfile_with_the_workflows_build_args():
    spec = read_image(REPO / "images/task.Dockerfile", {"IMAGE": "train", "TASK": "train"})
    assert spec.entrypoint == ["/usr/local/bin/task"] and spec.cmd == []
    assert spec.workdir == "/app" and spec.user == "10001"
    assert spec.env["TASK_MODULE"] == "tasks.train" and spec.env["HOME"] == "/tmp"
    assert spec.lock == "images/train/requirements.txt"
    assert "/app/tasks/" in [c.dest for c in spec.copies]


def test_the_airflow_stages_keep_the_base_images_entrypoint_and_their_own_venvs():
    cluster = read_image(REPO / "images/airflow/Dockerfile", target="airflow")
    local = read_image(REPO / "images/airflow/Dockerfile", target="airflow-local")
    assert cluster.entrypoint == ["/usr/bin/dumb-init", "--", "/entrypoint"]
    assert cluster.workdir == "/opt/airflow" and cluster.venvs == {}
    assert local.venvs == {"/opt/tasks": "images/airflow/requirements-tasks.txt"}


def test_an_image_that_forgets_a_folder_lacks_it_here(tmp_path: Path):
    text = (REPO / "images/ui/Dockerfile").read_text().replace("COPY ui/ /app/ui/\n", "")
    forgetful = tmp_path / "Dockerfile"
    forgetful.write_text(text)
    whole, partial = tmp_path / "whole", tmp_path / "partial"
    stage_files(read_image(REPO / "images/ui/Dockerfile"), whole)
    stage_files(read_image(forgetful), partial)
    assert (whole / "app/ui/app.py").is_file()
    assert not (partial / "app/ui").exists()


def test_a_copy_of_a_path_that_is_not_in_the_repository_fails(tmp_path: Path):
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM python:3.11-slim\nCOPY no-such-folder/ /app/x/\n")
    with pytest.raises(FileNotFoundError, match="no-such-folder"):
        stage_files(read_image(dockerfile), tmp_path / "root")


def test_compose_interpolation_and_commands():
    env = {"SET": "v", "EMPTY": ""}
    assert (
        compose_spec.interpolate("${SET} ${EMPTY:-d} ${EMPTY-d} ${NONE:-x} $$HOME", env)
        == "v d  x $HOME"
    )
    with pytest.raises(compose_spec.ComposeError, match="set it"):
        compose_spec.interpolate("${NONE:?set it}", env)
    container, _, binds = compose_spec.container(
        "s",
        {
            "command": "server --port 1",
            "environment": {"A": 1},
            "healthcheck": {"test": ["CMD-SHELL", "true"]},
            "ports": ["5000:5000"],
            "volumes": ["./dags:/opt/dags:ro", "data:/data"],
        },
    )
    assert container["args"] == ["server", "--port", "1"] and "command" not in container
    assert container["x-healthcheck"]["exec"]["command"] == ["/bin/sh", "-c", "true"]
    assert container["ports"][0]["containerPort"] == 5000
    assert binds == {"/opt/dags": "./dags"}
