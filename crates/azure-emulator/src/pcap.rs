//! The capture files the emulator serves: classic pcap (little-endian, microseconds,
//! Ethernet), written by hand, from a named traffic [`Scenario`]. Each file is a pure function of
//! the scenario and the capture's start time, so tests can assert exactly what it holds.
//!
//! IPv4 header checksums and TCP/UDP checksums are computed, so tools that check them see clean
//! packets.

use serde::{Deserialize, Serialize};

/// A named traffic scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// One peer carries most bytes: 203.0.113.9:443 sends 200 × 1,400-byte segments to
    /// 10.0.0.4:50000 (10.0.0.4 acknowledges every second one), plus 10 DNS queries from
    /// 10.0.0.4 to 168.63.129.16:53 and their answers.
    #[default]
    HeavyTalker,
    /// 300 SYNs to 10.0.0.4:22 from 300 sources (198.51.100.1 … 198.51.101.44, port 40000+i);
    /// only the first 10 are answered with a SYN-ACK.
    SynFlood,
    /// 203.0.113.50:61000 sends a SYN to each of ports 1 … 100 of 10.0.0.4; 22, 53 and 80 answer
    /// SYN-ACK (then RST from the scanner), the 97 others answer RST-ACK.
    PortScan,
    /// 10.0.0.4:51000 → 10.0.0.5:443, 50 data segments of 1,000 bytes; every fifth is sent twice
    /// (same sequence number), and the peer advertises a zero window three times.
    Retransmissions,
    /// IPv6: [2001:db8::4]:50100 ↔ [2001:db8::9]:443, a handshake and 40 × 1,200-byte segments
    /// from the server, plus 5 UDP datagrams to [2001:db8::53]:53.
    Ipv6,
}

impl Scenario {
    /// Every scenario.
    pub const ALL: [Scenario; 5] =
        [Scenario::HeavyTalker, Scenario::SynFlood, Scenario::PortScan, Scenario::Retransmissions, Scenario::Ipv6];

    /// The name used in the control API (`heavy_talker`, …).
    pub fn name(self) -> &'static str {
        match self {
            Scenario::HeavyTalker => "heavy_talker",
            Scenario::SynFlood => "syn_flood",
            Scenario::PortScan => "port_scan",
            Scenario::Retransmissions => "retransmissions",
            Scenario::Ipv6 => "ipv6",
        }
    }

    /// The scenario of that name.
    pub fn from_name(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// TCP flags.
const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

#[derive(Clone, Copy)]
enum Ip {
    V4([u8; 4]),
    V6([u8; 16]),
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> Ip {
    Ip::V4([a, b, c, d])
}

fn v6(last: u16) -> Ip {
    // 2001:db8::{last}
    let mut a = [0u8; 16];
    a[0..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    a[14..16].copy_from_slice(&last.to_be_bytes());
    Ip::V6(a)
}

/// One TCP segment's fields.
struct Tcp {
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
}

/// A pcap file being written.
struct Writer {
    out: Vec<u8>,
    /// Microseconds since the epoch of the next packet.
    t_us: i64,
}

impl Writer {
    fn new(start_unix: i64) -> Writer {
        let mut out = Vec::with_capacity(64 * 1024);
        out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&4u16.to_le_bytes());
        out.extend_from_slice(&0i32.to_le_bytes()); // thiszone
        out.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        out.extend_from_slice(&65_535u32.to_le_bytes()); // snaplen
        out.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
        Writer { out, t_us: start_unix.saturating_mul(1_000_000) }
    }

    /// Append one frame `step_us` after the previous one.
    fn frame(&mut self, step_us: i64, frame: &[u8]) {
        self.t_us = self.t_us.saturating_add(step_us);
        let secs = u32::try_from(self.t_us.div_euclid(1_000_000)).unwrap_or(0);
        let usecs = u32::try_from(self.t_us.rem_euclid(1_000_000)).unwrap_or(0);
        let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        self.out.extend_from_slice(&secs.to_le_bytes());
        self.out.extend_from_slice(&usecs.to_le_bytes());
        self.out.extend_from_slice(&len.to_le_bytes());
        self.out.extend_from_slice(&len.to_le_bytes());
        self.out.extend_from_slice(frame);
    }

    fn tcp(&mut self, step_us: i64, src: (Ip, u16), dst: (Ip, u16), tcp: Tcp, payload_len: usize) {
        let mut seg = Vec::with_capacity(20 + payload_len);
        seg.extend_from_slice(&src.1.to_be_bytes());
        seg.extend_from_slice(&dst.1.to_be_bytes());
        seg.extend_from_slice(&tcp.seq.to_be_bytes());
        seg.extend_from_slice(&tcp.ack.to_be_bytes());
        seg.push(5 << 4); // data offset: 5 words
        seg.push(tcp.flags);
        seg.extend_from_slice(&tcp.window.to_be_bytes());
        seg.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
        seg.extend((0..payload_len).map(|i| (i % 251) as u8));
        let frame = ip_frame(src.0, dst.0, 6, seg, 16);
        self.frame(step_us, &frame);
    }

    fn udp(&mut self, step_us: i64, src: (Ip, u16), dst: (Ip, u16), payload_len: usize) {
        let len = u16::try_from(8 + payload_len).unwrap_or(u16::MAX);
        let mut seg = Vec::with_capacity(8 + payload_len);
        seg.extend_from_slice(&src.1.to_be_bytes());
        seg.extend_from_slice(&dst.1.to_be_bytes());
        seg.extend_from_slice(&len.to_be_bytes());
        seg.extend_from_slice(&[0, 0]);
        seg.extend((0..payload_len).map(|i| (i % 241) as u8));
        let frame = ip_frame(src.0, dst.0, 17, seg, 6);
        self.frame(step_us, &frame);
    }
}

/// Ethernet + IP around a transport segment whose checksum sits at `csum_at`.
fn ip_frame(src: Ip, dst: Ip, proto: u8, mut seg: Vec<u8>, csum_at: usize) -> Vec<u8> {
    let mut frame = Vec::with_capacity(14 + 40 + seg.len());
    frame.extend_from_slice(&[0x00, 0x0d, 0x3a, 0x00, 0x00, 0x02]); // dst MAC
    frame.extend_from_slice(&[0x00, 0x0d, 0x3a, 0x00, 0x00, 0x01]); // src MAC
    let seg_len = u16::try_from(seg.len()).unwrap_or(u16::MAX);
    match (src, dst) {
        (Ip::V4(s), Ip::V4(d)) => {
            let mut pseudo = Vec::with_capacity(12);
            pseudo.extend_from_slice(&s);
            pseudo.extend_from_slice(&d);
            pseudo.extend_from_slice(&[0, proto]);
            pseudo.extend_from_slice(&seg_len.to_be_bytes());
            let c = checksum(&[&pseudo, &seg]);
            seg[csum_at..csum_at + 2].copy_from_slice(&c.to_be_bytes());
            frame.extend_from_slice(&[0x08, 0x00]);
            let mut h = [0u8; 20];
            h[0] = 0x45;
            h[2..4].copy_from_slice(&(20 + seg_len).to_be_bytes());
            h[6] = 0x40; // don't fragment
            h[8] = 64; // TTL
            h[9] = proto;
            h[12..16].copy_from_slice(&s);
            h[16..20].copy_from_slice(&d);
            let hc = checksum(&[&h]);
            h[10..12].copy_from_slice(&hc.to_be_bytes());
            frame.extend_from_slice(&h);
        }
        (Ip::V6(s), Ip::V6(d)) => {
            let mut pseudo = Vec::with_capacity(40);
            pseudo.extend_from_slice(&s);
            pseudo.extend_from_slice(&d);
            pseudo.extend_from_slice(&u32::from(seg_len).to_be_bytes());
            pseudo.extend_from_slice(&[0, 0, 0, proto]);
            let c = checksum(&[&pseudo, &seg]);
            seg[csum_at..csum_at + 2].copy_from_slice(&c.to_be_bytes());
            frame.extend_from_slice(&[0x86, 0xdd]);
            frame.extend_from_slice(&[0x60, 0, 0, 0]);
            frame.extend_from_slice(&seg_len.to_be_bytes());
            frame.push(proto);
            frame.push(64); // hop limit
            frame.extend_from_slice(&s);
            frame.extend_from_slice(&d);
        }
        // The scenarios never mix families.
        _ => return Vec::new(),
    }
    frame.extend_from_slice(&seg);
    frame
}

/// The Internet checksum (RFC 1071) over the concatenation of `parts`.
fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    let mut odd: Option<u8> = None;
    for part in parts {
        for &b in *part {
            match odd.take() {
                Some(hi) => sum += u32::from(u16::from_be_bytes([hi, b])),
                None => odd = Some(b),
            }
        }
    }
    if let Some(hi) = odd {
        sum += u32::from(u16::from_be_bytes([hi, 0]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // A computed UDP checksum of 0 is sent as 0xffff; harmless for TCP and IP.
    match !(sum as u16) {
        0 => 0xffff,
        c => c,
    }
}

/// The pcap file of `scenario` for a capture that started at `start_unix`.
pub fn capture_file(scenario: Scenario, start_unix: i64) -> Vec<u8> {
    let mut w = Writer::new(start_unix);
    play(&mut w, scenario);
    w.out
}

/// The file of `scenario` played again and again (each round later than the last, so time
/// only moves forward), cut after the last whole packet record that fits in `max_bytes` (at
/// least one round): a large capture of a known shape, for benchmarks.
pub fn scaled_capture_file(scenario: Scenario, start_unix: i64, max_bytes: usize) -> Vec<u8> {
    let mut w = Writer::new(start_unix);
    play(&mut w, scenario);
    w.out.reserve(max_bytes.saturating_sub(w.out.len()));
    // Every scenario has packets; an empty round would never fill the file.
    let mut more = w.out.len() > 24;
    while more {
        let mut at = w.out.len();
        play(&mut w, scenario);
        let played = w.out.len();
        // Keep the records that fit whole; stop at the first that does not.
        while let Some(header) = w.out.get(at + 8..at + 12) {
            let caplen = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
            if at + 16 + caplen > max_bytes {
                break;
            }
            at += 16 + caplen;
        }
        w.out.truncate(at);
        more = at == played;
    }
    w.out
}

/// The same packets as `classic` (a file of this module: little-endian pcap, microseconds) as
/// pcapng: a section header, one Ethernet interface (default microsecond resolution) and an
/// enhanced packet block per packet. What is not a whole record at the end is dropped.
pub fn to_pcapng(classic: &[u8]) -> Vec<u8> {
    fn block(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
        let padded = body.len().div_ceil(4) * 4;
        let total = u32::try_from(12 + padded).unwrap_or(u32::MAX);
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&total.to_le_bytes());
        out.extend_from_slice(body);
        out.resize(out.len() + padded - body.len(), 0);
        out.extend_from_slice(&total.to_le_bytes());
    }
    let u32_at = |at: usize| classic.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let mut out = Vec::with_capacity(classic.len() + classic.len() / 8);
    // Section header: byte-order magic, version 1.0, section length unknown.
    let mut shb = Vec::with_capacity(16);
    shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    block(&mut out, 0x0a0d_0d0a, &shb);
    // Interface 0: Ethernet, the classic file's snap length.
    let mut idb = Vec::with_capacity(8);
    idb.extend_from_slice(&1u16.to_le_bytes());
    idb.extend_from_slice(&0u16.to_le_bytes());
    idb.extend_from_slice(&u32_at(16).unwrap_or(65_535).to_le_bytes());
    block(&mut out, 1, &idb);
    let mut at = 24;
    while let (Some(secs), Some(usecs), Some(caplen), Some(len)) =
        (u32_at(at), u32_at(at + 4), u32_at(at + 8), u32_at(at + 12))
    {
        let Some(data) = classic.get(at + 16..at + 16 + caplen as usize) else { break };
        let ts = u64::from(secs) * 1_000_000 + u64::from(usecs);
        let mut epb = Vec::with_capacity(20 + data.len());
        epb.extend_from_slice(&0u32.to_le_bytes());
        epb.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ts as u32).to_le_bytes());
        epb.extend_from_slice(&caplen.to_le_bytes());
        epb.extend_from_slice(&len.to_le_bytes());
        epb.extend_from_slice(data);
        block(&mut out, 6, &epb);
        at += 16 + data.len();
    }
    out
}

fn play(w: &mut Writer, scenario: Scenario) {
    match scenario {
        Scenario::HeavyTalker => heavy_talker(w),
        Scenario::SynFlood => syn_flood(w),
        Scenario::PortScan => port_scan(w),
        Scenario::Retransmissions => retransmissions(w),
        Scenario::Ipv6 => ipv6(w),
    }
}

/// What a scenario's file holds, worked out by hand from its definition above: what a summary
/// of it must say. Shared by the native tests (apc-core) and the ones through the `.wasm`
/// (test-host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    /// The address with the most bytes.
    pub top_talker: &'static str,
    /// The top conversation's two ends (`address:port`), initiator first; the second is a
    /// prefix (the port scan's top conversation is to one of three ports).
    pub conversation: (&'static str, &'static str),
    /// The top destination port (any of these, when they tie).
    pub top_port: &'static [u16],
    /// TCP SYNs (without ACK).
    pub syn: u64,
    /// TCP SYN-ACKs.
    pub syn_ack: u64,
    /// TCP resets.
    pub rst: u64,
    /// SYNs never answered, where the scenario makes that unambiguous.
    pub syn_unanswered: Option<u64>,
    /// Retransmitted segments and zero-window advertisements, where the scenario has them.
    pub retransmissions_and_zero_windows: Option<(u64, u64)>,
    /// A piece of the headline (one line naming the story).
    pub headline: &'static str,
}

impl Scenario {
    /// What this scenario's file holds ([`Facts`]).
    pub fn facts(self) -> Facts {
        let one_connection = |top_talker, conversation, headline| Facts {
            top_talker,
            conversation,
            top_port: &[443],
            syn: 1,
            syn_ack: 1,
            rst: 0,
            syn_unanswered: None,
            retransmissions_and_zero_windows: None,
            headline,
        };
        match self {
            Scenario::HeavyTalker => {
                one_connection("10.0.0.4", ("10.0.0.4:50000", "203.0.113.9:443"), "203.0.113.9:443")
            }
            Scenario::SynFlood => Facts {
                top_talker: "10.0.0.4",
                conversation: ("198.51.100.1:40000", "10.0.0.4:22"),
                top_port: &[22],
                syn: 300,
                syn_ack: 10,
                rst: 0,
                syn_unanswered: Some(290),
                retransmissions_and_zero_windows: None,
                headline: "300 SYNs to 10.0.0.4:22 from 300 sources",
            },
            Scenario::PortScan => Facts {
                top_talker: "10.0.0.4",
                // The three open ports answered: their conversations are the largest.
                conversation: ("203.0.113.50:61000", "10.0.0.4:"),
                top_port: &[22, 53, 80],
                syn: 100,
                syn_ack: 3,
                rst: 100,
                syn_unanswered: None,
                retransmissions_and_zero_windows: None,
                headline: "port scan: 203.0.113.50 tried 100 ports on 10.0.0.4",
            },
            Scenario::Retransmissions => Facts {
                retransmissions_and_zero_windows: Some((10, 3)),
                ..one_connection("10.0.0.4", ("10.0.0.4:51000", "10.0.0.5:443"), "retransmi")
            },
            Scenario::Ipv6 => one_connection("2001:db8::4", ("2001:db8::4:50100", "2001:db8::9:443"), "2001:db8::9"),
        }
    }
}

fn heavy_talker(w: &mut Writer) {
    let vm = (v4(10, 0, 0, 4), 50_000);
    let server = (v4(203, 0, 113, 9), 443);
    w.tcp(1_000, vm, server, Tcp { seq: 1000, ack: 0, flags: SYN, window: 64_240 }, 0);
    w.tcp(20_000, server, vm, Tcp { seq: 5000, ack: 1001, flags: SYN | ACK, window: 65_535 }, 0);
    w.tcp(100, vm, server, Tcp { seq: 1001, ack: 5001, flags: ACK, window: 64_240 }, 0);
    let mut seq = 5001u32;
    for i in 0..200u32 {
        w.tcp(2_000, server, vm, Tcp { seq, ack: 1001, flags: ACK | PSH, window: 65_535 }, 1400);
        seq = seq.wrapping_add(1400);
        if i % 2 == 1 {
            w.tcp(50, vm, server, Tcp { seq: 1001, ack: seq, flags: ACK, window: 64_240 }, 0);
        }
        if i % 20 == 0 {
            let q = 53_000 + (i / 20) as u16;
            w.udp(300, (v4(10, 0, 0, 4), q), (v4(168, 63, 129, 16), 53), 40);
            w.udp(700, (v4(168, 63, 129, 16), 53), (v4(10, 0, 0, 4), q), 120);
        }
    }
    w.tcp(1_000, server, vm, Tcp { seq, ack: 1001, flags: FIN | ACK, window: 65_535 }, 0);
    w.tcp(100, vm, server, Tcp { seq: 1001, ack: seq.wrapping_add(1), flags: FIN | ACK, window: 64_240 }, 0);
}

fn syn_flood(w: &mut Writer) {
    let vm = (v4(10, 0, 0, 4), 22);
    for i in 0..300u32 {
        let n = 1 + i; // 1..=300 → 198.51.100.1 … 198.51.101.44
        let src = (v4(198, 51, 100 + (n / 256) as u8, (n % 256) as u8), 40_000 + i as u16);
        let seq = 0x1000_0000u32.wrapping_add(i.wrapping_mul(7919));
        w.tcp(500, src, vm, Tcp { seq, ack: 0, flags: SYN, window: 1024 }, 0);
        if i < 10 {
            let reply = Tcp { seq: 0x2000_0000 + i, ack: seq.wrapping_add(1), flags: SYN | ACK, window: 64_240 };
            w.tcp(100, vm, src, reply, 0);
        }
    }
}

fn port_scan(w: &mut Writer) {
    let scanner = v4(203, 0, 113, 50);
    let vm = v4(10, 0, 0, 4);
    for port in 1..=100u16 {
        let seq = 0x3000_0000u32 + u32::from(port);
        w.tcp(1_000, (scanner, 61_000), (vm, port), Tcp { seq, ack: 0, flags: SYN, window: 1024 }, 0);
        if matches!(port, 22 | 53 | 80) {
            let reply = Tcp { seq: 0x4000_0000, ack: seq + 1, flags: SYN | ACK, window: 64_240 };
            w.tcp(200, (vm, port), (scanner, 61_000), reply, 0);
            w.tcp(100, (scanner, 61_000), (vm, port), Tcp { seq: seq + 1, ack: 0, flags: RST, window: 0 }, 0);
        } else {
            w.tcp(200, (vm, port), (scanner, 61_000), Tcp { seq: 0, ack: seq + 1, flags: RST | ACK, window: 0 }, 0);
        }
    }
}

fn retransmissions(w: &mut Writer) {
    let vm = (v4(10, 0, 0, 4), 51_000);
    let peer = (v4(10, 0, 0, 5), 443);
    w.tcp(1_000, vm, peer, Tcp { seq: 7000, ack: 0, flags: SYN, window: 64_240 }, 0);
    w.tcp(500, peer, vm, Tcp { seq: 9000, ack: 7001, flags: SYN | ACK, window: 65_535 }, 0);
    w.tcp(100, vm, peer, Tcp { seq: 7001, ack: 9001, flags: ACK, window: 64_240 }, 0);
    let mut seq = 7001u32;
    for i in 0..50u32 {
        let seg = Tcp { seq, ack: 9001, flags: ACK | PSH, window: 64_240 };
        w.tcp(3_000, vm, peer, seg, 1000);
        if i % 5 == 4 {
            // No ACK came in time: the same segment again, 200 ms later.
            w.tcp(200_000, vm, peer, Tcp { seq, ack: 9001, flags: ACK | PSH, window: 64_240 }, 1000);
        }
        seq = seq.wrapping_add(1000);
        let window = if matches!(i, 10 | 20 | 30) { 0 } else { 65_535 };
        w.tcp(400, peer, vm, Tcp { seq: 9001, ack: seq, flags: ACK, window }, 0);
    }
}

fn ipv6(w: &mut Writer) {
    let client = (v6(4), 50_100);
    let server = (v6(9), 443);
    w.tcp(1_000, client, server, Tcp { seq: 100, ack: 0, flags: SYN, window: 64_800 }, 0);
    w.tcp(15_000, server, client, Tcp { seq: 800, ack: 101, flags: SYN | ACK, window: 64_800 }, 0);
    w.tcp(100, client, server, Tcp { seq: 101, ack: 801, flags: ACK, window: 64_800 }, 0);
    let mut seq = 801u32;
    for _ in 0..40 {
        w.tcp(2_500, server, client, Tcp { seq, ack: 101, flags: ACK | PSH, window: 64_800 }, 1200);
        seq = seq.wrapping_add(1200);
    }
    for i in 0..5u16 {
        w.udp(5_000, (v6(4), 52_000 + i), (v6(0x53), 53), 48);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_matches_rfc1071_example() {
        // RFC 1071 section 3: 0001 f203 f4f5 f6f7 sums to ddf2; the checksum is its complement.
        assert_eq!(checksum(&[&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]]), !0xddf2);
    }

    #[test]
    fn a_scaled_file_is_the_scenario_again_and_again_in_whole_records() {
        let one = capture_file(Scenario::HeavyTalker, 1_700_000_000);
        let big = scaled_capture_file(Scenario::HeavyTalker, 1_700_000_000, 1 << 20);
        // Within one largest record (16 + 1,454 bytes) of the limit, not over it.
        assert!(big.len() <= 1 << 20 && big.len() > (1 << 20) - 1470, "{}", big.len());
        assert_eq!(&big[..one.len()], &one[..]);
        // Whole records to the end, times never going back.
        let (mut at, mut last, mut records) = (24, 0u64, 0);
        while at < big.len() {
            let word = |i: usize| u64::from(u32::from_le_bytes(big[at + i..at + i + 4].try_into().unwrap()));
            let t = word(0) * 1_000_000 + word(4);
            assert!(t >= last);
            last = t;
            at += 16 + word(8) as usize;
            records += 1;
        }
        assert_eq!(at, big.len());
        assert!(records > 700, "{records}");
        // Too small for one round: one round all the same.
        assert_eq!(scaled_capture_file(Scenario::SynFlood, 0, 10), capture_file(Scenario::SynFlood, 0));
    }

    #[test]
    fn pcapng_holds_every_packet_of_the_classic_file() {
        let classic = capture_file(Scenario::SynFlood, 1_700_000_000);
        let ng = to_pcapng(&classic);
        assert_eq!(&ng[..4], &[0x0a, 0x0d, 0x0d, 0x0a]);
        // Walk the blocks: 1 section header, 1 interface, one packet per SYN and SYN-ACK.
        let (mut at, mut kinds) = (0, Vec::new());
        while at < ng.len() {
            let kind = u32::from_le_bytes(ng[at..at + 4].try_into().unwrap());
            let len = u32::from_le_bytes(ng[at + 4..at + 8].try_into().unwrap()) as usize;
            assert_eq!(len % 4, 0);
            assert_eq!(ng[at + len - 4..at + len], ng[at + 4..at + 8], "trailing length");
            kinds.push(kind);
            at += len;
        }
        assert_eq!(kinds[..2], [0x0a0d_0d0a, 1]);
        assert_eq!(kinds[2..].iter().filter(|k| **k == 6).count(), 310);
        // The first packet (after the 28-byte section header and 20-byte interface block):
        // its time in microseconds, split high/low.
        let ts = (u64::from(u32::from_le_bytes(ng[60..64].try_into().unwrap())) << 32)
            | u64::from(u32::from_le_bytes(ng[64..68].try_into().unwrap()));
        assert_eq!(ts, 1_700_000_000_000_500);
    }

    #[test]
    fn names_round_trip() {
        for s in Scenario::ALL {
            assert_eq!(Scenario::from_name(s.name()), Some(s));
        }
        assert_eq!(Scenario::from_name("nope"), None);
    }
}
