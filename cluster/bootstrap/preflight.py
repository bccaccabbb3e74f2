#!/usr/bin/env python3
"""Refuse a K3s install whose pod or service network would swallow the LAN.

K3s defaults to the pod network 10.42.0.0/16 and the service network 10.43.0.0/16.
On a LAN such as 10.43.100.0/24 (the reference host is 10.43.100.94) the service
network contains the node itself and its gateway: kube-proxy then captures traffic
meant for the LAN and the node drops off the network. This program compares the
networks K3s will use with every node address, the default gateway and every local
route, says which address collides with which range, and proposes free ranges.

Stdlib only and Python 3.9 compatible (Rocky Linux 9 ships /usr/bin/python3 = 3.9).

Usage (what install-k3s.sh runs):
    preflight.py --cluster-cidr 10.44.0.0/16 --service-cidr 10.45.0.0/16 \
        --cluster-dns 10.45.0.10 --node-ip 10.43.100.94 [--node-ip ...] \
        [--lb-range 10.43.100.95-10.43.100.99] \
        [--routes-json FILE] [--addrs-json FILE]
Without --routes-json/--addrs-json it runs `ip -json route show` and
`ip -json addr show` itself. Exit status: 0 clear, 1 collision, 2 bad input.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# Routes K3s itself creates on a node where it already runs (flannel, CNI bridge,
# kube-proxy IPVS dummy, pod veths): they live inside our own cluster CIDR on purpose.
K3S_DEVICES = ("cni0", "flannel.1", "flannel-v6.1", "flannel-wg", "flannel-wg-v6", "kube-ipvs0")
K3S_DEVICE_PREFIXES = ("veth",)

# Private ranges searched for free /16 proposals, in order of preference.
PRIVATE_SUPERNETS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")

IPv4Network = ipaddress.IPv4Network


@dataclass(frozen=True)
class Item:
    """Something already on the LAN or on the host: an address or a network."""

    kind: str  # "node IP", "default gateway", "route", "local address", "load-balancer range"
    network: IPv4Network
    detail: str = ""

    def label(self) -> str:
        text = (
            str(self.network.network_address) if self.network.prefixlen == 32 else str(self.network)
        )
        return "{} {}{}".format(self.kind, text, f" ({self.detail})" if self.detail else "")


@dataclass(frozen=True)
class Collision:
    item: Item
    range_name: str
    cidr: IPv4Network

    def message(self) -> str:
        return f"{self.item.label()} overlaps the {self.range_name} {self.cidr}"


def as_network(text: str) -> IPv4Network:
    """Parse an address or a CIDR ("10.0.0.1" -> 10.0.0.1/32); host bits are dropped."""
    return ipaddress.ip_network(text.strip(), strict=False)  # type: ignore[return-value]


def is_k3s_device(dev: str) -> bool:
    return dev in K3S_DEVICES or dev.startswith(K3S_DEVICE_PREFIXES)


def parse_routes(routes: Sequence[dict]) -> list[Item]:
    """Items from `ip -json route show` output: each destination and each gateway.

    The default route's destination (0.0.0.0/0) is skipped - it overlaps everything by
    definition - but its gateway is kept. IPv6, loopback, link-local and K3s' own
    devices are ignored.
    """
    items: list[Item] = []
    for route in routes:
        dev = str(route.get("dev", ""))
        if is_k3s_device(dev):
            continue
        dst = str(route.get("dst", ""))
        gateway = route.get("gateway")
        if dst and dst != "default" and ":" not in dst:
            try:
                net = as_network(dst)
            except ValueError:
                net = None
            if net is not None and not (net.is_loopback or net.is_link_local or net.is_multicast):
                items.append(Item("route", net, f"dev {dev}" if dev else ""))
        if gateway and ":" not in str(gateway):
            kind = "default gateway" if dst == "default" else "gateway"
            items.append(Item(kind, as_network(str(gateway)), f"dev {dev}" if dev else ""))
    return items


def parse_addrs(interfaces: Sequence[dict]) -> list[Item]:
    """Items from `ip -json addr show` output: every IPv4 address with its subnet."""
    items: list[Item] = []
    for iface in interfaces:
        name = str(iface.get("ifname", ""))
        if is_k3s_device(name):
            continue
        for info in iface.get("addr_info", []):
            if info.get("family") != "inet":
                continue
            address = ipaddress.ip_address(info["local"])
            if address.is_loopback or address.is_link_local:
                continue
            subnet = ipaddress.ip_network("{}/{}".format(address, info.get("prefixlen", 32)), False)
            items.append(Item("local address", as_network(str(address)), name))
            if subnet.prefixlen < 32:
                items.append(Item("local subnet", subnet, name))  # type: ignore[arg-type]
    return items


def parse_lb_range(text: str) -> list[IPv4Network]:
    """ "10.43.100.95-10.43.100.99" or a CIDR -> the networks it covers."""
    if "-" in text:
        first, last = (ipaddress.ip_address(part.strip()) for part in text.split("-", 1))
        return list(ipaddress.summarize_address_range(first, last))  # type: ignore[arg-type]
    return [as_network(text)]


def find_collisions(ranges: dict[str, IPv4Network], items: Iterable[Item]) -> list[Collision]:
    """Every (item, range) pair that overlaps, in input order."""
    found: list[Collision] = []
    for item in items:
        for name, cidr in ranges.items():
            if item.network.overlaps(cidr):
                found.append(Collision(item, name, cidr))
    return found


def check_ranges(
    cluster_cidr: IPv4Network,
    service_cidr: IPv4Network,
    cluster_dns: ipaddress.IPv4Address | None,
) -> list[str]:
    """Consistency of the K3s settings among themselves."""
    problems: list[str] = []
    if cluster_cidr.overlaps(service_cidr):
        problems.append(f"the cluster CIDR {cluster_cidr} overlaps the service CIDR {service_cidr}")
    if cluster_dns is not None and cluster_dns not in service_cidr:
        problems.append(f"the cluster DNS {cluster_dns} is outside the service CIDR {service_cidr}")
    return problems


def propose_free(
    used: Iterable[IPv4Network], count: int = 2, prefixlen: int = 16
) -> list[IPv4Network]:
    """The first `count` private /prefixlen networks that overlap nothing in `used`."""
    taken = [net for net in used if net.prefixlen > 0]
    free: list[IPv4Network] = []
    for supernet in PRIVATE_SUPERNETS:
        for candidate in as_network(supernet).subnets(new_prefix=prefixlen):
            if any(candidate.overlaps(net) for net in taken + free):
                continue
            free.append(candidate)  # type: ignore[arg-type]
            if len(free) == count:
                return free
    return free


def run_preflight(
    cluster_cidr: str,
    service_cidr: str,
    cluster_dns: str | None,
    node_ips: Sequence[str],
    routes: Sequence[dict],
    addrs: Sequence[dict],
    lb_range: str | None = None,
) -> tuple[bool, list[str]]:
    """Pure check: (ok, report lines)."""
    cluster = as_network(cluster_cidr)
    service = as_network(service_cidr)
    dns = ipaddress.ip_address(cluster_dns) if cluster_dns else None
    problems = check_ranges(cluster, service, dns)  # type: ignore[arg-type]

    items = [Item("node IP", as_network(ip)) for ip in node_ips]
    items += parse_routes(routes)
    items += parse_addrs(addrs)
    if lb_range:
        pool = parse_lb_range(lb_range)
        items += [Item("load-balancer range", net, lb_range) for net in pool]
        problems += [
            f"node IP {ip} is inside the load-balancer range {lb_range}"
            for ip in node_ips
            if any(as_network(ip).overlaps(net) for net in pool)
        ]
    ranges = {"cluster (pod) CIDR": cluster, "service CIDR": service}
    collisions = find_collisions(ranges, items)
    problems += [c.message() for c in collisions]

    n_routes = sum(1 for i in items if i.kind in ("route", "gateway", "default gateway"))
    n_local = sum(1 for i in items if i.kind in ("local address", "local subnet"))
    lines = [
        f"preflight: cluster CIDR {cluster}, service CIDR {service}, cluster DNS {dns or '-'}",
        f"preflight: checked {len(node_ips)} node IP(s), {n_routes} route(s)/gateway(s), "
        f"{n_local} local address item(s)",
    ]
    if not problems:
        lines.append("preflight: OK - no overlap between the K3s networks and this host or LAN")
        return True, lines
    lines += [f"preflight: COLLISION: {p}" for p in problems]
    used = [i.network for i in items]
    free = propose_free(used, count=2)
    if len(free) == 2:
        dns_free = free[1].network_address + 10
        lines.append(
            f"preflight: free ranges, for example: cluster CIDR {free[0]}, service CIDR {free[1]}, cluster DNS {dns_free}"
        )
        lines.append(
            "preflight: set CLUSTER_CIDR, SERVICE_CIDR and CLUSTER_DNS in "
            "cluster/bootstrap/versions.env (the same on every node) and run again"
        )
    return False, lines


def _load_json(path: str | None, command: list[str]) -> list[dict]:
    if path is None:
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    elif path == "-":
        out = sys.stdin.read()
    else:
        with open(path, encoding="utf-8") as handle:
            out = handle.read()
    data = json.loads(out or "[]")
    if not isinstance(data, list):
        raise ValueError("expected a JSON list from %s" % (path or " ".join(command)))
    return data


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cluster-cidr", required=True)
    parser.add_argument("--service-cidr", required=True)
    parser.add_argument("--cluster-dns")
    parser.add_argument("--node-ip", action="append", default=[], help="repeat for each node")
    parser.add_argument("--lb-range", help="MetalLB pool, e.g. 10.43.100.95-10.43.100.99")
    parser.add_argument("--routes-json", help="file with `ip -json route show` output, - = stdin")
    parser.add_argument("--addrs-json", help="file with `ip -json addr show` output")
    args = parser.parse_args(argv)
    try:
        routes = _load_json(args.routes_json, ["ip", "-json", "route", "show"])
        addrs = _load_json(args.addrs_json, ["ip", "-json", "addr", "show"])
        ok, lines = run_preflight(
            args.cluster_cidr,
            args.service_cidr,
            args.cluster_dns,
            args.node_ip,
            routes,
            addrs,
            args.lb_range,
        )
    except (ValueError, OSError, subprocess.CalledProcessError, KeyError) as exc:
        print(f"preflight: cannot check: {exc}", file=sys.stderr)
        return 2
    stream = sys.stdout if ok else sys.stderr
    for line in lines:
        print(line, file=stream)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
