#!/usr/bin/env bash
# The ceiling of the netns bench's UDP load on this machine: the same iperf3 run (64-byte datagrams, -b 0, 4 MB
# socket buffers) between two namespaces joined by one plain veth, with no overlay and no agent at all. Whatever a
# dataplane does, the bench's UDP figure cannot pass this. Run as root: `sudo benches/netns/ceiling.sh`.
# Environment: DURATION (seconds per run, 5), REPEAT (runs, 3).
set -euo pipefail
DURATION=${DURATION:-5}
REPEAT=${REPEAT:-3}
for tool in ip iperf3 jq; do
    command -v "$tool" >/dev/null || { echo "$tool missing: apt-get install -y iproute2 iperf3 jq" >&2; exit 1; }
done
A=twc$$a B=twc$$b SERVER=""
cleanup() {
    [[ -n $SERVER ]] && kill "$SERVER" 2>/dev/null
    ip netns del "$A" 2>/dev/null || true
    ip netns del "$B" 2>/dev/null || true
}
trap cleanup EXIT
ip netns add "$A"
ip netns add "$B"
ip -n "$A" link add eth0 type veth peer name eth0 netns "$B"
for ns in "$A" "$B"; do
    ip -n "$ns" link set lo up
    ip -n "$ns" link set eth0 mtu 1450 up
done
ip -n "$A" addr add 10.244.1.2/24 dev eth0
ip -n "$B" addr add 10.244.1.3/24 dev eth0
ip netns exec "$B" iperf3 -s -p 5201 >/dev/null 2>&1 &
SERVER=$!
sleep 0.5
for r in $(seq "$REPEAT"); do
    ip netns exec "$A" iperf3 -c 10.244.1.3 -p 5201 -u -l 64 -b 0 -w 4M -t "$DURATION" -J |
        jq -r --arg r "$r" '"run \($r): UDP 64 B pps received \((.end.sum.packets - .end.sum.lost_packets) / .end.sum.seconds | floor), loss \(.end.sum.lost_percent | floor) %"'
    sleep 1
done
