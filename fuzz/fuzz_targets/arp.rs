//! Raw bytes through the ARP view and `Repr`: parse → emit → parse must agree, and nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tweed_wire::arp::{Packet, Repr};

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Packet::new_checked(data) else { return };
    let _ = (packet.operation(), packet.source_hardware_addr(), packet.target_protocol_addr());
    let Ok(repr) = Repr::parse(&packet) else { return };
    let _ = (repr.is_gratuitous(), repr.is_request(), repr.is_reply());
    let mut out = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Packet::new_unchecked(&mut out[..]));
    let again = Repr::parse(&Packet::new_checked(&out[..]).expect("emitted packet")).expect("emitted packet parses");
    assert_eq!(again, repr);
});
