//! Raw bytes through the ICMPv4 view and `Repr`, and through the router's error builder: parse → emit → parse must
//! agree, and nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tweed_wire::icmpv4::{self, ErrorKind, Packet, Repr};
use tweed_wire::ipv4::{self, ChecksumCheck};

fuzz_target!(|data: &[u8]| {
    if let Ok(packet) = Packet::new_checked(data) {
        let _ = (packet.next_hop_mtu(), packet.data(), packet.verify_checksum());
        if let Ok(repr) = Repr::parse(&packet, ChecksumCheck::Ignore) {
            let mut out = vec![0u8; repr.buffer_len()];
            repr.emit(&mut Packet::new_unchecked(&mut out[..]));
            let emitted = Packet::new_checked(&out[..]).expect("emitted message");
            let again = Repr::parse(&emitted, ChecksumCheck::Verify).expect("emitted message parses");
            assert_eq!(again, repr);
        }
    }

    // The same bytes as an offending IPv4 packet: the error builder must either refuse or build a message that
    // parses back, quoting the original header.
    let Ok(original) = ipv4::Packet::new_checked(data) else { return };
    let _ = icmpv4::may_send_error(&original);
    let mut out = [0u8; 128];
    let kind = ErrorKind::FragRequired { next_hop_mtu: 1450 };
    if let Ok(len) = icmpv4::emit_error(kind, core::net::Ipv4Addr::new(10, 244, 1, 1), data, &mut out) {
        let reply = ipv4::Packet::new_checked(&out[..len]).expect("the error is a whole IPv4 packet");
        let message = Packet::new_checked(reply.payload()).expect("with an ICMP message");
        let repr = Repr::parse(&message, ChecksumCheck::Verify).expect("that parses with its checksum");
        assert!(matches!(repr, Repr::DstUnreachable { next_hop_mtu: 1450, .. }), "{repr:?}");
    }
});
