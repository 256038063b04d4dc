//! A pod: a real userspace TCP/IP stack (a smoltcp [`Interface`]) whose `eth0` is a pair of in-memory queues
//! attached to a node's pod port.
//!
//! The world polls each pod at a simulated instant, takes the frames it transmitted to the node and puts the
//! frames the node sends it in its receive queue. smoltcp does the rest as a kernel would: ARP for the gateway,
//! answering echo requests (its `auto-icmp-echo-reply` feature), TCP with retransmission, and checksum verification of every frame it receives (so a
//! wrong incremental checksum update in a node fails the demo).

use std::collections::VecDeque;
use std::net::Ipv4Addr;

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{self, ChecksumCapabilities, Device, DeviceCapabilities, Medium};
use smoltcp::socket::{icmp, tcp};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, Icmpv4Packet, Icmpv4Repr, IpAddress, IpCidr};

/// The ICMP echo identifier every pod's ping socket uses.
pub(crate) const PING_IDENT: u16 = 0x7477;
/// The bytes each echo request carries (56, as `ping` sends).
pub(crate) const PING_DATA: &[u8; 56] = b"tweed demo: an echo request from a pod, hop by hop......";
/// The size of each pod's TCP send and receive buffers.
const TCP_BUFFER: usize = 64 * 1024;

/// `eth0` of a pod: frames the stack sends wait in `tx` for the world, frames for the stack wait in `rx`.
#[derive(Debug)]
struct QueueDevice {
    rx: VecDeque<Vec<u8>>,
    tx: VecDeque<Vec<u8>>,
    /// The Ethernet MTU: the node's inner MTU plus the Ethernet header (smoltcp counts it).
    mtu: usize,
}

impl Device for QueueDevice {
    type RxToken<'a> = RxToken;
    type TxToken<'a> = TxToken<'a>;

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.mtu;
        // Compute and verify every checksum: the pods check the nodes' rewrites.
        caps.checksum = ChecksumCapabilities::default();
        caps
    }

    fn receive(&mut self, _timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let frame = self.rx.pop_front()?;
        Some((RxToken(frame), TxToken(&mut self.tx)))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<Self::TxToken<'_>> {
        Some(TxToken(&mut self.tx))
    }
}

/// A received frame, handed to smoltcp.
struct RxToken(Vec<u8>);

impl phy::RxToken for RxToken {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

/// Room for one frame smoltcp sends.
struct TxToken<'a>(&'a mut VecDeque<Vec<u8>>);

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0; len];
        let r = f(&mut frame);
        self.0.push_back(frame);
        r
    }
}

/// One pod: its addresses, its stack, one ICMP socket (ping) and one TCP socket.
pub(crate) struct Pod {
    /// The pod's address.
    pub(crate) ip: Ipv4Addr,
    iface: Interface,
    sockets: SocketSet<'static>,
    dev: QueueDevice,
    icmp: SocketHandle,
    tcp: SocketHandle,
}

impl core::fmt::Debug for Pod {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Pod").field("ip", &self.ip).finish_non_exhaustive()
    }
}

/// Why a pod could not do what it was asked.
pub(crate) type PodError = String;

impl Pod {
    /// A pod with address `ip/24`, MAC `mac` and default route via `gateway`, whose `eth0` carries IP packets of
    /// up to `ip_mtu` bytes. `seed` makes its random choices (TCP initial sequence numbers) repeatable.
    pub(crate) fn new(ip: Ipv4Addr, mac: [u8; 6], gateway: Ipv4Addr, ip_mtu: u16, seed: u64) -> Self {
        let mut dev = QueueDevice { rx: VecDeque::new(), tx: VecDeque::new(), mtu: usize::from(ip_mtu) + 14 };
        let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
        config.random_seed = seed;
        let mut iface = Interface::new(config, &mut dev, Instant::ZERO);
        iface.update_ip_addrs(|addrs| {
            // A fresh interface has room for several addresses: this push cannot fail.
            let _ = addrs.push(IpCidr::new(IpAddress::Ipv4(ip), 24));
        });
        // The routes table of a fresh interface is empty: adding the one default route cannot fail.
        let _ = iface.routes_mut().add_default_ipv4_route(gateway);

        let mut sockets = SocketSet::new(Vec::new());
        let icmp = sockets.add(icmp::Socket::new(
            icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; 64], vec![0; 8192]),
            icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; 64], vec![0; 8192]),
        ));
        let tcp = sockets.add(tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; TCP_BUFFER]),
            tcp::SocketBuffer::new(vec![0; TCP_BUFFER]),
        ));
        let mut pod = Self { ip, iface, sockets, dev, icmp, tcp };
        // A fresh socket is unbound and the identifier is not zero: binding cannot fail.
        let _ = pod.sockets.get_mut::<icmp::Socket<'_>>(pod.icmp).bind(icmp::Endpoint::Ident(PING_IDENT));
        pod
    }

    /// Lets the stack run at `now` (microseconds): read what arrived, send what is due.
    pub(crate) fn poll(&mut self, now_us: u64) {
        let now = Instant::from_micros(i64::try_from(now_us).unwrap_or(i64::MAX));
        let _ = self.iface.poll(now, &mut self.dev, &mut self.sockets);
    }

    /// When the stack next wants to be polled, in microseconds from `now_us`, if it has a timer running.
    pub(crate) fn poll_delay(&mut self, now_us: u64) -> Option<u64> {
        let now = Instant::from_micros(i64::try_from(now_us).unwrap_or(i64::MAX));
        self.iface.poll_delay(now, &self.sockets).map(|d| d.total_micros())
    }

    /// A frame for the pod's `eth0`.
    pub(crate) fn deliver(&mut self, frame: Vec<u8>) {
        self.dev.rx.push_back(frame);
    }

    /// Whether frames wait to be read by the stack.
    pub(crate) fn has_input(&self) -> bool {
        !self.dev.rx.is_empty()
    }

    /// The next frame the pod sent on `eth0`.
    pub(crate) fn take_sent(&mut self) -> Option<Vec<u8>> {
        self.dev.tx.pop_front()
    }

    /// Queues an ICMP echo request to `dst` with sequence number `seq`; `Ok(false)` when the socket's queue is
    /// full (try again after the world ran).
    pub(crate) fn ping(&mut self, dst: Ipv4Addr, seq: u16) -> Result<bool, PodError> {
        let repr = Icmpv4Repr::EchoRequest { ident: PING_IDENT, seq_no: seq, data: PING_DATA };
        let mut bytes = vec![0; repr.buffer_len()];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut bytes), &ChecksumCapabilities::default());
        let socket = self.sockets.get_mut::<icmp::Socket<'_>>(self.icmp);
        match socket.send_slice(&bytes, IpAddress::Ipv4(dst)) {
            Ok(()) => Ok(true),
            Err(icmp::SendError::BufferFull) => Ok(false),
            Err(e) => Err(format!("{}: cannot queue an echo request to {dst}: {e}", self.ip)),
        }
    }

    /// The echo replies received since the last call: (from, sequence number), each checked to carry the data
    /// its request carried.
    pub(crate) fn take_echo_replies(&mut self) -> Result<Vec<(Ipv4Addr, u16)>, PodError> {
        let mut replies = Vec::new();
        let socket = self.sockets.get_mut::<icmp::Socket<'_>>(self.icmp);
        while let Ok((bytes, IpAddress::Ipv4(from))) = socket.recv() {
            let packet = Icmpv4Packet::new_checked(bytes).map_err(|e| format!("echo reply from {from}: {e}"))?;
            let repr = Icmpv4Repr::parse(&packet, &ChecksumCapabilities::default())
                .map_err(|e| format!("echo reply from {from}: {e}"))?;
            match repr {
                Icmpv4Repr::EchoReply { ident: PING_IDENT, seq_no, data } if data == PING_DATA => {
                    replies.push((from, seq_no));
                }
                // Another pod's ping with the same identifier: the stack answered it (auto-icmp-echo-reply).
                Icmpv4Repr::EchoRequest { .. } => {}
                other => return Err(format!("{}: unexpected ICMP message from {from}: {other:?}", self.ip)),
            }
        }
        Ok(replies)
    }

    /// Listens for one TCP connection on `port`, acknowledging every segment at once.
    pub(crate) fn tcp_listen(&mut self, port: u16) -> Result<(), PodError> {
        let socket = self.sockets.get_mut::<tcp::Socket<'_>>(self.tcp);
        socket.set_ack_delay(None);
        socket.listen(port).map_err(|e| format!("{}: cannot listen on port {port}: {e}", self.ip))
    }

    /// Opens a TCP connection from `local_port` to `dst:port`.
    pub(crate) fn tcp_connect(&mut self, dst: Ipv4Addr, port: u16, local_port: u16) -> Result<(), PodError> {
        let socket = self.sockets.get_mut::<tcp::Socket<'_>>(self.tcp);
        socket.set_ack_delay(None);
        socket
            .connect(self.iface.context(), (IpAddress::Ipv4(dst), port), local_port)
            .map_err(|e| format!("{}: cannot connect to {dst}:{port}: {e}", self.ip))
    }

    /// Queues as much of `data` as the send buffer takes; how much it took.
    pub(crate) fn tcp_send(&mut self, data: &[u8]) -> usize {
        let socket = self.sockets.get_mut::<tcp::Socket<'_>>(self.tcp);
        if socket.can_send() { socket.send_slice(data).unwrap_or(0) } else { 0 }
    }

    /// Reads what arrived into `buf`; how much it read.
    pub(crate) fn tcp_recv(&mut self, buf: &mut [u8]) -> usize {
        let socket = self.sockets.get_mut::<tcp::Socket<'_>>(self.tcp);
        if socket.can_recv() { socket.recv_slice(buf).unwrap_or(0) } else { 0 }
    }

    /// Whether everything queued was sent and acknowledged.
    pub(crate) fn tcp_send_done(&self) -> bool {
        self.sockets.get::<tcp::Socket<'_>>(self.tcp).send_queue() == 0
    }

    /// Sends FIN after the queued data.
    pub(crate) fn tcp_close(&mut self) {
        self.sockets.get_mut::<tcp::Socket<'_>>(self.tcp).close();
    }

    /// Whether the peer closed its side (no more data will arrive).
    pub(crate) fn tcp_peer_closed(&self) -> bool {
        let socket = self.sockets.get::<tcp::Socket<'_>>(self.tcp);
        !socket.may_recv() && !matches!(socket.state(), tcp::State::Listen | tcp::State::SynReceived)
    }

    /// The TCP socket's state, for messages.
    pub(crate) fn tcp_state(&self) -> String {
        self.sockets.get::<tcp::Socket<'_>>(self.tcp).state().to_string()
    }
}
