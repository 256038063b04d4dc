//! Raw bytes through the Ethernet view and `Repr`: parse → emit → parse must agree, and nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tweed_wire::ethernet::{Frame, Repr};

fuzz_target!(|data: &[u8]| {
    let Ok(frame) = Frame::new_checked(data) else { return };
    let _ = (frame.payload(), frame.vlan(), frame.outer_ethertype());
    let repr = Repr::parse(&frame).expect("check_len passed, so parse must");
    let mut out = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Frame::new_unchecked(&mut out[..]));
    assert_eq!(&out[..], &data[..repr.buffer_len()], "emit must give back the header it parsed");
    let again = Repr::parse(&Frame::new_checked(&out[..]).expect("emitted header")).expect("emitted header parses");
    assert_eq!(again, repr);
});
