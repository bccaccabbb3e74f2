"""The CIDR preflight: pure functions and the command line, over many address layouts."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys

import pytest
from cluster_helpers import BOOTSTRAP, load_preflight

pf = load_preflight()

OURS = {"cluster_cidr": "10.44.0.0/16", "service_cidr": "10.45.0.0/16", "cluster_dns": "10.45.0.10"}
K3S_DEFAULTS = {
    "cluster_cidr": "10.42.0.0/16",
    "service_cidr": "10.43.0.0/16",
    "cluster_dns": "10.43.0.10",
}
POOL = "10.43.100.95-10.43.100.99"


def lan(ip: str, prefix: int = 24, gateway: str = "10.43.100.1", dev: str = "ens192"):
    """`ip -json route` and `ip -json addr` for a host with one NIC on a LAN."""
    net = ipaddress.ip_network(f"{ip}/{prefix}", strict=False)
    routes = [
        {"dst": "default", "gateway": gateway, "dev": dev, "protocol": "static", "flags": []},
        {"dst": str(net), "dev": dev, "protocol": "kernel", "scope": "link", "prefsrc": ip},
    ]
    addrs = [
        {"ifname": "lo", "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8}]},
        {
            "ifname": dev,
            "addr_info": [
                {"family": "inet", "local": ip, "prefixlen": prefix},
                {"family": "inet6", "local": "fe80::1", "prefixlen": 64},
            ],
        },
    ]
    return routes, addrs


def check(node_ips, routes, addrs, ranges=None, lb=None):
    r = ranges or OURS
    return pf.run_preflight(
        r["cluster_cidr"], r["service_cidr"], r["cluster_dns"], node_ips, routes, addrs, lb
    )


# --- the reference host ---------------------------------------------------------------


def test_reference_host_collides_with_k3s_default_service_cidr():
    routes, addrs = lan("10.43.100.94")
    ok, lines = check(["10.43.100.94"], routes, addrs, K3S_DEFAULTS)
    text = "\n".join(lines)
    assert not ok
    assert "node IP 10.43.100.94 overlaps the service CIDR 10.43.0.0/16" in text
    assert "default gateway 10.43.100.1" in text
    assert "route 10.43.100.0/24" in text
    # the default pod network does not collide with this LAN
    assert "cluster (pod) CIDR 10.42.0.0/16" not in text
    assert "free ranges" in text


def test_reference_host_is_clear_with_our_ranges():
    routes, addrs = lan("10.43.100.94")
    ok, lines = check(["10.43.100.94"], routes, addrs, lb=POOL)
    assert ok, lines
    assert lines[-1].startswith("preflight: OK")


def test_proposed_ranges_are_free_and_would_pass():
    routes, addrs = lan("10.43.100.94")
    _ok, lines = check(["10.43.100.94"], routes, addrs, K3S_DEFAULTS)
    proposal = next(line for line in lines if "free ranges" in line)
    words = proposal.replace(",", "").split()
    cluster = words[words.index("cluster") + 2]
    service = words[words.index("service") + 2]
    dns = words[words.index("DNS") + 1]
    ok2, lines2 = check(
        ["10.43.100.94"],
        routes,
        addrs,
        {"cluster_cidr": cluster, "service_cidr": service, "cluster_dns": dns},
    )
    assert ok2, lines2


# --- two and three nodes ---------------------------------------------------------------


@pytest.mark.parametrize(
    "nodes",
    [
        ["10.43.100.94", "10.43.100.92"],  # two-node
        ["10.43.100.94", "10.43.100.92", "10.43.100.93"],  # three-node
    ],
    ids=["two-node", "three-node"],
)
def test_multi_node_layouts_pass_with_our_ranges(nodes):
    routes, addrs = lan(nodes[0])
    ok, lines = check(nodes, routes, addrs, lb=POOL)
    assert ok, lines
    assert f"checked {len(nodes)} node IP(s)" in lines[1]


@pytest.mark.parametrize(
    "nodes",
    [["10.43.100.94", "10.43.100.92"], ["10.43.100.94", "10.43.100.92", "10.43.100.93"]],
    ids=["two-node", "three-node"],
)
def test_multi_node_layouts_fail_with_defaults_naming_every_node(nodes):
    routes, addrs = lan(nodes[0])
    ok, lines = check(nodes, routes, addrs, K3S_DEFAULTS)
    assert not ok
    for ip in nodes:
        assert any(f"node IP {ip} overlaps the service CIDR" in line for line in lines)


def test_remote_node_on_other_subnet_colliding_with_pod_cidr():
    """A node whose address is only known from the topology (another subnet)."""
    routes, addrs = lan("192.168.10.5", gateway="192.168.10.1")
    ok, lines = check(["192.168.10.5", "10.44.3.7"], routes, addrs)
    assert not ok
    assert any("node IP 10.44.3.7 overlaps the cluster (pod) CIDR 10.44.0.0/16" in x for x in lines)


# --- other layouts -----------------------------------------------------------------------


def test_home_lan_192_168_passes_even_with_defaults():
    routes, addrs = lan("192.168.1.20", gateway="192.168.1.1")
    ok, _ = check(["192.168.1.20"], routes, addrs, K3S_DEFAULTS)
    assert ok


def test_wide_10_8_lan_collides_with_everything_in_10():
    routes, addrs = lan("10.1.2.3", prefix=8, gateway="10.0.0.1")
    ok, lines = check(["10.1.2.3"], routes, addrs)
    assert not ok
    text = "\n".join(lines)
    assert "local subnet 10.0.0.0/8" in text
    assert "route 10.0.0.0/8" in text
    proposal = next(line for line in lines if "free ranges" in line)
    assert "172.16.0.0/16" in proposal
    assert "172.17.0.0/16" in proposal


def test_only_gateway_collides():
    """Host on a /30 point-to-point link whose gateway sits inside the service range."""
    routes = [{"dst": "default", "gateway": "10.45.0.1", "dev": "eth0"}]
    addrs = [
        {
            "ifname": "eth0",
            "addr_info": [{"family": "inet", "local": "172.20.0.2", "prefixlen": 32}],
        }
    ]
    ok, lines = check(["172.20.0.2"], routes, addrs)
    assert not ok
    assert any("default gateway 10.45.0.1" in x and "service CIDR" in x for x in lines)


def test_static_route_to_vpn_collides():
    routes, addrs = lan("10.43.100.94")
    routes.append({"dst": "10.44.128.0/17", "gateway": "10.43.100.250", "dev": "ens192"})
    ok, lines = check(["10.43.100.94"], routes, addrs)
    assert not ok
    assert any("route 10.44.128.0/17" in x and "cluster (pod) CIDR" in x for x in lines)


def test_docker_bridge_route_is_reported():
    routes, addrs = lan("10.43.100.94")
    routes.append({"dst": "10.45.17.0/24", "dev": "docker0", "prefsrc": "10.45.17.1"})
    ok, lines = check(["10.43.100.94"], routes, addrs)
    assert not ok
    assert any("dev docker0" in x for x in lines)


def test_k3s_own_routes_are_ignored_on_rerun():
    """Re-running on a node where K3s already runs: flannel/cni routes are ours."""
    routes, addrs = lan("10.43.100.94")
    routes += [
        {"dst": "10.44.0.0/24", "dev": "cni0", "prefsrc": "10.44.0.1"},
        {"dst": "10.44.1.0/24", "gateway": "10.44.1.0", "dev": "flannel.1", "flags": ["onlink"]},
    ]
    addrs.append(
        {"ifname": "cni0", "addr_info": [{"family": "inet", "local": "10.44.0.1", "prefixlen": 24}]}
    )
    addrs.append(
        {
            "ifname": "flannel.1",
            "addr_info": [{"family": "inet", "local": "10.44.0.0", "prefixlen": 32}],
        }
    )
    ok, lines = check(["10.43.100.94"], routes, addrs)
    assert ok, lines


def test_link_local_loopback_and_ipv6_are_ignored():
    routes, addrs = lan("10.43.100.94")
    routes += [
        {"dst": "169.254.0.0/16", "dev": "ens192", "scope": "link"},
        {"dst": "fd00::/64", "dev": "ens192"},
    ]
    ok, lines = check(
        ["10.43.100.94"],
        routes,
        addrs,
        {
            "cluster_cidr": "169.254.0.0/16",
            "service_cidr": "10.45.0.0/16",
            "cluster_dns": "10.45.0.10",
        },
    )
    assert ok, lines


def test_cluster_and_service_ranges_must_not_overlap():
    routes, addrs = lan("192.168.1.20", gateway="192.168.1.1")
    ok, lines = check(
        ["192.168.1.20"],
        routes,
        addrs,
        {
            "cluster_cidr": "10.44.0.0/15",
            "service_cidr": "10.45.0.0/16",
            "cluster_dns": "10.45.0.10",
        },
    )
    assert not ok
    assert any("cluster CIDR 10.44.0.0/15 overlaps the service CIDR" in x for x in lines)


def test_cluster_dns_must_be_inside_service_cidr():
    routes, addrs = lan("10.43.100.94")
    ok, lines = check(
        ["10.43.100.94"],
        routes,
        addrs,
        {
            "cluster_cidr": "10.44.0.0/16",
            "service_cidr": "10.45.0.0/16",
            "cluster_dns": "10.43.0.10",
        },
    )
    assert not ok
    assert any("cluster DNS 10.43.0.10 is outside the service CIDR" in x for x in lines)


def test_node_inside_load_balancer_pool_is_refused():
    routes, addrs = lan("10.43.100.96")
    ok, lines = check(["10.43.100.96"], routes, addrs, lb=POOL)
    assert not ok
    assert any("inside the load-balancer range" in x for x in lines)


def test_load_balancer_pool_inside_service_cidr_is_refused():
    routes, addrs = lan("10.43.100.94")
    ok, lines = check(["10.43.100.94"], routes, addrs, K3S_DEFAULTS, lb=POOL)
    assert not ok
    assert any(x.count("load-balancer range") and "service CIDR" in x for x in lines)


# --- building blocks ---------------------------------------------------------------------


def test_parse_lb_range_summarizes():
    nets = pf.parse_lb_range(POOL)
    covered = {str(ip) for net in nets for ip in net}
    assert covered == {f"10.43.100.{i}" for i in range(95, 100)}


def test_propose_free_skips_used_and_is_disjoint():
    used = [ipaddress.ip_network("10.0.0.0/15"), ipaddress.ip_network("10.3.0.0/16")]
    free = pf.propose_free(used, count=3)
    assert [str(n) for n in free] == ["10.2.0.0/16", "10.4.0.0/16", "10.5.0.0/16"]


def test_propose_free_ignores_default_route():
    assert pf.propose_free([ipaddress.ip_network("0.0.0.0/0")], count=1)[0].prefixlen == 16


# --- command line --------------------------------------------------------------------------


def run_cli(tmp_path, node_ips, routes, addrs, *extra):
    rfile, afile = tmp_path / "routes.json", tmp_path / "addrs.json"
    rfile.write_text(json.dumps(routes))
    afile.write_text(json.dumps(addrs))
    cmd = [
        sys.executable,
        str(BOOTSTRAP / "preflight.py"),
        "--routes-json",
        str(rfile),
        "--addrs-json",
        str(afile),
        *extra,
    ]
    for ip in node_ips:
        cmd += ["--node-ip", ip]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def test_cli_refuses_default_ranges_on_reference_host(tmp_path):
    routes, addrs = lan("10.43.100.94")
    res = run_cli(
        tmp_path,
        ["10.43.100.94"],
        routes,
        addrs,
        "--cluster-cidr",
        "10.42.0.0/16",
        "--service-cidr",
        "10.43.0.0/16",
        "--cluster-dns",
        "10.43.0.10",
    )
    assert res.returncode == 1
    assert "node IP 10.43.100.94 overlaps the service CIDR 10.43.0.0/16" in res.stderr


def test_cli_accepts_our_ranges(tmp_path):
    routes, addrs = lan("10.43.100.94")
    res = run_cli(
        tmp_path,
        ["10.43.100.94", "10.43.100.92", "10.43.100.93"],
        routes,
        addrs,
        "--cluster-cidr",
        "10.44.0.0/16",
        "--service-cidr",
        "10.45.0.0/16",
        "--cluster-dns",
        "10.45.0.10",
        "--lb-range",
        POOL,
    )
    assert res.returncode == 0, res.stderr
    assert "OK" in res.stdout


def test_cli_bad_input_exits_2(tmp_path):
    routes, addrs = lan("10.43.100.94")
    res = run_cli(
        tmp_path,
        ["not-an-ip"],
        routes,
        addrs,
        "--cluster-cidr",
        "10.44.0.0/16",
        "--service-cidr",
        "10.45.0.0/16",
    )
    assert res.returncode == 2
    assert "cannot check" in res.stderr
