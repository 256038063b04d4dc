//! Names for numbers: ICMP types and codes, IPv4 options, IP protocols, EtherTypes, TCP flags.

/// An ICMP type's name, as tcpdump and Wireshark say it.
#[must_use]
pub const fn icmp_type(kind: u8) -> &'static str {
    match kind {
        0 => "echo reply",
        3 => "destination unreachable",
        4 => "source quench",
        5 => "redirect",
        8 => "echo request",
        9 => "router advertisement",
        10 => "router solicitation",
        11 => "time exceeded",
        12 => "parameter problem",
        13 => "timestamp request",
        14 => "timestamp reply",
        _ => "unknown type",
    }
}

/// An ICMP code's name for its type, or `None` when the type has one meaning only.
#[must_use]
pub const fn icmp_code(kind: u8, code: u8) -> Option<&'static str> {
    Some(match (kind, code) {
        (3, 0) => "net unreachable",
        (3, 1) => "host unreachable",
        (3, 2) => "protocol unreachable",
        (3, 3) => "port unreachable",
        (3, 4) => "fragmentation needed",
        (3, 5) => "source route failed",
        (3, 6) => "destination network unknown",
        (3, 7) => "destination host unknown",
        (3, 9) => "network administratively prohibited",
        (3, 10) => "host administratively prohibited",
        (3, 13) => "communication administratively prohibited",
        (5, 0) => "for network",
        (5, 1) => "for host",
        (5, 2) => "for tos and network",
        (5, 3) => "for tos and host",
        (11, 0) => "ttl exceeded in transit",
        (11, 1) => "fragment reassembly time exceeded",
        (12, 0) => "pointer indicates the error",
        (12, 1) => "missing a required option",
        (12, 2) => "bad length",
        (3 | 5 | 11 | 12, _) => "unknown code",
        _ => return None,
    })
}

/// An IPv4 option's short name (RFC 791 and the IANA registry).
#[must_use]
pub const fn ipv4_option(kind: u8) -> &'static str {
    match kind {
        0 => "eol",
        1 => "nop",
        7 => "rr",
        68 => "ts",
        130 => "sec",
        131 => "lsrr",
        136 => "sid",
        137 => "ssrr",
        148 => "ra",
        _ => "unknown",
    }
}

/// An IP protocol's name, lowercase.
#[must_use]
pub const fn ip_proto(proto: u8) -> &'static str {
    match proto {
        1 => "icmp",
        2 => "igmp",
        4 => "ipip",
        6 => "tcp",
        17 => "udp",
        41 => "ipv6",
        47 => "gre",
        50 => "esp",
        132 => "sctp",
        _ => "proto",
    }
}

/// An EtherType's name.
#[must_use]
pub const fn ethertype(etype: u16) -> &'static str {
    match etype {
        0x0800 => "IPv4",
        0x0806 => "ARP",
        0x8100 => "802.1Q",
        0x88a8 => "802.1ad",
        0x86dd => "IPv6",
        0x88cc => "LLDP",
        _ => "unknown",
    }
}

/// TCP flags as tcpdump prints them: `S` SYN, `F` FIN, `R` RST, `P` PSH, `.` ACK, `U` URG, `E` ECE, `W` CWR.
pub fn tcp_flags(flags: u16, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
    const BITS: [(u16, char); 8] =
        [(0x02, 'S'), (0x01, 'F'), (0x04, 'R'), (0x08, 'P'), (0x10, '.'), (0x20, 'U'), (0x40, 'E'), (0x80, 'W')];
    if flags & 0xff == 0 {
        return f.write_str("none");
    }
    for (bit, c) in BITS {
        if flags & bit != 0 {
            core::fmt::Write::write_char(f, c)?;
        }
    }
    Ok(())
}
