"""NetworkPolicy semantics (networking.k8s.io/v1), as a pure evaluator for the network check.

A pod selected by any policy of a type (Ingress, Egress) is isolated for that direction; a
connection is allowed when the source's egress allows it (not isolated, or a rule of any
policy selecting it matches the destination and port) and the destination's ingress allows
it likewise. A rule with no peers matches every peer, with no ports every port; a peer with
a namespaceSelector and a podSelector matches pods selected by both; an ipBlock matches only
addresses outside the cluster here (pod addresses are the implementation's business). Named
ports resolve on the destination pod.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Endpoint:
    """A pod (namespace, labels, named container ports) or an address outside the cluster."""

    what: str
    namespace: str = ""
    labels: dict = field(default_factory=dict, hash=False, compare=False)
    ports: dict = field(default_factory=dict, hash=False, compare=False)  # name -> number
    address: str = ""  # outside the cluster when set


def selects(selector: dict | None, labels: dict) -> bool:
    """A LabelSelector: matchLabels and matchExpressions; {} selects everything."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def policy_types(spec: dict) -> list[str]:
    if spec.get("policyTypes"):
        return list(spec["policyTypes"])
    return ["Ingress", "Egress"] if "egress" in spec else ["Ingress"]


def _peer_matches(peer: dict, policy_ns: str, other: Endpoint, ns_labels: dict[str, dict]) -> bool:
    if "ipBlock" in peer:
        if not other.address:
            return False
        block = peer["ipBlock"]
        address = ipaddress.ip_address(other.address)
        if address not in ipaddress.ip_network(block["cidr"], strict=False):
            return False
        return not any(
            address in ipaddress.ip_network(e, strict=False) for e in block.get("except") or []
        )
    if other.address:
        return False
    if "namespaceSelector" in peer:
        labels = ns_labels.get(other.namespace, {"kubernetes.io/metadata.name": other.namespace})
        if not selects(peer["namespaceSelector"], labels):
            return False
    elif other.namespace != policy_ns:
        return False
    return "podSelector" not in peer or selects(peer["podSelector"], other.labels)


def _port_matches(rule_ports: list[dict] | None, port: int, destination: Endpoint) -> bool:
    if not rule_ports:
        return True
    for item in rule_ports:
        if item.get("protocol", "TCP") != "TCP":
            continue
        want = item.get("port")
        if want is None:
            return True
        if isinstance(want, str) and not want.isdigit():
            want = destination.ports.get(want)
            if want is None:
                continue
        if int(want) <= port <= int(item.get("endPort") or want):
            return True
    return False


def _allowed_by(
    policies: list[dict],
    pod: Endpoint,
    other: Endpoint,
    port: int,
    direction: str,
    destination: Endpoint,
    ns_labels: dict[str, dict],
) -> tuple[bool, list[str]]:
    """(allowed, names of the policies isolating `pod` in that direction)."""
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    selecting = [
        p
        for p in policies
        if p["metadata"].get("namespace") == pod.namespace
        and selects(p["spec"].get("podSelector"), pod.labels)
        and direction in policy_types(p["spec"])
    ]
    if not selecting:
        return True, []
    for policy in selecting:
        for rule in policy["spec"].get(key) or []:
            peers = rule.get(peers_key)
            if (
                not peers
                or any(_peer_matches(peer, pod.namespace, other, ns_labels) for peer in peers)
            ) and _port_matches(rule.get("ports"), port, destination):
                return True, []
    return False, [p["metadata"]["name"] for p in selecting]


def blocked(
    policies: list[dict],
    source: Endpoint,
    destination: Endpoint,
    port: int,
    ns_labels: dict[str, dict],
) -> str | None:
    """Why the policies block source -> destination:port over TCP, or None when allowed."""
    if not source.address:
        ok, names = _allowed_by(
            policies, source, destination, port, "Egress", destination, ns_labels
        )
        if not ok:
            return f"the egress of {source.namespace} (policies {', '.join(sorted(names))})"
    if not destination.address:
        ok, names = _allowed_by(
            policies, destination, source, port, "Ingress", destination, ns_labels
        )
        if not ok:
            return f"the ingress of {destination.namespace} (policies {', '.join(sorted(names))})"
    return None
