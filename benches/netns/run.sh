#!/usr/bin/env bash
# End-to-end benchmark of tweed against the kernel's flannel-vxlan dataplane (issue 6), run by hand as root.
#
# Two node namespaces joined by a veth underlay (192.168.0.1/.2, MTU 1500), one pod namespace per node
# (10.244.1.2 on node 1, 10.244.2.2 on node 2, pod MTU 1450 everywhere). For each variant it measures, from the
# pod on node 1 to the pod on node 2: iperf3 TCP (receiver's Gbit/s, 1 stream and -P 4) and iperf3 UDP with
# 64-byte payloads at full speed (-b 0: packets received per second, loss %, and datagrams per second that reached
# pod 2's UDP layer). See README.md.
#
#   sudo benches/netns/run.sh                    # all variants: a b c d e f g h
#   VARIANTS="a b c" DURATION=5 benches/netns/run.sh
#
# Environment: TWEED (the binary; default target/release/tweed), DURATION (seconds per iperf3 run, default 5),
# VARIANTS (default "a b c d e f g h"; f is skipped when the binary has no [underlay] gso/gro keys, g and h when it
# has no [agent] workers key), REPEAT (rounds over all variants, the table shows medians; default 1),
# PIN=1 (iperf3 on CPU 0, the agents on CPU 1), PERF=1 (perf record -g both agents during each run into the work directory), KEEP_LOGS=1 (keep the work directory with agent logs and iperf3 JSON).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
TWEED=${TWEED:-$root/target/release/tweed}
DURATION=${DURATION:-5}
VARIANTS=${VARIANTS:-a b c d e f g h}
# PIN=1: the iperf3 client and server on CPU 0, both agents on CPU 1 (then the agents' CPU is what limits).
PIN_PODS="" PIN_AGENT=""
if [[ ${PIN:-0} == 1 ]]; then PIN_PODS="taskset -c 0" PIN_AGENT="taskset -c 1"; fi
P="twb$$"                       # unique prefix of every namespace this run makes
N1="${P}n1" N2="${P}n2" POD1="${P}p1" POD2="${P}p2"
WORK=$(mktemp -d "/tmp/${P}.XXXX")
PIDS=()                         # processes this run started (agents, iperf3 servers)

die() { echo "run.sh: $*" >&2; exit 1; }

kill_pids() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    PIDS=()
}

del_namespaces() {
    local ns
    for ns in "$POD1" "$POD2" "$N1" "$N2"; do ip netns del "$ns" 2>/dev/null || true; done
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    kill_pids
    del_namespaces
    if [[ ${KEEP_LOGS:-0} == 1 ]]; then echo "logs kept in $WORK" >&2; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[[ $(id -u) == 0 ]] || die "needs root (network namespaces, TAP devices)"
for tool in ip iperf3 jq ping bridge python3 nstat; do
    command -v "$tool" >/dev/null || die "$tool missing: apt-get install -y iproute2 iperf3 jq iputils-ping"
done
[[ -x $TWEED ]] || die "no tweed binary at $TWEED: cargo build --release -p tweed-cli"
# A private copy: a rebuild during the run does not change what is measured.
BUILD="$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown) (binary of $(date -u -r "$TWEED" +%Y-%m-%dT%H:%MZ))"
cp "$TWEED" "$WORK/tweed"
TWEED=$WORK/tweed

# --- topology -------------------------------------------------------------------------------------------------

# Nodes and pods, the underlay veth (fixed MACs: host-gw peers name them), forwarding on.
make_world() {
    local ns
    for ns in "$N1" "$N2" "$POD1" "$POD2"; do
        ip netns add "$ns"
        ip -n "$ns" link set lo up
    done
    ip -n "$N1" link add ul type veth peer name ul netns "$N2"
    ip -n "$N1" link set ul address 02:c0:a8:00:00:01
    ip -n "$N2" link set ul address 02:c0:a8:00:00:02
    ip -n "$N1" addr add 192.168.0.1/24 dev ul
    ip -n "$N2" addr add 192.168.0.2/24 dev ul
    ip -n "$N1" link set ul up
    ip -n "$N2" link set ul up
    for ns in "$N1" "$N2"; do ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1; done
}

# The pod's address and default route, once its eth0 exists (a veth end, or the TAP the agent made).
pod_addr() { # ns n
    local ns=$1 n=$2
    for _ in $(seq 100); do ip -n "$ns" link show eth0 >/dev/null 2>&1 && break; sleep 0.05; done
    ip -n "$ns" link show eth0 >/dev/null 2>&1 || die "no eth0 in $ns"
    ip -n "$ns" addr add "10.244.$n.2/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" route add default via "10.244.$n.1"
}

# (a) exactly what flannel's vxlan backend sets up on node i with peer j (flannel's vxlan backend, `ip` commands below).
kernel_node() { # ns pod i j
    local ns=$1 pod=$2 i=$3 j=$4
    local ul_mtu
    ul_mtu=$(ip -n "$ns" -j link show ul | jq '.[0].mtu')
    ip -n "$ns" link add flannel.1 type vxlan id 1 dstport 8472 local "192.168.0.$i" dev ul nolearning
    ip -n "$ns" link set flannel.1 address "02:00:00:00:00:0$i" mtu $((ul_mtu - 50))
    ip -n "$ns" addr add "10.244.$i.0/32" dev flannel.1
    ip -n "$ns" link set flannel.1 up
    ip -n "$ns" link add cni0 type bridge
    ip -n "$ns" addr add "10.244.$i.1/24" dev cni0
    ip -n "$ns" link set cni0 up
    ip -n "$ns" link add vethpod type veth peer name eth0 netns "$pod"
    ip -n "$ns" link set vethpod mtu 1450 master cni0 up
    ip -n "$pod" link set eth0 mtu 1450
    ip -n "$ns" route add "10.244.$j.0/24" via "10.244.$j.0" dev flannel.1 onlink
    ip -n "$ns" neigh add "10.244.$j.0" lladdr "02:00:00:00:00:0$j" dev flannel.1 nud permanent
    ip netns exec "$ns" bridge fdb append "02:00:00:00:00:0$j" dev flannel.1 dst "192.168.0.$j"
}

# The agent's file for node i with peer j. $1: vxlan | vxlan-nobatch | vxlan-nogso | udp | host-gw, or
# vxlan-2w | udp-2w (two workers). The others run one worker: said explicitly to a binary that knows the key (its
# default is the number of cores), as ONE_WORKER holds it.
ONE_WORKER=""
agent_toml() { # kind pod i j
    local kind=$1 pod=$2 i=$3 j=$4 backend peer underlay agent=$ONE_WORKER
    case $kind in
        *-2w) agent=$'[agent]\nworkers = 2'; kind=${kind%-2w} ;;
    esac
    case $kind in
        vxlan | vxlan-nobatch | vxlan-nogso)
            backend="type = \"vxlan\"
vtep_mac = \"02:00:00:00:00:0$i\""
            peer="vtep_mac = \"02:00:00:00:00:0$j\"" ;;
        udp) backend='type = "udp"'; peer="" ;;
        host-gw) backend='type = "host-gw"'; peer="node_mac = \"02:c0:a8:00:00:0$j\"" ;;
    esac
    underlay="interface = \"ul\""
    [[ $kind == vxlan-nobatch ]] && underlay+=$'\nbatching = false'
    [[ $kind == vxlan-nogso ]] && underlay+=$'\ngso = false\ngro = false'
    cat <<EOF
$agent
[node]
pod_subnet = "10.244.$i.0/24"
[node.underlay]
node_ip = "192.168.0.$i"
[node.backend]
$backend
[[node.peers]]
subnet = "10.244.$j.0/24"
node_ip = "192.168.0.$j"
$peer
[underlay]
$underlay
[[pods]]
tap = "eth0"
netns = "$pod"
mtu = 1450
EOF
}

start_agent() { # kind ns pod i j
    local kind=$1 ns=$2 pod=$3 i=$4 j=$5
    agent_toml "$kind" "$pod" "$i" "$j" >"$WORK/$kind-$i.toml"
    $PIN_AGENT ip netns exec "$ns" "$TWEED" agent --config "$WORK/$kind-$i.toml" >"$WORK/$kind-$i.log" 2>&1 &
    PIDS+=($!)
    eval "AGENT$i=$!"
}

wait_ping() {
    for _ in $(seq 20); do
        ip netns exec "$POD1" ping -c 1 -W 1 -q 10.244.2.2 >/dev/null 2>&1 && return 0
        sleep 0.25
    done
    die "$1: no ping from 10.244.1.2 to 10.244.2.2"
}

# CPU seconds (user+system) of a process.
cpu_s() { awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
# Seconds a process spent runnable but waiting for a CPU (the run queue delay of each thread's schedstat, summed:
# an agent with several workers runs them on threads of their own).
wait_s() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $2 } END { printf "%.3f", s / 1e9 }'; }
now_s() { date +%s.%N; }

# --- measurements ---------------------------------------------------------------------------------------------

# The iperf3 server in pod 2, (re)started when it is not running.
start_server() {
    [[ -n ${SERVER:-} ]] && kill -0 "$SERVER" 2>/dev/null && return 0
    $PIN_PODS ip netns exec "$POD2" iperf3 -s -p 5201 >>"$WORK/iperf3-server.log" 2>&1 &
    SERVER=$!
    PIDS+=("$SERVER")
    sleep 0.3
}

# Pod 1's eth0 transmit counters: packets bytes dropped (what its stack handed to the veth or TAP).
pod1_tx() { ip -n "$POD1" -j -s link show eth0 | jq -r '.[0].stats64.tx | "\(.packets) \(.bytes) \(.dropped)"'; }
# UDP datagrams that reached pod 2's UDP layer: read by the iperf3 server, or dropped at its socket. Not eth0's
# packet counter: tweed writes a run of datagrams of one flow as one TAP frame (UDP segmentation offload), which
# the pod's kernel cuts again at the socket.
pod2_rx() { echo $(($(udp_counter "$POD2" UdpInDatagrams) + $(udp_counter "$POD2" UdpInErrors))); }
# Packets dropped at node 2's underlay sockets: the kernel's UDP receive-buffer drops, plus the drops of the
# agent's AF_PACKET socket (ss's skmem d), which no UDP counter sees.
node2_sock_drops() {
    local udp packet
    udp=$(udp_counter "$N2" UdpRcvbufErrors)
    packet=$(ip netns exec "$N2" ss -0ap -m 2>/dev/null | grep -o ',d[0-9]*)' | tr -dc '0-9\n' | awk '{ s += $1 } END { print s + 0 }')
    echo $((udp + packet))
}
# A UDP counter of a namespace (absolute: every namespace here is new).
udp_counter() { ip netns exec "$1" nstat -az "$2" | awk -v c="$2" '$1 == c { print $2 }'; }

SYSCALLS="raw_syscalls:sys_enter,syscalls:sys_enter_poll,syscalls:sys_enter_ppoll,syscalls:sys_enter_read"
SYSCALLS+=",syscalls:sys_enter_write,syscalls:sys_enter_readv,syscalls:sys_enter_writev"
SYSCALLS+=",syscalls:sys_enter_recvmmsg,syscalls:sys_enter_sendmmsg"
SYSCALLS+=",syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendto,syscalls:sys_enter_recvmsg,syscalls:sys_enter_sendmsg"
SYSCALLS+=",context-switches,task-clock"

# One iperf3 client run from pod 1 to pod 2, JSON into $WORK/$tag.json. Sets DELIVERED (UDP datagrams per second
# that reached pod 2's UDP layer, whether or not the iperf3 server kept up with them), FRAME (pod 1's mean transmitted
# frame in bytes: the kernel's GSO super-packets show here) and TAPDROP (frames pod 1's eth0 dropped). For tweed
# variants it also samples the agents' CPU use over the run (AGENT_CPU="a1% a2%") and, with PERF=1, records both
# agents with perf record -g and counts their system calls with perf stat (files $tag.perf.data, $tag.syscalls).
iperf_run() { # tag agents? iperf3-args...
    local tag=$1 agents=$2 t0 c0 t1 c1 q0 q1 x0 x1 r0 r1 pids=()
    shift 2
    if [[ $agents == yes && ${PERF:-0} == 1 ]]; then
        perf record -q -g -F 499 -p "$AGENT1,$AGENT2" -o "$WORK/$tag.perf.data" >/dev/null 2>&1 &
        pids+=($!)
        perf stat --per-thread -p "$AGENT1,$AGENT2" -e "$SYSCALLS" -o "$WORK/$tag.syscalls" >/dev/null 2>&1 &
        pids+=($!)
        sleep 0.3
    fi
    local attempt
    for attempt in 1 2 3; do
        start_server
        x0=$(pod1_tx); r0=$(pod2_rx)
        if [[ $agents == yes ]]; then
            t0=$(now_s); c0="$(cpu_s "$AGENT1") $(cpu_s "$AGENT2")"; q0="$(wait_s "$AGENT1") $(wait_s "$AGENT2")"
        fi
        if $PIN_PODS ip netns exec "$POD1" iperf3 -c 10.244.2.2 -p 5201 -t "$DURATION" -J "$@" >"$WORK/$tag.json" &&
            ! jq -e .error "$WORK/$tag.json" >/dev/null 2>&1; then
            break
        fi
        # iperf3 can report an error with exit status 0; a server that died is restarted by start_server.
        echo "   $tag: iperf3 $*: $(jq -r .error "$WORK/$tag.json" 2>/dev/null) (attempt $attempt)" >&2
        [[ $attempt == 3 ]] && die "$tag: iperf3 failed three times"
        sleep 1
    done
    AGENT_CPU="-" AGENT_US="-" AGENT_WAIT="-"
    if [[ $agents == yes ]]; then
        t1=$(now_s); c1="$(cpu_s "$AGENT1") $(cpu_s "$AGENT2")"; q1="$(wait_s "$AGENT1") $(wait_s "$AGENT2")"
    fi
    x1=$(pod1_tx); r1=$(pod2_rx)
    DELIVERED=$(awk -v a="$r0" -v b="$r1" -v d="$DURATION" 'BEGIN { printf "%.0f", (b - a) / d }')
    read -r FRAME TAPDROP < <(awk -v a="$x0" -v b="$x1" \
        'BEGIN { split(a, x); split(b, y); n = y[1] - x[1]; printf "%.0f %d\n", n ? (y[2] - x[2]) / n : 0, y[3] - x[3] }')
    if [[ $agents == yes ]]; then
        # CPU % of each agent over the run, and its CPU time per packet it carried (node 1: frames it read from
        # pod 1's TAP, which counts as transmitted only what was read; node 2: UDP datagrams it brought to pod 2), in
        # µs: UDP runs only.
        read -r AGENT_CPU AGENT_US < <(awk -v a="$t0 $c0 $x0 $r0" -v b="$t1 $c1 $x1 $r1" 'BEGIN {
            split(a, x); split(b, y); w = y[1] - x[1]; c1 = y[2] - x[2]; c2 = y[3] - x[3]
            n1 = y[4] - x[4]; n2 = y[7] - x[7]
            printf "%.0f/%.0f %.1f/%.1f\n", 100 * c1 / w, 100 * c2 / w, n1 ? 1e6 * c1 / n1 : 0, n2 ? 1e6 * c2 / n2 : 0 }')
        # The share of the run each agent was runnable but waiting for a CPU.
        AGENT_WAIT=$(awk -v a="$t0 $q0" -v b="$t1 $q1" \
            'BEGIN { split(a, x); split(b, y); w = y[1] - x[1]; printf "%.0f/%.0f", 100 * (y[2] - x[2]) / w, 100 * (y[3] - x[3]) / w }')
    fi
    local pid
    for pid in "${pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; wait "$pid" || true; done
}

# Drops seen by the kernel around the pods' ports and the underlay sockets, for the diagnosis.
kernel_drops() { # tag
    local ns
    {
        for ns in "$POD1" "$POD2"; do
            echo "${ns#"$P"} eth0: $(ip -n "$ns" -j -s link show eth0 | jq -r '.[0].stats64 |
                "rx_packets=\(.rx.packets) rx_dropped=\(.rx.dropped) tx_packets=\(.tx.packets) tx_dropped=\(.tx.dropped)"')"
        done
        for ns in "$N1" "$N2"; do
            echo "${ns#"$P"} ul: $(ip -n "$ns" -j -s link show ul | jq -r '.[0].stats64 |
                "rx_packets=\(.rx.packets) rx_dropped=\(.rx.dropped) tx_packets=\(.tx.packets) tx_dropped=\(.tx.dropped)"')"
            # The agent's sockets (UDP underlay, AF_PACKET on ul): skmem d = packets dropped at the socket.
            echo "${ns#"$P"} sockets: $(ip netns exec "$ns" ss -uap0 -m 2>/dev/null | tr -s ' \n' ' ')"
        done
        for ns in "$N1" "$N2" "$POD2"; do
            echo "${ns#"$P"} nstat: $(ip netns exec "$ns" nstat -az UdpRcvbufErrors UdpSndbufErrors UdpInErrors \
                2>/dev/null | awk 'NR > 1 { printf "%s=%s ", $1, $2 }')"
        done
    } >"$WORK/$1-drops.txt"
}

# One row of $WORK/results (fields 1-13): v name repeat tcp1_gbps tcp4_gbps udp_pps udp_loss% tcp1_retransmits
# agent_cpu%_tcp1 (n1/n2) agent_cpu%_udp (n1/n2) pod1_mean_frame_tcp1 pod1_eth0_drops_udp
# iperf3_server_UdpRcvbufErrors node2_socket_drops agent_us_per_packet_udp (n1/n2) agent_runqueue_wait%_udp (n1/n2)
# udp_pps_into_pod2
run_variant() { # letter repeat
    local v=$1 r=$2 name kind="" agents=no i line cpu_tcp cpu_udp tag frame_tcp tapdrop_udp us_udp wait_udp delivered_udp
    make_world
    case $v in
        a) name=kernel-vxlan
           kernel_node "$N1" "$POD1" 1 2
           kernel_node "$N2" "$POD2" 2 1 ;;
        b) name=tweed-vxlan; kind=vxlan ;;
        c) name=tweed-vxlan-nobatch; kind=vxlan-nobatch ;;
        d) name=tweed-udp; kind=udp ;;
        e) name=tweed-host-gw; kind=host-gw ;;
        f) name=tweed-vxlan-nogso; kind=vxlan-nogso ;;
        g) name=tweed-vxlan-2w; kind=vxlan-2w ;;
        h) name=tweed-udp-2w; kind=udp-2w ;;
        *) die "unknown variant $v" ;;
    esac
    if [[ -n $kind ]]; then
        agents=yes
        start_agent "$kind" "$N1" "$POD1" 1 2
        start_agent "$kind" "$N2" "$POD2" 2 1
    fi
    pod_addr "$POD1" 1
    pod_addr "$POD2" 2
    wait_ping "$name"
    SERVER=""
    start_server
    tag="$name-r$r"
    echo "($v) $name, repeat $r: ${DURATION}s each of TCP, TCP -P 4, UDP 64 B -b 0" >&2
    iperf_run "$tag-tcp1" $agents; cpu_tcp=$AGENT_CPU; frame_tcp=$FRAME
    iperf_run "$tag-tcp4" $agents -P 4
    # -w: a 4 MB socket buffer for the server too, so that fewer bursts are lost at the receiving application.
    iperf_run "$tag-udp" $agents -u -l 64 -b 0 -w 4M
    cpu_udp=$AGENT_CPU; tapdrop_udp=$TAPDROP; us_udp=$AGENT_US; wait_udp=$AGENT_WAIT; delivered_udp=$DELIVERED
    kernel_drops "$tag"
    line="$v $name $r $(jq '.end.sum_received.bits_per_second / 1e9' "$WORK/$tag-tcp1.json")"
    line+=" $(jq '.end.sum_received.bits_per_second / 1e9' "$WORK/$tag-tcp4.json")"
    line+=" $(jq '(.end.sum.packets - .end.sum.lost_packets) / .end.sum.seconds' "$WORK/$tag-udp.json")"
    line+=" $(jq '.end.sum.lost_percent' "$WORK/$tag-udp.json") $(jq '.end.sum_sent.retransmits' "$WORK/$tag-tcp1.json")"
    line+=" $cpu_tcp $cpu_udp $frame_tcp $tapdrop_udp $(udp_counter "$POD2" UdpRcvbufErrors)"
    line+=" $(node2_sock_drops) $us_udp $wait_udp $delivered_udp"
    echo "$line" >>"$WORK/results"
    if [[ -n $kind ]]; then
        kill -USR1 "$AGENT1" "$AGENT2" 2>/dev/null || true
        sleep 0.2
    fi
    kill_pids
    del_namespaces
    echo "   $line" >&2
    if [[ -n $kind ]]; then
        for i in 1 2; do
            echo "   agent $i counters (whole run): $(grep -a 'counters' "$WORK/$kind-$i.log" | tail -1 |
                sed 's/\x1b\[[0-9;]*m//g; s/.*counters //')" >&2
            mv "$WORK/$kind-$i.log" "$WORK/$tag-agent$i.log"
        done
    fi
    sed 's/^/   /' "$WORK/$tag-drops.txt" >&2
}

# Variant f needs the agent's [underlay] gso/gro keys: skip it for a binary without them.
if [[ " $VARIANTS " == *" f "* ]]; then
    agent_toml vxlan-nogso x 1 2 >"$WORK/probe.toml"
    if ! "$TWEED" agent --check --config "$WORK/probe.toml" >/dev/null 2>&1; then
        echo "variant f skipped: this tweed has no [underlay] gso/gro keys" >&2
        VARIANTS=${VARIANTS//f/}
    fi
fi
# Variants g and h need the agent's [agent] workers key: skip them for a binary without it.
if [[ " $VARIANTS " == *" g "* || " $VARIANTS " == *" h "* ]]; then
    agent_toml vxlan-2w x 1 2 >"$WORK/probe.toml"
    if ! "$TWEED" agent --check --config "$WORK/probe.toml" >/dev/null 2>&1; then
        echo "variants g and h skipped: this tweed has no [agent] workers key" >&2
        VARIANTS=${VARIANTS//g/}
        VARIANTS=${VARIANTS//h/}
    fi
fi
agent_toml vxlan-2w x 1 2 >"$WORK/probe.toml"
if "$TWEED" agent --check --config "$WORK/probe.toml" >/dev/null 2>&1; then
    ONE_WORKER=$'[agent]\nworkers = 1'
fi
REPEAT=${REPEAT:-1}
: >"$WORK/results"
for r in $(seq "$REPEAT"); do
    for v in $VARIANTS; do run_variant "$v" "$r"; done
done

# --- the table: medians over the repeats ----------------------------------------------------------------------

echo
echo "netns bench $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, ${DURATION}s per iperf3 run, median of $REPEAT," \
    "pod MTU 1450, underlay veth MTU 1500"
echo "tweed: $BUILD; kernel $(uname -r); $(iperf3 --version | head -1)${PIN_AGENT:+; pinned: iperf3 on CPU 0, agents on CPU 1}"
python3 - "$WORK/results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
order, by = [], {}
for r in rows:
    if r[0] not in by:
        order.append(r[0]); by[r[0]] = (r[1], [])
    by[r[0]][1].append(r)
def med(v, i):
    return statistics.median(float(r[i]) for r in by[v][1])
def pair(v, i, fmt):  # the median of each half of an "n1/n2" field
    if by[v][1][0][i] == "-":
        return "-"
    halves = [[float(x) for x in r[i].split("/")] for r in by[v][1]]
    return "/".join(format(statistics.median(h[k] for h in halves), fmt) for k in (0, 1))
print("| variant | TCP Gbit/s | TCP -P 4 Gbit/s | UDP 64 B pps received by iperf3 | UDP loss % | UDP pps into pod 2 |")
print("|---|---:|---:|---:|---:|---:|")
for v in order:
    print(f"| ({v}) {by[v][0]} | {med(v,3):.2f} | {med(v,4):.2f} | {med(v,5):,.0f} | {med(v,6):.1f} | {med(v,16):,.0f} |")
def ratio(a, b, i):
    return f"{med(a, i) / med(b, i):.2f}" if a in by and b in by and med(b, i) else "n/a"
print()
print(f"tweed(b)/kernel(a):    TCP {ratio('b','a',3)}, TCP -P 4 {ratio('b','a',4)}, UDP pps {ratio('b','a',5)} "
      f"(into pod 2: {ratio('b','a',16)})")
print(f"tweed(b)/unbatched(c): TCP {ratio('b','c',3)}, TCP -P 4 {ratio('b','c',4)}, UDP pps {ratio('b','c',5)} "
      f"(into pod 2: {ratio('b','c',16)})")
def cost(v):  # the two agents' CPU µs per packet, summed
    return sum(statistics.median(float(r[14].split("/")[k]) for r in by[v][1]) for k in (0, 1))
if "b" in by and "c" in by:
    print(f"agents' CPU per UDP packet (n1 + n2): batched {cost('b'):.1f} µs, unbatched {cost('c'):.1f} µs: "
          f"batching costs {cost('c') / cost('b'):.2f}x less")
for two, one, what in (("g", "b", "vxlan"), ("h", "d", "udp")):
    if two in by and one in by:
        print(f"2 workers/1 ({what}, {two}/{one}): TCP {ratio(two,one,3)}, TCP -P 4 {ratio(two,one,4)}, "
              f"UDP pps {ratio(two,one,5)}; agents' CPU per UDP packet (n1 + n2) {cost(two):.1f} µs vs {cost(one):.1f} µs")
print()
print("where it goes (medians): TCP retransmits (1 stream); pod 1's mean frame on eth0 in the TCP run; in the UDP run:")
print("drops on pod 1's eth0 (veth or TAP queue full), at the iperf3 server's socket and at node 2's underlay socket,")
print("agent CPU %, agent CPU µs per packet carried, and % of the time the agent was runnable but waiting for a CPU")
print("(node 1 / node 2)")
print()
print("| variant | TCP retrans | pod frame B (TCP) | agent CPU % TCP | UDP: eth0 drops | server sock drops "
      "| node 2 sock drops | agent CPU % | agent µs/pkt | agent waits for CPU % |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for v in order:
    print(f"| ({v}) {by[v][0]} | {med(v,7):.0f} | {med(v,10):,.0f} | {pair(v,8,'.0f')} | {med(v,11):,.0f} | "
          f"{med(v,12):,.0f} | {med(v,13):,.0f} | {pair(v,9,'.0f')} | {pair(v,14,'.1f')} | {pair(v,15,'.0f')} |")
if len({r[2] for r in rows}) > 1:
    print("\nall runs (v name repeat tcp_gbps tcp4_gbps udp_pps loss% retrans cpu%_tcp cpu%_udp frame_tcp "
          "eth0_drops_udp server_sock_drops node2_sock_drops us_per_pkt_udp wait%_udp pps_into_pod2):")
    for r in rows:
        print("  " + " ".join(r))
PY
