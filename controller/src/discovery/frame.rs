//! The discovery probe: an LLDP frame (IEEE 802.1AB) naming the device
//! and port it was sent from.
//!
//! ```text
//! Ethernet: dst 01:80:c2:00:00:0e (nearest bridge), src 02:53:58:<device id low 24 bits>,
//!           EtherType 0x88cc
//! LLDPDU:   Chassis ID TLV (type 1), subtype 7 "locally assigned": "solyx:<device id>"
//!           Port ID TLV (type 2), subtype 7 "locally assigned": "<port>"
//!           Time To Live TLV (type 3): seconds, 2 bytes
//!           End of LLDPDU TLV (type 0)
//!           zero padding to the 60-byte Ethernet minimum
//! ```
//!
//! Each TLV starts with a 16-bit header: type in the top 7 bits, value
//! length in the low 9. Text fields are decimal ASCII, so `tcpdump -v`
//! shows them as they are.
//
// TODO-security: probes carry no authentication; anything on a fabric
// port can forge one and make the controller believe in a link. A keyed
// MAC over origin and round would close that.

use crate::linkstate::{DeviceId, PortId};

/// EtherType of LLDP.
pub const ETHERTYPE_LLDP: u16 = 0x88cc;
/// Destination MAC of the probes: the LLDP "nearest bridge" group address,
/// which bridges do not forward.
pub const LLDP_MULTICAST: [u8; 6] = [0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e];
/// Prefix of the chassis ID of a Solyx probe.
pub const CHASSIS_PREFIX: &str = "solyx:";

const TLV_END: u8 = 0;
const TLV_CHASSIS_ID: u8 = 1;
const TLV_PORT_ID: u8 = 2;
const TLV_TTL: u8 = 3;
/// Chassis ID and Port ID subtype "locally assigned".
const SUBTYPE_LOCAL: u8 = 7;
const ETHERNET_LEN: usize = 14;
const MIN_FRAME: usize = 60;

/// Where a probe was sent from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeOrigin {
    /// The sending device.
    pub device: DeviceId,
    /// The port it was sent out of.
    pub port: PortId,
}

/// Why a frame is not a Solyx discovery probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// Shorter than an Ethernet header, or another EtherType.
    #[error("not an LLDP frame")]
    NotLldp,
    /// A TLV runs past the end of the frame.
    #[error("LLDP TLV at byte {offset} runs past the frame")]
    Truncated {
        /// Offset of the TLV header.
        offset: usize,
    },
    /// No Chassis ID or no Port ID TLV before the end.
    #[error("LLDP frame without {0} TLV")]
    Missing(&'static str),
    /// LLDP from something else than Solyx (another chassis ID form).
    #[error("LLDP frame from another sender (chassis ID not \"solyx:<device id>\")")]
    Foreign,
    /// A Solyx chassis ID or port ID that is not a decimal number.
    #[error("Solyx LLDP frame with an unreadable {0}")]
    BadNumber(&'static str),
}

impl ProbeError {
    /// A stable snake_case label, for counters.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotLldp => "not_lldp",
            Self::Truncated { .. } => "truncated_tlv",
            Self::Missing(_) => "missing_tlv",
            Self::Foreign => "foreign_lldp",
            Self::BadNumber(_) => "bad_number",
        }
    }
}

fn push_tlv(out: &mut Vec<u8>, kind: u8, value: &[u8]) {
    // Values here are at most a few dozen bytes: they fit 9 bits.
    let header = (u16::from(kind) << 9) | (value.len() as u16 & 0x1ff);
    out.extend_from_slice(&header.to_be_bytes());
    out.extend_from_slice(value);
}

/// The probe frame `device` sends out of `port`, announcing a time to live
/// of `ttl_seconds`.
#[must_use]
pub fn encode(origin: ProbeOrigin, ttl_seconds: u16) -> Vec<u8> {
    let mut f = Vec::with_capacity(MIN_FRAME + 16);
    f.extend_from_slice(&LLDP_MULTICAST);
    let d = origin.device.to_be_bytes();
    f.extend_from_slice(&[0x02, 0x53, 0x58, d[5], d[6], d[7]]);
    f.extend_from_slice(&ETHERTYPE_LLDP.to_be_bytes());
    let mut chassis = vec![SUBTYPE_LOCAL];
    chassis.extend_from_slice(format!("{CHASSIS_PREFIX}{}", origin.device).as_bytes());
    push_tlv(&mut f, TLV_CHASSIS_ID, &chassis);
    let mut port = vec![SUBTYPE_LOCAL];
    port.extend_from_slice(origin.port.to_string().as_bytes());
    push_tlv(&mut f, TLV_PORT_ID, &port);
    push_tlv(&mut f, TLV_TTL, &ttl_seconds.to_be_bytes());
    push_tlv(&mut f, TLV_END, &[]);
    if f.len() < MIN_FRAME {
        f.resize(MIN_FRAME, 0);
    }
    f
}

/// Reads the origin of a probe frame (starting at its Ethernet header).
///
/// # Errors
///
/// [`ProbeError`] when the frame is not LLDP, is malformed, or was not
/// sent by Solyx.
pub fn decode(frame: &[u8]) -> Result<ProbeOrigin, ProbeError> {
    let ether_type = frame
        .get(12..ETHERNET_LEN)
        .map(|b| u16::from_be_bytes([b[0], b[1]]));
    if ether_type != Some(ETHERTYPE_LLDP) {
        return Err(ProbeError::NotLldp);
    }
    let mut chassis: Option<&[u8]> = None;
    let mut port: Option<&[u8]> = None;
    let mut off = ETHERNET_LEN;
    while let Some(h) = frame.get(off..off + 2) {
        let header = u16::from_be_bytes([h[0], h[1]]);
        // The top 7 bits of a u16: fits a u8.
        let kind = (header >> 9) as u8;
        let len = usize::from(header & 0x1ff);
        if kind == TLV_END {
            break;
        }
        let value = frame
            .get(off + 2..off + 2 + len)
            .ok_or(ProbeError::Truncated { offset: off })?;
        match kind {
            TLV_CHASSIS_ID => chassis = Some(value),
            TLV_PORT_ID => port = Some(value),
            _ => {}
        }
        off += 2 + len;
    }
    let chassis = chassis.ok_or(ProbeError::Missing("Chassis ID"))?;
    let port = port.ok_or(ProbeError::Missing("Port ID"))?;
    let device = match chassis.split_first() {
        Some((&SUBTYPE_LOCAL, text)) => text
            .strip_prefix(CHASSIS_PREFIX.as_bytes())
            .ok_or(ProbeError::Foreign)?,
        _ => return Err(ProbeError::Foreign),
    };
    let device = number(device).ok_or(ProbeError::BadNumber("device ID"))?;
    let port = match port.split_first() {
        Some((&SUBTYPE_LOCAL, text)) => number(text)
            .and_then(|p| PortId::try_from(p).ok())
            .ok_or(ProbeError::BadNumber("port ID"))?,
        _ => return Err(ProbeError::BadNumber("port ID")),
    };
    Ok(ProbeOrigin { device, port })
}

fn number(text: &[u8]) -> Option<u64> {
    std::str::from_utf8(text).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn encode_then_decode() {
        let o = ProbeOrigin {
            device: 1_000_001,
            port: 17,
        };
        let f = encode(o, 1);
        assert_eq!(f.len(), 60);
        assert_eq!(&f[..6], &LLDP_MULTICAST);
        assert_eq!(&f[12..14], &[0x88, 0xcc]);
        // Chassis ID TLV: type 1, length 1 + "solyx:1000001".len().
        assert_eq!(&f[14..16], &[0x02, 14]);
        assert_eq!(&f[16..30], b"\x07solyx:1000001");
        assert_eq!(decode(&f), Ok(o));
    }

    #[test]
    fn foreign_and_broken_frames_are_named() {
        let good = encode(ProbeOrigin { device: 3, port: 2 }, 1);
        assert_eq!(decode(&good[..13]), Err(ProbeError::NotLldp));
        let mut ipv4 = good.clone();
        ipv4[12..14].copy_from_slice(&[0x08, 0x00]);
        assert_eq!(decode(&ipv4), Err(ProbeError::NotLldp));
        // The chassis TLV claims more bytes than there are.
        assert_eq!(
            decode(&good[..20]),
            Err(ProbeError::Truncated { offset: 14 })
        );
        // A MAC-address chassis ID (subtype 4), as switches send.
        let mut other = good[..14].to_vec();
        push_tlv(&mut other, TLV_CHASSIS_ID, &[4, 0, 1, 2, 3, 4, 5]);
        push_tlv(&mut other, TLV_PORT_ID, &[5, b'e', b't', b'h', b'0']);
        push_tlv(&mut other, TLV_END, &[]);
        assert_eq!(decode(&other), Err(ProbeError::Foreign));
        let mut no_port = good[..14].to_vec();
        push_tlv(&mut no_port, TLV_CHASSIS_ID, b"\x07solyx:3");
        push_tlv(&mut no_port, TLV_END, &[]);
        assert_eq!(decode(&no_port), Err(ProbeError::Missing("Port ID")));
    }

    proptest! {
        #[test]
        fn any_origin_round_trips(device in any::<u64>(), port in any::<u32>()) {
            let o = ProbeOrigin { device, port };
            prop_assert_eq!(decode(&encode(o, 1)), Ok(o));
        }

        #[test]
        fn any_bytes_decode_without_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if bytes.len() >= 14 {
                bytes[12] = 0x88;
                bytes[13] = 0xcc;
            }
            let _ = decode(&bytes);
        }
    }
}
