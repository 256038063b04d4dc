//! A site-to-site VPN built on tweed: each node's only port is a TUN, the traffic between the two sites crosses the
//! underlay in UDP datagrams sealed with ChaCha20-Poly1305 under a pre-shared key, each one authenticated and
//! refused if replayed.
//!
//! ```text
//! ip netns exec siteA cargo run --example psk_tunnel -- --tun psk0 --address 10.1.0.1/24 --route 10.2.0.0/24 \
//!     --listen 192.168.0.1:51820 --peer 192.168.0.2:51820 --id 1 --peer-id 2 --key-file psk.hex
//! ```
//!
//! (and the mirror image on the other site: `--address 10.2.0.1/24 --route 10.1.0.0/24 --id 2 --peer-id 1`). The
//! key is 64 hex digits, given with `--key` or read from `--key-file`; the ids are the nodes' own, distinct, so
//! that the two directions never seal under the same nonce. Needs `CAP_NET_ADMIN` (it creates the TUN).
//!
//! What it does, printed on stdout: one `ready` line once the TUN and the socket are up, then a `counters` line
//! whenever they changed (at most every `--stats-ms`, 100 by default), one at once on SIGUSR1, and a last one when
//! SIGTERM or SIGINT stops it: datagrams sealed and sent, packets opened and delivered, and each reason a datagram
//! was refused.
//!
//! The sealed format and the replay window are this example's own modules (`seal`, `window`): tweed knows nothing
//! of them.

mod seal;
#[cfg(target_os = "linux")]
mod tunnel;
mod window;

use std::error::Error;
use std::net::SocketAddrV4;
use std::path::Path;

use ipnet::Ipv4Net;

use crate::seal::Key;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// What the command line says.
#[derive(Debug)]
pub(crate) struct Args {
    /// The TUN's name.
    pub(crate) tun: String,
    /// The TUN's address and prefix: this site.
    pub(crate) address: Ipv4Net,
    /// The other site's prefixes, routed into the TUN.
    pub(crate) routes: Vec<Ipv4Net>,
    /// The UDP address to bind on the underlay.
    pub(crate) listen: SocketAddrV4,
    /// The peer's UDP address.
    pub(crate) peer: SocketAddrV4,
    /// This node's sender id.
    pub(crate) id: u32,
    /// The peer's sender id.
    pub(crate) peer_id: u32,
    /// The pre-shared key.
    pub(crate) key: Key,
    /// The TUN's MTU: the underlay's (1500) less the outer IPv4 and UDP headers and the sealing.
    pub(crate) mtu: u32,
    /// The least time between two counters lines, in milliseconds.
    pub(crate) stats_ms: u64,
}

const USAGE: &str = "usage: psk_tunnel --tun NAME --address A.B.C.D/N [--route A.B.C.D/N]... \
                     --listen IP:PORT --peer IP:PORT --id N --peer-id N (--key HEX | --key-file PATH) \
                     [--mtu N] [--stats-ms N]";

/// Parses the arguments after the program's name.
fn parse(mut args: impl Iterator<Item = String>) -> Result<Args> {
    let (mut tun, mut address, mut routes, mut listen, mut peer) = (None, None, Vec::new(), None, None);
    let (mut id, mut peer_id, mut key, mut mtu, mut stats_ms) = (None, None, None, None, None);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"));
        match flag.as_str() {
            "--tun" => tun = Some(value()?),
            "--address" => address = Some(value()?.parse::<Ipv4Net>()?),
            "--route" => routes.push(value()?.parse::<Ipv4Net>()?),
            "--listen" => listen = Some(value()?.parse::<SocketAddrV4>()?),
            "--peer" => peer = Some(value()?.parse::<SocketAddrV4>()?),
            "--id" => id = Some(value()?.parse::<u32>()?),
            "--peer-id" => peer_id = Some(value()?.parse::<u32>()?),
            "--key" => key = Some(Key::from_hex(&value()?)?),
            "--key-file" => key = Some(Key::from_file(Path::new(&value()?))?),
            "--mtu" => mtu = Some(value()?.parse::<u32>()?),
            "--stats-ms" => stats_ms = Some(value()?.parse::<u64>()?),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}").into()),
        }
    }
    let missing = |what: &str| format!("{what} is required\n{USAGE}");
    let (id, peer_id) = (id.ok_or_else(|| missing("--id"))?, peer_id.ok_or_else(|| missing("--peer-id"))?);
    if id == peer_id {
        return Err(
            format!("--id and --peer-id must differ (both are {id}): the two directions would share nonces").into()
        );
    }
    Ok(Args {
        tun: tun.ok_or_else(|| missing("--tun"))?,
        address: address.ok_or_else(|| missing("--address"))?,
        routes,
        listen: listen.ok_or_else(|| missing("--listen"))?,
        peer: peer.ok_or_else(|| missing("--peer"))?,
        id,
        peer_id,
        key: key.ok_or_else(|| missing("--key or --key-file"))?,
        mtu: mtu.unwrap_or(DEFAULT_MTU),
        stats_ms: stats_ms.unwrap_or(100),
    })
}

/// The underlay's MTU (1500) less the outer IPv4 (20) and UDP (8) headers and the sealing.
const DEFAULT_MTU: u32 = 1500 - 28 - seal::OVERHEAD as u32;

fn main() -> std::process::ExitCode {
    let run = parse(std::env::args().skip(1)).and_then(|args| {
        #[cfg(target_os = "linux")]
        return tunnel::run(&args);
        #[cfg(not(target_os = "linux"))]
        return Err(format!("psk_tunnel needs Linux for its TUN ({})", args.tun).into());
    });
    match run {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("psk_tunnel: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
