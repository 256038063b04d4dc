//! Raw bytes through the IPv4 view and `Repr`: parse → emit → parse must agree, the router's TTL decrement must
//! agree with a recomputed checksum, and nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tweed_wire::ipv4::{ChecksumCheck, Packet, Repr};

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Packet::new_checked(data) else { return };
    let _ = (packet.options(), packet.payload(), packet.verify_checksum());
    let repr = Repr::parse(&packet, ChecksumCheck::Ignore).expect("check_len passed, so parse must");

    // Emit a header (options dropped) in front of the same payload, then parse it back, checksum verified.
    let payload = packet.payload();
    let mut out = vec![0u8; repr.buffer_len() + payload.len()];
    out[repr.buffer_len()..].copy_from_slice(payload);
    repr.emit(&mut Packet::new_unchecked(&mut out[..]));
    let emitted = Packet::new_checked(&out[..]).expect("emitted packet");
    let again = Repr::parse(&emitted, ChecksumCheck::Verify).expect("emitted packet parses with its checksum");
    assert_eq!(again, repr);
    assert_eq!(emitted.payload(), payload);

    // The incremental TTL decrement must give the checksum a full recomputation gives.
    let mut routed = out.clone();
    let mut view = Packet::new_unchecked(&mut routed[..]);
    if view.decrement_ttl().is_some() {
        assert!(Packet::new_unchecked(&routed[..]).verify_checksum(), "RFC 1624 update must keep the checksum valid");
        assert_eq!(routed[8], out[8] - 1);
    }
});
