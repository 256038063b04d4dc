//! What the root package's benches share: the kernel capture's frames and a deterministic generator.
#![allow(dead_code)] // each bench uses a part

static CAPTURE: &[u8] = include_bytes!("../../tests/data/kernel-flannel-vxlan.pcap");

/// The frames of the kernel capture, read by tweed-pcap.
pub(crate) fn capture_frames() -> Vec<&'static [u8]> {
    let reader = tweed_pcap::Reader::new(CAPTURE).expect("the kernel capture has a pcap header");
    reader.map(|r| r.expect("the kernel capture's records are whole").data).collect()
}

/// SplitMix64: the same inputs on every run, so that benches compare like with like.
pub(crate) struct SplitMix64(pub(crate) u64);

impl SplitMix64 {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}
