//! Raw bytes through the VXLAN view and `Repr`: parse → emit → parse must agree, and nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tweed_wire::vxlan::{Packet, Repr};

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Packet::new_checked(data) else { return };
    let _ = (packet.flags(), packet.vni(), packet.payload(), packet.has_reserved_bits());
    let Ok(repr) = Repr::parse(&packet) else {
        assert!(!packet.has_vni_flag(), "only a missing I flag may refuse a whole header");
        return;
    };
    let mut out = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Packet::new_unchecked(&mut out[..]));
    let emitted = Packet::new_checked(&out[..]).expect("emitted header");
    assert!(!emitted.has_reserved_bits(), "reserved bits are zero on transmit");
    assert_eq!(Repr::parse(&emitted).expect("emitted header parses"), repr);
});
