//! `tweed bench` runs every workload (each checks its verdicts before timing and its drops after, failing with
//! exit code 1 if one is wrong) and prints a row for each; bad flags exit 2.

use std::process::{Command, Output};

fn tweed(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tweed")).args(args).output().expect("run the tweed binary")
}

#[test]
fn quick_bench_prints_every_row() {
    let o =
        tweed(&["bench", "--seconds", "0.05", "--peers", "50", "--routes", "2000", "--batch", "8", "--size", "128"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let text = String::from_utf8(o.stdout).expect("utf-8 stdout");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("128-byte frames, batches of 8, 50 peers, 2000 routes, 0.05 s per workload"),
        "{text}"
    );
    assert_eq!(lines[1].split_whitespace().collect::<Vec<_>>(), ["workload", "packets", "Mpps", "ns/packet"]);
    // The name column is 14 characters wide.
    let names: Vec<&str> = lines[2..].iter().map(|l| l.get(..14).unwrap_or(l).trim()).collect();
    assert_eq!(names, ["encap vxlan", "decap vxlan", "switch", "route lookup"], "{text}");
    for line in &lines[2..] {
        let fields: Vec<&str> = line.split_whitespace().rev().take(3).collect();
        let [ns, mpps, packets] = fields[..] else { panic!("{line}") };
        let packets: u64 = packets.parse().expect("packets");
        // Whole batches of 8, at least one round of 16 batches.
        assert!(packets >= 16 * 8 && packets.is_multiple_of(8), "{line}");
        let (mpps, ns): (f64, f64) = (mpps.parse().expect("Mpps"), ns.parse().expect("ns/packet"));
        assert!(ns > 0.0, "{line}");
        // Mpps is 1000 / (ns/packet). Both are rounded (to 0.01 and 0.1; a hair more is allowed for the float
        // arithmetic), and a starved run on a loaded machine may print 0.00 Mpps: compare within the rounding rather
        // than insist on a non-zero figure.
        let (low, high) = (1000.0 / (ns + 0.051) - 0.0051, 1000.0 / (ns - 0.051).max(f64::MIN_POSITIVE) + 0.0051);
        assert!((low..=high).contains(&mpps), "{line}");
    }
}

#[test]
fn bad_flags_exit_2_naming_the_flag() {
    for (args, flag) in [
        (&["bench", "--seconds", "0"][..], "--seconds"),
        (&["bench", "--seconds", "soon"], "--seconds"),
        (&["bench", "--batch", "0"], "--batch"),
        (&["bench", "--batch", "257"], "--batch"),
        (&["bench", "--size", "20"], "--size"),
        (&["bench", "--peers", "0"], "--peers"),
    ] {
        let o = tweed(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(flag), "{args:?}: {err}");
    }
}
