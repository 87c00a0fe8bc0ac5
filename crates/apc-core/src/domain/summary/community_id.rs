//! Community ID flow hashing, version 1 (corelight/community-id-spec): a SHA-1 over the seed and
//! the flow tuple in a canonical order, so both directions of a flow, and every tool that
//! implements the spec (Zeek, Suricata, Microsoft Sentinel), name the flow the same way.

use std::net::IpAddr;

use base64::Engine as _;
use sha1::{Digest as _, Sha1};

/// IP protocol numbers the spec treats specially.
pub(crate) const ICMP: u8 = 1;
pub(crate) const TCP: u8 = 6;
pub(crate) const UDP: u8 = 17;
pub(crate) const ICMPV6: u8 = 58;
pub(crate) const SCTP: u8 = 132;

/// The reply type of an ICMPv4 request type, or the request type of a reply (spec's table).
fn icmp4_counterpart(t: u16) -> Option<u16> {
    Some(match t {
        8 => 0,
        0 => 8,
        13 => 14,
        14 => 13,
        15 => 16,
        16 => 15,
        10 => 9,
        17 => 18,
        18 => 17,
        _ => return None,
    })
}

/// The same for ICMPv6 (echo, router and neighbour discovery, MLD, who-are-you, home agent).
fn icmp6_counterpart(t: u16) -> Option<u16> {
    Some(match t {
        128 => 129,
        129 => 128,
        133 => 134,
        134 => 133,
        135 => 136,
        136 => 135,
        130 => 131,
        131 => 130,
        139 => 140,
        140 => 139,
        144 => 145,
        145 => 144,
        _ => return None,
    })
}

/// A flow tuple in the spec's canonical order: `(lo_addr, lo_port)` first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Canonical {
    pub proto: u8,
    pub lo_addr: IpAddr,
    pub hi_addr: IpAddr,
    /// `None` for protocols without ports (their hash leaves the ports out).
    pub ports: Option<(u16, u16)>,
    /// Whether the packet's source is the `hi` side.
    pub swapped: bool,
}

fn addr_bytes(a: &IpAddr) -> ([u8; 16], usize) {
    let mut out = [0u8; 16];
    match a {
        IpAddr::V4(v4) => {
            out[..4].copy_from_slice(&v4.octets());
            (out, 4)
        }
        IpAddr::V6(v6) => (v6.octets(), 16),
    }
}

fn is_lt(a1: &IpAddr, a2: &IpAddr, p1: u16, p2: u16) -> bool {
    let (b1, n1) = addr_bytes(a1);
    let (b2, n2) = addr_bytes(a2);
    let (s1, s2) = (&b1[..n1], &b2[..n2]);
    s1 < s2 || (s1 == s2 && p1 < p2)
}

/// Orders a packet's tuple as the spec does. For ICMP and ICMPv6 `sport`/`dport` are the message
/// type and code; request and reply types map onto one port pair so both land in one flow.
pub(crate) fn canonical(proto: u8, src: IpAddr, dst: IpAddr, ports: Option<(u16, u16)>) -> Canonical {
    let (ports, one_way) = match (proto, ports) {
        (ICMP | ICMPV6, Some((ty, code))) => {
            let counterpart = if proto == ICMP { icmp4_counterpart(ty) } else { icmp6_counterpart(ty) };
            match counterpart {
                Some(c) => (Some((ty, c)), false),
                None => (Some((ty, code)), true),
            }
        }
        (TCP | UDP | SCTP, p) => (p, false),
        // Other protocols carry no ports in the hash.
        _ => (None, false),
    };
    let (sp, dp) = ports.unwrap_or((0, 0));
    if one_way || is_lt(&src, &dst, sp, dp) {
        Canonical { proto, lo_addr: src, hi_addr: dst, ports, swapped: false }
    } else {
        Canonical { proto, lo_addr: dst, hi_addr: src, ports: ports.map(|(s, d)| (d, s)), swapped: true }
    }
}

/// The Community ID v1 string (`1:` and the base64 of the SHA-1) of a packet's flow tuple.
/// For ICMP/ICMPv6, `ports` are `(type, code)`.
pub fn community_id_v1(seed: u16, proto: u8, src: IpAddr, dst: IpAddr, ports: Option<(u16, u16)>) -> String {
    of_canonical(seed, &canonical(proto, src, dst, ports))
}

pub(crate) fn of_canonical(seed: u16, c: &Canonical) -> String {
    let mut h = Sha1::new();
    h.update(seed.to_be_bytes());
    let (lo, n) = addr_bytes(&c.lo_addr);
    h.update(&lo[..n]);
    let (hi, n) = addr_bytes(&c.hi_addr);
    h.update(&hi[..n]);
    h.update([c.proto, 0]);
    if let Some((a, b)) = c.ports {
        h.update(a.to_be_bytes());
        h.update(b.to_be_bytes());
    }
    let digest = h.finalize();
    format!("1:{}", base64::engine::general_purpose::STANDARD.encode(digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Protocol, source, destination, ports (ICMP: type, code), expected ID.
    type Vector = (u8, &'static str, &'static str, Option<(u16, u16)>, &'static str);

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// The spec's published baseline (baseline/README.md tables and baseline_deflt.json).
    #[test]
    fn matches_the_spec_baseline_with_the_default_seed() {
        let cases: &[Vector] = &[
            (6, "1.2.3.4", "5.6.7.8", Some((1122, 3344)), "1:wCb3OG7yAFWelaUydu0D+125CLM="),
            (6, "5.6.7.8", "1.2.3.4", Some((3344, 1122)), "1:wCb3OG7yAFWelaUydu0D+125CLM="),
            (17, "1.2.3.4", "5.6.7.8", Some((1122, 3344)), "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg="),
            (17, "5.6.7.8", "1.2.3.4", Some((3344, 1122)), "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg="),
            (132, "1.2.3.4", "5.6.7.8", Some((1122, 3344)), "1:EKt4MsxuyaE6mL+hmrEkQ9csDD8="),
            (1, "1.2.3.4", "5.6.7.8", Some((8, 0)), "1:crodRHL2FEsHjbv3UkRrfbs4bZ0="),
            (1, "5.6.7.8", "1.2.3.4", Some((0, 0)), "1:crodRHL2FEsHjbv3UkRrfbs4bZ0="),
            (1, "1.2.3.4", "5.6.7.8", Some((11, 0)), "1:f/YiSyWqczrTgfUCZlBUnvHRcPk="),
            (
                58,
                "fe80:0001:0203:0405:0607:0809:0A0B:0C0D",
                "fe80:1011:1213:1415:1617:1819:1A1B:1C1D",
                Some((128, 0)),
                "1:0bf7hyMJUwt3fMED7z8LIfRpBeo=",
            ),
            (
                58,
                "fe80:1011:1213:1415:1617:1819:1A1B:1C1D",
                "fe80:0001:0203:0405:0607:0809:0A0B:0C0D",
                Some((129, 0)),
                "1:0bf7hyMJUwt3fMED7z8LIfRpBeo=",
            ),
            (
                58,
                "fe80:0001:0203:0405:0607:0809:0A0B:0C0D",
                "fe80:1011:1213:1415:1617:1819:1A1B:1C1D",
                Some((146, 0)),
                "1:fYC8+pz24E+EhANP1EZhpX0Dw10=",
            ),
            (46, "1.2.3.4", "5.6.7.8", None, "1:ikv3kmf89luf73WPz1jOs49S768="),
            (46, "5.6.7.8", "1.2.3.4", None, "1:ikv3kmf89luf73WPz1jOs49S768="),
            (
                46,
                "fe80:0001:0203:0405:0607:0809:0A0B:0C0D",
                "fe80:1011:1213:1415:1617:1819:1A1B:1C1D",
                None,
                "1:wQ/2mwrnXP4lmJcHdGL5ePjR+e0=",
            ),
            // From baseline_deflt.json (flows of the spec's combined.pcap).
            (6, "128.232.110.120", "66.35.250.204", Some((34855, 80)), "1:LQU9qZlK+B5F3KDmev6m5PMibrg="),
            (6, "66.35.250.204", "128.232.110.120", Some((80, 34855)), "1:LQU9qZlK+B5F3KDmev6m5PMibrg="),
            (17, "192.168.1.52", "8.8.8.8", Some((54585, 53)), "1:d/FP5EW3wiY1vCndhwleRRKHowQ="),
            (
                6,
                "2001:470:e5bf:dead:4957:2174:e82c:4887",
                "2607:f8b0:400c:c03::1a",
                Some((63943, 25)),
                "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=",
            ),
            (
                6,
                "2607:f8b0:400c:c03::1a",
                "2001:470:e5bf:dead:4957:2174:e82c:4887",
                Some((25, 63943)),
                "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=",
            ),
        ];
        for (proto, s, d, ports, want) in cases {
            assert_eq!(community_id_v1(0, *proto, ip(s), ip(d), *ports), *want, "{proto} {s} {d} {ports:?}");
        }
    }

    #[test]
    fn matches_the_spec_baseline_with_seed_one() {
        let cases: &[Vector] = &[
            (6, "1.2.3.4", "5.6.7.8", Some((1122, 3344)), "1:HhA1B+6CoLbiKPEs5nhNYN4XWfk="),
            (17, "5.6.7.8", "1.2.3.4", Some((3344, 1122)), "1:OShq+iKDAMVouh/4bMxB9Sz4amw="),
            (1, "5.6.7.8", "1.2.3.4", Some((0, 0)), "1:9pr4ZGTICiuZoIh90RRYE2RyXpU="),
            (1, "1.2.3.4", "5.6.7.8", Some((11, 0)), "1:1DD7cWGC/Yg91YGsQeni8du3pIA="),
            (
                58,
                "fe80:1011:1213:1415:1617:1819:1A1B:1C1D",
                "fe80:0001:0203:0405:0607:0809:0A0B:0C0D",
                Some((129, 0)),
                "1:IO27GQzPuCtNnwFvjWALMHu5tJE=",
            ),
            (46, "5.6.7.8", "1.2.3.4", None, "1:/buhqeOmaRCopOZFy9HnoJd5XW8="),
            (17, "8.8.8.8", "192.168.1.52", Some((53, 54585)), "1:Q9We8WO3piVF8yEQBNJF4uiSVrI="),
        ];
        for (proto, s, d, ports, want) in cases {
            assert_eq!(community_id_v1(1, *proto, ip(s), ip(d), *ports), *want, "{proto} {s} {d} {ports:?}");
        }
    }
}
