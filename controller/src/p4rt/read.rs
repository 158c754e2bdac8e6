//! Reads: streamed, with wildcards per table or for all tables, and
//! normalised so that what is read back compares equal to what was written.

use futures::{Stream, StreamExt};
use solyx_p4runtime::entity::normalize;
use solyx_p4runtime::proto::p4::v1 as p4;

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
