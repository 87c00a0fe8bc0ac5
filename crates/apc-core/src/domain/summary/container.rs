//! Capture-file framing: which format the bytes are, and where each record starts and ends.
//!
//! The framing is ours (it decides how many bytes a record needs before any parser sees it), so
//! a record is only handed to `pcap-parser` once it is whole, and a record that lies about its
//! length stops the summary instead of making it wait for, or allocate, bytes that never come.

use pcap_parser::pcapng::{Block, parse_block_be, parse_block_le, parse_sectionheaderblock};
use pcap_parser::{parse_pcap_frame, parse_pcap_frame_be, parse_pcap_header};

/// The largest record accepted (snap lengths are at most 256 KiB in practice; options on top).
pub(crate) const MAX_RECORD: usize = 1 << 20;
/// Interfaces remembered per pcapng section; packets of others are counted but not decoded.
const MAX_INTERFACES: usize = 256;

/// Which capture format the file is, from its magic bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureFormat {
    /// Classic libpcap, microsecond timestamps.
    PcapMicroseconds,
    /// Classic libpcap, nanosecond timestamps.
    PcapNanoseconds,
    /// pcapng (sections, interfaces, enhanced and simple packet blocks).
    Pcapng,
}

/// The file's byte order (of its first section, for pcapng).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ByteOrder {
    /// Least significant byte first.
    LittleEndian,
    /// Most significant byte first.
    BigEndian,
}

/// One packet as the container gives it.
pub(crate) struct RawPacket<'a> {
    /// Nanoseconds since the Unix epoch, when the format records a time.
    pub ts_nanos: Option<i128>,
    /// The length on the wire.
    pub orig_len: u32,
    /// The link type of its interface (`None`: an interface the file never described).
    pub link_type: Option<u32>,
    pub data: &'a [u8],
}

/// What the framer did with the bytes it was shown.
pub(crate) enum Step<'a> {
    /// `consumed` bytes made a record; `packet` if it was one.
    Record { consumed: usize, packet: Option<RawPacket<'a>> },
    /// At least this many bytes (from the start of what was shown) are needed to go on.
    NeedMore(usize),
    /// The bytes are not a capture file this reader knows.
    NotACapture,
    /// The file stops making sense here: nothing after it can be trusted.
    Corrupt(&'static str),
}

#[derive(Clone, Copy)]
struct Interface {
    link_type: u32,
    /// Timestamp units per second, as a power of 10 or of 2.
    units: TsUnits,
    offset_s: i64,
}

#[derive(Clone, Copy)]
enum TsUnits {
    Pow10(u32),
    Pow2(u32),
}

impl TsUnits {
    fn to_nanos(self, ts: u64) -> i128 {
        let ts = ts as i128;
        match self {
            TsUnits::Pow10(e) if e <= 9 => ts * 10i128.pow(9 - e),
            TsUnits::Pow10(e) => ts / 10i128.pow(e.min(38) - 9),
            TsUnits::Pow2(e) => (ts * 1_000_000_000) >> e.min(64),
        }
    }
}

enum State {
    /// Nothing read yet.
    Start,
    Pcap {
        big_endian: bool,
        nanos: bool,
        link_type: u32,
    },
    Pcapng {
        big_endian: bool,
        interfaces: Vec<Interface>,
    },
}

/// The framing state across records.
pub(crate) struct Framer {
    state: State,
    format: Option<(CaptureFormat, ByteOrder)>,
}

fn u32_at(b: &[u8], at: usize, big_endian: bool) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    if big_endian { u32::from_be_bytes(w) } else { u32::from_le_bytes(w) }
}

const SHB: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

impl Framer {
    pub(crate) fn new() -> Self {
        Framer { state: State::Start, format: None }
    }

    /// Format and byte order, once the magic bytes were seen.
    pub(crate) fn format(&self) -> Option<(CaptureFormat, ByteOrder)> {
        self.format
    }

    /// Frames the next record at the start of `input`.
    pub(crate) fn step<'a>(&mut self, input: &'a [u8]) -> Step<'a> {
        match &mut self.state {
            State::Start => self.start(input),
            State::Pcap { big_endian, nanos, link_type } => pcap_record(input, *big_endian, *nanos, *link_type),
            State::Pcapng { big_endian, interfaces } => {
                let (be, step) = pcapng_block(input, *big_endian, interfaces);
                *big_endian = be;
                step
            }
        }
    }

    fn start<'a>(&mut self, input: &'a [u8]) -> Step<'a> {
        if input.len() < 4 {
            return Step::NeedMore(4);
        }
        let magic = [input[0], input[1], input[2], input[3]];
        let (format, order) = match magic {
            [0xd4, 0xc3, 0xb2, 0xa1] => (CaptureFormat::PcapMicroseconds, ByteOrder::LittleEndian),
            [0x4d, 0x3c, 0xb2, 0xa1] => (CaptureFormat::PcapNanoseconds, ByteOrder::LittleEndian),
            [0xa1, 0xb2, 0xc3, 0xd4] => (CaptureFormat::PcapMicroseconds, ByteOrder::BigEndian),
            [0xa1, 0xb2, 0x3c, 0x4d] => (CaptureFormat::PcapNanoseconds, ByteOrder::BigEndian),
            SHB => {
                if input.len() < 12 {
                    return Step::NeedMore(12);
                }
                let order = match input[8..12] {
                    [0x4d, 0x3c, 0x2b, 0x1a] => ByteOrder::LittleEndian,
                    [0x1a, 0x2b, 0x3c, 0x4d] => ByteOrder::BigEndian,
                    _ => return Step::NotACapture,
                };
                self.format = Some((CaptureFormat::Pcapng, order));
                self.state = State::Pcapng { big_endian: order == ByteOrder::BigEndian, interfaces: Vec::new() };
                return self.step(input);
            }
            _ => return Step::NotACapture,
        };
        if input.len() < 24 {
            return Step::NeedMore(24);
        }
        match parse_pcap_header(&input[..24]) {
            Ok((_, header)) => {
                self.format = Some((format, order));
                self.state = State::Pcap {
                    big_endian: header.is_bigendian(),
                    nanos: header.is_nanosecond_precision(),
                    // Link types are small non-negative numbers; the upper bits carry FCS flags.
                    link_type: (header.network.0 as u32) & 0x0fff_ffff,
                };
                Step::Record { consumed: 24, packet: None }
            }
            Err(_) => Step::NotACapture,
        }
    }
}

fn pcap_record(input: &[u8], big_endian: bool, nanos: bool, link_type: u32) -> Step<'_> {
    if input.len() < 16 {
        return Step::NeedMore(16);
    }
    let caplen = u32_at(input, 8, big_endian) as usize;
    if caplen > MAX_RECORD {
        return Step::Corrupt("a packet record claims more than 1 MiB");
    }
    let need = 16 + caplen;
    if input.len() < need {
        return Step::NeedMore(need);
    }
    let parsed = if big_endian { parse_pcap_frame_be(&input[..need]) } else { parse_pcap_frame(&input[..need]) };
    match parsed {
        Ok((_, frame)) => {
            let frac = if nanos { frame.ts_usec as i128 } else { frame.ts_usec as i128 * 1000 };
            Step::Record {
                consumed: need,
                packet: Some(RawPacket {
                    ts_nanos: Some(frame.ts_sec as i128 * 1_000_000_000 + frac),
                    orig_len: frame.origlen.max(frame.caplen),
                    link_type: Some(link_type),
                    data: frame.data,
                }),
            }
        }
        Err(_) => Step::Corrupt("a packet record does not parse"),
    }
}

/// Frames one pcapng block; returns the byte order in force after it (a new section may switch).
fn pcapng_block<'a>(input: &'a [u8], big_endian: bool, interfaces: &mut Vec<Interface>) -> (bool, Step<'a>) {
    if input.len() < 12 {
        return (big_endian, Step::NeedMore(12));
    }
    let is_shb = input[..4] == SHB;
    let be = if is_shb {
        match input[8..12] {
            [0x4d, 0x3c, 0x2b, 0x1a] => false,
            [0x1a, 0x2b, 0x3c, 0x4d] => true,
            _ => return (big_endian, Step::Corrupt("a section header has no byte-order magic")),
        }
    } else {
        big_endian
    };
    let len = u32_at(input, 4, be) as usize;
    if len < 12 || !len.is_multiple_of(4) {
        return (big_endian, Step::Corrupt("a block has an impossible length"));
    }
    if len > MAX_RECORD {
        return (big_endian, Step::Corrupt("a block claims more than 1 MiB"));
    }
    if input.len() < len {
        return (big_endian, Step::NeedMore(len));
    }
    let block = &input[..len];
    let parsed = if is_shb {
        parse_sectionheaderblock(block).map(|(r, b)| (r, Block::SectionHeader(b)))
    } else if be {
        parse_block_be(block)
    } else {
        parse_block_le(block)
    };
    let block = match parsed {
        Ok((_, block)) => block,
        // The length framed it, so a block whose inside is wrong is skipped, not fatal.
        Err(_) => return (be, Step::Record { consumed: len, packet: None }),
    };
    let packet = match block {
        Block::SectionHeader(_) => {
            interfaces.clear();
            None
        }
        Block::InterfaceDescription(idb) => {
            // Past the cap, interfaces go unremembered: their packets count but stay undecoded.
            if interfaces.len() < MAX_INTERFACES {
                let units = if idb.if_tsresol & 0x80 == 0 {
                    TsUnits::Pow10(u32::from(idb.if_tsresol))
                } else {
                    TsUnits::Pow2(u32::from(idb.if_tsresol & 0x7f))
                };
                interfaces.push(Interface {
                    link_type: u32::from(idb.linktype.0 as u16),
                    units,
                    offset_s: idb.if_tsoffset,
                });
            }
            None
        }
        Block::EnhancedPacket(epb) => {
            let iface = interfaces.get(epb.if_id as usize).copied();
            let ts = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
            let data: &'a [u8] = epb.data;
            let data = &data[..data.len().min(epb.caplen as usize)];
            Some(RawPacket {
                ts_nanos: iface.map(|i| i.units.to_nanos(ts) + i128::from(i.offset_s) * 1_000_000_000),
                orig_len: epb.origlen.max(data.len() as u32),
                link_type: iface.map(|i| i.link_type),
                data,
            })
        }
        Block::SimplePacket(spb) => {
            let data: &'a [u8] = spb.data;
            let data = &data[..data.len().min(spb.origlen as usize)];
            Some(RawPacket {
                ts_nanos: None,
                orig_len: spb.origlen.max(data.len() as u32),
                link_type: interfaces.first().map(|i| i.link_type),
                data,
            })
        }
        _ => None,
    };
    (be, Step::Record { consumed: len, packet })
}
