//! The figures: counters, bounded tables, top-N lists and the one-line headline.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::community_id::{self, Canonical, ICMP, ICMPV6, TCP, UDP};
use super::container::{ByteOrder, CaptureFormat, RawPacket};
use super::packet::{Decoded, decode};
use super::services::service_name;

/// Flows tracked at once (connections, one per 5-tuple, both directions merged).
pub(crate) const MAX_FLOWS: usize = 4096;
/// Hosts tracked for top talkers.
const MAX_HOSTS: usize = 4096;
/// Destination (protocol, port) pairs tracked.
const MAX_PORTS: usize = 4096;
/// SYN targets (address, port) tracked.
const MAX_SYN_TARGETS: usize = 4096;
/// Distinct (source, destination, port) SYN probes remembered, for scans and floods.
const MAX_PROBES: usize = 16_384;
/// Length of each top-N list.
const TOP: usize = 5;

/// A traffic summary of a capture file. Field names are stable (they are the JSON contract).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The file's format.
    pub format: CaptureFormat,
    /// The file's byte order.
    pub byte_order: ByteOrder,
    /// How much of the file was read, and why reading stopped.
    pub file: FileCoverage,
    /// Packets read.
    pub packets: u64,
    /// Bytes of those packets as they were on the wire.
    pub bytes: u64,
    /// Bytes of those packets the capture kept (less than `bytes` under a snap length).
    pub captured_bytes: u64,
    /// The earliest packet time (RFC 3339, UTC), if any packet has one.
    pub first_packet_time: Option<String>,
    /// The latest packet time (RFC 3339, UTC).
    pub last_packet_time: Option<String>,
    /// Seconds from the first packet to the last.
    pub duration_seconds: f64,
    /// Average packets per second (`None` when the duration is zero).
    pub packets_per_second: Option<f64>,
    /// Average bytes per second (`None` when the duration is zero).
    pub bytes_per_second: Option<f64>,
    /// Average packet size in bytes.
    pub average_packet_bytes: Option<f64>,
    /// Packets by network and transport protocol.
    pub protocols: ProtocolMix,
    /// Hosts that sent or received the most bytes (top 5).
    pub top_talkers: Vec<Talker>,
    /// Conversations (5-tuples, both directions merged) with the most bytes (top 5).
    pub top_conversations: Vec<Conversation>,
    /// Service ports (the port the conversation's initiator connected to) by packets (top 5).
    pub top_destination_ports: Vec<PortUse>,
    /// TCP handshake, teardown and trouble counters.
    pub tcp: TcpHealth,
    /// How full the bounded tables got.
    pub tables: TableUsage,
    /// The most likely story, in plain words.
    pub headline: String,
}

/// How much of the file was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileCoverage {
    /// Bytes read from the beginning of the file; for a damaged file, the bytes before the
    /// damage (whatever the reader had fed past it).
    pub bytes_seen: u64,
    /// The file's size, when known.
    pub bytes_total: Option<u64>,
    /// Reading stopped at the configured limit, or before the file's known size; the rest of
    /// the file was not summarised. Never set with `damaged`, which is then why reading stopped.
    pub stopped_at_limit: bool,
    /// The file ended inside a packet record (that packet is not counted).
    pub truncated: bool,
    /// Where and why the file stopped making sense, if it did (packets before it are counted).
    pub damaged: Option<String>,
}

/// Packet counts by protocol.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtocolMix {
    /// IPv4 packets.
    pub ipv4: u64,
    /// IPv6 packets.
    pub ipv6: u64,
    /// Packets that are not IP or whose link type is not decoded (ARP, unknown links).
    pub non_ip: u64,
    /// TCP packets.
    pub tcp: u64,
    /// UDP packets.
    pub udp: u64,
    /// ICMP (v4) packets.
    pub icmp: u64,
    /// ICMPv6 packets.
    pub icmpv6: u64,
    /// IP packets of any other transport.
    pub other_transport: u64,
}

/// A host and its traffic, both directions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Talker {
    /// The IP address.
    pub address: String,
    /// Bytes sent or received.
    pub bytes: u64,
    /// Packets sent or received.
    pub packets: u64,
}

/// One conversation: `a` is the side that spoke first (the client, when the handshake was seen).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    /// `tcp`, `udp`, `icmp`, `icmpv6`, or the IP protocol number.
    pub protocol: String,
    /// Initiator's address.
    pub a_address: String,
    /// Initiator's port (ICMP: the type), if the protocol has ports.
    pub a_port: Option<u16>,
    /// Responder's address.
    pub b_address: String,
    /// Responder's port (ICMP: the code or counterpart type).
    pub b_port: Option<u16>,
    /// Packets from `a` to `b`.
    pub packets_a_to_b: u64,
    /// Bytes from `a` to `b`.
    pub bytes_a_to_b: u64,
    /// Packets from `b` to `a`.
    pub packets_b_to_a: u64,
    /// Bytes from `b` to `a`.
    pub bytes_b_to_a: u64,
    /// Community ID v1 (seed 0), to find the flow in Zeek, Suricata or Sentinel.
    pub community_id: String,
}

/// A service port and the traffic to and from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortUse {
    /// `tcp` or `udp`.
    pub protocol: String,
    /// The port.
    pub port: u16,
    /// The well-known service name, if the port has one.
    pub service: Option<String>,
    /// Packets of conversations to this port, both directions.
    pub packets: u64,
    /// Bytes of those packets.
    pub bytes: u64,
}

/// TCP health counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpHealth {
    /// Connection attempts (SYN without ACK).
    pub syn: u64,
    /// Handshake answers (SYN with ACK).
    pub syn_ack: u64,
    /// SYNs to an address and port that never answered with as many SYN-ACKs (approximate).
    pub syn_unanswered: u64,
    /// Resets.
    pub rst: u64,
    /// FINs.
    pub fin: u64,
    /// Segments with payload whose bytes were already seen in the same direction of the same
    /// connection (approximate: out-of-order capture counts too).
    pub retransmissions: u64,
    /// Segments advertising a zero receive window (excluding resets and SYNs).
    pub zero_window: u64,
}

/// How full the bounded tables got: packets that did not fit are still counted everywhere else.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableUsage {
    /// Conversations tracked (at most 4,096).
    pub conversations: u64,
    /// Packets of conversations that did not fit in the table.
    pub conversation_overflow_packets: u64,
    /// Hosts tracked (at most 4,096).
    pub hosts: u64,
    /// Packets whose host did not fit in the table.
    pub host_overflow_packets: u64,
}

#[derive(Default)]
struct HostStats {
    bytes: u64,
    packets: u64,
}

struct Flow {
    /// The tuple of the first packet (community-id input, and the initiator's side).
    first_src: IpAddr,
    first_dst: IpAddr,
    first_ports: Option<(u16, u16)>,
    /// Whether the first packet's source is the canonical `lo` side.
    a_is_lo: bool,
    /// Packets and bytes from `lo` and from `hi`.
    packets: [u64; 2],
    bytes: [u64; 2],
    /// Highest sequence number end seen per direction (`lo`→`hi`, `hi`→`lo`).
    next_seq: [Option<u32>; 2],
    retransmissions: u64,
}

#[derive(Default)]
struct SynTarget {
    syns: u64,
    syn_acks: u64,
}

/// Running figures; `add` per packet, `finish` once.
#[derive(Default)]
pub(crate) struct Stats {
    packets: u64,
    bytes: u64,
    captured_bytes: u64,
    first_ts: Option<i128>,
    last_ts: Option<i128>,
    protocols: ProtocolMix,
    tcp: TcpHealth,
    data_segments: u64,
    hosts: HashMap<IpAddr, HostStats>,
    flows: HashMap<Canonical, Flow>,
    ports: HashMap<(u8, u16), HostStats>,
    syn_targets: HashMap<(IpAddr, u16), SynTarget>,
    probes: HashSet<(IpAddr, IpAddr, u16)>,
    tables: TableUsage,
}

/// `a` comes before `b` in TCP sequence space.
fn seq_before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

impl Stats {
    pub(crate) fn add(&mut self, p: &RawPacket<'_>) {
        let wire = u64::from(p.orig_len);
        self.packets += 1;
        self.bytes += wire;
        self.captured_bytes += p.data.len() as u64;
        if let Some(ts) = p.ts_nanos {
            self.first_ts = Some(self.first_ts.map_or(ts, |f| f.min(ts)));
            self.last_ts = Some(self.last_ts.map_or(ts, |l| l.max(ts)));
        }
        match p.link_type.and_then(|l| decode(l, p.data)) {
            Some(d) => self.add_ip(&d, wire),
            None => self.protocols.non_ip += 1,
        }
    }

    fn add_ip(&mut self, d: &Decoded, wire: u64) {
        if d.ipv6 {
            self.protocols.ipv6 += 1;
        } else {
            self.protocols.ipv4 += 1;
        }
        match d.proto {
            TCP => self.protocols.tcp += 1,
            UDP => self.protocols.udp += 1,
            ICMP => self.protocols.icmp += 1,
            ICMPV6 => self.protocols.icmpv6 += 1,
            _ => self.protocols.other_transport += 1,
        }
        for addr in [d.src, d.dst] {
            if let Some(h) = bounded_entry(&mut self.hosts, addr, MAX_HOSTS) {
                h.bytes += wire;
                h.packets += 1;
            } else {
                self.tables.host_overflow_packets += 1;
            }
        }

        let key = community_id::canonical(d.proto, d.src, d.dst, d.ports);
        // Direction index: 0 when the packet goes lo→hi.
        let dir = usize::from(key.swapped);
        let flow_key = Canonical { swapped: false, ..key };
        let known = self.flows.len();
        let flow = if known < MAX_FLOWS || self.flows.contains_key(&flow_key) {
            let is_syn_ack = d.tcp.as_ref().is_some_and(|t| t.syn && t.ack);
            Some(self.flows.entry(flow_key).or_insert_with(|| Flow {
                first_src: d.src,
                first_dst: d.dst,
                first_ports: d.ports,
                // A capture that starts at the SYN-ACK still names the client as `a`.
                a_is_lo: (dir == 0) != is_syn_ack,
                packets: [0; 2],
                bytes: [0; 2],
                next_seq: [None; 2],
                retransmissions: 0,
            }))
        } else {
            self.tables.conversation_overflow_packets += 1;
            None
        };

        // The service port: the port the initiator connected to.
        let service_port = match (&flow, d.ports) {
            (Some(f), Some((sp, dp))) => {
                let from_a = (dir == 0) == f.a_is_lo;
                Some(if from_a { dp } else { sp })
            }
            (None, Some((_, dp))) => Some(dp),
            _ => None,
        };

        if let Some(f) = flow {
            f.packets[dir] += 1;
            f.bytes[dir] += wire;
            if let Some(t) = &d.tcp
                && t.payload_len > 0
                && !t.syn
            {
                self.data_segments += 1;
                let end = t.seq.wrapping_add(t.payload_len);
                match f.next_seq[dir] {
                    Some(next) if !seq_before(next, end) => {
                        f.retransmissions += 1;
                        self.tcp.retransmissions += 1;
                    }
                    Some(next) if seq_before(next, end) => f.next_seq[dir] = Some(end),
                    Some(_) => {}
                    None => f.next_seq[dir] = Some(end),
                }
            }
        } else if d.tcp.as_ref().is_some_and(|t| t.payload_len > 0 && !t.syn) {
            self.data_segments += 1;
        }

        if matches!(d.proto, TCP | UDP)
            && let Some(port) = service_port
            && let Some(p) = bounded_entry(&mut self.ports, (d.proto, port), MAX_PORTS)
        {
            p.packets += 1;
            p.bytes += wire;
        }

        if let (Some(t), Some((sp, dp))) = (&d.tcp, d.ports) {
            if t.syn && !t.ack {
                self.tcp.syn += 1;
                if let Some(s) = bounded_entry(&mut self.syn_targets, (d.dst, dp), MAX_SYN_TARGETS) {
                    s.syns += 1;
                }
                if self.probes.len() < MAX_PROBES {
                    self.probes.insert((d.src, d.dst, dp));
                }
            }
            if t.syn && t.ack {
                self.tcp.syn_ack += 1;
                if let Some(s) = self.syn_targets.get_mut(&(d.src, sp)) {
                    s.syn_acks += 1;
                }
            }
            if t.rst {
                self.tcp.rst += 1;
            }
            if t.fin {
                self.tcp.fin += 1;
            }
            if t.window == 0 && !t.rst && !t.syn {
                self.tcp.zero_window += 1;
            }
        }
    }

    /// Entries of every table next to its cap, so tests can see that memory stays bounded.
    #[cfg(test)]
    pub(crate) fn table_fill(&self) -> [(usize, usize); 5] {
        [
            (self.hosts.len(), MAX_HOSTS),
            (self.flows.len(), MAX_FLOWS),
            (self.ports.len(), MAX_PORTS),
            (self.syn_targets.len(), MAX_SYN_TARGETS),
            (self.probes.len(), MAX_PROBES),
        ]
    }

    pub(crate) fn finish(mut self, format: CaptureFormat, byte_order: ByteOrder, file: FileCoverage) -> Summary {
        self.tcp.syn_unanswered = self.syn_targets.values().map(|s| s.syns.saturating_sub(s.syn_acks)).sum();
        self.tables.conversations = self.flows.len() as u64;
        self.tables.hosts = self.hosts.len() as u64;

        let duration_ns = match (self.first_ts, self.last_ts) {
            (Some(f), Some(l)) => l - f,
            _ => 0,
        };
        let duration_seconds = duration_ns as f64 / 1e9;
        let per_second = |n: u64| (duration_ns > 0).then(|| n as f64 / duration_seconds);

        let mut talkers: Vec<(&IpAddr, &HostStats)> = self.hosts.iter().collect();
        talkers.sort_by(|a, b| b.1.bytes.cmp(&a.1.bytes).then(b.1.packets.cmp(&a.1.packets)).then(a.0.cmp(b.0)));
        let top_talkers = talkers
            .iter()
            .take(TOP)
            .map(|(a, h)| Talker { address: a.to_string(), bytes: h.bytes, packets: h.packets })
            .collect();

        let mut flows: Vec<(&Canonical, &Flow)> = self.flows.iter().collect();
        flows.sort_by(|a, b| {
            let (ta, tb) = (a.1.bytes[0] + a.1.bytes[1], b.1.bytes[0] + b.1.bytes[1]);
            tb.cmp(&ta).then(a.0.cmp(b.0))
        });
        let top_conversations: Vec<Conversation> = flows.iter().take(TOP).map(|(k, f)| conversation(k, f)).collect();

        let mut ports: Vec<(&(u8, u16), &HostStats)> = self.ports.iter().collect();
        ports.sort_by(|a, b| b.1.packets.cmp(&a.1.packets).then(b.1.bytes.cmp(&a.1.bytes)).then(a.0.cmp(b.0)));
        let top_destination_ports = ports
            .iter()
            .take(TOP)
            .map(|((proto, port), s)| PortUse {
                protocol: proto_name(*proto),
                port: *port,
                service: service_name(*proto, *port).map(str::to_owned),
                packets: s.packets,
                bytes: s.bytes,
            })
            .collect();

        let headline = self.headline(&flows, duration_seconds);
        Summary {
            format,
            byte_order,
            file,
            packets: self.packets,
            bytes: self.bytes,
            captured_bytes: self.captured_bytes,
            first_packet_time: self.first_ts.and_then(rfc3339),
            last_packet_time: self.last_ts.and_then(rfc3339),
            duration_seconds,
            packets_per_second: per_second(self.packets),
            bytes_per_second: per_second(self.bytes),
            average_packet_bytes: (self.packets > 0).then(|| self.bytes as f64 / self.packets as f64),
            protocols: self.protocols,
            top_talkers,
            top_conversations,
            top_destination_ports,
            tcp: self.tcp,
            tables: self.tables,
            headline,
        }
    }

    /// The most likely story, most alarming first: a port scan, a SYN flood, retransmissions,
    /// resets, one dominant peer; else "nothing unusual".
    fn headline(&self, flows: &[(&Canonical, &Flow)], duration_seconds: f64) -> String {
        if self.packets == 0 {
            return "no packets: the capture file holds only its header".to_owned();
        }
        // Port scan: one source probing many ports of one destination.
        let mut pairs: HashMap<(IpAddr, IpAddr), u64> = HashMap::new();
        for (src, dst, _) in &self.probes {
            *pairs.entry((*src, *dst)).or_default() += 1;
        }
        if let Some(((src, dst), ports)) = pairs.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            && *ports >= 100
        {
            return format!("port scan: {src} tried {} ports on {dst}", thousands(*ports));
        }
        // SYN flood: many SYNs to one service, mostly unanswered.
        if let Some(((dst, port), t)) =
            self.syn_targets.iter().max_by(|a, b| a.1.syns.cmp(&b.1.syns).then(b.0.cmp(a.0)))
        {
            let unanswered = t.syns.saturating_sub(t.syn_acks);
            if t.syns >= 200 && unanswered * 2 >= t.syns {
                let sources: HashSet<IpAddr> =
                    self.probes.iter().filter(|(_, d, p)| d == dst && p == port).map(|(s, _, _)| *s).collect();
                let n = sources.len() as u64;
                return format!(
                    "{} SYNs to {} from {} source{}, {} % unanswered",
                    thousands(t.syns),
                    endpoint(dst, Some(*port)),
                    thousands(n),
                    if n == 1 { "" } else { "s" },
                    percent(unanswered, t.syns)
                );
            }
        }
        // Retransmissions: a tenth of data segments or more, named by the worst conversation.
        if self.tcp.retransmissions >= 10 && self.tcp.retransmissions * 10 >= self.data_segments {
            let mut line = format!(
                "{} TCP retransmissions ({} % of data segments)",
                thousands(self.tcp.retransmissions),
                percent(self.tcp.retransmissions, self.data_segments)
            );
            if let Some((k, f)) =
                flows.iter().max_by(|a, b| a.1.retransmissions.cmp(&b.1.retransmissions).then(b.0.cmp(a.0)))
            {
                let c = conversation(k, f);
                line.push_str(&format!(
                    ", most between {} and {}",
                    endpoint_str(&c.a_address, c.a_port),
                    endpoint_str(&c.b_address, c.b_port)
                ));
            }
            return line;
        }
        if self.tcp.rst >= 20 && self.tcp.rst * 5 >= self.protocols.tcp {
            return format!(
                "{} TCP resets ({} % of TCP packets)",
                thousands(self.tcp.rst),
                percent(self.tcp.rst, self.protocols.tcp)
            );
        }
        // One dominant peer: the responder of the conversation with most of the bytes.
        if let Some((k, f)) = flows.first() {
            let bytes = f.bytes[0] + f.bytes[1];
            if self.bytes > 0 && bytes * 2 > self.bytes && flows.len() > 1 {
                let c = conversation(k, f);
                return format!(
                    "one peer, {}, carried {} % of bytes",
                    endpoint_str(&c.b_address, c.b_port),
                    percent(bytes, self.bytes)
                );
            }
        }
        format!("nothing unusual: {} packets over {} s", thousands(self.packets), seconds(duration_seconds))
    }
}

fn conversation(k: &Canonical, f: &Flow) -> Conversation {
    let (lo_port, hi_port) = match k.ports {
        Some((l, h)) => (Some(l), Some(h)),
        None => (None, None),
    };
    let (a, ap, b, bp, a_dir) = if f.a_is_lo {
        (k.lo_addr, lo_port, k.hi_addr, hi_port, 0)
    } else {
        (k.hi_addr, hi_port, k.lo_addr, lo_port, 1)
    };
    Conversation {
        protocol: proto_name(k.proto),
        a_address: a.to_string(),
        a_port: ap,
        b_address: b.to_string(),
        b_port: bp,
        packets_a_to_b: f.packets[a_dir],
        bytes_a_to_b: f.bytes[a_dir],
        packets_b_to_a: f.packets[1 - a_dir],
        bytes_b_to_a: f.bytes[1 - a_dir],
        community_id: community_id::community_id_v1(0, k.proto, f.first_src, f.first_dst, f.first_ports),
    }
}

/// An entry of a capped map: existing keys always, new keys only while there is room.
fn bounded_entry<K: std::hash::Hash + Eq, V: Default>(map: &mut HashMap<K, V>, key: K, cap: usize) -> Option<&mut V> {
    if map.len() < cap || map.contains_key(&key) { Some(map.entry(key).or_default()) } else { None }
}

fn proto_name(proto: u8) -> String {
    match proto {
        TCP => "tcp".to_owned(),
        UDP => "udp".to_owned(),
        ICMP => "icmp".to_owned(),
        ICMPV6 => "icmpv6".to_owned(),
        n => n.to_string(),
    }
}

fn endpoint(addr: &IpAddr, port: Option<u16>) -> String {
    endpoint_str(&addr.to_string(), port)
}

fn endpoint_str(addr: &str, port: Option<u16>) -> String {
    match port {
        Some(p) if addr.contains(':') => format!("[{addr}]:{p}"),
        Some(p) => format!("{addr}:{p}"),
        None => addr.to_owned(),
    }
}

fn rfc3339(ns: i128) -> Option<String> {
    OffsetDateTime::from_unix_timestamp_nanos(ns).ok()?.format(&Rfc3339).ok()
}

/// `1234567` → `1,234,567`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Whole percent, rounded down (so "100 %" only ever means all of it).
fn percent(part: u64, whole: u64) -> u64 {
    if whole == 0 {
        return 0;
    }
    (u128::from(part) * 100 / u128::from(whole)) as u64
}

fn seconds(s: f64) -> String {
    if s >= 10.0 { thousands(s.round() as u64) } else { format!("{s:.1}") }
}
