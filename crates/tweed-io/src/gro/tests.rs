//! The offload helpers' tests: coalescing, cutting, and the two ways of cutting giving the same frames.

use super::*;
use proptest::prelude::*;

const FLAG_FIN: u8 = 0x01;

/// An Ethernet/IPv4/TCP segment with full, correct checksums.
pub(super) fn seg(seq: u32, payload: &[u8], flags: u8, ts: u32) -> Vec<u8> {
    let mut f = vec![0x0a, 0x58, 10, 244, 2, 2, 0x0a, 0x58, 10, 244, 2, 1, 0x08, 0x00];
    let tcp_len = 32; // with a timestamps option
    let total = (20 + tcp_len + payload.len()) as u16;
    f.extend_from_slice(&[0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 62, 6, 0, 0, 10, 244, 1, 2, 10, 244, 2, 2]);
    f[ETH + 2..ETH + 4].copy_from_slice(&total.to_be_bytes());
    let c = checksum::checksum(&f[ETH..ETH + 20]);
    f[ETH + 10..ETH + 12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&[0xc0, 0x01, 0x14, 0x51]);
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(&7u32.to_be_bytes());
    f.extend_from_slice(&[0x80, flags, 0x01, 0xf5, 0, 0, 0, 0]);
    f.extend_from_slice(&[1, 1, 8, 10]);
    f.extend_from_slice(&ts.to_be_bytes());
    f.extend_from_slice(&99u32.to_be_bytes());
    f.extend_from_slice(payload);
    let tcp = &f[ETH + 20..];
    let pseudo = checksum::pseudo_header_ipv4(addr(&f[ETH + 12..]), addr(&f[ETH + 16..]), 6, tcp.len() as u16);
    let c = !checksum::sum_with(pseudo, tcp);
    f[ETH + 36..ETH + 38].copy_from_slice(&c.to_be_bytes());
    f
}

pub(super) fn train(n: usize, mss: usize, last: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let len = if i + 1 == n { last } else { mss };
            let data: Vec<u8> = (0..len).map(|k| ((i * mss + k) % 251) as u8).collect();
            seg(1000 + (i * mss) as u32, &data, FLAG_ACK | if i + 1 == n { FLAG_PSH } else { 0 }, 5)
        })
        .collect()
}

/// A train coalesces into one frame whose payload is the segments' in order, with lengths and the IPv4
/// checksum right, the pseudo-header sum in the TCP checksum, PSH kept, and the virtio-net header set.
#[test]
fn a_train_becomes_one_frame() {
    let frames = train(5, 1398, 700);
    assert_eq!(train_len(&frames, false), 5);
    let mut out = vec![0u8; COALESCE_ROOM];
    let n = coalesce(&frames, &mut out);
    let frame = &out[VNET_HDR_LEN..n];
    let payload: Vec<u8> = frames.iter().flat_map(|f| f[ETH + 52..].to_vec()).collect();
    assert_eq!(&frame[ETH + 52..], &payload[..]);
    let f0 = &frames[0];
    assert_eq!(frame[..16], f0[..16], "MACs, version, TOS");
    assert_eq!(frame[18..24], f0[18..24], "id, flags, TTL, protocol");
    assert_eq!(frame[26..ETH + 33], f0[26..ETH + 33], "addresses, ports, sequence, acknowledgement");
    assert_eq!(frame[ETH + 34..ETH + 36], f0[ETH + 34..ETH + 36], "window");
    assert_eq!(frame[ETH + 40..ETH + 52], f0[ETH + 40..ETH + 52], "options");
    assert_eq!(usize::from(u16::from_be_bytes([frame[16], frame[17]])), frame.len() - ETH);
    assert!(checksum::verify(&frame[ETH..ETH + 20]), "IPv4 checksum verifies");
    assert_eq!(frame[ETH + 33], FLAG_ACK | FLAG_PSH);
    // Completing the partial checksum as the kernel does gives a valid segment checksum.
    let mut full = frame.to_vec();
    let partial = u16::from_be_bytes([full[ETH + 36], full[ETH + 37]]);
    full[ETH + 36..ETH + 38].copy_from_slice(&[0, 0]);
    let c = !checksum::sum_with(partial, &full[ETH + 20..]);
    full[ETH + 36..ETH + 38].copy_from_slice(&c.to_be_bytes());
    let len = (full.len() - ETH - 20) as u16;
    let pseudo = checksum::pseudo_header_ipv4(addr(&full[ETH + 12..]), addr(&full[ETH + 16..]), 6, len);
    assert_eq!(checksum::sum_with(pseudo, &full[ETH + 20..]), 0xffff, "the completed checksum verifies");
    let hdr = &out[..VNET_HDR_LEN];
    assert_eq!((hdr[0], hdr[1]), (1, 1));
    assert_eq!(u16::from_ne_bytes([hdr[2], hdr[3]]), 66);
    assert_eq!(u16::from_ne_bytes([hdr[4], hdr[5]]), 1398);
    assert_eq!(u16::from_ne_bytes([hdr[6], hdr[7]]), 34);
    assert_eq!(u16::from_ne_bytes([hdr[8], hdr[9]]), 16);
}

/// What the TAP hands over with TSO on (a large frame and a GSO header) comes out as the segments it was
/// made of: coalescing a train and cutting it again gives the train back.
#[test]
fn segmenting_undoes_coalescing() {
    let frames = train(5, 1398, 700);
    let mut out = vec![0u8; COALESCE_ROOM];
    let n = coalesce(&frames, &mut out);
    let hdr: [u8; VNET_HDR_LEN] = out[..VNET_HDR_LEN].try_into().unwrap();
    let mut got = Vec::new();
    let count = segment_offloaded(&hdr, &mut out[VNET_HDR_LEN..n], 1600, 128, |f| got.push(f.to_vec())).unwrap();
    assert_eq!(count, 5);
    for (i, (g, f)) in got.iter().zip(&frames).enumerate() {
        // Identification counts up from the first segment's, as the kernel's TSO does.
        let mut want = f.clone();
        want[ETH + 4..ETH + 6].copy_from_slice(&(0x1234u16 + i as u16).to_be_bytes());
        want[ETH + 10..ETH + 12].copy_from_slice(&[0, 0]);
        let c = checksum::checksum(&want[ETH..ETH + 20]);
        want[ETH + 10..ETH + 12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(g, &want, "segment {i}");
    }
    assert_eq!(segment_offloaded(&hdr, &mut out[VNET_HDR_LEN..n], 1000, 128, |_| {}), Err(OffloadError::TooLarge));
}

/// A partial checksum (NEEDS_CSUM without GSO) is completed; lying offsets and unknown GSO types are refused.
#[test]
fn partial_checksums_and_lies() {
    let mut f = seg(1, b"hello", FLAG_ACK, 5);
    let want = f.clone();
    let len = (f.len() - ETH - 20) as u16;
    let pseudo = checksum::pseudo_header_ipv4(addr(&f[ETH + 12..]), addr(&f[ETH + 16..]), 6, len);
    f[ETH + 36..ETH + 38].copy_from_slice(&pseudo.to_be_bytes());
    let mut hdr = [0u8; VNET_HDR_LEN];
    hdr[0] = 1;
    hdr[6..8].copy_from_slice(&34u16.to_ne_bytes());
    hdr[8..10].copy_from_slice(&16u16.to_ne_bytes());
    let mut got = Vec::new();
    assert_eq!(segment_offloaded(&hdr, &mut f.clone(), 1600, 128, |x| got.push(x.to_vec())), Ok(1));
    assert_eq!(got, [want]);
    hdr[8..10].copy_from_slice(&4000u16.to_ne_bytes());
    assert_eq!(segment_offloaded(&hdr, &mut f.clone(), 1600, 128, |_| {}), Err(OffloadError::Malformed));
    let mut gso = [0u8; VNET_HDR_LEN];
    gso[1] = 4; // UDP
    assert_eq!(segment_offloaded(&gso, &mut f.clone(), 1600, 128, |_| {}), Err(OffloadError::Unsupported));
    gso[1] = 1;
    assert_eq!(segment_offloaded(&gso, &mut f.clone(), 1600, 128, |_| {}), Err(OffloadError::Malformed), "gso_size 0");
    gso[4..6].copy_from_slice(&1000u16.to_ne_bytes());
    assert_eq!(segment_offloaded(&gso, &mut f[..30].to_vec(), 1600, 128, |_| {}), Err(OffloadError::Malformed));
}

/// A xorshift64 generator from `seed` (not 0): the hostile tests' fixed, repeatable randomness.
fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// Random headers over random and real frames never panic, and what comes out is never longer than asked.
#[test]
fn hostile_offload_headers_never_panic() {
    let mut next = xorshift(0x2545_f491_4f6c_dd1d);
    let real = {
        let frames = train(3, 1000, 10);
        let mut out = vec![0u8; COALESCE_ROOM];
        let n = coalesce(&frames, &mut out);
        out[VNET_HDR_LEN..n].to_vec()
    };
    for round in 0..20_000 {
        let mut hdr = [0u8; VNET_HDR_LEN];
        for b in &mut hdr {
            *b = next() as u8;
        }
        hdr[1] = [0, 1, 0x81, 3, next() as u8][round % 5];
        let mut frame = if round % 2 == 0 {
            let mut f = real.clone();
            let i = (next() as usize) % f.len();
            f[i] = next() as u8;
            f.truncate(1 + (next() as usize) % f.len());
            f
        } else {
            (0..(next() % 3000) as usize).map(|_| next() as u8).collect()
        };
        let _ = segment_offloaded(&hdr, &mut frame, 1600, 128, |f| assert!(f.len() <= 1600));
        let frames = [frame.clone(), frame];
        if train_len(&frames, false) == 2 {
            let mut out = vec![0u8; COALESCE_ROOM];
            let _ = coalesce(&frames, &mut out);
        }
    }
}

/// Datagrams with random bytes changed (lengths, ports, identifications, checksums, the payload), cut short or
/// not, never panic the UDP coalescing, and whatever it merges the kernel's cut gives back as it was.
#[test]
fn hostile_udp_trains_never_panic() {
    let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
    let good = dgrams(4, 64, 30, 0xfffe, false);
    let mut merged = 0;
    for _ in 0..20_000 {
        let mut frames = good.clone();
        for _ in 0..=(next() % 3) {
            let f = &mut frames[(next() % 4) as usize];
            if f.is_empty() {
                continue;
            }
            let i = (next() as usize) % f.len();
            f[i] = next() as u8;
            if next().is_multiple_of(8) {
                f.truncate((next() as usize) % f.len());
            }
            if next().is_multiple_of(2) && f.len() > ETH + 28 {
                udp_checksum(f);
            }
        }
        let n = train_len(&frames, true);
        assert!(n <= frames.len());
        if n >= 2 {
            merged += 1;
            let whole = gathered(&frames[..n]);
            let (hdr, frame) = whole.split_at(VNET_HDR_LEN);
            assert_eq!(kernel_cut_udp(hdr, frame), frames[..n], "what was merged comes back as it was");
            let mut out = vec![0u8; COALESCE_ROOM];
            assert_eq!(coalesce(&frames[..n], &mut out), whole.len());
        }
    }
    assert!(merged > 1000, "the changes left too few trains to check: {merged}");
}

/// Finding 9: a segment whose TCP checksum does not verify (one flipped payload byte) is never merged: the
/// train ends before it, it goes alone (written with the plain header: no DATA_VALID, the pod's kernel checks
/// it and drops it), and the segments after it form their own train.
#[test]
fn a_segment_with_a_bad_checksum_is_not_merged() {
    let mut t = train(5, 1000, 1000);
    t[2][ETH + 60] ^= 0x40;
    assert_eq!(train_len(&t, false), 2, "the train stops before the bad segment");
    assert_eq!(train_len(&t[2..], false), 1, "the bad segment goes alone");
    assert_eq!(train_len(&t[3..], false), 2, "the good ones after it still merge");
    let mut first = train(3, 1000, 1000);
    first[0][ETH + 60] ^= 1;
    assert_eq!(train_len(&first, false), 1, "a bad first segment is not merged either");
    // What a lone segment is written with vouches for nothing.
    assert_eq!(PLAIN[0] & 2, 0, "no VIRTIO_NET_HDR_F_DATA_VALID");
    assert_eq!(PLAIN[0] & 1, 0, "no NEEDS_CSUM");
}

/// Finding 13: a pod-chosen tiny `gso_size` cannot make one read cost unbounded work: a frame that would
/// cut into more segments than allowed is refused whole, nothing emitted.
#[test]
fn a_tiny_gso_size_is_refused_whole() {
    let big = train(1, 60_000, 60_000).remove(0);
    let mut hdr = [0u8; VNET_HDR_LEN];
    hdr[1] = 1;
    hdr[4..6].copy_from_slice(&1u16.to_ne_bytes());
    let mut emitted = 0;
    let r = segment_offloaded(&hdr, &mut big.clone(), 1600, 128, |_| emitted += 1);
    assert_eq!((r, emitted), (Err(OffloadError::TooManySegments), 0));
    hdr[4..6].copy_from_slice(&1000u16.to_ne_bytes());
    let r = segment_offloaded(&hdr, &mut big.clone(), 1600, 60, |_| emitted += 1);
    assert_eq!((r, emitted), (Ok(60), 60), "60 segments of 1000 bytes are fine");
}

/// Everything that must stop a train does.
#[test]
fn trains_stop_where_linux_would() {
    let t = train(4, 1000, 1000);
    let mut gap = t.clone();
    gap[2] = seg(1000 + 2 * 1000 + 1, &[1; 1000], FLAG_ACK, 5);
    assert_eq!(train_len(&gap, false), 2, "a sequence gap");
    let mut short = t.clone();
    short[1] = seg(2000, &[1; 500], FLAG_ACK, 5);
    assert_eq!(train_len(&short, false), 2, "a short segment ends the train");
    let mut psh = t.clone();
    psh[1] = seg(2000, &[1; 1000], FLAG_ACK | FLAG_PSH, 5);
    assert_eq!(train_len(&psh, false), 2, "PSH ends the train");
    let mut ts = t.clone();
    ts[2] = seg(3000, &[1; 1000], FLAG_ACK, 6);
    assert_eq!(train_len(&ts, false), 2, "different TCP options");
    let mut fin = t.clone();
    fin[1] = seg(2000, &[1; 1000], FLAG_ACK | FLAG_FIN, 5);
    assert_eq!(train_len(&fin, false), 1, "FIN");
    let mut other = t.clone();
    other[1][ETH + 15] = 3; // another destination address
    assert_eq!(train_len(&other, false), 1, "another flow");
    let ack_only = seg(2000, &[], FLAG_ACK, 5);
    assert_eq!(train_len(&[t[0].clone(), ack_only], false), 1, "no data");
    assert_eq!(train_len(&[vec![0u8; 10]], false), 1, "garbage is written as it is");
    assert_eq!(train_len::<Vec<u8>>(&[], false), 0);
    let long = train(70, 1000, 1000);
    assert_eq!(train_len(&long, false), MAX_SEGMENTS);
    let mut lying = t.clone();
    lying[1][ETH + 3] ^= 1; // total length no longer matches the frame
    assert_eq!(train_len(&lying, false), 1);
}

/// What cutting a frame returned.
type Cutting = Result<usize, OffloadError>;

/// Every frame `segment_offloaded` makes in place, and what `cut_offloaded` + `Cut::copy_to` make of the same
/// read (into buffers that held other bytes), and the two results.
fn both_ways(
    hdr: &[u8; VNET_HDR_LEN],
    frame: &[u8],
    max_frame: usize,
) -> (Cutting, Vec<Vec<u8>>, Cutting, Vec<Vec<u8>>) {
    let mut in_place = Vec::new();
    let a = segment_offloaded(hdr, &mut frame.to_vec(), max_frame, 128, |f| in_place.push(f.to_vec()));
    let mut copied = Vec::new();
    let b = cut_offloaded(hdr, &mut frame.to_vec(), max_frame, 128, |cut| {
        let mut buf = vec![0xa5u8; cut.len() + 7];
        if !cut.is_empty() {
            assert_eq!(cut.copy_to(&mut buf[..cut.len() - 1]), 0, "one byte short: nothing written");
            assert!(buf.iter().all(|&b| b == 0xa5));
        }
        assert_eq!(cut.copy_to(&mut buf), cut.len());
        assert!(buf[cut.len()..].iter().all(|&b| b == 0xa5), "nothing past the frame");
        buf.truncate(cut.len());
        copied.push(buf);
    });
    (a, in_place, b, copied)
}

/// A TSO frame as a pod's kernel hands it over: headers of the first segment (with `options` bytes of TCP
/// options), the payload, the pseudo-header sum in the TCP checksum, and the virtio-net header.
pub(super) fn tso_read(payload: &[u8], options: usize, gso_size: u16, flags: u8) -> ([u8; VNET_HDR_LEN], Vec<u8>) {
    let mut f = seg(77, payload, flags, 5);
    // seg() writes 12 bytes of options; make it `options` bytes (NOPs) and fix the lengths.
    let doff = 20 + options;
    let mut g = f[..ETH + 20 + 20].to_vec();
    g.extend(std::iter::repeat_n(1u8, options));
    g.extend_from_slice(payload);
    g[ETH + 32] = ((doff / 4) as u8) << 4;
    let total = (g.len() - ETH) as u16;
    g[ETH + 2..ETH + 4].copy_from_slice(&total.to_be_bytes());
    g[ETH + 10..ETH + 12].copy_from_slice(&[0, 0]);
    let c = checksum::checksum(&g[ETH..ETH + 20]);
    g[ETH + 10..ETH + 12].copy_from_slice(&c.to_be_bytes());
    let pseudo =
        checksum::pseudo_header_ipv4(addr(&g[ETH + 12..]), addr(&g[ETH + 16..]), 6, (g.len() - ETH - 20) as u16);
    g[ETH + 36..ETH + 38].copy_from_slice(&pseudo.to_be_bytes());
    f = g;
    let mut hdr = [0u8; VNET_HDR_LEN];
    hdr[0] = 1;
    hdr[1] = 1;
    hdr[4..6].copy_from_slice(&gso_size.to_ne_bytes());
    hdr[6..8].copy_from_slice(&34u16.to_ne_bytes());
    hdr[8..10].copy_from_slice(&16u16.to_ne_bytes());
    (hdr, f)
}

/// Whether `frame` is a whole IPv4/TCP segment whose two checksums verify.
fn verifies(frame: &[u8]) -> bool {
    let tcp = &frame[ETH + 20..];
    let pseudo = checksum::pseudo_header_ipv4(addr(&frame[ETH + 12..]), addr(&frame[ETH + 16..]), 6, tcp.len() as u16);
    checksum::verify(&frame[ETH..ETH + 20]) && checksum::sum_with(pseudo, tcp) == 0xffff
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Cutting into the caller's buffers (checksum in the copy's pass) gives exactly the frames the in-place
    /// cutting gives, for TSO frames of any payload length (odd ones too), segment size and option length,
    /// and every segment verifies and carries its part of the payload.
    #[test]
    fn cut_and_copy_matches_in_place(
        payload in proptest::collection::vec(any::<u8>(), 1..9000),
        options in 0usize..11,
        gso_size in 1u16..2000,
        psh in any::<bool>(),
    ) {
        let options = options * 4;
        let (hdr, frame) = tso_read(&payload, options, gso_size, FLAG_ACK | if psh { FLAG_PSH } else { 0 });
        let (a, in_place, b, copied) = both_ways(&hdr, &frame, 4000);
        prop_assert_eq!(a, b);
        prop_assert_eq!(&in_place, &copied);
        if let Ok(n) = a {
            prop_assert_eq!(n, payload.len().div_ceil(usize::from(gso_size)));
            let hdr_len = ETH + 40 + options;
            let joined: Vec<u8> = copied.iter().flat_map(|f| f[hdr_len..].to_vec()).collect();
            prop_assert_eq!(joined, payload);
            prop_assert!(copied.iter().all(|f| verifies(f)));
        } else {
            prop_assert_eq!(a, Err(OffloadError::TooManySegments));
        }
    }

    /// A frame that is not GSO, its checksum left to finish at any start and offset (TCP, UDP, lies): both ways
    /// agree, errors included.
    #[test]
    fn partial_checksums_match_in_place(
        frame in proptest::collection::vec(any::<u8>(), 0..3000),
        csum_start in 0u16..3100,
        csum_offset in prop_oneof![Just(6u16), Just(16u16), 0u16..3100],
        needs_csum in any::<bool>(),
    ) {
        let mut hdr = [0u8; VNET_HDR_LEN];
        hdr[0] = u8::from(needs_csum);
        hdr[6..8].copy_from_slice(&csum_start.to_ne_bytes());
        hdr[8..10].copy_from_slice(&csum_offset.to_ne_bytes());
        let (a, in_place, b, copied) = both_ways(&hdr, &frame, 2000);
        prop_assert_eq!(a, b);
        prop_assert_eq!(in_place, copied);
    }
}

/// A UDP checksum that comes out as zero is written as all ones by both ways of cutting.
#[test]
fn a_zero_udp_checksum_goes_out_as_ones() {
    // A 4-byte "UDP" region whose sum with the partial is 0xffff: the checksum computes to zero.
    let mut frame = vec![0u8; 8];
    frame[0..2].copy_from_slice(&0xff00u16.to_be_bytes());
    frame[6..8].copy_from_slice(&0x00ffu16.to_be_bytes()); // the partial sum in the field at offset 6
    let mut hdr = [0u8; VNET_HDR_LEN];
    hdr[0] = 1;
    hdr[8..10].copy_from_slice(&6u16.to_ne_bytes());
    let (a, in_place, b, copied) = both_ways(&hdr, &frame, 100);
    assert_eq!((a, b), (Ok(1), Ok(1)));
    assert_eq!(in_place, [vec![0xff, 0, 0, 0, 0, 0, 0xff, 0xff]]);
    assert_eq!(copied, in_place);
}

/// The coalescing as it was before the gathered writes (a copy of every payload): the oracle of the
/// gathering. Writes the train `frames` (as [`train_len`] found it, at least two) into `out` as one frame behind a virtio-net
/// header asking the kernel to cut it into TCP segments of the first one's size; returns the length written.
///
/// # Panics
/// Never for a train [`train_len`] accepted and an `out` of [`VNET_HDR_LEN`] + 65,549 bytes.
fn coalesce_reference<B: AsRef<[u8]>>(frames: &[B], out: &mut [u8]) -> usize {
    let first = frames[0].as_ref();
    let Some(s0) = segment(first, false) else { return 0 };
    let mut at = VNET_HDR_LEN;
    out[at..at + first.len()].copy_from_slice(first);
    at += first.len();
    let mut psh = 0;
    for f in &frames[1..] {
        let f = f.as_ref();
        let hdr = ETH + 20 + usize::from(f[ETH + 32] >> 4) * 4;
        out[at..at + f.len() - hdr].copy_from_slice(&f[hdr..]);
        at += f.len() - hdr;
        psh |= f[ETH + 33] & FLAG_PSH;
    }
    let frame = &mut out[VNET_HDR_LEN..at];
    let ip_total = (frame.len() - ETH) as u16;
    frame[ETH + 2..ETH + 4].copy_from_slice(&ip_total.to_be_bytes());
    frame[ETH + 10..ETH + 12].copy_from_slice(&[0, 0]);
    let ip_sum = checksum::checksum(&frame[ETH..ETH + 20]);
    frame[ETH + 10..ETH + 12].copy_from_slice(&ip_sum.to_be_bytes());
    frame[ETH + 33] |= psh;
    // CHECKSUM_PARTIAL: the field holds the pseudo-header sum, the kernel adds the segment's own.
    let tcp_len = (frame.len() - ETH - 20) as u16;
    let (src, dst) = (addr(&frame[ETH + 12..]), addr(&frame[ETH + 16..]));
    let pseudo = checksum::pseudo_header_ipv4(src, dst, 6, tcp_len);
    frame[ETH + 36..ETH + 38].copy_from_slice(&pseudo.to_be_bytes());
    let hdr = &mut out[..VNET_HDR_LEN];
    hdr[0] = 1; // VIRTIO_NET_HDR_F_NEEDS_CSUM
    hdr[1] = 1; // VIRTIO_NET_HDR_GSO_TCPV4
    hdr[2..4].copy_from_slice(&(s0.hdr_len as u16).to_ne_bytes());
    hdr[4..6].copy_from_slice(&(s0.payload as u16).to_ne_bytes());
    hdr[6..8].copy_from_slice(&((ETH + 20) as u16).to_ne_bytes());
    hdr[8..10].copy_from_slice(&16u16.to_ne_bytes());
    hdr[10..12].copy_from_slice(&[0, 0]);
    at
}

/// What one gathering write hands the TAP: the head and every payload, one after the other.
fn gathered<B: AsRef<[u8]>>(frames: &[B]) -> Vec<u8> {
    let mut head = [0u8; HEAD_ROOM];
    let n = coalesced_head(frames, &mut head);
    let mut out = head[..n].to_vec();
    for f in frames {
        out.extend_from_slice(payload(f.as_ref()));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The bytes a gathering write gives the TAP (and what `coalesce` copies) are the bytes the copying
    /// coalescing gave, for random trains: segment counts, sizes (odd ones too), a last short segment, PSH.
    #[test]
    fn gathering_gives_the_coalesced_frame(
        n in 2usize..70,
        mss in 1usize..1500,
        last in 1usize..1500,
        psh in any::<bool>(),
        seed in any::<u8>(),
    ) {
        let last = last.min(mss);
        let frames: Vec<Vec<u8>> = (0..n)
            .map(|i| {
                let len = if i + 1 == n { last } else { mss };
                let data: Vec<u8> = (0..len).map(|k| ((i * mss + k) as u8) ^ seed).collect();
                let flags = FLAG_ACK | if psh && i + 1 == n { FLAG_PSH } else { 0 };
                seg(1000 + (i * mss) as u32, &data, flags, 5)
            })
            .collect();
        let t = train_len(&frames, false);
        prop_assert!(t >= 2);
        let mut want = vec![0u8; COALESCE_ROOM];
        let len = coalesce_reference(&frames[..t], &mut want);
        want.truncate(len);
        prop_assert_eq!(&gathered(&frames[..t]), &want);
        let mut out = vec![0u8; COALESCE_ROOM];
        let len = coalesce(&frames[..t], &mut out);
        prop_assert_eq!(&out[..len], &want[..]);
    }

    /// Any UDP train, cut again as the kernel cuts it, gives back the datagrams it was made of, byte for byte.
    #[test]
    fn a_udp_train_cuts_back_into_its_datagrams(
        n in 2usize..70,
        size in 1usize..1473,
        last in 1usize..1473,
        id in any::<u16>(),
        df in any::<bool>(),
    ) {
        let frames = dgrams(n, size, last.min(size), id, df);
        let t = train_len(&frames, true);
        prop_assert!(t >= 2);
        let whole = gathered(&frames[..t]);
        let (hdr, frame) = whole.split_at(VNET_HDR_LEN);
        prop_assert_eq!(&kernel_cut_udp(hdr, frame), &frames[..t]);
    }
}

/// An Ethernet/IPv4/UDP datagram with full, correct checksums, IPv4 identification `id`, DF when `df`.
pub(super) fn dgram(id: u16, df: bool, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x0a, 0x58, 10, 244, 2, 2, 0x0a, 0x58, 10, 244, 2, 1, 0x08, 0x00];
    let total = (20 + UDP_HDR + payload.len()) as u16;
    f.extend_from_slice(&[
        0x45,
        0,
        0,
        0,
        0,
        0,
        if df { 0x40 } else { 0 },
        0,
        62,
        UDP,
        0,
        0,
        10,
        244,
        1,
        2,
        10,
        244,
        2,
        2,
    ]);
    f[ETH + 2..ETH + 4].copy_from_slice(&total.to_be_bytes());
    f[ETH + 4..ETH + 6].copy_from_slice(&id.to_be_bytes());
    let c = checksum::checksum(&f[ETH..ETH + 20]);
    f[ETH + 10..ETH + 12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&[0xc0, 0x01, 0x14, 0x51]);
    f.extend_from_slice(&(total - 20).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    udp_checksum(&mut f);
    f
}

/// Fills in the UDP checksum of an Ethernet/IPv4/UDP frame (0 is sent as 0xffff).
fn udp_checksum(f: &mut [u8]) {
    f[ETH + 26..ETH + 28].copy_from_slice(&[0, 0]);
    let udp = &f[ETH + 20..];
    let pseudo = checksum::pseudo_header_ipv4(addr(&f[ETH + 12..]), addr(&f[ETH + 16..]), UDP, udp.len() as u16);
    let c = match !checksum::sum_with(pseudo, udp) {
        0 => 0xffff,
        c => c,
    };
    f[ETH + 26..ETH + 28].copy_from_slice(&c.to_be_bytes());
}

/// `n` datagrams of one flow, `size` bytes each but the last (`last`), identifications counting up from `id`.
fn dgrams(n: usize, size: usize, last: usize, id: u16, df: bool) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let len = if i + 1 == n { last } else { size };
            let data: Vec<u8> = (0..len).map(|k| ((i * 7 + k) % 251) as u8).collect();
            dgram(id.wrapping_add(i as u16), df, &data)
        })
        .collect()
}

/// What the kernel does with a UDP_L4 frame when it must cut it (`__udp_gso_segment` under `inet_gso_segment`):
/// the payload in `gso_size` pieces, each behind the headers with its own IPv4 length, identification (the
/// first's plus its index), IPv4 checksum, UDP length and full UDP checksum.
fn kernel_cut_udp(hdr: &[u8], frame: &[u8]) -> Vec<Vec<u8>> {
    assert_eq!((hdr[0], hdr[1]), (1, GSO_UDP_L4), "NEEDS_CSUM, UDP_L4");
    let hdr_len = usize::from(u16::from_ne_bytes([hdr[2], hdr[3]]));
    let gso_size = usize::from(u16::from_ne_bytes([hdr[4], hdr[5]]));
    assert_eq!(u16::from_ne_bytes([hdr[6], hdr[7]]), (ETH + 20) as u16, "csum_start");
    assert_eq!(u16::from_ne_bytes([hdr[8], hdr[9]]), 6, "csum_offset");
    assert_eq!(hdr_len, ETH + 20 + UDP_HDR);
    // The partial checksum is the pseudo-header sum over the whole, as the kernel expects to adjust it.
    let whole = (frame.len() - ETH - 20) as u16;
    assert_eq!(u16::from_be_bytes([frame[ETH + 24], frame[ETH + 25]]), whole, "the whole's UDP length");
    let pseudo = checksum::pseudo_header_ipv4(addr(&frame[ETH + 12..]), addr(&frame[ETH + 16..]), UDP, whole);
    assert_eq!(u16::from_be_bytes([frame[ETH + 26], frame[ETH + 27]]), pseudo, "the pseudo-header sum");
    assert!(checksum::verify(&frame[ETH..ETH + 20]), "the whole's IPv4 checksum");
    let id = u16::from_be_bytes([frame[ETH + 4], frame[ETH + 5]]);
    frame[hdr_len..]
        .chunks(gso_size)
        .enumerate()
        .map(|(i, piece)| {
            let mut f = frame[..hdr_len].to_vec();
            f.extend_from_slice(piece);
            let total = (f.len() - ETH) as u16;
            f[ETH + 2..ETH + 4].copy_from_slice(&total.to_be_bytes());
            f[ETH + 4..ETH + 6].copy_from_slice(&id.wrapping_add(i as u16).to_be_bytes());
            f[ETH + 10..ETH + 12].copy_from_slice(&[0, 0]);
            let c = checksum::checksum(&f[ETH..ETH + 20]);
            f[ETH + 10..ETH + 12].copy_from_slice(&c.to_be_bytes());
            f[ETH + 24..ETH + 26].copy_from_slice(&(total - 20).to_be_bytes());
            udp_checksum(&mut f);
            f
        })
        .collect()
}

/// UDP datagrams of one flow coalesce only where the TAP takes UDP segmentation offload, into one frame that
/// the kernel cuts back into exactly the datagrams that were merged.
#[test]
fn udp_datagrams_of_one_flow_become_one_frame() {
    let frames = dgrams(10, 64, 20, 0xfffa, false);
    assert_eq!(train_len(&frames, false), 1, "no UDP without the kernel's USO");
    assert_eq!(train_len(&frames, true), 10);
    let whole = gathered(&frames);
    let (hdr, frame) = whole.split_at(VNET_HDR_LEN);
    assert_eq!(u16::from_ne_bytes([hdr[4], hdr[5]]), 64, "gso_size");
    assert_eq!(frame.len(), ETH + 28 + 9 * 64 + 20);
    assert_eq!(kernel_cut_udp(hdr, frame), frames, "identifications wrap from 0xffff to 0");
    let mut out = vec![0u8; COALESCE_ROOM];
    let len = coalesce(&frames, &mut out);
    assert_eq!(&out[..len], &whole[..], "copied as gathered");
}

/// Everything that must stop a UDP train does.
#[test]
fn udp_trains_stop_where_linux_would() {
    let t = dgrams(4, 100, 100, 7, false);
    let mut zero = t.clone();
    zero[2][ETH + 26..ETH + 28].copy_from_slice(&[0, 0]);
    assert_eq!(train_len(&zero, true), 2, "a datagram without a checksum");
    assert_eq!(train_len(&zero[2..], true), 1, "is written alone");
    let mut bad = t.clone();
    bad[1][ETH + 40] ^= 0x10;
    assert_eq!(train_len(&bad, true), 1, "a bad checksum");
    let mut gap = t.clone();
    gap[2] = dgram(7 + 3, false, &bad[2][ETH + 28..]);
    assert_eq!(train_len(&gap, true), 2, "an identification gap");
    let fixed: Vec<Vec<u8>> = (0..4).map(|i| dgram(9, false, &[i; 100])).collect();
    assert_eq!(train_len(&fixed, true), 1, "the same identification without DF");
    let fixed_df: Vec<Vec<u8>> = (0..4).map(|i| dgram(9, true, &[i; 100])).collect();
    assert_eq!(train_len(&fixed_df, true), 1, "the same identification with DF: the kernel's pieces would count up");
    let counting_df = dgrams(4, 100, 100, 9, true);
    assert_eq!(train_len(&counting_df, true), 4, "DF, counting up");
    let whole = gathered(&counting_df);
    assert_eq!(kernel_cut_udp(&whole[..VNET_HDR_LEN], &whole[VNET_HDR_LEN..]), counting_df);
    let mut short = t.clone();
    short[1] = dgram(8, false, &[1; 50]);
    assert_eq!(train_len(&short, true), 2, "a shorter datagram ends the train");
    let mut longer = t.clone();
    longer[2] = dgram(9, false, &[1; 101]);
    assert_eq!(train_len(&longer, true), 2, "a longer one does not join");
    let mut port = t.clone();
    port[1][ETH + 23] ^= 1;
    udp_checksum(&mut port[1]);
    assert_eq!(train_len(&port, true), 1, "another flow");
    let mut df = t.clone();
    df[1] = dgram(8, true, &[1; 100]);
    assert_eq!(train_len(&df, true), 1, "DF differs");
    let mut frag = t.clone();
    frag[0][ETH + 6] |= 0x20; // more fragments
    frag[0][ETH + 10..ETH + 12].copy_from_slice(&[0, 0]);
    let c = checksum::checksum(&frag[0][ETH..ETH + 20]);
    frag[0][ETH + 10..ETH + 12].copy_from_slice(&c.to_be_bytes());
    assert_eq!(train_len(&frag, true), 1, "a fragment");
    let mut lying = t.clone();
    lying[1][ETH + 25] -= 1; // a UDP length short of the IPv4 one
    udp_checksum(&mut lying[1]);
    assert_eq!(train_len(&lying, true), 1, "lengths that disagree");
    let empty: Vec<Vec<u8>> = (0..3).map(|i| dgram(i, false, &[])).collect();
    assert_eq!(train_len(&empty, true), 1, "no data");
    let mixed = [t[0].clone(), train(2, 100, 100).remove(0)];
    assert_eq!(train_len(&mixed, true), 1, "UDP then TCP");
    let many = dgrams(100, 10, 10, 0, false);
    assert_eq!(train_len(&many, true), MAX_SEGMENTS);
    let big = dgrams(64, 1472, 1472, 0, false);
    let n = train_len(&big, true);
    assert_eq!(n, (65_535 - 28) / 1472, "no more than an IPv4 packet holds");
    assert_eq!(kernel_cut_udp(&gathered(&big[..n])[..VNET_HDR_LEN], &gathered(&big[..n])[VNET_HDR_LEN..]), big[..n]);
}

/// A segment or datagram whose IPv4 header checksum does not verify is never merged (Linux's `inet_gro_receive`
/// flushes it too): the merged frame gets a new, good header checksum, which would vouch for a header nobody
/// checked. It goes alone, as it came, for the pod's kernel to drop.
#[test]
fn a_bad_ipv4_header_checksum_is_not_merged() {
    let mut tcp = train(3, 1000, 1000);
    tcp[1][ETH + 10] ^= 0x01;
    assert_eq!(train_len(&tcp, false), 1, "TCP");
    let mut udp = dgrams(3, 64, 64, 1, false);
    udp[2][ETH + 11] ^= 0x80;
    assert_eq!(train_len(&udp, true), 2, "UDP");
    assert_eq!(train_len(&udp[2..], true), 1);
}
