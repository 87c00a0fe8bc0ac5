//! Scenario tests: capture files built by `testcap`, summarised, asserted exactly.

use proptest::prelude::*;

use super::testcap::{ACK, FIN, Format, RST, SYN, icmp, tcp, tcp_win, udp, write};
use super::*;

const T0: i64 = 1_700_000_000_000_000_000; // 2023-11-14T22:13:20Z
const MS: i64 = 1_000_000;
const PCAP: Format = Format::Pcap { big_endian: false, nanos: false };

fn at(frames: Vec<Vec<u8>>) -> Vec<(i64, Vec<u8>)> {
    frames.into_iter().enumerate().map(|(i, f)| (T0 + i as i64 * 10 * MS, f)).collect()
}

fn summarize_chunks(bytes: &[u8], chunk: usize) -> Result<Summary, SummaryError> {
    let mut s = Summarizer::new(u64::MAX);
    for c in bytes.chunks(chunk.max(1)) {
        s.feed(c);
    }
    s.finish()
}

fn summarize(bytes: &[u8]) -> Summary {
    summarize_chunks(bytes, bytes.len().max(1)).expect("a summary")
}

fn wire(frames: &[(i64, Vec<u8>)]) -> u64 {
    frames.iter().map(|(_, f)| f.len() as u64).sum()
}

/// One download from 203.0.113.9:443 and ten DNS lookups.
fn heavy_talker() -> Vec<(i64, Vec<u8>)> {
    let (c, s) = ("10.0.0.4", "203.0.113.9");
    let mut f = vec![
        tcp(c, 50000, s, 443, SYN, 1000, 0),
        tcp(s, 443, c, 50000, SYN | ACK, 9000, 0),
        tcp(c, 50000, s, 443, ACK, 1001, 0),
    ];
    for i in 0..100u32 {
        f.push(tcp(s, 443, c, 50000, ACK, 9001 + i * 1400, 1400));
        if i % 2 == 1 {
            f.push(tcp(c, 50000, s, 443, ACK, 1001, 0));
        }
    }
    f.push(tcp(s, 443, c, 50000, FIN | ACK, 149_001, 0));
    f.push(tcp(c, 50000, s, 443, FIN | ACK, 1001, 0));
    for i in 0..10u16 {
        f.push(udp(c, 53000 + i, "168.63.129.16", 53, 40));
        f.push(udp("168.63.129.16", 53, c, 53000 + i, 120));
    }
    at(f)
}

#[test]
fn heavy_talker_names_the_peer_that_carried_the_bytes() {
    let pkts = heavy_talker();
    let s = summarize(&write(PCAP, &pkts));
    let total = wire(&pkts);
    let dns: u64 = 10 * (42 + 40) + 10 * (42 + 120);
    let flow = total - dns;
    assert_eq!(s.packets, pkts.len() as u64);
    assert_eq!(s.bytes, total);
    let pct = flow * 100 / total;
    assert_eq!(pct, 98);
    assert_eq!(s.headline, "one peer, 203.0.113.9:443, carried 98 % of bytes");
    assert_eq!(s.top_talkers[0], Talker { address: "10.0.0.4".into(), bytes: total, packets: 175 });
    assert_eq!(s.top_talkers[1].address, "203.0.113.9");
    assert_eq!(s.top_talkers[1].bytes, flow);
    assert_eq!(s.top_talkers[2].address, "168.63.129.16");
    let c = &s.top_conversations[0];
    assert_eq!(
        (c.protocol.as_str(), c.a_address.as_str(), c.a_port, c.b_address.as_str(), c.b_port),
        ("tcp", "10.0.0.4", Some(50000), "203.0.113.9", Some(443))
    );
    assert_eq!((c.packets_a_to_b, c.packets_b_to_a), (53, 102));
    assert_eq!(c.bytes_a_to_b + c.bytes_b_to_a, flow);
    assert_eq!(c.bytes_b_to_a, 102 * 54 + 100 * 1400);
    assert_eq!(
        c.community_id,
        community_id_v1(0, 6, "203.0.113.9".parse().unwrap(), "10.0.0.4".parse().unwrap(), Some((443, 50000)))
    );
    assert_eq!(s.top_conversations.len(), 5);
    let ports: Vec<_> = s
        .top_destination_ports
        .iter()
        .map(|p| (p.protocol.as_str(), p.port, p.service.as_deref(), p.packets))
        .collect();
    assert_eq!(ports, vec![("tcp", 443, Some("https"), 155), ("udp", 53, Some("dns"), 20)]);
    assert_eq!(
        s.tcp,
        TcpHealth { syn: 1, syn_ack: 1, syn_unanswered: 0, rst: 0, fin: 2, retransmissions: 0, zero_window: 0 }
    );
    assert_eq!(
        s.protocols,
        ProtocolMix { ipv4: 175, ipv6: 0, non_ip: 0, tcp: 155, udp: 20, icmp: 0, icmpv6: 0, other_transport: 0 }
    );
    assert_eq!(s.first_packet_time.as_deref(), Some("2023-11-14T22:13:20Z"));
    assert_eq!(s.last_packet_time.as_deref(), Some("2023-11-14T22:13:21.74Z"));
    assert!((s.duration_seconds - 1.74).abs() < 1e-9);
    assert!((s.packets_per_second.unwrap() - 175.0 / 1.74).abs() < 1e-6);
    assert_eq!(s.format, CaptureFormat::PcapMicroseconds);
    assert!(!s.file.truncated && !s.file.stopped_at_limit && s.file.damaged.is_none());
}

#[test]
fn syn_flood_counts_sources_and_unanswered_syns() {
    let mut f = Vec::new();
    for i in 0..500u32 {
        let src = format!("10.1.0.{}", i % 50 + 1);
        f.push(tcp(&src, 1024 + i as u16, "10.0.0.4", 22, SYN, i, 0));
        if i % 100 < 3 {
            f.push(tcp("10.0.0.4", 22, &src, 1024 + i as u16, SYN | ACK, 7, 0));
        }
    }
    let s = summarize(&write(PCAP, &at(f)));
    assert_eq!((s.tcp.syn, s.tcp.syn_ack, s.tcp.syn_unanswered), (500, 15, 485));
    assert_eq!(s.headline, "500 SYNs to 10.0.0.4:22 from 50 sources, 97 % unanswered");
    assert_eq!(s.top_destination_ports[0].port, 22);
    assert_eq!(s.top_destination_ports[0].service.as_deref(), Some("ssh"));
    assert_eq!(s.top_destination_ports[0].packets, 515);
    assert_eq!(s.top_talkers[0].address, "10.0.0.4");
}

#[test]
fn port_scan_names_scanner_target_and_port_count() {
    let mut f = Vec::new();
    for port in 1..=1024u16 {
        f.push(tcp("10.0.0.9", 40000, "10.0.0.4", port, SYN, 1, 0));
        let answer = if port == 22 || port == 443 { SYN | ACK } else { RST | ACK };
        f.push(tcp("10.0.0.4", port, "10.0.0.9", 40000, answer, 0, 0));
    }
    let s = summarize(&write(PCAP, &at(f)));
    assert_eq!(s.headline, "port scan: 10.0.0.9 tried 1,024 ports on 10.0.0.4");
    assert_eq!((s.tcp.syn, s.tcp.syn_ack, s.tcp.rst), (1024, 2, 1022));
    assert_eq!(s.tables.conversations, 1024);
}

#[test]
fn retransmissions_and_zero_windows_are_counted() {
    let (c, sv) = ("10.0.0.4", "10.0.0.5");
    let mut f = vec![
        tcp(c, 50001, sv, 8080, SYN, 0, 0),
        tcp(sv, 8080, c, 50001, SYN | ACK, 0, 0),
        tcp(c, 50001, sv, 8080, ACK, 1, 0),
    ];
    for i in 0..100u32 {
        f.push(tcp(c, 50001, sv, 8080, ACK, 1 + i * 1000, 1000));
        if i % 7 == 3 {
            // The same segment again: same flow, same sequence number, same payload.
            f.push(tcp(c, 50001, sv, 8080, ACK, 1 + i * 1000, 1000));
        }
        if i % 40 == 39 {
            f.push(tcp_win(sv, 8080, c, 50001, ACK, 1, 0, 0));
        }
    }
    let s = summarize(&write(PCAP, &at(f)));
    assert_eq!(s.tcp.retransmissions, 14);
    assert_eq!(s.tcp.zero_window, 2);
    assert_eq!(
        s.headline,
        "14 TCP retransmissions (12 % of data segments), most between 10.0.0.4:50001 and 10.0.0.5:8080"
    );
    assert_eq!(s.top_destination_ports[0].service.as_deref(), Some("http-alt"));
}

#[test]
fn ipv6_flows_and_icmpv6_echo_merge_both_directions() {
    let (a, b) = ("2001:db8::1", "2001:db8::2");
    let mut f = vec![tcp(a, 40000, b, 443, SYN, 0, 0), tcp(b, 443, a, 40000, SYN | ACK, 0, 0)];
    for i in 0..20u32 {
        f.push(tcp(b, 443, a, 40000, ACK, 1 + i * 1200, 1200));
    }
    f.push(icmp(a, b, 128, 0));
    f.push(icmp(b, a, 129, 0));
    let s = summarize(&write(PCAP, &at(f)));
    assert_eq!(s.protocols.ipv6, 24);
    assert_eq!((s.protocols.tcp, s.protocols.icmpv6), (22, 2));
    assert_eq!(s.headline, "one peer, [2001:db8::2]:443, carried 99 % of bytes");
    assert_eq!(s.top_conversations.len(), 2);
    let echo = &s.top_conversations[1];
    assert_eq!((echo.protocol.as_str(), echo.packets_a_to_b, echo.packets_b_to_a), ("icmpv6", 1, 1));
    assert_eq!(echo.a_address, "2001:db8::1");
    assert_eq!(echo.community_id, community_id_v1(0, 58, b.parse().unwrap(), a.parse().unwrap(), Some((129, 0))));
}

#[test]
fn a_file_of_zero_packets_says_so() {
    let s = summarize(&write(PCAP, &[]));
    assert_eq!(s.packets, 0);
    assert_eq!(s.headline, "no packets: the capture file holds only its header");
    assert_eq!(s.first_packet_time, None);
    assert_eq!(s.packets_per_second, None);
    assert!(s.top_talkers.is_empty());
}

#[test]
fn a_quiet_capture_is_nothing_unusual() {
    let f: Vec<_> = (0..40u16).map(|i| udp("10.0.0.4", 5000 + i, "10.0.0.5", 123, 48)).collect();
    let pkts: Vec<_> = f.into_iter().enumerate().map(|(i, f)| (T0 + i as i64 * 1_000 * MS, f)).collect();
    let s = summarize(&write(PCAP, &pkts));
    assert_eq!(s.headline, "nothing unusual: 40 packets over 39 s");
}

#[test]
fn a_truncated_last_packet_ends_the_summary_cleanly() {
    let pkts = heavy_talker();
    let mut bytes = write(PCAP, &pkts);
    bytes.truncate(bytes.len() - 100);
    let s = summarize(&bytes);
    assert!(s.file.truncated);
    assert_eq!(s.packets, pkts.len() as u64 - 1);
    assert_eq!(s.bytes, wire(&pkts[..pkts.len() - 1]));
}

#[test]
fn every_format_and_byte_order_gives_the_same_summary() {
    let pkts = heavy_talker();
    let want = summarize(&write(PCAP, &pkts));
    for format in [
        Format::Pcap { big_endian: true, nanos: false },
        Format::Pcap { big_endian: false, nanos: true },
        Format::Pcap { big_endian: true, nanos: true },
        Format::Pcapng { big_endian: false, tsresol: 6 },
        Format::Pcapng { big_endian: true, tsresol: 9 },
        Format::Pcapng { big_endian: false, tsresol: 3 },
    ] {
        let mut got = summarize(&write(format, &pkts));
        let expected_format = match format {
            Format::Pcap { nanos: true, .. } => CaptureFormat::PcapNanoseconds,
            Format::Pcap { .. } => CaptureFormat::PcapMicroseconds,
            Format::Pcapng { .. } => CaptureFormat::Pcapng,
        };
        let big = matches!(format, Format::Pcap { big_endian: true, .. } | Format::Pcapng { big_endian: true, .. });
        assert_eq!(got.format, expected_format);
        assert_eq!(got.byte_order, if big { ByteOrder::BigEndian } else { ByteOrder::LittleEndian });
        got.format = want.format;
        got.byte_order = want.byte_order;
        got.file.bytes_seen = want.file.bytes_seen;
        assert_eq!(got, want);
    }
}

#[test]
fn nanosecond_timestamps_keep_their_nanoseconds() {
    let pkts = vec![
        (T0 + 123, udp("10.0.0.1", 1, "10.0.0.2", 2, 0)),
        (T0 + 2_000_000_456, udp("10.0.0.1", 1, "10.0.0.2", 2, 0)),
    ];
    for format in [Format::Pcap { big_endian: true, nanos: true }, Format::Pcapng { big_endian: false, tsresol: 9 }] {
        let s = summarize(&write(format, &pkts));
        assert_eq!(s.first_packet_time.as_deref(), Some("2023-11-14T22:13:20.000000123Z"));
        assert_eq!(s.last_packet_time.as_deref(), Some("2023-11-14T22:13:22.000000456Z"));
        assert!((s.duration_seconds - 2.000000333).abs() < 1e-9);
    }
    // A binary resolution (2^-20 s) is decoded too.
    let s = summarize(&write(Format::Pcapng { big_endian: false, tsresol: 0x80 | 20 }, &pkts));
    assert_eq!(s.first_packet_time.as_deref(), Some("2023-11-14T22:13:20Z"));
}

#[test]
fn raw_ip_link_type_is_decoded() {
    let pkts = heavy_talker();
    let stripped: Vec<_> = pkts.iter().map(|(t, f)| (*t, f[14..].to_vec())).collect();
    let mut bytes = write(PCAP, &stripped);
    bytes[20..24].copy_from_slice(&101u32.to_le_bytes());
    let s = summarize(&bytes);
    assert_eq!(s.protocols.ipv4, 175);
    assert_eq!(s.top_conversations[0].b_port, Some(443));
}

#[test]
fn garbage_empty_and_short_files_are_typed_errors() {
    assert_eq!(summarize_chunks(b"<html>not a capture</html>", 5), Err(SummaryError::NotACapture));
    assert_eq!(summarize_chunks(b"", 1), Err(SummaryError::Empty));
    assert_eq!(summarize_chunks(&[0xd4, 0xc3, 0xb2], 1), Err(SummaryError::HeaderTruncated));
    assert_eq!(summarize_chunks(&write(PCAP, &[])[..20], 3), Err(SummaryError::HeaderTruncated));
    assert!(!SummaryError::NotACapture.retry_may_help());
    assert!(SummaryError::Empty.retry_may_help());
    // pcapng magic with no byte-order magic is not a capture.
    assert_eq!(summarize_chunks(&[0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 1, 2, 3, 4], 1), Err(SummaryError::NotACapture));
}

#[test]
fn a_lying_record_length_stops_the_summary_as_damaged() {
    let pkts = heavy_talker();
    let mut bytes = write(PCAP, &pkts[..3]);
    let at = bytes.len();
    bytes.extend_from_slice(&write(PCAP, &pkts[3..4])[24..]);
    bytes[at + 8..at + 12].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    let s = summarize(&bytes);
    assert_eq!(s.packets, 3);
    assert_eq!(
        s.file.damaged.as_deref(),
        Some(format!("a packet record claims more than 1 MiB (at byte {at})").as_str())
    );
}

#[test]
fn chunk_sizes_do_not_change_the_summary() {
    for format in [PCAP, Format::Pcapng { big_endian: true, tsresol: 6 }] {
        let bytes = write(format, &heavy_talker());
        let whole = summarize(&bytes);
        for chunk in [1, 7, 4096] {
            assert_eq!(summarize_chunks(&bytes, chunk).unwrap(), whole, "chunks of {chunk}");
        }
    }
}

#[test]
fn the_byte_limit_stops_reading_and_says_how_much_of_how_much() {
    let bytes = write(PCAP, &heavy_talker());
    let mut s = Summarizer::new(10_000);
    s.set_total_bytes(bytes.len() as u64);
    let mut wanted = true;
    for c in bytes.chunks(777) {
        wanted = s.feed(c);
    }
    assert!(!wanted);
    let s = s.finish().unwrap();
    assert_eq!((s.file.bytes_seen, s.file.bytes_total), (10_000, Some(bytes.len() as u64)));
    assert!(s.file.stopped_at_limit && !s.file.truncated);
    assert!(s.packets > 3 && s.packets < 175);
}

#[test]
fn the_flow_table_is_capped_and_counts_what_overflowed() {
    let f: Vec<_> =
        (0..5000u32).map(|i| udp(&format!("10.{}.{}.1", i / 256, i % 256), 4000, "10.0.0.4", 514, 10)).collect();
    let s = summarize(&write(PCAP, &at(f)));
    assert_eq!(s.tables.conversations, 4096);
    assert_eq!(s.tables.conversation_overflow_packets, 5000 - 4096);
    assert_eq!(s.tables.hosts, 4096);
    assert_eq!(s.top_destination_ports[0].packets, 5000);
    assert_eq!(s.top_destination_ports[0].service.as_deref(), Some("syslog"));
}

#[test]
fn damage_reads_the_same_whatever_the_chunks_and_limits() {
    // Found by the capture_summary fuzz target: a damaged file reported as many bytes seen as
    // the reader had fed past the damage, and "stopped at the limit" only when the damage and the
    // limit fell into one chunk, so one file gave different summaries for different chunk sizes.
    let pkts = heavy_talker();
    let mut bytes = write(PCAP, &pkts[..3]);
    let at = bytes.len();
    bytes.extend_from_slice(&write(PCAP, &pkts[3..4])[24..]);
    bytes[at + 8..at + 12].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    bytes.extend_from_slice(&[0x55; 300]);
    let limit = at as u64 + 100;
    let run = |chunk: usize| {
        let mut s = Summarizer::new(limit);
        s.set_total_bytes(bytes.len() as u64);
        for c in bytes.chunks(chunk) {
            if !s.feed(c) {
                break;
            }
        }
        s.finish().unwrap()
    };
    let whole = run(bytes.len());
    assert_eq!(whole.file.bytes_seen, at as u64);
    assert!(!whole.file.stopped_at_limit && !whole.file.truncated);
    assert_eq!(whole.file.damaged, Some(format!("a packet record claims more than 1 MiB (at byte {at})")));
    assert_eq!(whole.packets, 3);
    for chunk in [1, 16, 17, 100, at + 20] {
        assert_eq!(run(chunk), whole, "chunks of {chunk}");
    }
}

/// The capture_summary fuzz target's minimized crash c2a37637 (its 4 control bytes said: no
/// total size, `max_bytes` 176, chunks of 1 byte): a pcapng section whose next block is still
/// incomplete when the limit is reached.
const LIMIT_AT_A_CHUNK_END: [u8; 185] = [
    0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0x00, 0x00, 0x00, 0x4d, 0x3c, 0x2b, 0x1a, 0x7e, 0x01, 0x00, 0x00, 0xdb, 0xf6, 0x00,
    0x3f, 0xa5, 0x00, 0x00, 0xd4, 0xc3, 0xb2, 0xa1, 0x02, 0x00, 0x04, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x7c,
    0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x40, 0x06, 0x00, 0xf0, 0xf0, 0xf0, 0x32, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x3f, 0x00, 0x00, 0xd4, 0xc3, 0xb2, 0xa1, 0x02, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0xf1, 0x53, 0x65, 0x00, 0x00, 0x00,
    0x00, 0x36, 0x00, 0x00, 0x04, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x60, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x50, 0x02, 0xfa, 0xf0,
    0x00, 0x1c, 0x00, 0x00, 0x25, 0xfb, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff,
    0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x60, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x50, 0x02,
    0xfa, 0xf0, 0x00, 0x1c, 0x00, 0x00, 0x25, 0xfb, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00,
];

#[test]
fn reaching_the_limit_at_a_chunk_end_is_stopping_at_the_limit() {
    // A reader stops feeding once `feed` says no, so a limit reached at the end of a chunk never
    // saw a byte past it: that was reported as a file truncated by its writer, while the same
    // file fed in one piece said "stopped at the limit".
    let file = &LIMIT_AT_A_CHUNK_END;
    let run = |chunk: usize, total: Option<u64>| {
        let mut s = Summarizer::new(176);
        if let Some(t) = total {
            s.set_total_bytes(t);
        }
        for c in file.chunks(chunk) {
            if !s.feed(c) {
                break;
            }
        }
        s.finish().unwrap()
    };
    for total in [None, Some(file.len() as u64)] {
        let whole = run(file.len(), total);
        assert_eq!((whole.file.bytes_seen, whole.file.bytes_total), (176, total));
        assert!(whole.file.stopped_at_limit && !whole.file.truncated, "{:?}", whole.file);
        for chunk in [1, 2, 16, 176] {
            assert_eq!(run(chunk, total), whole, "chunks of {chunk}, total {total:?}");
        }
    }
    // A file that ends exactly at the limit is complete once its total size says so.
    let bytes = write(PCAP, &heavy_talker()[..3]);
    let mut s = Summarizer::new(bytes.len() as u64);
    s.set_total_bytes(bytes.len() as u64);
    assert!(!s.feed(&bytes));
    let s = s.finish().unwrap();
    assert!(!s.file.stopped_at_limit && !s.file.truncated);
    assert_eq!(s.packets, 3);
}

/// A pcap file of `n` TCP SYNs, each from a new source to a new destination and port, streamed
/// into a summariser in 64 KiB chunks without ever holding the file. Returns the table fill.
fn adversarial_flows(n: u32) -> (Summarizer, u64) {
    let mut s = Summarizer::new(u64::MAX);
    let mut buf = write(PCAP, &[]);
    let mut fed = 0u64;
    for i in 0..n {
        let src = std::net::Ipv4Addr::from(0x0a00_0000 | i);
        let dst = std::net::Ipv4Addr::from(0xac10_0000 ^ i.rotate_left(7));
        let mut t = Vec::with_capacity(20);
        t.extend_from_slice(&40000u16.to_be_bytes());
        t.extend_from_slice(&((i % 65_536) as u16).to_be_bytes());
        t.extend_from_slice(&i.to_be_bytes());
        t.extend_from_slice(&[0, 0, 0, 0, 0x50, SYN, 0xfa, 0xf0, 0, 0, 0, 0]);
        let frame = super::testcap::ip_frame(src.into(), dst.into(), 6, &t);
        let len = (frame.len() as u32).to_le_bytes();
        buf.extend_from_slice(&(1_700_000_000 + i / 1000).to_le_bytes());
        buf.extend_from_slice(&((i % 1000) * 1000).to_le_bytes());
        buf.extend_from_slice(&len);
        buf.extend_from_slice(&len);
        buf.extend_from_slice(&frame);
        if buf.len() >= 64 * 1024 {
            assert!(s.feed(&buf));
            fed += buf.len() as u64;
            buf.clear();
        }
    }
    s.feed(&buf);
    fed += buf.len() as u64;
    (s, fed)
}

#[test]
fn every_table_stays_at_its_cap_under_distinct_flows_hosts_ports_and_probes() {
    let n = 200_000;
    let (s, fed) = adversarial_flows(n);
    for (i, (len, cap)) in s.stats.table_fill().into_iter().enumerate() {
        assert_eq!(len, cap, "table {i} is not held at its cap");
    }
    let s = s.finish().unwrap();
    assert_eq!(s.file.bytes_seen, fed);
    assert_eq!((s.packets, s.tcp.syn, s.tcp.syn_unanswered), (u64::from(n), u64::from(n), 4096));
    assert_eq!(s.tables.conversations, 4096);
    assert_eq!(s.tables.conversation_overflow_packets, u64::from(n) - 4096);
    assert_eq!(s.tables.hosts, 4096);
    // Both ends of every packet: the first 2,048 packets filled the host table.
    assert_eq!(s.tables.host_overflow_packets, 2 * u64::from(n) - 4096);
}

/// Peak memory while summarising 5 million distinct flows; run with `cargo test --release -p
/// apc-core --lib summary::tests::adversarial_memory -- --ignored --nocapture` (Linux).
#[test]
#[ignore = "a measurement, not a check"]
fn adversarial_memory() {
    let peak = || {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        status.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_owned).unwrap_or_default()
    };
    for n in [10_000, 5_000_000] {
        let (s, fed) = adversarial_flows(n);
        let s = s.finish().unwrap();
        println!("{n} flows, {} MiB fed: {} packets; peak so far {}", fed >> 20, s.packets, peak());
    }
}

#[test]
fn the_summary_serializes_with_stable_field_names() {
    let v = serde_json::to_value(summarize(&write(PCAP, &heavy_talker()))).unwrap();
    for key in [
        "format",
        "byte_order",
        "file",
        "packets",
        "bytes",
        "first_packet_time",
        "last_packet_time",
        "duration_seconds",
        "packets_per_second",
        "bytes_per_second",
        "protocols",
        "top_talkers",
        "top_conversations",
        "top_destination_ports",
        "tcp",
        "tables",
        "headline",
    ] {
        assert!(v.get(key).is_some(), "{key}");
    }
    assert_eq!(v["format"], "pcap_microseconds");
    assert_eq!(v["tcp"]["syn_unanswered"], 0);
    assert_eq!(v["top_conversations"][0]["community_id"].as_str().unwrap().len(), 30);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048), chunk in 1usize..300) {
        let _ = summarize_chunks(&bytes, chunk);
    }

    #[test]
    fn arbitrary_records_behind_a_valid_header_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..4096),
        ng in any::<bool>(),
        big in any::<bool>(),
    ) {
        let format = if ng { Format::Pcapng { big_endian: big, tsresol: 6 } } else { Format::Pcap { big_endian: big, nanos: false } };
        let mut bytes = write(format, &heavy_talker()[..2]);
        bytes.extend_from_slice(&body);
        let s = summarize_chunks(&bytes, 64);
        prop_assert!(s.is_ok());
        prop_assert!(s.unwrap().packets >= 2);
    }
}

/// Throughput over an 8 MiB generated capture; run with
/// `cargo test --release -p apc-core --lib summary::tests::throughput -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a check"]
fn throughput() {
    let mut pkts = Vec::new();
    let mut i = 0u32;
    let mut size = 24usize;
    while size < 8 << 20 {
        let frame = match i % 4 {
            0 => tcp("10.0.0.4", 40000 + (i % 300) as u16, "203.0.113.9", 443, ACK, i * 1000, 1000),
            1 => tcp("203.0.113.9", 443, "10.0.0.4", 40000 + (i % 300) as u16, ACK, i * 1400, 1400),
            2 => udp(&format!("10.0.{}.{}", (i / 250) % 250, i % 250), 5353, "10.0.0.4", 53, 60),
            _ => tcp(&format!("10.2.{}.{}", (i / 250) % 250, i % 250), 50000, "10.0.0.4", 22, SYN, i, 0),
        };
        size += 16 + frame.len();
        pkts.push((T0 + i64::from(i) * MS, frame));
        i += 1;
    }
    let bytes = write(PCAP, &pkts);
    let start = std::time::Instant::now();
    let rounds = 5;
    for _ in 0..rounds {
        let s = summarize_chunks(&bytes, 64 * 1024).unwrap();
        assert_eq!(s.packets, pkts.len() as u64);
    }
    let secs = start.elapsed().as_secs_f64() / f64::from(rounds);
    let mib = bytes.len() as f64 / (1 << 20) as f64;
    println!(
        "summary throughput: {mib:.1} MiB, {} packets in {:.1} ms: {:.0} MiB/s",
        pkts.len(),
        secs * 1e3,
        mib / secs
    );
}
