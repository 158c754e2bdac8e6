//! Reads: streamed, with wildcards per table or for all tables, and
//! normalised so that what is read back compares equal to what was written.
//! Also the largest flows of a `solyx_host` device ([`DeviceSession::elephants`]).

use std::net::Ipv4Addr;

use futures::{Stream, StreamExt};
use solyx_p4runtime::entity::{normalize, EntityError};
use solyx_p4runtime::proto::p4::v1 as p4;
use solyx_p4runtime::P4InfoIndex;

use super::{ClientError, DeviceSession};

fn table_wildcard(table_id: u32) -> p4::Entity {
    p4::Entity {
        entity: Some(p4::entity::Entity::TableEntry(p4::TableEntry {
            table_id,
            ..Default::default()
        })),
    }
}

impl DeviceSession {
    /// Reads `entities` (each may be a wildcard) and streams what the device
    /// returns, normalised (see [`solyx_p4runtime::entity::normalize`]).
    ///
    /// # Errors
    /// Not connected, or the device refused the read; a failure mid-stream
    /// is an `Err` item.
    pub async fn read_stream(
        &self,
        entities: Vec<p4::Entity>,
    ) -> Result<impl Stream<Item = Result<p4::Entity, ClientError>>, ClientError> {
        let mut client = self.client()?;
        let device_id = self.device_id();
        let request = p4::ReadRequest {
            device_id,
            role: self.role_name(),
            entities,
        };
        let started = std::time::Instant::now();
        let outcome = client.read(request).await;
        if let Some(m) = &self.inner.config.metrics {
            let code = outcome
                .as_ref()
                .map_or_else(tonic::Status::code, |_| tonic::Code::Ok);
            m.rpc("Read", code, started);
        }
        let stream = outcome
            .map_err(|status| ClientError::Rpc {
                device_id,
                rpc: "Read",
                status,
            })?
            .into_inner();
        Ok(stream.flat_map(move |r| {
            let items: Vec<Result<p4::Entity, ClientError>> = match r {
                Ok(resp) => resp
                    .entities
                    .into_iter()
                    .map(|mut e| {
                        normalize(&mut e);
                        Ok(e)
                    })
                    .collect(),
                Err(status) => vec![Err(ClientError::Rpc {
                    device_id,
                    rpc: "Read",
                    status,
                })],
            };
            futures::stream::iter(items)
        }))
    }

    /// Reads `entities` and collects the answer.
    ///
    /// # Errors
    /// As [`Self::read_stream`].
    pub async fn read(&self, entities: Vec<p4::Entity>) -> Result<Vec<p4::Entity>, ClientError> {
        let mut stream = Box::pin(self.read_stream(entities).await?);
        let mut out = Vec::new();
        while let Some(e) = stream.next().await {
            out.push(e?);
        }
        Ok(out)
    }

    /// Every entry of table `table_id`.
    ///
    /// # Errors
    /// As [`Self::read_stream`].
    pub async fn read_table(&self, table_id: u32) -> Result<Vec<p4::TableEntry>, ClientError> {
        let entities = self.read(vec![table_wildcard(table_id)]).await?;
        Ok(entities
            .into_iter()
            .filter_map(|e| match e.entity {
                Some(p4::entity::Entity::TableEntry(t)) => Some(t),
                _ => None,
            })
            .collect())
    }

    /// Every entry of every table.
    ///
    /// # Errors
    /// As [`Self::read_stream`].
    pub async fn read_all_tables(&self) -> Result<Vec<p4::TableEntry>, ClientError> {
        self.read_table(0).await
    }

    /// Cells of indexed counter `counter_id`: one (`Some(index)`) or all.
    ///
    /// # Errors
    /// As [`Self::read_stream`].
    pub async fn read_counter(
        &self,
        counter_id: u32,
        index: Option<i64>,
    ) -> Result<Vec<p4::CounterEntry>, ClientError> {
        let entity = p4::Entity {
            entity: Some(p4::entity::Entity::CounterEntry(p4::CounterEntry {
                counter_id,
                index: index.map(|index| p4::Index { index }),
                data: None,
            })),
        };
        Ok(self
            .read(vec![entity])
            .await?
            .into_iter()
            .filter_map(|e| match e.entity {
                Some(p4::entity::Entity::CounterEntry(c)) => Some(c),
                _ => None,
            })
            .collect())
    }

    /// Direct counters of every entry of table `table_id`.
    ///
    /// # Errors
    /// As [`Self::read_stream`].
    pub async fn read_direct_counters(
        &self,
        table_id: u32,
    ) -> Result<Vec<p4::DirectCounterEntry>, ClientError> {
        let entity = p4::Entity {
            entity: Some(p4::entity::Entity::DirectCounterEntry(
                p4::DirectCounterEntry {
                    table_entry: Some(p4::TableEntry {
                        table_id,
                        ..Default::default()
                    }),
                    data: None,
                },
            )),
        };
        Ok(self
            .read(vec![entity])
            .await?
            .into_iter()
            .filter_map(|e| match e.entity {
                Some(p4::entity::Entity::DirectCounterEntry(c)) => Some(c),
                _ => None,
            })
            .collect())
    }
}

/// Counter of bytes per flow bucket in `solyx_host` (P4Info alias).
pub const FLOW_BYTES_COUNTER: &str = "flow_bytes_counter";
/// Register of the 5-tuple per flow bucket in `solyx_host` (P4Info alias).
pub const FLOW_KEY_REGISTER: &str = "flow_key_register";

/// A flow's 5-tuple, as `solyx_host` keeps it in `flow_key_register`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FiveTuple {
    /// IPv4 source address.
    pub src: Ipv4Addr,
    /// IPv4 destination address.
    pub dst: Ipv4Addr,
    /// IP protocol.
    pub proto: u8,
    /// L4 source port (0 for protocols without ports).
    pub sport: u16,
    /// L4 destination port (0 for protocols without ports).
    pub dport: u16,
}

impl FiveTuple {
    /// Bytes of a `flow_key_register` cell: 104 bits.
    pub const CELL_BYTES: usize = 13;

    /// Decodes a register cell `src ++ dst ++ proto ++ sport ++ dport`
    /// (big-endian, leading zero bytes may be left out as P4Runtime's
    /// canonical form does). `None` for a cell wider than 104 bits.
    #[must_use]
    pub fn from_cell(bytes: &[u8]) -> Option<Self> {
        let extra = bytes.len().saturating_sub(Self::CELL_BYTES);
        // Canonical form never has more bytes than the width; tolerate
        // zero padding in front, refuse anything else.
        if bytes[..extra].iter().any(|b| *b != 0) {
            return None;
        }
        let bytes = &bytes[extra..];
        let mut cell = [0u8; Self::CELL_BYTES];
        cell[Self::CELL_BYTES - bytes.len()..].copy_from_slice(bytes);
        Some(Self {
            src: Ipv4Addr::new(cell[0], cell[1], cell[2], cell[3]),
            dst: Ipv4Addr::new(cell[4], cell[5], cell[6], cell[7]),
            proto: cell[8],
            sport: u16::from_be_bytes([cell[9], cell[10]]),
            dport: u16::from_be_bytes([cell[11], cell[12]]),
        })
    }

    /// The protocol's usual name (`tcp`, `udp`, `icmp`) or its number.
    #[must_use]
    pub fn proto_name(&self) -> String {
        match self.proto {
            1 => "icmp".into(),
            6 => "tcp".into(),
            17 => "udp".into(),
            n => n.to_string(),
        }
    }
}

impl std::fmt::Display for FiveTuple {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}:{} -> {}:{}",
            self.proto_name(),
            self.src,
            self.sport,
            self.dst,
            self.dport
        )
    }
}

/// One flow bucket of a `solyx_host` device, with what it counted.
///
/// A bucket is a 5-tuple hash: when two flows share one, `bytes` and
/// `packets` are the sum of both and `flow` is the last one that sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elephant {
    /// The bucket: the cell index of the counter and of the register.
    pub bucket: i64,
    /// The flow that last counted in the bucket; `None` when the device
    /// returned a cell that is not a 104-bit bitstring.
    pub flow: Option<FiveTuple>,
    /// Packets counted in the bucket.
    pub packets: i64,
    /// Bytes counted in the bucket.
    pub bytes: i64,
}

impl DeviceSession {
    /// Cells of register `register_id`: one (`Some(index)`) or all.
    ///
    /// # Errors
    /// As [`Self::read_stream`].
    pub async fn read_register(
        &self,
        register_id: u32,
        index: Option<i64>,
    ) -> Result<Vec<p4::RegisterEntry>, ClientError> {
        self.read_register_cells(register_id, &[index]).await
    }

    /// Several cells of register `register_id` in one Read (`None`: every
    /// cell), in the order the device answers.
    ///
    /// # Errors
    /// As [`Self::read_stream`].
    pub async fn read_register_cells(
        &self,
        register_id: u32,
        indices: &[Option<i64>],
    ) -> Result<Vec<p4::RegisterEntry>, ClientError> {
        if indices.is_empty() {
            return Ok(Vec::new());
        }
        let entities = indices
            .iter()
            .map(|index| p4::Entity {
                entity: Some(p4::entity::Entity::RegisterEntry(p4::RegisterEntry {
                    register_id,
                    index: index.map(|index| p4::Index { index }),
                    data: None,
                })),
            })
            .collect();
        Ok(self
            .read(entities)
            .await?
            .into_iter()
            .filter_map(|e| match e.entity {
                Some(p4::entity::Entity::RegisterEntry(r)) => Some(r),
                _ => None,
            })
            .collect())
    }

    /// The `top` flow buckets of a `solyx_host` device by bytes, largest
    /// first (ties: lower bucket first), each with the 5-tuple of
    /// `flow_key_register`. Reads every cell of `flow_bytes_counter`, then
    /// the key cells of the buckets chosen, in one Read. Buckets that
    /// counted nothing are left out.
    ///
    /// # Errors
    /// `index` (the device's P4Info) lacks the counter or the register, or
    /// a read failed.
    pub async fn elephants(
        &self,
        index: &P4InfoIndex,
        top: usize,
    ) -> Result<Vec<Elephant>, ClientError> {
        let unknown = |kind: &'static str, name: &str| {
            ClientError::Entity(EntityError::Unknown {
                kind,
                name: name.to_string(),
            })
        };
        let counter = index
            .counters
            .by_name(FLOW_BYTES_COUNTER)
            .ok_or_else(|| unknown("counter", FLOW_BYTES_COUNTER))?
            .id;
        let register = index
            .registers
            .by_name(FLOW_KEY_REGISTER)
            .ok_or_else(|| unknown("register", FLOW_KEY_REGISTER))?
            .id;
        let cells = self.read_counter(counter, None).await?;
        let mut found = largest_buckets(&cells, top);
        let indices: Vec<Option<i64>> = found.iter().map(|e| Some(e.bucket)).collect();
        for key in self.read_register_cells(register, &indices).await? {
            let Some(bucket) = key.index.map(|i| i.index) else {
                continue;
            };
            let flow = match key.data.and_then(|d| d.data) {
                Some(p4::p4_data::Data::Bitstring(b)) => FiveTuple::from_cell(&b),
                _ => None,
            };
            for e in found.iter_mut().filter(|e| e.bucket == bucket) {
                e.flow = flow;
            }
        }
        Ok(found)
    }
}

/// The `top` cells with the most bytes (more than 0), largest first.
fn largest_buckets(cells: &[p4::CounterEntry], top: usize) -> Vec<Elephant> {
    let mut all: Vec<Elephant> = cells
        .iter()
        .filter_map(|c| {
            let d = c.data.as_ref()?;
            (d.byte_count > 0).then(|| Elephant {
                bucket: c.index.map_or(0, |i| i.index),
                flow: None,
                packets: d.packet_count,
                bytes: d.byte_count,
            })
        })
        .collect();
    all.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.bucket.cmp(&b.bucket)));
    all.truncate(top);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_decodes_with_or_without_leading_zeros() {
        let full = [10, 0, 1, 1, 10, 0, 2, 2, 17, 0x9c, 0x40, 0x13, 0x88];
        let t = FiveTuple::from_cell(&full).unwrap();
        assert_eq!(t.src, Ipv4Addr::new(10, 0, 1, 1));
        assert_eq!(t.dst, Ipv4Addr::new(10, 0, 2, 2));
        assert_eq!((t.proto, t.sport, t.dport), (17, 40_000, 5000));
        assert_eq!(t.to_string(), "udp 10.0.1.1:40000 -> 10.0.2.2:5000");
        // Canonical: a source of 0.0.0.0 is sent without its zero bytes.
        let short = FiveTuple::from_cell(&full[4..]).unwrap();
        assert_eq!(short.src, Ipv4Addr::UNSPECIFIED);
        assert_eq!(short.dport, 5000);
        assert_eq!(FiveTuple::from_cell(&[0]).unwrap().proto, 0);
        let mut padded = vec![0u8];
        padded.extend_from_slice(&full);
        assert_eq!(FiveTuple::from_cell(&padded), Some(t));
        let mut wide = vec![1u8];
        wide.extend_from_slice(&full);
        assert_eq!(FiveTuple::from_cell(&wide), None, "wider than 104 bits");
    }

    #[test]
    fn largest_buckets_sort_by_bytes_and_drop_empty_ones() {
        let cell = |index, packets, bytes| p4::CounterEntry {
            counter_id: 1,
            index: Some(p4::Index { index }),
            data: Some(p4::CounterData {
                byte_count: bytes,
                packet_count: packets,
            }),
        };
        let cells = [
            cell(0, 0, 0),
            cell(1, 2, 200),
            cell(2, 90, 90_000),
            cell(3, 1, 200),
            cell(4, 5, 500),
        ];
        let top: Vec<(i64, i64)> = largest_buckets(&cells, 3)
            .iter()
            .map(|e| (e.bucket, e.bytes))
            .collect();
        assert_eq!(top, vec![(2, 90_000), (4, 500), (1, 200)]);
        assert_eq!(largest_buckets(&cells, 10).len(), 4);
        assert!(largest_buckets(&cells, 0).is_empty());
    }
}
