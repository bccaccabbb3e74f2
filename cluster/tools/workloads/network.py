"""Service DNS names mapped to local ports, and a container's own ports moved to free ones.

A name is reachable as the cluster resolves it from a pod of namespace NS:
`svc.ns.svc.cluster.local`, `svc.ns.svc`, `svc.ns`, and `svc` alone from the same namespace
(compose: the service name). `host:port` in an env value, an argument or a mounted file becomes
`127.0.0.1:<local port>`. A container listening on port P (containerPort) listens on a free
local port L instead: `--port P`, `--port=P`, and an env value P whose name ends in PORT are
rewritten, and `0.0.0.0` becomes `127.0.0.1` (nothing here listens beyond this machine).
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, field


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Network:
    # (namespace, service) -> {service port: local port}
    services: dict[tuple[str, str], dict[int, int]] = field(default_factory=dict)

    def add(self, namespace: str, service: str, port: int, local: int) -> None:
        self.services.setdefault((namespace, service), {})[int(port)] = int(local)

    def names(self, namespace: str) -> dict[str, dict[int, int]]:
        """Every host name a pod of ``namespace`` may use -> its ports."""
        out: dict[str, dict[int, int]] = {}
        for (ns, svc), ports in self.services.items():
            for host in (f"{svc}.{ns}.svc.cluster.local", f"{svc}.{ns}.svc", f"{svc}.{ns}"):
                out[host] = ports
            if ns == namespace:
                out.setdefault(svc, ports)
        return out

    def rewrite(self, text: str, namespace: str) -> str:
        """`host:port` of every known service -> `127.0.0.1:<local>`; a host without a port
        in a URL is left alone (none of ours is used so)."""
        names = self.names(namespace)
        if not names:
            return text
        hosts = "|".join(re.escape(h) for h in sorted(names, key=len, reverse=True))
        pattern = re.compile(rf"(?<![\w.-])({hosts}):(\d+)(?![\w.-]*\.)")

        def one(match: re.Match[str]) -> str:
            ports = names[match.group(1)]
            port = int(match.group(2))
            if port not in ports:
                return match.group(0)
            return f"127.0.0.1:{ports[port]}"

        return pattern.sub(one, text)


def move_ports(words: list[str], env: dict[str, str], ports: dict[int, int]) -> None:
    """Rewrite, in place, where a container says which port to listen on (see module doc)."""
    for i, word in enumerate(words):
        for port, local in ports.items():
            if word == f"--port={port}":
                words[i] = f"--port={local}"
            elif word == str(port) and i > 0 and words[i - 1] == "--port":
                words[i] = str(local)
        if word == "0.0.0.0":  # noqa: S104 - replaced by 127.0.0.1
            words[i] = "127.0.0.1"
        elif word.startswith("--host=0.0.0.0"):
            words[i] = "--host=127.0.0.1"
    for key, value in list(env.items()):
        if key.upper().endswith("PORT") and value.isdigit() and int(value) in ports:
            env[key] = str(ports[int(value)])
        elif value == "0.0.0.0":  # noqa: S104 - replaced by 127.0.0.1
            env[key] = "127.0.0.1"
