//! The reply the bridge sends for an ARP request it answers.

use tweed_wire::arp;
use tweed_wire::ethernet::{self, EtherType, Frame, MacAddr};
use tweed_wire::{Error, Layer};

/// Writes into `out` the reply to the ARP request `request` (a whole Ethernet frame, as the bridge saw it)
/// saying that the requested address is at `mac`, and returns the reply's length: 42 bytes, or 46 when the
/// request was 802.1Q-tagged (the reply carries the same tag). No padding is added (TAP devices and sockets
/// do not need it).
///
/// This is what the caller does with a [`crate::Decision::ArpReply`]: the reply goes out of the request's
/// ingress port.
///
/// # Errors
/// The request does not parse as an Ethernet/IPv4 ARP request, or `out` is shorter than the reply
/// ([`Error::Truncated`]).
pub fn write_arp_reply(request: &[u8], mac: MacAddr, out: &mut [u8]) -> Result<usize, Error> {
    let frame = Frame::new_checked(request)?;
    let eth = ethernet::Repr::parse(&frame)?;
    let req = arp::Repr::parse(&arp::Packet::new_checked(frame.payload())?)?;
    if req.operation != arp::Operation::REQUEST {
        return Err(Error::Invalid { layer: Layer::Arp, field: "operation", value: u32::from(req.operation.0) });
    }
    let reply = arp::Repr::reply_to(&req, mac);
    let eth_reply = ethernet::Repr { src_addr: mac, dst_addr: eth.src_addr, vlan: eth.vlan, ethertype: EtherType::ARP };
    let len = eth_reply.buffer_len() + arp::HEADER_LEN;
    let actual = out.len();
    let Some(out) = out.get_mut(..len) else {
        return Err(Error::Truncated { layer: Layer::Arp, required: len, actual });
    };
    let mut frame = Frame::new_unchecked(&mut *out);
    eth_reply.emit(&mut frame);
    reply.emit(&mut arp::Packet::new_unchecked(frame.payload_mut()));
    Ok(len)
}
