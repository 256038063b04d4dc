//! A site-to-site VPN built on tweed: each site's node is a routed tweed node whose only port is a TUN, and the
//! traffic between the two sites crosses the underlay in UDP datagrams sealed with ChaCha20-Poly1305 under a
//! pre-shared key, each one authenticated and refused if replayed. The encapsulation is this example's own
//! ([`encap::Psk`], on the `tweed::overlay::encap::Encapsulation` trait): tweed routes, checks the inner source
//! against the peer's site and counts every drop by its reason, and knows nothing of the cipher.
//!
//! ```text
//! ip netns exec siteA cargo run --example psk_tunnel -- --tun psk0 --address 10.1.0.1/24 \
//!     --peer-site 10.2.0.0/24 --underlay 192.168.0.1 --peer 192.168.0.2 --id 1 --peer-id 2 --key-file psk.hex
//! ```
//!
//! (and the mirror image on the other site: `--address 10.2.0.1/24 --peer-site 10.1.0.0/24 --underlay
//! 192.168.0.2 --peer 192.168.0.1 --id 2 --peer-id 1`). `--address` is the TUN's address in this site's prefix:
//! the node routes the prefix to the TUN, the kernel routes the peer's site into it. The key is 64 hex digits,
//! given with `--key` or read from `--key-file`; the ids are the nodes' own, distinct, so that the two directions
//! never seal under the same nonce. Both nodes use the UDP port `--port` (51820 by default). Needs
//! `CAP_NET_ADMIN` (it creates the TUN).
//!
//! What it does, printed on stdout: one `ready` line once the TUN and the socket are up, then a `counters` line
//! whenever they changed (at most every `--stats-ms`, 100 by default), one on SIGUSR1, and a last one when
//! SIGTERM or SIGINT stops it: packets sealed for the peer, packets delivered to the TUN, datagrams refused as
//! unauthenticated or replayed, the node's other drops, and what the socket or the TUN did not take.

#[cfg(target_os = "linux")]
mod encap;
mod seal;
#[cfg(target_os = "linux")]
mod tunnel;
mod window;

use std::error::Error;
use std::net::Ipv4Addr;
use std::path::Path;

use ipnet::Ipv4Net;

use crate::seal::Key;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// What the command line says.
#[derive(Debug)]
pub(crate) struct Args {
    /// The TUN's name.
    pub(crate) tun: String,
    /// The TUN's address, with the prefix of this site.
    pub(crate) address: Ipv4Net,
    /// The other site's prefix.
    pub(crate) peer_site: Ipv4Net,
    /// This node's address on the underlay.
    pub(crate) underlay: Ipv4Addr,
    /// The peer's address on the underlay.
    pub(crate) peer: Ipv4Addr,
    /// The UDP port of both nodes.
    pub(crate) port: u16,
    /// This node's sender id.
    pub(crate) id: u32,
    /// The peer's sender id.
    pub(crate) peer_id: u32,
    /// The pre-shared key.
    pub(crate) key: Key,
    /// The least time between two counters lines, in milliseconds.
    pub(crate) stats_ms: u64,
}

const USAGE: &str = "usage: psk_tunnel --tun NAME --address A.B.C.D/N --peer-site A.B.C.D/N --underlay IP \
                     --peer IP [--port N] --id N --peer-id N (--key HEX | --key-file PATH) [--stats-ms N]";

/// Parses the arguments after the program's name.
fn parse(mut args: impl Iterator<Item = String>) -> Result<Args> {
    let (mut tun, mut address, mut peer_site, mut underlay, mut peer) = (None, None, None, None, None);
    let (mut port, mut id, mut peer_id, mut key, mut stats_ms) = (None, None, None, None, None);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"));
        match flag.as_str() {
            "--tun" => tun = Some(value()?),
            "--address" => address = Some(value()?.parse::<Ipv4Net>()?),
            "--peer-site" => peer_site = Some(value()?.parse::<Ipv4Net>()?),
            "--underlay" => underlay = Some(value()?.parse::<Ipv4Addr>()?),
            "--peer" => peer = Some(value()?.parse::<Ipv4Addr>()?),
            "--port" => port = Some(value()?.parse::<u16>()?),
            "--id" => id = Some(value()?.parse::<u32>()?),
            "--peer-id" => peer_id = Some(value()?.parse::<u32>()?),
            "--key" => key = Some(Key::from_hex(&value()?)?),
            "--key-file" => key = Some(Key::from_file(Path::new(&value()?))?),
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
        peer_site: peer_site.ok_or_else(|| missing("--peer-site"))?.trunc(),
        underlay: underlay.ok_or_else(|| missing("--underlay"))?,
        peer: peer.ok_or_else(|| missing("--peer"))?,
        port: port.unwrap_or(51820),
        id,
        peer_id,
        key: key.ok_or_else(|| missing("--key or --key-file"))?,
        stats_ms: stats_ms.unwrap_or(100),
    })
}

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
