//! The reader on the kernel capture in every byte order and resolution, round trips through both formats, and
//! hostile files: truncated at every byte and corrupted header bytes give errors, never a panic.

use tweed_pcap::{Error, Format, Interface, LinkType, Reader, Record, Writer};

static CAPTURE: &[u8] = include_bytes!("../../../tests/data/kernel-flannel-vxlan.pcap");
const FILE_HEADER: usize = 24;
const RECORD_HEADER: usize = 16;

fn records(file: &[u8]) -> Result<Vec<Record<'_>>, Error> {
    Reader::new(file)?.collect()
}

/// The capture rewritten in big-endian byte order (and, optionally, with the nanosecond magic).
fn to_big_endian(file: &[u8], nano: bool) -> Vec<u8> {
    let mut out = file.to_vec();
    let magic: u32 = if nano { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
    out[0..4].copy_from_slice(&magic.to_be_bytes());
    out[4..6].reverse();
    out[6..8].reverse();
    for f in [8..12, 12..16, 16..20, 20..24] {
        out[f].reverse();
    }
    let mut offset = FILE_HEADER;
    while offset < out.len() {
        let len = u32::from_le_bytes(out[offset + 8..offset + 12].try_into().expect("4 bytes")) as usize;
        for f in 0..4 {
            out[offset + 4 * f..offset + 4 * f + 4].reverse();
        }
        offset += RECORD_HEADER + len;
    }
    out
}

#[test]
fn reads_the_kernel_capture() {
    let r = records(CAPTURE).expect("capture");
    assert_eq!(r.len(), 40);
    assert_eq!((r[0].number, r[0].data.len(), r[0].orig_len, r[0].link_type), (1, 0x94, 0x94, LinkType::ETHERNET));
    assert_eq!(&r[0].data[..6], &[0x62, 0xf5, 0xf9, 0xf2, 0x75, 0x3e]);
    assert_eq!(r[0].time_ns, 1_795_355_138_175_568_000);
    assert_eq!(r[39].time_ns, 1_795_355_138_893_585_000);
    let total: usize = r.iter().map(|r| RECORD_HEADER + r.data.len()).sum();
    assert_eq!(FILE_HEADER + total, CAPTURE.len());
}

#[test]
fn both_byte_orders_and_resolutions_read_the_same_frames() {
    let frames = |file: &[u8]| records(file).map(|r| r.iter().map(|r| r.data.to_vec()).collect::<Vec<_>>());
    let little = frames(CAPTURE).expect("little-endian");
    let mut nano_le = CAPTURE.to_vec();
    nano_le[0..4].copy_from_slice(&0xa1b2_3c4d_u32.to_le_bytes());
    assert_eq!(frames(&nano_le).expect("le ns"), little);
    assert_eq!(frames(&to_big_endian(CAPTURE, false)).expect("be"), little);
    assert_eq!(frames(&to_big_endian(CAPTURE, true)).expect("be ns"), little);
    let first_ns = |file: &[u8]| records(file).expect("capture")[0].time_ns;
    assert_eq!(first_ns(&nano_le), 1_795_355_138_000_175_568);
    assert_eq!(first_ns(&to_big_endian(CAPTURE, true)), 1_795_355_138_000_175_568);
    assert_eq!(first_ns(&to_big_endian(CAPTURE, false)), 1_795_355_138_175_568_000);
}

#[test]
fn header_errors() {
    assert!(matches!(Reader::new(&CAPTURE[..23]), Err(Error::ShortHeader { actual: 23 })));
    assert!(matches!(Reader::new(&[]), Err(Error::ShortHeader { actual: 0 })));
    let text = b"this is a text file, not a capture at all\n";
    let e = Reader::new(text).expect_err("text");
    assert!(matches!(e, Error::Magic { magic } if &magic == b"this"), "{e:?}");
    assert!(e.to_string().contains("74686973"), "{e}");
    let mut v = CAPTURE[..24].to_vec();
    v[4] = 1;
    assert_eq!(
        Reader::new(&v).expect_err("version").to_string(),
        "bad capture header: pcap version 1.4 (only 2.x exists)"
    );
    // FCS bits above the link type do not change it.
    let mut fcs = CAPTURE.to_vec();
    fcs[23] = 0x10;
    assert_eq!(records(&fcs).expect("fcs bits")[0].link_type, LinkType::ETHERNET);
    assert_eq!(records(&CAPTURE[..24]).expect("header alone").len(), 0);
}

#[test]
fn a_truncated_record_names_itself_and_stops_the_reader() {
    // Record 2 starts after the 24-byte header and record 1 (16 + 148).
    let cut = FILE_HEADER + RECORD_HEADER + 0x94 + RECORD_HEADER + 10;
    let mut r = Reader::new(&CAPTURE[..cut]).expect("header");
    assert_eq!(r.next().expect("record 1").expect("whole").number, 1);
    let e = r.next().expect("record 2").expect_err("truncated");
    assert_eq!(
        e.to_string(),
        "record 2 at byte 188 is truncated: it declares 148 captured bytes, the file has 10 left"
    );
    assert!(r.next().is_none(), "fused after an error");
    let mut huge = CAPTURE[..FILE_HEADER + RECORD_HEADER + 0x94].to_vec();
    huge[FILE_HEADER + 8..FILE_HEADER + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    let e = records(&huge).expect_err("lying length");
    assert_eq!(
        e.to_string(),
        "record 1 at byte 24 is truncated: it declares 4294967295 captured bytes, the file has 148 left"
    );
}

/// A pcapng file with two interfaces of different link types, comments and nanosecond times.
fn two_port_pcapng() -> Vec<u8> {
    let mut w = Writer::new(Vec::new(), Format::Pcapng).expect("section");
    let a = w.add_interface(&Interface::ethernet("pod-a").with_description("node 1, pod a")).expect("a");
    let tun = w.add_interface(&Interface { link_type: LinkType::RAW, ..Interface::ethernet("tun0") }).expect("tun");
    assert_eq!((a, tun), (0, 1));
    w.write(a, 1_000_000_123, &CAPTURE[40..40 + 0x94]).expect("frame 1");
    w.write_with(tun, 2_000_000_456, &[0x45, 0, 0, 20], Some(1500), Some("a snapped packet")).expect("frame 2");
    assert_eq!(w.frames(), 2);
    w.finish().expect("flush")
}

#[test]
fn pcapng_round_trip_keeps_interfaces_link_types_times_and_comments() {
    let file = two_port_pcapng();
    let mut r = Reader::new(&file).expect("section");
    assert!(r.is_pcapng());
    let first = r.next().expect("1").expect("ok");
    assert_eq!((first.interface, first.link_type, first.time_ns), (0, LinkType::ETHERNET, 1_000_000_123));
    assert_eq!(first.data, &CAPTURE[40..40 + 0x94]);
    assert_eq!(first.comment, None);
    let second = r.next().expect("2").expect("ok");
    assert_eq!((second.number, second.interface, second.link_type), (2, 1, LinkType::RAW));
    assert_eq!((second.time_ns, second.orig_len, second.data), (2_000_000_456, 1500, &[0x45, 0, 0, 20][..]));
    assert_eq!(second.comment, Some("a snapped packet"));
    assert!(r.next().is_none());
    let names: Vec<_> = r.interfaces().iter().map(|i| (i.name.clone(), i.description.clone())).collect();
    assert_eq!(names, [(Some("pod-a".into()), Some("node 1, pod a".into())), (Some("tun0".into()), None)]);
    assert_eq!(r.interfaces()[0].ticks_per_second, 1_000_000_000);
}

#[test]
fn pcap_round_trip_rounds_to_microseconds_and_refuses_a_second_link_type() {
    let mut w = Writer::new(Vec::new(), Format::Pcap).expect("pcap");
    let a = w.add_interface(&Interface::ethernet("a")).expect("a");
    let b = w.add_interface(&Interface::ethernet("b")).expect("b");
    let raw = Interface { link_type: LinkType::RAW, ..Interface::ethernet("tun") };
    assert!(matches!(w.add_interface(&raw), Err(Error::MixedLinkTypes)));
    assert!(matches!(w.write(7, 0, &[]), Err(Error::NoInterface { interface: 7 })));
    w.write(a, 1_795_355_138_175_568_999, &[1, 2, 3]).expect("a");
    w.write(b, 1_795_355_138_175_569_000, &[4]).expect("b");
    let file = w.finish().expect("flush");
    assert_eq!(&file[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "little-endian microsecond pcap");
    let r = records(&file).expect("pcap");
    let got: Vec<_> = r.iter().map(|r| (r.number, r.time_ns, r.data.to_vec())).collect();
    assert_eq!(got, [(1, 1_795_355_138_175_568_000, vec![1, 2, 3]), (2, 1_795_355_138_175_569_000, vec![4])]);
    // An empty classic capture still has its header.
    assert_eq!(Writer::new(Vec::new(), Format::Pcap).expect("pcap").finish().expect("flush").len(), 24);
}

#[test]
fn every_truncation_and_corruption_is_an_error_or_frames_inside_the_file() {
    let ng = two_port_pcapng();
    let pcap = &CAPTURE[..FILE_HEADER + 2 * (RECORD_HEADER + 0x94)];
    for file in [&ng[..], pcap] {
        for cut in 0..file.len() {
            if let Ok(r) = Reader::new(&file[..cut]) {
                for record in r {
                    let Ok(record) = record else { break };
                    assert!(record.data.len() <= cut, "cut {cut}");
                }
            }
        }
        for at in 0..file.len().min(200) {
            for value in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                let mut bad = file.to_vec();
                bad[at] = value;
                if let Ok(r) = Reader::new(&bad) {
                    let n = r.take_while(Result::is_ok).count();
                    assert!(n <= 2, "byte {at} = {value:#x}: {n} frames");
                }
            }
        }
    }
}
