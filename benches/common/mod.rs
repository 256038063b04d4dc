//! What the root package's benches share: the kernel capture's frames and a deterministic generator.
#![allow(dead_code)] // each bench uses a part

static CAPTURE: &[u8] = include_bytes!("../../tests/data/kernel-flannel-vxlan.pcap");

/// The frames of the kernel capture (a little-endian classic pcap file).
pub(crate) fn capture_frames() -> Vec<&'static [u8]> {
    let mut frames = Vec::new();
    let mut rest = &CAPTURE[24..];
    while rest.len() >= 16 {
        let len = u32::from_le_bytes([rest[8], rest[9], rest[10], rest[11]]) as usize;
        frames.push(&rest[16..16 + len]);
        rest = &rest[16 + len..];
    }
    frames
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
