#!/usr/bin/env bats
# install-k3s.sh in dry-run mode for the three topologies, with stubbed commands.

load helpers

setup() { setup_stubs; }

config_of() { # the config.yaml lines the dry run would write
  printf '%s\n' "$output" | sed -n '/would write .*config.yaml/,/^\[dry-run\] would \(run\|write .*cluster-token\)/p' | sed -n 's/^    | //p'
}

@test "single-node: server config with our CIDRs, no cluster-init, no join" {
  run "${BOOT}/install-k3s.sh" --topology "${BOOT}/topologies/single-node.conf" --node node-1
  [ "$status" -eq 0 ]
  cfg="$(config_of)"
  [[ "$cfg" == *"node-name: node-1"* ]]
  [[ "$cfg" == *"node-ip: 10.43.100.94"* ]]
  [[ "$cfg" == *"cluster-cidr: 10.44.0.0/16"* ]]
  [[ "$cfg" == *"service-cidr: 10.45.0.0/16"* ]]
  [[ "$cfg" == *"cluster-dns: 10.45.0.10"* ]]
  [[ "$cfg" == *'write-kubeconfig-mode: "0644"'* ]]
  [[ "$cfg" == *"  - traefik"* && "$cfg" == *"  - servicelb"* ]]
  [[ "$cfg" != *"cluster-init"* && "$cfg" != *"server: https"* && "$cfg" != *"token"* ]]
  [[ "$output" == *"preflight: OK"* ]]
  [[ "$output" == *"would run: env INSTALL_K3S_VERSION=v1.35.4+k3s1 INSTALL_K3S_EXEC=server sh"* ]]
  [[ "$output" == *"would run: curl -sfL --retry 3 -o ${ROOT}/var/tmp/k3s-install.sh https://get.k3s.io"* ]]
  assert_nothing_changed
}

@test "two-node: server then agent joining it with the token file" {
  token_file
  run "${BOOT}/install-k3s.sh" --topology "${BOOT}/topologies/two-node.conf" --node node-1
  [ "$status" -eq 0 ]
  server="$(config_of)"
  [[ "$server" == *"cluster-cidr: 10.44.0.0/16"* ]]
  [[ "$server" != *"cluster-init"* && "$server" != *"server: https"* ]]
  [[ "$server" == *"token-file: /etc/rancher/k3s/cluster-token"* ]]
  run "${BOOT}/install-k3s.sh" --topology "${BOOT}/topologies/two-node.conf" --node node-2
  [ "$status" -eq 0 ]
  agent="$(config_of)"
  [[ "$agent" == *"node-name: node-2"* && "$agent" == *"node-ip: 10.43.100.92"* ]]
  [[ "$agent" == *"server: https://10.43.100.94:6443"* ]]
  [[ "$agent" == *"token-file: /etc/rancher/k3s/cluster-token"* ]]
  [[ "$agent" != *"cluster-cidr"* ]]  # agents take the networks from the server
  [[ "$output" == *"INSTALL_K3S_EXEC=agent"* ]]
  [[ "$output" != *"test-token-0123456789abcdef"* ]]  # the token is never printed
  [[ "$output" == *"<token, 27 characters, not shown>"* ]]
  assert_nothing_changed
}

@test "three-node: first server cluster-init, the others join it, same CIDRs everywhere" {
  token_file
  run "${BOOT}/install-k3s.sh" --topology "${BOOT}/topologies/three-node.conf" --node node-1
  [ "$status" -eq 0 ]
  first="$(config_of)"
  [[ "$first" == *"cluster-init: true"* && "$first" != *"server: https"* ]]
  for node in node-2 node-3; do
    run "${BOOT}/install-k3s.sh" --topology "${BOOT}/topologies/three-node.conf" --node "$node"
    [ "$status" -eq 0 ]
    other="$(config_of)"
    [[ "$other" == *"server: https://10.43.100.94:6443"* ]]
    [[ "$other" != *"cluster-init"* ]]
    [[ "$other" == *"INSTALL_K3S_EXEC"* || "$output" == *"INSTALL_K3S_EXEC=server"* ]]
    for line in "cluster-cidr: 10.44.0.0/16" "service-cidr: 10.45.0.0/16" "cluster-dns: 10.45.0.10"; do
      [[ "$other" == *"$line"* && "$first" == *"$line"* ]]
    done
  done
  assert_nothing_changed
}

@test "multi-node topologies refuse to run without a join token" {
  run "${BOOT}/install-k3s.sh" --topology "${BOOT}/topologies/three-node.conf" --node node-2
  [ "$status" -ne 0 ]
  [[ "$output" == *"K3S_TOKEN_FILE"* ]]
  assert_nothing_changed
}

@test "preflight refuses K3s' default service CIDR on the 10.43.100.94 host" {
  sed -e 's#^CLUSTER_CIDR=.*#CLUSTER_CIDR="10.42.0.0/16"#' -e 's#^SERVICE_CIDR=.*#SERVICE_CIDR="10.43.0.0/16"#' \
    -e 's#^CLUSTER_DNS=.*#CLUSTER_DNS="10.43.0.10"#' "${BOOT}/versions.env" >"${BATS_TEST_TMPDIR}/defaults.env"
  CLUSTER_ENV="${BATS_TEST_TMPDIR}/defaults.env" run "${BOOT}/install-k3s.sh" \
    --topology "${BOOT}/topologies/single-node.conf" --node node-1
  [ "$status" -ne 0 ]
  [[ "$output" == *"node IP 10.43.100.94 overlaps the service CIDR 10.43.0.0/16"* ]]
  [[ "$output" == *"refusing to install K3s"* ]]
  [[ "$output" == *"free ranges"* ]]
  [[ "$output" != *"config.yaml (mode"* ]]
  assert_nothing_changed
}

@test "unknown node, bad role and even server counts are rejected" {
  run "${BOOT}/install-k3s.sh" --topology "${BOOT}/topologies/single-node.conf" --node node-9
  [ "$status" -ne 0 ]
  [[ "$output" == *"not in"* ]]
  printf 'a 10.43.100.94 server\nb 10.43.100.92 server\n' >"${BATS_TEST_TMPDIR}/even.conf"
  run "${BOOT}/install-k3s.sh" --topology "${BATS_TEST_TMPDIR}/even.conf" --node a
  [ "$status" -ne 0 ]
  [[ "$output" == *"odd number"* ]]
  printf 'a 10.43.100.94 master\n' >"${BATS_TEST_TMPDIR}/role.conf"
  run "${BOOT}/install-k3s.sh" --topology "${BATS_TEST_TMPDIR}/role.conf" --node a
  [ "$status" -ne 0 ]
  [[ "$output" == *"must be server or agent"* ]]
  assert_nothing_changed
}
