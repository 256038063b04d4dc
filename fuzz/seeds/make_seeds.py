#!/usr/bin/env python3
"""Writes the seeds of the `arp`, `build_frame` and `node` fuzz targets (run from anywhere:
`python3 fuzz/seeds/make_seeds.py`; needs tshark). The `dissect` target's corpus-* seeds are the frames of the
tshark differential test, written by `cargo test -p tweed-cli --test dissect -- --ignored write_dissect_fuzz_seeds`.

`node` inputs are encoded as `fuzz_targets/node/input.rs` reads them with `arbitrary`: integers little-endian, a
bool one byte, an enum a little-endian u32 whose variant is (x * variants) >> 32, a struct its fields in order,
`Bytes` a little-endian u16 length and the bytes. Keep the tables below in step with input.rs.

`build_frame` inputs are the `Input` struct of `fuzz_targets/build_frame.rs` as its derive reads it: the
tweed_wire `Repr`s' fields in declaration order (their `Arbitrary` derives and impls in crates/tweed-wire/src/),
`Unstructured::int_in_range` values big-endian in as few bytes as the range needs, taken modulo its size, and the
last field, the `&[u8]` payload, the rest of the input (`arbitrary_take_rest`: no length). Keep `build_frame_seed`
in step with those impls.

Frames come from the kernel capture tests/data/kernel-flannel-vxlan.pcap, read with tshark (node 1 192.0.2.1 and node 2
192.0.2.2, pods 10.244.1.2 and 10.244.2.2, VNI 1, port 8472), which is the fuzz target's own topology: the
target's node is the capture's node 1 and its candidate peer 0 the capture's node 2.

The regression inputs (crashes the target found; all pass on today's code) go to fuzz/regressions/node/ and are
also copied to fuzz/seeds/node/regression-*, so that CI's smoke run, which starts from the seeds, replays them.
"""
import json
import os
import struct
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PCAP = os.path.join(ROOT, "tests", "data", "kernel-flannel-vxlan.pcap")


def frames():
    """The capture's frames as tshark reads them: this script parses no capture format itself."""
    out = subprocess.run(["tshark", "-r", PCAP, "-T", "json", "-x"], check=True, capture_output=True).stdout
    return [bytes.fromhex(p["_source"]["layers"]["frame_raw"][0]) for p in json.loads(out)]


# --- arbitrary's encoding -------------------------------------------------------------------------------------


def u8(x):
    return struct.pack("<B", x & 0xFF)


def u16(x):
    return struct.pack("<H", x & 0xFFFF)


def u32(x):
    return struct.pack("<I", x & 0xFFFFFFFF)


def variant(i, n):
    """The u32 that derive(Arbitrary) maps to variant i of n."""
    return u32((i * (1 << 32) + n - 1) // n)


def byts(b):
    return u16(len(b)) + bytes(b)


# Enums: (index, variant count), as declared in input.rs.
OP = 10
POD, UNDERLAY, SOCKET, HOST, RAW, PROCESS, STORM, ADD_PEER, UPDATE_PEER, REMOVE_PEER = range(OP)
PORTSEL = 5
DT = 4
PODFRAME = 4
MACSEL = 11
ADDR = 9
L4N = 6
TWEAK = 4


def setup(backend=0, flags=0, pods=0, peers=1, mtu=0, arp_queue=7, arp_timeout=29, arp_retry=19, icmp=0x39,
          pool=248, batch=63, out=255):
    """backend 0 vxlan, 1 udp, 2 host-gw; flags: 1 socket port, 2 host port, 4 outer UDP checksum, 8 underlay
    gateway MAC, 16 at most 2 peers. Defaults: 1 pod, peer 0, MTU 1500, queue 8, timeout 3 s, retry 1 s, pool
    256, batch 64, out 256."""
    return (u8(backend) + u8(flags) + u8(pods) + u8(peers) + u8(mtu) + u8(arp_queue) + u8(arp_timeout)
            + u8(arp_retry) + u8(icmp) + u16(pool) + u16(batch) + u16(out))


def op(i):
    return variant(i, OP)


def raw(port_variant, port_arg, data, remote=0):
    sel = variant(port_variant, PORTSEL)
    if port_variant == 0:
        sel += u8(port_arg)
    elif port_variant == 4:
        sel += u16(port_arg)
    return op(RAW) + sel + u8(remote) + byts(data)


def process(dt=0, arg=0, out=0):
    d = variant(dt, DT)
    if dt in (1, 3):
        d += u16(arg)
    elif dt == 2:
        d += u8(arg)
    return op(PROCESS) + d + u16(out)


def hello(pod=0):
    return op(POD) + u8(pod) + variant(0, PODFRAME)


def mac_own():
    return variant(0, MACSEL)


def addr(kind, *args):
    a = variant(kind, ADDR)
    if kind in (3, 5, 6):
        a += u8(args[0])
    elif kind == 4:
        a += u8(args[0]) + u8(args[1])
    elif kind == 8:
        a += u32(args[0])
    return a


def l4_echo(ident=0x4062, seq=1):
    return variant(0, L4N) + u16(ident) + u16(seq)


def l4_udp(sport=40000, dport=7):
    return variant(2, L4N) + u16(sport) + u16(dport)


def l4_tcp(sport=40000, dport=80, flags=0x02):
    return variant(3, L4N) + u16(sport) + u16(dport) + u8(flags)


def no_tweak():
    return variant(0, TWEAK)


def ip(src=None, dst=None, ttl=64, flags=1, l4=None, length=56):
    """flags: 1 DF, 2 MF, 4 fragment offset, 8 options, 16 bad checksum, 32 long total length, 64 padding."""
    return ((src or addr(0)) + (dst or addr(0)) + u8(ttl) + u8(flags) + (l4 or l4_echo()) + u16(length)
            + no_tweak())


def pod_ip(pod=0, **kw):
    return op(POD) + u8(pod) + variant(2, PODFRAME) + mac_own() + mac_own() + ip(**kw)


def tunnelled(kind, peer=0, outer=0, inner_eth=0, vni=1, **kw):
    return op(kind) + u8(peer) + ip(**kw) + u8(outer) + u8(inner_eth) + u32(vni) + no_tweak()


def host(**kw):
    return op(HOST) + ip(**kw)


def storm(pod, kind, count, seed=12345):
    return op(STORM) + u8(pod) + u8(kind) + u16(count) + u32(seed)


def peer_op(kind, idx, shape=0):
    return op(kind) + u8(idx) + u8(shape)


# --- frames ---------------------------------------------------------------------------------------------------

GW_MAC = bytes([0x0A, 0x58, 10, 244, 1, 1])
POD_MAC = bytes([0x0A, 0x58, 10, 244, 1, 2])


def arp_body(op_, sha, spa, tha, tpa):
    return bytes([0, 1, 8, 0, 6, 4]) + struct.pack(">H", op_) + sha + bytes(spa) + tha + bytes(tpa)


def write(target, name, data):
    d = os.path.join(HERE, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def regression(name, data):
    """A node regression input, and its copy among the seeds (CI's smoke run replays the seeds)."""
    d = os.path.join(os.path.dirname(HERE), "regressions", "node")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)
    write("node", "regression-" + name, data)


# --- build_frame ----------------------------------------------------------------------------------------------


def int_in_range(value, hi):
    """What `Unstructured::int_in_range(0..=hi)` reads as `value`: big-endian, as many bytes as `hi` has."""
    assert 0 <= value <= hi
    return value.to_bytes((hi.bit_length() + 7) // 8, "big")


def ethernet_repr(h):
    """ethernet::Repr from an untagged header: src_addr, dst_addr, vlan (Option: a bool byte), ethertype."""
    assert h[12:14] != b"\x81\x00", "untagged"
    return bytes(h[6:12]) + bytes(h[0:6]) + u8(0) + u16(int.from_bytes(h[12:14], "big"))


def ipv4_repr(h, protocol):
    """ipv4::Repr's impl from a 20-byte header: src, dst (u32s, `Ipv4Addr::from_bits`), protocol, payload_len
    (0..=65515), ttl, dscp (0..=63), ecn (0..=3), ident, dont_frag, more_frags, frag_offset (0..=0x1fff units of
    8 bytes)."""
    assert h[0] == 0x45, "no options"
    flags_offset = int.from_bytes(h[6:8], "big")
    return (u32(int.from_bytes(h[12:16], "big")) + u32(int.from_bytes(h[16:20], "big")) + u8(protocol)
            + int_in_range(int.from_bytes(h[2:4], "big") - 20, 65535 - 20) + u8(h[8]) + int_in_range(h[1] >> 2, 63)
            + int_in_range(h[1] & 3, 3) + u16(int.from_bytes(h[4:6], "big")) + u8(flags_offset >> 14 & 1)
            + u8(flags_offset >> 13 & 1) + int_in_range(flags_offset & 0x1FFF, 0x1FFF))


def udp_repr(h):
    """udp::Repr: src_port, dst_port."""
    return u16(int.from_bytes(h[0:2], "big")) + u16(int.from_bytes(h[2:4], "big"))


def build_frame_seed(f):
    """The `Input` whose layers are the capture frame `f`'s: outer Ethernet, IPv4, UDP, VXLAN (vni: 0..=2^24-1),
    inner Ethernet, IPv4. The target makes the inner packet UDP, so the inner L4 header's first 4 bytes (TCP's
    ports, ICMP's type, code and checksum) become the inner UDP ports and the bytes after its first 8 the payload:
    the frame the target builds is the capture's but for the inner protocol, the inner UDP length and checksum
    (where TCP's sequence number or ICMP's identifier and sequence were) and the checksums over them."""
    assert f[23] == 17 and int.from_bytes(f[36:38], "big") == 8472 and f[42] & 0x08, "a VXLAN frame"
    assert int.from_bytes(f[16:18], "big") == len(f) - 14 and int.from_bytes(f[66:68], "big") == len(f) - 64
    return (ethernet_repr(f[0:14]) + ipv4_repr(f[14:34], 17) + udp_repr(f[34:38])
            + int_in_range(int.from_bytes(f[46:49], "big"), 0xFFFFFF) + ethernet_repr(f[50:64])
            + ipv4_repr(f[64:84], 17) + udp_repr(f[84:88]) + bytes(f[92:]))


def main():
    fs = frames()
    from_node2 = [f for f in fs if f[26:30] == bytes([192, 0, 2, 2])]
    from_node1 = [f for f in fs if f[26:30] == bytes([192, 0, 2, 1])]
    small2 = [f for f in from_node2 if len(f) < 200]
    small1 = [f for f in from_node1 if len(f) < 200]
    big1 = [f for f in from_node1 if len(f) > 1000]

    # arp: ARP packets without their Ethernet header.
    pod, gw = [10, 244, 1, 2], [10, 244, 1, 1]
    write("arp", "request-for-gateway", arp_body(1, POD_MAC, pod, bytes(6), gw))
    write("arp", "reply-to-gateway", arp_body(2, POD_MAC, pod, GW_MAC, gw))
    write("arp", "gratuitous", arp_body(1, POD_MAC, pod, bytes(6), pod))
    write("arp", "gateway-asks", arp_body(1, GW_MAC, gw, bytes(6), [10, 244, 1, 3]))
    write("arp", "padded-request", arp_body(1, POD_MAC, pod, bytes(6), gw) + bytes(18))
    write("arp", "ieee802-htype", bytes([0, 6]) + arp_body(1, POD_MAC, pod, bytes(6), gw)[2:])

    # build_frame: the first frame of each kind (direction, inner ICMP type or TCP flags) whose payload fits the
    # target's 1,400 bytes (the full-sized TCP segments' 1,422 do not: the target would cut them).
    kinds = set()
    for i, f in enumerate(fs):
        inner = f[73]
        kind = ({8: "icmp-echo-request", 0: "icmp-echo-reply"}[f[84]] if inner == 1
                else {0x02: "tcp-syn", 0x12: "tcp-syn-ack", 0x10: "tcp-ack", 0x18: "tcp-psh-ack"}[f[84 + 13]])
        key = (f[26:30], kind)
        if len(f) - 92 <= 1400 and key not in kinds:
            kinds.add(key)
            write("build_frame", "pcap-%02d-node%d-%s" % (i, f[29], kind), build_frame_seed(f))

    # node: the capture's underlay frames from node 2, whole (vxlan, the kernel's outer UDP checksum).
    s = setup(flags=4) + hello()
    for f in small2[:6] + from_node2[-1:]:
        s += raw(1, 0, f)
    write("node", "pcap-underlay-vxlan", s + process(1, 5))

    # The same as a UDP socket gives them: the payload after the outer UDP header, from node 2.
    s = setup(flags=1) + hello()
    for f in small2[:6]:
        s += raw(2, 0, f[42:], remote=0)
    write("node", "pcap-socket-vxlan", s + process(1, 5))

    # The capture's inner packets from pod 10.244.1.2, as that pod sends them (to the gateway MAC).
    s = setup() + hello()
    for f in small1[:6] + big1[:1]:
        s += raw(0, 0, GW_MAC + POD_MAC + b"\x08\x00" + f[64:])
    s += process(1, 5)
    # and back: the replies from node 2, whole frames.
    for f in small2[:4]:
        s += raw(1, 0, f)
    write("node", "pcap-pod-roundtrip", s + process(1, 5))

    # The inner packets again, from the host's TUN (udp backend, host port).
    s = setup(backend=1, flags=2) + hello()
    for f in small1[:4]:
        s += raw(3, 0, f[64:])
    write("node", "pcap-host-udp", s + process(1, 5))

    # Built frames, each backend: ARP, a ping across, an answer from the peer, the host, ICMP errors, peer churn.
    for backend, name in ((0, "vxlan"), (1, "udp"), (2, "host-gw")):
        s = setup(backend=backend, flags=3 if backend != 2 else 2, pods=1, peers=3)
        s += hello(0) + hello(1)
        s += pod_ip(0, dst=addr(4, 0, 2))  # ping pod 10.244.2.2
        s += pod_ip(1, dst=addr(1))  # ping the gateway
        s += pod_ip(0, dst=addr(4, 1, 9), l4=l4_udp())  # UDP to peer 1
        s += pod_ip(0, dst=addr(4, 0, 2), ttl=1)  # time exceeded
        s += pod_ip(0, dst=addr(4, 0, 2), length=1600)  # too big with DF
        s += pod_ip(0, dst=addr(4, 0, 2), length=1600, flags=0)  # too big without DF
        s += pod_ip(0, dst=addr(8, 0x08080808))  # no route
        s += pod_ip(0, dst=addr(3, 5))  # an absent local pod: ARP queue
        s += pod_ip(1, dst=addr(3, 0), l4=l4_tcp())  # pod to pod through the gateway
        s += process(1, 5)
        s += tunnelled(UNDERLAY, peer=0, dst=addr(3, 0), l4=l4_echo(seq=2))
        s += tunnelled(UNDERLAY, peer=1, dst=addr(3, 1), l4=l4_udp(7, 40000))
        s += tunnelled(SOCKET, peer=0, dst=addr(3, 0))
        s += tunnelled(UNDERLAY, peer=0, dst=addr(1))  # echo to the gateway from a peer
        s += host(dst=addr(3, 0))
        s += host(dst=addr(4, 1, 3), l4=l4_udp())
        s += process(1, 20)
        s += peer_op(ADD_PEER, 2) + peer_op(UPDATE_PEER, 0, 64) + peer_op(REMOVE_PEER, 1)
        s += tunnelled(UNDERLAY, peer=0, dst=addr(3, 0)) + tunnelled(UNDERLAY, peer=2, dst=addr(3, 0))
        s += pod_ip(0, dst=addr(4, 1, 2)) + pod_ip(0, dst=addr(4, 2, 2))
        s += process(2, 2)
        write("node", "built-" + name, s)

    # Storms from one pod (kinds: 0 random source MACs, 1 ARP from random senders, 2 pings to random local
    # addresses, 3 pings to random remote pods), past the FDB's and ARP table's 8,192 entries; then the other
    # pod and a peer talk to the first.
    for kind, name in ((0, "macs"), (1, "arp"), (2, "absent-pods"), (3, "remote-pods")):
        s = setup(pods=1, peers=0x3F, batch=255, out=299) + hello(1)
        s += storm(0, 0xF0 | kind, 9000) + process(2, 1)
        s += hello(0) + pod_ip(1, dst=addr(3, 0)) + tunnelled(UNDERLAY, peer=0, dst=addr(3, 1)) + process(1, 10)
        write("node", "storm-" + name, s)

    # Finding 1 of issue 12: a pod sends to an absent local address; when the retry comes, the ARP requests to
    # every pod port fill `out` (room 2, 2 pods) and `process` consumes none of the new input.
    s = setup(pods=1, out=1) + pod_ip(0, dst=addr(3, 5)) + process(0, 0, 0)
    s += pod_ip(0, dst=addr(4, 0, 2)) + process(2, 1, 0)
    regression("arp-requests-fill-out", s)

    # The livelock of finding 1: the "asked" list (as long as the ARP queue, here 2) keeps an address whose
    # packet the queue refused (10.244.1.8, after two packets to 10.244.1.7 filled the queue); once that list is
    # full, an address it cannot record (10.244.1.9) is asked for on every call, unthrottled, and with room for 2
    # outputs and 2 pod ports the requests fill `out`: every call at the same time consumes nothing.
    s = setup(pods=1, arp_queue=1, arp_timeout=0, out=1)
    s += pod_ip(0, dst=addr(3, 5)) + pod_ip(0, dst=addr(3, 5)) + pod_ip(0, dst=addr(3, 6)) + process(0, 0, 299)
    s += process(1, 200, 299)  # 10.244.1.7's packets time out; 10.244.1.8 stays in "asked"
    s += pod_ip(0, dst=addr(3, 4)) + process(0, 0, 299)  # 10.244.1.6 fills "asked"
    s += pod_ip(0, dst=addr(3, 7)) + process(0, 0, 299)  # 10.244.1.9: asked for on every call from now on
    s += pod_ip(0, dst=addr(4, 0, 2)) + process(0, 0, 0)
    regression("arp-asked-leak-livelock", s)

    # A peer pings the gateway with a packet over our inner MTU (vxlan: 1450; it came in whole, as a UDP socket
    # gives a reassembled datagram): the echo reply goes back to the peer over the inner MTU.
    s = setup() + tunnelled(UNDERLAY, peer=0, dst=addr(1), length=1440, flags=0) + process(1, 1)
    regression("echo-reply-over-mtu", s)

    # A pod pings the gateway from the gateway's own address: the reply is routed to the gateway, whose MAC the
    # FDB has on the bridge's own port, and leaves as Verdict::Pod(PortId(65535)), counted in to_pod.
    s = setup() + pod_ip(0, src=addr(1), dst=addr(1)) + process(1, 1)
    regression("echo-reply-to-local-port", s)


if __name__ == "__main__":
    main()
