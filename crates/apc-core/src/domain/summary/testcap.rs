//! Test-only capture writer: builds Ethernet/IPv4/IPv6 packets and pcap/pcapng files by hand,
//! independently of the crates the reader uses, so the tests check the reader against the formats
//! as documented rather than against themselves.

use std::net::IpAddr;

/// TCP flag bits.
pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const ACK: u8 = 0x10;

fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in bytes.chunks(2) {
        let w = if c.len() == 2 { u16::from_be_bytes([c[0], c[1]]) } else { u16::from(c[0]) << 8 };
        sum += u32::from(w);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An Ethernet frame around an IP packet of `proto` carrying `l4`.
pub fn ip_frame(src: IpAddr, dst: IpAddr, proto: u8, l4: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            f.extend_from_slice(&[0x08, 0x00]);
            let total = (20 + l4.len()) as u16;
            let mut h = vec![0x45, 0];
            h.extend_from_slice(&total.to_be_bytes());
            h.extend_from_slice(&[0, 1, 0x40, 0, 64, proto, 0, 0]);
            h.extend_from_slice(&s.octets());
            h.extend_from_slice(&d.octets());
            let c = checksum(&h);
            h[10..12].copy_from_slice(&c.to_be_bytes());
            f.extend_from_slice(&h);
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            f.extend_from_slice(&[0x86, 0xdd]);
            f.extend_from_slice(&[0x60, 0, 0, 0]);
            f.extend_from_slice(&(l4.len() as u16).to_be_bytes());
            f.extend_from_slice(&[proto, 64]);
            f.extend_from_slice(&s.octets());
            f.extend_from_slice(&d.octets());
        }
        _ => panic!("mixed address families"),
    }
    f.extend_from_slice(l4);
    f
}

/// A TCP segment (checksum left zero: the reader does not verify it).
pub fn tcp(src: &str, sport: u16, dst: &str, dport: u16, flags: u8, seq: u32, payload: usize) -> Vec<u8> {
    tcp_win(src, sport, dst, dport, flags, seq, 64_240, payload)
}

/// A TCP segment advertising `window`.
#[allow(clippy::too_many_arguments)]
pub fn tcp_win(
    src: &str,
    sport: u16,
    dst: &str,
    dport: u16,
    flags: u8,
    seq: u32,
    window: u16,
    payload: usize,
) -> Vec<u8> {
    let mut t = Vec::with_capacity(20 + payload);
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&0u32.to_be_bytes());
    t.extend_from_slice(&[0x50, flags]);
    t.extend_from_slice(&window.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0]);
    t.resize(20 + payload, 0xab);
    ip_frame(src.parse().unwrap(), dst.parse().unwrap(), 6, &t)
}

/// A UDP datagram.
pub fn udp(src: &str, sport: u16, dst: &str, dport: u16, payload: usize) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.resize(8 + payload, 0xcd);
    ip_frame(src.parse().unwrap(), dst.parse().unwrap(), 17, &u)
}

/// An ICMP (v4 or v6, by address family) message of `ty`/`code`.
pub fn icmp(src: &str, dst: &str, ty: u8, code: u8) -> Vec<u8> {
    let s: IpAddr = src.parse().unwrap();
    let proto = if s.is_ipv6() { 58 } else { 1 };
    ip_frame(s, dst.parse().unwrap(), proto, &[ty, code, 0, 0, 0, 1, 0, 1])
}

/// How a file is written.
#[derive(Clone, Copy)]
pub enum Format {
    Pcap {
        big_endian: bool,
        nanos: bool,
    },
    /// pcapng with one Ethernet interface of `tsresol` (if_tsresol option value).
    Pcapng {
        big_endian: bool,
        tsresol: u8,
    },
}

/// Writes `packets` (time in nanoseconds since the epoch, Ethernet frame) as a capture file.
pub fn write(format: Format, packets: &[(i64, Vec<u8>)]) -> Vec<u8> {
    let big_endian = match format {
        Format::Pcap { big_endian, .. } | Format::Pcapng { big_endian, .. } => big_endian,
    };
    let u32b = |v: u32| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
    let u16b = |v: u16| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
    let mut out = Vec::new();
    match format {
        Format::Pcap { nanos, .. } => {
            out.extend_from_slice(&u32b(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }));
            out.extend_from_slice(&u16b(2));
            out.extend_from_slice(&u16b(4));
            out.extend_from_slice(&u32b(0));
            out.extend_from_slice(&u32b(0));
            out.extend_from_slice(&u32b(262_144));
            out.extend_from_slice(&u32b(1));
            for (ts, frame) in packets {
                let sec = (ts / 1_000_000_000) as u32;
                let ns = (ts % 1_000_000_000) as u32;
                out.extend_from_slice(&u32b(sec));
                out.extend_from_slice(&u32b(if nanos { ns } else { ns / 1000 }));
                out.extend_from_slice(&u32b(frame.len() as u32));
                out.extend_from_slice(&u32b(frame.len() as u32));
                out.extend_from_slice(frame);
            }
        }
        Format::Pcapng { tsresol, .. } => {
            let block = |out: &mut Vec<u8>, ty: u32, body: &[u8]| {
                let len = 12 + body.len() as u32;
                out.extend_from_slice(&u32b(ty));
                out.extend_from_slice(&u32b(len));
                out.extend_from_slice(body);
                out.extend_from_slice(&u32b(len));
            };
            // Section header: byte-order magic, version 1.0, section length unknown (-1).
            let mut shb = Vec::new();
            shb.extend_from_slice(&u32b(0x1a2b_3c4d));
            shb.extend_from_slice(&u16b(1));
            shb.extend_from_slice(&u16b(0));
            shb.extend_from_slice(&[0xff; 8]);
            block(&mut out, 0x0a0d_0d0a, &shb);
            // Interface description: Ethernet, snaplen, if_tsresol option, end of options.
            let mut idb = Vec::new();
            idb.extend_from_slice(&u16b(1));
            idb.extend_from_slice(&u16b(0));
            idb.extend_from_slice(&u32b(262_144));
            idb.extend_from_slice(&u16b(9));
            idb.extend_from_slice(&u16b(1));
            idb.extend_from_slice(&[tsresol, 0, 0, 0]);
            idb.extend_from_slice(&u16b(0));
            idb.extend_from_slice(&u16b(0));
            block(&mut out, 1, &idb);
            let units_per_s: i128 =
                if tsresol & 0x80 == 0 { 10i128.pow(u32::from(tsresol)) } else { 1i128 << (tsresol & 0x7f) };
            for (ts, frame) in packets {
                let units = (i128::from(*ts) * units_per_s / 1_000_000_000) as u64;
                let mut epb = Vec::new();
                epb.extend_from_slice(&u32b(0));
                epb.extend_from_slice(&u32b((units >> 32) as u32));
                epb.extend_from_slice(&u32b(units as u32));
                epb.extend_from_slice(&u32b(frame.len() as u32));
                epb.extend_from_slice(&u32b(frame.len() as u32));
                epb.extend_from_slice(frame);
                while epb.len() % 4 != 0 {
                    epb.push(0);
                }
                block(&mut out, 6, &epb);
            }
        }
    }
    out
}
