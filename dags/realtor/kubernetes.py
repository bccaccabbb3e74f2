"""The ``kubernetes`` runtime: one pod per task, restricted, pinned, sized, and cleaned up.

Each task runs its dedicated image ``<registry>/<image>:<commit sha>`` whose ENTRYPOINT is
``python -m tasks.<name>``, so the operator passes only arguments (tasks sharing another
task's image also get the command). The environment comes from the ConfigMap ``pipeline-env``
and the Secret ``pipeline-secrets``. The pod meets the Pod Security Standards "restricted"
profile, the XCom sidecar included: non-root fixed uid, seccomp RuntimeDefault, no privilege
escalation, every capability dropped, read-only root filesystem (an emptyDir on /tmp for
scratch files; HOME and MPLCONFIGDIR point there). Succeeded pods are deleted, failed ones
kept for inspection (``on_finish_action="delete_succeeded_pod"``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.providers.cncf.kubernetes.utils.xcom_sidecar import PodDefaults
from kubernetes.client import models as k8s

from realtor.config import PipelineConfig
from realtor.specs import TaskSpec

RUN_AS_USER = 10001  # the uid the task images create (images/*/Dockerfile: USER 10001)
RUN_AS_GROUP = 10001
SIDECAR_RESOURCES = {
    "requests": {"cpu": "5m", "memory": "16Mi"},
    "limits": {"cpu": "50m", "memory": "32Mi"},
}
SCRATCH_VOLUME = "tmp"


def pod_security_context() -> k8s.V1PodSecurityContext:
    return k8s.V1PodSecurityContext(
        run_as_non_root=True,
        run_as_user=RUN_AS_USER,
        run_as_group=RUN_AS_GROUP,
        fs_group=RUN_AS_GROUP,
        seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
    )


def container_security_context() -> k8s.V1SecurityContext:
    """Restricted for every container: the task's and the XCom sidecar's."""
    return k8s.V1SecurityContext(
        run_as_non_root=True,
        run_as_user=RUN_AS_USER,
        run_as_group=RUN_AS_GROUP,
        allow_privilege_escalation=False,
        privileged=False,
        read_only_root_filesystem=True,
        capabilities=k8s.V1Capabilities(drop=["ALL"]),
        seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
    )


class PipelinePodOperator(KubernetesPodOperator):
    """A KubernetesPodOperator whose XCom sidecar is sized in the pod itself.

    The provider takes the sidecar's resources only from the Kubernetes connection's extras
    (``xcom_sidecar_container_resources``) and sets no limits by default; a namespace with a
    ResourceQuota refuses containers without limits, so the pod carries them itself.
    """

    def build_pod_request_obj(self, context: Any = None, *, dry_run: bool = False) -> k8s.V1Pod:
        pod = super().build_pod_request_obj(context, dry_run=dry_run)
        for container in pod.spec.containers:
            if container.name == PodDefaults.SIDECAR_CONTAINER_NAME and not (
                container.resources and container.resources.limits
            ):
                container.resources = k8s.V1ResourceRequirements(**SIDECAR_RESOURCES)
        return pod


def pod_operator(
    spec: TaskSpec,
    config: PipelineConfig,
    arguments: Sequence[str],
    env_vars: Mapping[str, str],
    **kwargs: Any,
) -> KubernetesPodOperator:
    """The pod that runs ``spec``'s command line with ``arguments``."""
    env = {"HOME": "/tmp", "MPLCONFIGDIR": "/tmp/matplotlib", **env_vars}  # noqa: S108 - emptyDir
    return PipelinePodOperator(
        task_id=kwargs.pop("task_id", spec.name),
        name=f"realtor-{spec.name.replace('_', '-')}",
        namespace=config.namespace,
        image=config.image(spec.image),
        image_pull_policy="IfNotPresent",
        cmds=None if spec.image_has_entrypoint else ["python", "-m", spec.module],
        arguments=list(arguments),
        env_vars=env,
        env_from=[
            k8s.V1EnvFromSource(config_map_ref=k8s.V1ConfigMapEnvSource(name=config.env_configmap)),
            k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name=config.env_secret)),
        ],
        container_resources=k8s.V1ResourceRequirements(**spec.resources.as_k8s()),
        service_account_name=config.service_account,
        automount_service_account_token=False,  # the tasks never call the Kubernetes API
        security_context=pod_security_context(),
        container_security_context=container_security_context(),
        xcom_sidecar_container_security_context=container_security_context(),
        volumes=[
            k8s.V1Volume(
                name=SCRATCH_VOLUME, empty_dir=k8s.V1EmptyDirVolumeSource(size_limit="1Gi")
            )
        ],
        volume_mounts=[k8s.V1VolumeMount(name=SCRATCH_VOLUME, mount_path="/tmp")],  # noqa: S108
        labels={"app.kubernetes.io/part-of": "realtor-mlops", "realtor/task": spec.name},
        do_xcom_push=True,
        on_finish_action="delete_succeeded_pod",
        get_logs=True,
        log_events_on_failure=True,
        startup_timeout_seconds=300,  # a first pull of the train image takes a while
        active_deadline_seconds=int(spec.timeout.total_seconds()) + 120,
        **kwargs,
    )
