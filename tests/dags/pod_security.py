"""The Pod Security Standards "restricted" profile (Kubernetes v1.33), written out as checks.

https://kubernetes.io/docs/concepts/security/pod-security-standards/ - baseline controls plus
the restricted ones. ``restricted_violations`` takes a pod as the API's JSON (camelCase) and
returns what breaks the profile, one line each; an empty list means the pod is admitted.
"""

from __future__ import annotations

from typing import Any

ALLOWED_VOLUME_SOURCES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
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
ALLOWED_SECCOMP = {"RuntimeDefault", "Localhost"}
ALLOWED_SELINUX_TYPES = {
    None,
    "",
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
}


def _containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    kinds = ("initContainers", "containers", "ephemeralContainers")
    return [container for kind in kinds for container in spec.get(kind) or []]


def restricted_violations(pod: dict[str, Any]) -> list[str]:
    spec = pod["spec"]
    psc = spec.get("securityContext") or {}
    problems: list[str] = []
    # baseline: host namespaces, hostPath, privileged, host ports, /proc, sysctls, SELinux
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            problems.append(f"spec.{field} is true")
    if (psc.get("windowsOptions") or {}).get("hostProcess"):
        problems.append("pod securityContext.windowsOptions.hostProcess is true")
    for sysctl in psc.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            problems.append(f"unsafe sysctl {sysctl.get('name')}")
    if (psc.get("seLinuxOptions") or {}).get("type") not in ALLOWED_SELINUX_TYPES:
        problems.append("pod SELinux type not allowed")
    # restricted: volume types
    for volume in spec.get("volumes") or []:
        sources = set(volume) - {"name"}
        if not sources <= ALLOWED_VOLUME_SOURCES:
            problems.append(
                f"volume {volume.get('name')}: {sorted(sources - ALLOWED_VOLUME_SOURCES)}"
            )
    pod_non_root = psc.get("runAsNonRoot") is True
    pod_seccomp = (psc.get("seccompProfile") or {}).get("type")
    if pod_seccomp is not None and pod_seccomp not in ALLOWED_SECCOMP:
        problems.append(f"pod seccompProfile {pod_seccomp}")
    if psc.get("runAsUser") == 0:
        problems.append("pod runAsUser is 0")
    for container in _containers(spec):
        name = container.get("name")
        sc = container.get("securityContext") or {}
        if sc.get("privileged"):
            problems.append(f"{name}: privileged")
        if (sc.get("windowsOptions") or {}).get("hostProcess"):
            problems.append(f"{name}: hostProcess")
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                problems.append(f"{name}: hostPort {port['hostPort']}")
        if sc.get("procMount") not in (None, "Default"):
            problems.append(f"{name}: procMount {sc['procMount']}")
        if (sc.get("seLinuxOptions") or {}).get("type") not in ALLOWED_SELINUX_TYPES:
            problems.append(f"{name}: SELinux type not allowed")
        apparmor = (sc.get("appArmorProfile") or {}).get("type")
        if apparmor not in (None, "RuntimeDefault", "Localhost"):
            problems.append(f"{name}: appArmorProfile {apparmor}")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation is not false")
        if not (
            sc.get("runAsNonRoot") is True or (pod_non_root and sc.get("runAsNonRoot") is None)
        ):
            problems.append(f"{name}: runAsNonRoot is not true")
        if sc.get("runAsUser") == 0:
            problems.append(f"{name}: runAsUser is 0")
        seccomp = (sc.get("seccompProfile") or {}).get("type") or pod_seccomp
        if seccomp not in ALLOWED_SECCOMP:
            problems.append(f"{name}: seccompProfile {seccomp} (RuntimeDefault or Localhost)")
        capabilities = sc.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            problems.append(f"{name}: capabilities do not drop ALL")
        added = set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}
        if added:
            problems.append(f"{name}: adds capabilities {sorted(added)}")
    return problems
