#!/usr/bin/env bash
# The README's two-node world for `tweed agent`, in network namespaces (needs root):
#   world.sh up     node namespaces tweed-node1/2 joined by a veth underlay (ul1 192.168.0.1, ul2 192.168.0.2),
#                   and four empty pod namespaces tweed-pod11, -12, -21, -22 (the agents create their eth0)
#   world.sh pods   gives each pod's eth0 its address (10.244.N.M/24) and a default route via 10.244.N.1, once the
#                   agents have created it (waits up to 5 s)
#   world.sh down   deletes everything (namespaces take their links with them)
set -euo pipefail
nodes=(tweed-node1 tweed-node2)
pods=(tweed-pod11 tweed-pod12 tweed-pod21 tweed-pod22)

case "${1:-}" in
up)
  for ns in "${nodes[@]}" "${pods[@]}"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
  done
  ip link add ul1 netns tweed-node1 type veth peer name ul2 netns tweed-node2
  ip -n tweed-node1 addr add 192.168.0.1/24 dev ul1
  ip -n tweed-node2 addr add 192.168.0.2/24 dev ul2
  ip -n tweed-node1 link set ul1 up
  ip -n tweed-node2 link set ul2 up
  ;;
pods)
  for ns in "${pods[@]}"; do
    n=${ns: -2:1} m=${ns: -1}
    for _ in $(seq 50); do ip -n "$ns" link show eth0 >/dev/null 2>&1 && break; sleep 0.1; done
    ip -n "$ns" addr add "10.244.$n.$((m + 1))/24" dev eth0
    ip -n "$ns" route add default via "10.244.$n.1"
  done
  ;;
down)
  for ns in "${nodes[@]}" "${pods[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  ;;
*)
  echo "usage: $0 up|pods|down" >&2
  exit 2
  ;;
esac
