"""One function turns a task of the table into an operator for the configured runtime.

``pipeline_task("validate", ["--batch-id", BATCH_ID])`` gives a ``KubernetesPodOperator``
when ``PIPELINE_RUNTIME=kubernetes`` and a :class:`~realtor.local.LocalTaskOperator` when
``PIPELINE_RUNTIME=local``: the same command line, the same environment contract, the same
XCom (the task's JSON result as ``return_value``). The provider is imported only when the
kubernetes runtime is chosen, so parsing stays fast and needs no cluster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from realtor.config import PipelineConfig, load_config
from realtor.specs import spec_for

#: the batch id that fetch returned, for the ``--batch-id`` of every later task
BATCH_ID = "{{ ti.xcom_pull(task_ids='fetch')['batch_id'] }}"


def task_doc(name: str, extra: str = "") -> str:
    spec = spec_for(name)
    return (
        f"### `{spec.module}`\n\n{spec.summary}\n\n"
        f"Command line: `python -m {spec.module} --help` (the result is this task's XCom "
        f"`return_value`). Code: `tasks/{spec.name}/step.py`. Timeout: {spec.timeout}. "
        'To add a step like this one: docs/pipeline.md, "Add a step".\n\n'
        f"{extra}"
    ).strip()


def pipeline_task(
    name: str,
    arguments: Sequence[str] = (),
    *,
    env_vars: Mapping[str, str] | None = None,
    config: PipelineConfig | None = None,
    **kwargs: Any,
) -> Any:
    """The operator running ``python -m tasks.<name> <arguments>`` on the configured runtime.

    ``arguments`` are Jinja-templated (e.g. :data:`BATCH_ID`). Extra keyword arguments go to
    the operator (``task_id``, ``trigger_rule``, ``doc_md``...); the task's timeout comes from
    its :class:`~realtor.specs.TaskSpec` unless ``execution_timeout`` is given.
    """
    config = config or load_config()
    spec = spec_for(name)
    kwargs.setdefault("task_id", spec.name)
    kwargs.setdefault("execution_timeout", spec.timeout)
    kwargs.setdefault("doc_md", task_doc(name))
    env = dict(env_vars or {})
    if config.runtime == "kubernetes":
        from realtor.kubernetes import pod_operator

        return pod_operator(spec, config, arguments, env, **kwargs)
    from realtor.local import LocalTaskOperator

    return LocalTaskOperator(
        module=spec.module,
        arguments=arguments,
        env_vars=env,
        python=config.tasks_python,
        cwd=config.repo_root,
        preload=config.local_preload,
        shared_launchers=config.local_launchers,
        **kwargs,
    )
