//! The summary table of the demo: one row per backend, numbers right-aligned under their headers.

use std::fmt::Write as _;

use tweed_overlay::Counters;

use super::world::Traffic;

/// One backend's figures.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Row {
    /// The backend's name.
    pub(crate) backend: &'static str,
    /// What crossed the links, and the time the pipelines took.
    pub(crate) traffic: Traffic,
    /// The non-zero drop counters of all nodes, by name.
    pub(crate) drops: Vec<(&'static str, u64)>,
}

impl Row {
    /// The row of a backend's run.
    pub(crate) fn new(backend: &'static str, traffic: &Traffic, counters: &Counters) -> Self {
        Self { backend, traffic: traffic.clone(), drops: counters.nonzero_drops().collect() }
    }

    /// Bytes the backend added per underlay packet, on average.
    pub(crate) fn overhead_per_packet(&self) -> Option<f64> {
        let t = &self.traffic;
        (t.underlay_frames != 0)
            .then(|| t.underlay_bytes.saturating_sub(t.underlay_inner_bytes) as f64 / t.underlay_frames as f64)
    }

    /// Packets per second through `Node::process`.
    pub(crate) fn packets_per_sec(&self) -> Option<f64> {
        let secs = self.traffic.process_time.as_secs_f64();
        (secs > 0.0).then(|| self.traffic.processed as f64 / secs)
    }

    fn drops_text(&self) -> String {
        if self.drops.is_empty() {
            return "0".to_owned();
        }
        self.drops.iter().map(|(name, n)| format!("{name}={n}")).collect::<Vec<_>>().join(",")
    }
}

/// A rate with a unit prefix: `850 k`, `12.3 M`.
pub(crate) fn si(value: f64) -> String {
    if value >= 1e9 {
        format!("{:.1} G", value / 1e9)
    } else if value >= 1e6 {
        format!("{:.1} M", value / 1e6)
    } else if value >= 1e3 {
        format!("{:.0} k", value / 1e3)
    } else {
        format!("{value:.0}")
    }
}

/// A byte count: `1048576` → `1.0 MiB`, below 10 KiB in bytes.
pub(crate) fn bytes(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / f64::from(1u32 << 20))
    } else if n >= 10 << 10 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} B")
    }
}

/// The table: a header line, then one line per row; the last column (drops by name) is left-aligned.
pub(crate) fn table(rows: &[Row]) -> String {
    let headers = [
        "backend",
        "pod pkts",
        "pod bytes",
        "underlay pkts",
        "underlay bytes",
        "overhead/pkt",
        "pipeline pps",
        "drops",
    ];
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            [
                r.backend.to_owned(),
                r.traffic.pod_frames.to_string(),
                bytes(r.traffic.pod_bytes),
                r.traffic.underlay_frames.to_string(),
                bytes(r.traffic.underlay_bytes),
                r.overhead_per_packet().map_or_else(|| "-".to_owned(), |o| format!("{o:.0} B")),
                r.packets_per_sec().map_or_else(|| "-".to_owned(), |p| format!("{}/s", si(p))),
                r.drops_text(),
            ]
        })
        .collect();
    let mut widths = headers.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut s = String::new();
    let line = |s: &mut String, row: &[&str]| {
        s.push_str("  ");
        for (i, (c, w)) in row.iter().zip(widths).enumerate() {
            let _ = match i {
                0 => write!(s, "{c:<w$}"),
                7 => write!(s, "  {c}"),
                _ => write!(s, "  {c:>w$}"),
            };
        }
        s.push('\n');
    };
    line(&mut s, &headers);
    for row in &cells {
        line(&mut s, &row.each_ref().map(String::as_str));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn row() -> Row {
        Row {
            backend: "vxlan",
            traffic: Traffic {
                pod_frames: 10,
                pod_bytes: 1000,
                underlay_frames: 4,
                underlay_bytes: 600,
                underlay_inner_bytes: 400,
                processed: 2_000_000,
                process_time: Duration::from_millis(250),
            },
            drops: vec![],
        }
    }

    #[test]
    fn test_overhead_and_rate() {
        let r = row();
        assert_eq!(r.overhead_per_packet(), Some(50.0));
        assert_eq!(r.packets_per_sec(), Some(8e6));
        let mut idle = row();
        idle.traffic.underlay_frames = 0;
        idle.traffic.process_time = Duration::ZERO;
        assert_eq!((idle.overhead_per_packet(), idle.packets_per_sec()), (None, None));
    }

    #[test]
    fn test_units() {
        assert_eq!(si(8e6), "8.0 M");
        assert_eq!(si(850_400.0), "850 k");
        assert_eq!(si(12.0), "12");
        assert_eq!(bytes(1 << 20), "1.0 MiB");
        assert_eq!(bytes(20 * 1024), "20.0 KiB");
        assert_eq!(bytes(9000), "9000 B");
    }

    #[test]
    fn test_table_aligns_and_names_drops() {
        let mut dropped = row();
        dropped.backend = "host-gw";
        dropped.drops = vec![("no_route", 2), ("ttl_expired", 1)];
        let t = table(&[row(), dropped]);
        let lines: Vec<_> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[0],
            "  backend  pod pkts  pod bytes  underlay pkts  underlay bytes  overhead/pkt  pipeline pps  drops"
        );
        assert_eq!(
            lines[1],
            "  vxlan          10     1000 B              4           600 B          50 B       8.0 M/s  0"
        );
        assert!(lines[2].starts_with("  host-gw        10") && lines[2].ends_with("  no_route=2,ttl_expired=1"));
    }
}
