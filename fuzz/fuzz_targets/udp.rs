//! Raw bytes through the UDP view and `Repr`: parse → emit → parse must agree (checksum filled and verified), and
//! nothing panics.
#![no_main]

use core::net::Ipv4Addr;
use libfuzzer_sys::fuzz_target;
use tweed_wire::udp::{ChecksumMode, HEADER_LEN, Packet, Repr};

const SRC: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 1);
const DST: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 2);

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Packet::new_checked(data) else { return };
    let _ = packet.verify_checksum(SRC, DST);
    let payload = packet.payload();
    assert_eq!(payload.len() + HEADER_LEN, usize::from(packet.len()));
    let repr = Repr::parse(&packet, SRC, DST, ChecksumMode::None).expect("check_len passed, so parse must");

    let mut out = vec![0u8; HEADER_LEN + payload.len()];
    out[HEADER_LEN..].copy_from_slice(payload);
    repr.emit(&mut Packet::new_unchecked(&mut out[..]), SRC, DST, payload.len(), ChecksumMode::Compute);
    let emitted = Packet::new_checked(&out[..]).expect("emitted datagram");
    assert_ne!(emitted.checksum(), 0, "a computed zero is sent as 0xffff");
    let again = Repr::parse(&emitted, SRC, DST, ChecksumMode::Compute).expect("emitted datagram verifies");
    assert_eq!(again, repr);
    assert_eq!(emitted.payload(), payload);
});
