"""Pod Security admission (the Pod Security Standards, latest), written out as checks.

https://kubernetes.io/docs/concepts/security/pod-security-standards/: the baseline controls,
then the restricted ones. :func:`psa_violations` takes a pod spec as the API's JSON (camelCase),
its annotations and a level (privileged, baseline, restricted) and returns what the API server
would refuse, one line each; an empty list means the pod is admitted. Pure and standard-library
only: the cluster checks (``checks/psa.py``, on every rendered pod template) and the DAG tests (on
every pod the KubernetesPodOperator builds, in the Airflow environment) share it.
"""

from __future__ import annotations


def containers(spec: dict) -> list[dict]:
    return (
        list(spec.get("initContainers") or [])
        + list(spec.get("containers") or [])
        + list(spec.get("ephemeralContainers") or [])
    )


BASELINE_CAPS = {
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
LEVELS = {"privileged": 0, "baseline": 1, "restricted": 2}


def psa_violations(spec: dict, annotations: dict, level: str) -> list[str]:
    """Pod Security Standards (latest) violations of one pod spec at `level`."""
    if LEVELS[level] == 0:
        return []
    out = []
    psc = spec.get("securityContext") or {}
    cs = containers(spec)
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            out.append(f"baseline: {field}=true")
    for c in cs:
        sc = c.get("securityContext") or {}
        name = c.get("name")
        if sc.get("privileged"):
            out.append(f"baseline: container {name} privileged")
        added = set((sc.get("capabilities") or {}).get("add") or [])
        if added - BASELINE_CAPS:
            out.append(
                f"baseline: container {name} adds capabilities {sorted(added - BASELINE_CAPS)}"
            )
        for port in c.get("ports") or []:
            if port.get("hostPort"):
                out.append(f"baseline: container {name} hostPort {port['hostPort']}")
        if (sc.get("procMount") or "Default") != "Default":
            out.append(f"baseline: container {name} procMount {sc['procMount']}")
        if (sc.get("windowsOptions") or {}).get("hostProcess"):
            out.append(f"baseline: container {name} hostProcess")
    for ctx, where in [(psc, "pod")] + [
        (c.get("securityContext") or {}, c.get("name")) for c in cs
    ]:
        if (ctx.get("seccompProfile") or {}).get("type") == "Unconfined":
            out.append(f"baseline: {where} seccompProfile Unconfined")
        if (ctx.get("appArmorProfile") or {}).get("type") == "Unconfined":
            out.append(f"baseline: {where} appArmorProfile Unconfined")
        se = ctx.get("seLinuxOptions") or {}
        if se.get("type", "") not in SELINUX_TYPES or se.get("user") or se.get("role"):
            out.append(f"baseline: {where} seLinuxOptions {se}")
    if (psc.get("windowsOptions") or {}).get("hostProcess"):
        out.append("baseline: pod hostProcess")
    for key, value in annotations.items():
        if key.startswith("container.apparmor.security.beta.kubernetes.io/") and not (
            value == "runtime/default" or value.startswith("localhost/")
        ):
            out.append(f"baseline: AppArmor annotation {key}={value}")
    for sysctl in psc.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            out.append(f"baseline: unsafe sysctl {sysctl.get('name')}")
    for vol in spec.get("volumes") or []:
        if "hostPath" in vol:
            out.append(f"baseline: hostPath volume {vol.get('name')}")
    if level == "baseline":
        return out
    for vol in spec.get("volumes") or []:
        kinds = set(vol) - {"name"}
        if kinds - RESTRICTED_VOLUMES and "hostPath" not in kinds:
            out.append(f"restricted: volume {vol.get('name')} of type {sorted(kinds)}")
    pod_nonroot = psc.get("runAsNonRoot") is True
    pod_seccomp = (psc.get("seccompProfile") or {}).get("type")
    if psc.get("runAsUser") == 0:
        out.append("restricted: pod runAsUser=0")
    if pod_seccomp not in (None, "RuntimeDefault", "Localhost"):
        out.append(f"restricted: pod seccompProfile {pod_seccomp}")
    for c in cs:
        sc = c.get("securityContext") or {}
        name = c.get("name")
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"restricted: container {name} must set allowPrivilegeEscalation=false")
        if not (
            sc.get("runAsNonRoot") is True or (pod_nonroot and sc.get("runAsNonRoot") is not False)
        ):
            out.append(f"restricted: container {name} must run with runAsNonRoot=true")
        if sc.get("runAsUser") == 0:
            out.append(f"restricted: container {name} runAsUser=0")
        seccomp = (sc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost") and not (
            seccomp is None and pod_seccomp in ("RuntimeDefault", "Localhost")
        ):
            out.append(f"restricted: container {name} needs seccompProfile RuntimeDefault")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            out.append(f"restricted: container {name} must drop ALL capabilities")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            out.append(f"restricted: container {name} may add only NET_BIND_SERVICE")
    return out
