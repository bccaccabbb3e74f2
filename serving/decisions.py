"""The service's decisions as pure functions: load a version or not, ready or not, fast or not.

They take plain values (versions, the registry's status, the last failure, the clock) and
return plain values, so every branch is unit-tested without a registry or a model; the I/O
that feeds them lives in :mod:`serving.watcher` and :mod:`serving.loader`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

from serving.state import FastPathStatus, LoadFailure, RegistryStatus

#: Largest relative difference between the fast path and the model's own predict on the
#: warm-up rows for the fast path to be trusted (the fast path's own tests hold it to 1e-9).
PARITY_TOLERANCE = 1e-6


@dataclass(frozen=True)
class LoadDecision:
    """``load`` the version, ``keep`` what is served, or ``wait`` (nothing to serve yet)."""

    action: Literal["load", "keep", "wait"]
    version: str | None
    reason: str


def decide_load(
    served: str | None,
    target: str | None,
    alias: str,
    *,
    last_failure: LoadFailure | None,
    now: dt.datetime,
    retry_after_seconds: float,
    force: bool = False,
) -> LoadDecision:
    """What to do after a successful poll that found ``target`` behind the alias.

    ``served`` is the version in memory (None before the first load). A version that failed
    to load is not tried again before ``retry_after_seconds`` unless ``force`` (the admin
    reload); ``force`` also reloads the version already served.
    """
    if target is None:
        if served is None:
            return LoadDecision("wait", None, f"no version carries the alias {alias!r} yet")
        return LoadDecision(
            "keep", served, f"the alias {alias!r} is gone from the registry; keeping v{served}"
        )
    if target == served and not force:
        return LoadDecision("keep", served, f"v{served} is already served")
    if last_failure is not None and last_failure.version == target and not force:
        retry_at = last_failure.at + dt.timedelta(seconds=retry_after_seconds)
        if now < retry_at:
            what = f"keeping v{served}" if served else "nothing to serve"
            return LoadDecision(
                "keep" if served else "wait",
                served,
                f"v{target} failed to load at {last_failure.at.isoformat()} "
                f"({last_failure.error}); retry after {retry_at.isoformat()}, {what}",
            )
    if target == served:
        return LoadDecision("load", target, f"v{target} reloaded on request")
    if served is None:
        return LoadDecision("load", target, f"first model: v{target} carries {alias!r}")
    return LoadDecision("load", target, f"the alias {alias!r} moved from v{served} to v{target}")


def fast_path_status(
    compile_error: str | None,
    parity_max_relative_diff: float | None,
    explain_error: str | None,
    tolerance: float = PARITY_TOLERANCE,
) -> FastPathStatus:
    """Whether the compiled fast path may serve a version.

    It may when it compiled and agreed with the model's own predict on the warm-up rows;
    otherwise the version is served by its own predict (slower, same prices) and the reason
    is shown in /model, /ready, a metric and the log.
    """
    if compile_error is not None:
        enabled, reason = False, f"the fast path refused the pipeline: {compile_error}"
    elif parity_max_relative_diff is None:
        enabled, reason = False, "the fast path was not checked against the model's own predict"
    elif not parity_max_relative_diff <= tolerance:
        enabled, reason = (
            False,
            f"the fast path disagrees with the model's own predict on the warm-up rows "
            f"(relative difference {parity_max_relative_diff:.3g} > {tolerance:g})",
        )
    else:
        enabled, reason = True, None
    explain_reason = None
    if explain_error is not None:
        explain_reason = f"no explainer for this version: {explain_error}"
    elif not enabled:
        explain_reason = "explanations need the fast path, which is off for this version"
    return FastPathStatus(
        enabled=enabled,
        reason=reason,
        explain_enabled=enabled and explain_error is None,
        explain_reason=explain_reason,
    )


@dataclass(frozen=True)
class Readiness:
    """The answer of /ready: HTTP status and body."""

    status_code: int
    body: dict[str, Any]


def readiness(
    served: dict[str, Any] | None,
    registry: RegistryStatus,
    alias: str,
    *,
    loading: str | None,
    last_failure: LoadFailure | None,
) -> Readiness:
    """Ready (200) as soon as a model is loaded, whatever the registry's health; else 503.

    ``served`` is a short summary of the loaded model (name, version, fast_path) or None.
    The body always says what is wrong (``problems``) so a person or a probe can tell a
    degraded service (registry down, a newer version failing to load) from a healthy one.
    """
    problems: list[str] = []
    version = served["version"] if served else None
    if registry.reachable is False:
        since = registry.last_success_at.isoformat() if registry.last_success_at else "start"
        keeping = f"serving the last good model v{version}" if version else "no model to serve"
        problems.append(
            f"registry unreachable ({registry.consecutive_failures} failed polls, last success: "
            f"{since}): {registry.last_error}; {keeping}"
        )
    elif registry.reachable is True and registry.alias_version is None:
        problems.append(f"no version carries the alias {alias!r} in the registry")
    if loading is not None:
        problems.append(f"loading v{loading} in the background")
    if last_failure is not None and last_failure.version != version:
        problems.append(f"v{last_failure.version} failed to load: {last_failure.error}")
    if (
        version is not None
        and registry.alias_version is not None
        and registry.alias_version != version
        and loading is None
    ):
        problems.append(f"the alias {alias!r} is on v{registry.alias_version}; v{version} served")
    if served and not served["fast_path"]["enabled"]:
        problems.append(f"slow path: {served['fast_path']['reason']}")
    if served is None:
        status, code = "not_ready", 503
        if loading is None and registry.reachable is None:
            problems.append("the first poll of the registry has not finished yet")
    else:
        status, code = ("degraded" if problems else "ready"), 200
    return Readiness(
        code,
        {
            "ready": served is not None,
            "status": status,
            "model": served,
            "alias": alias,
            "registry": registry.as_dict(),
            "loading": loading,
            "problems": problems,
        },
    )


def no_model_message(alias: str, name: str, registry: RegistryStatus, loading: str | None) -> str:
    """Why /predict and /explain answer 503 before the first model, and what to do."""
    if loading is not None:
        return f"no model loaded yet: v{loading} of {name!r} is loading; retry in a few seconds"
    if registry.reachable is False:
        return (
            f"no model loaded yet: the model registry is unreachable ({registry.last_error}); "
            "check MLFLOW_TRACKING_URI and the MLflow server"
        )
    return (
        f"no model loaded yet: no version of {name!r} carries the alias {alias!r}; "
        "train and promote one (python -m tasks.train / tasks.promote), then retry"
    )
