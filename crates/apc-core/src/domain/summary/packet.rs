//! One packet's headers, as far as the summary needs them, through `etherparse`'s lax slicing
//! (snap-length cuts and odd padding still give the headers that are there).

use std::net::IpAddr;

use etherparse::{EtherType, LaxNetSlice, LaxSlicedPacket, TransportSlice};

/// What a packet says about itself.
pub(crate) struct Decoded {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ipv6: bool,
    /// IP protocol number of the transport (after IPv6 extension headers).
    pub proto: u8,
    /// Source and destination ports; ICMP type and code.
    pub ports: Option<(u16, u16)>,
    pub tcp: Option<TcpInfo>,
}

/// The TCP header fields the health figures use.
pub(crate) struct TcpInfo {
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
    pub seq: u32,
    pub window: u16,
    /// Payload length as the IP header declares it (a snap-length cut does not hide it).
    pub payload_len: u32,
}

/// Link types: Ethernet, BSD loopback, raw IP (101, 228 IPv4, 229 IPv6), Linux cooked v1 and v2.
const ETHERNET: u32 = 1;
const NULL: u32 = 0;
const LOOP: u32 = 108;
const RAW: u32 = 101;
const IPV4: u32 = 228;
const IPV6: u32 = 229;
const LINUX_SLL: u32 = 113;
const LINUX_SLL2: u32 = 276;

/// Decodes an IP packet behind a known link layer; `None` for anything else (ARP, unknown links).
pub(crate) fn decode(link_type: u32, data: &[u8]) -> Option<Decoded> {
    let sliced = match link_type {
        ETHERNET => LaxSlicedPacket::from_ethernet(data).ok()?,
        RAW | IPV4 | IPV6 => LaxSlicedPacket::from_ip(data).ok()?,
        LINUX_SLL => {
            let proto = u16::from_be_bytes([*data.get(14)?, *data.get(15)?]);
            LaxSlicedPacket::from_ether_type(EtherType(proto), data.get(16..)?)
        }
        LINUX_SLL2 => {
            let proto = u16::from_be_bytes([*data.first()?, *data.get(1)?]);
            LaxSlicedPacket::from_ether_type(EtherType(proto), data.get(20..)?)
        }
        // The address family is in the writer's byte order; IPv4 is 2 everywhere, IPv6 varies.
        NULL | LOOP => LaxSlicedPacket::from_ip(data.get(4..)?).ok()?,
        _ => return None,
    };
    let (src, dst, ipv6, payload, declared_payload) = match sliced.net.as_ref()? {
        LaxNetSlice::Ipv4(v4) => {
            let h = v4.header();
            let declared = usize::from(h.total_len()).saturating_sub(usize::from(h.ihl()) * 4);
            (IpAddr::from(h.source()), IpAddr::from(h.destination()), false, v4.payload(), declared)
        }
        LaxNetSlice::Ipv6(v6) => {
            let h = v6.header();
            let declared = usize::from(h.payload_length()).saturating_sub(v6.extensions().slice().len());
            (IpAddr::from(h.source()), IpAddr::from(h.destination()), true, v6.payload(), declared)
        }
        LaxNetSlice::Arp(_) => return None,
    };
    let proto = payload.ip_number.0;
    let (ports, tcp) = match &sliced.transport {
        Some(TransportSlice::Tcp(t)) => {
            let header_len = usize::from(t.data_offset()) * 4;
            let payload_len =
                if payload.incomplete { declared_payload.saturating_sub(header_len) } else { t.payload().len() };
            (
                Some((t.source_port(), t.destination_port())),
                Some(TcpInfo {
                    syn: t.syn(),
                    ack: t.ack(),
                    fin: t.fin(),
                    rst: t.rst(),
                    seq: t.sequence_number(),
                    window: t.window_size(),
                    payload_len: u32::try_from(payload_len).unwrap_or(u32::MAX),
                }),
            )
        }
        Some(TransportSlice::Udp(u)) => (Some((u.source_port(), u.destination_port())), None),
        Some(TransportSlice::Icmpv4(i)) => (Some((u16::from(i.type_u8()), u16::from(i.code_u8()))), None),
        Some(TransportSlice::Icmpv6(i)) => (Some((u16::from(i.type_u8()), u16::from(i.code_u8()))), None),
        _ => (None, None),
    };
    Some(Decoded { src, dst, ipv6, proto, ports, tcp })
}
