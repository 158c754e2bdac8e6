//! Writes: batching, atomicity and one result per update, in order.

use solyx_p4runtime::proto::p4::v1 as p4;
use tracing::{debug, Instrument};

use super::error::per_update_errors;
use super::{ClientError, DeviceSession, UpdateError};

/// What the device does when one update of a batch fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Atomicity {
    /// Apply the others (the default).
    #[default]
    ContinueOnError,
    /// Undo the batch if any update fails.
    RollbackOnError,
    /// Apply the batch atomically as seen by the data plane.
    DataplaneAtomic,
}

impl Atomicity {
    fn to_proto(self) -> i32 {
        match self {
            Atomicity::ContinueOnError => p4::write_request::Atomicity::ContinueOnError as i32,
            Atomicity::RollbackOnError => p4::write_request::Atomicity::RollbackOnError as i32,
            Atomicity::DataplaneAtomic => p4::write_request::Atomicity::DataplaneAtomic as i32,
        }
    }
}

/// How writes are cut into requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOptions {
    /// Updates per WriteRequest. Default 1000.
    pub batch_size: usize,
    /// Atomicity of each request. Default continue-on-error.
    pub atomicity: Atomicity,
}

impl Default for WriteOptions {
    fn default() -> Self {
        Self {
            batch_size: 1000,
            atomicity: Atomicity::ContinueOnError,
        }
    }
}

/// Wraps an entity in an update.
#[must_use]
pub fn update(kind: p4::update::Type, entity: p4::Entity) -> p4::Update {
    p4::Update {
        r#type: kind as i32,
        entity: Some(entity),
    }
}

impl DeviceSession {
    /// Sends `updates` in batches of the configured size and returns one
    /// result per update, in order. A batch that fails as a whole (no
    /// per-update details) gives every update of it the same error.
    ///
    /// # Errors
    /// Not connected or not primary; per-update failures are in the result.
    pub async fn write(
        &self,
        updates: Vec<p4::Update>,
    ) -> Result<Vec<Result<(), UpdateError>>, ClientError> {
        self.write_with(updates, self.inner.config.write).await
    }

    /// [`Self::write`] with explicit options.
    ///
    /// # Errors
    /// As [`Self::write`].
    pub async fn write_with(
        &self,
        updates: Vec<p4::Update>,
        options: WriteOptions,
    ) -> Result<Vec<Result<(), UpdateError>>, ClientError> {
        self.require_primary()?;
        let mut client = self.client()?;
        let mut results = Vec::with_capacity(updates.len());
        let batch = options.batch_size.max(1);
        let span = self.inner.span.clone();
        let mut pending = updates.into_iter().peekable();
        while pending.peek().is_some() {
            let chunk: Vec<p4::Update> = pending.by_ref().take(batch).collect();
            let n = chunk.len();
            let request = p4::WriteRequest {
                device_id: self.device_id(),
                role: self.role_name(),
                election_id: self.election(),
                updates: chunk,
                atomicity: options.atomicity.to_proto(),
                ..Default::default()
            };
            let started = std::time::Instant::now();
            let outcome = client.write(request).instrument(span.clone()).await;
            if let Some(m) = &self.inner.config.metrics {
                let code = outcome
                    .as_ref()
                    .map_or_else(tonic::Status::code, |_| tonic::Code::Ok);
                m.rpc("Write", code, started);
                match &outcome {
                    Ok(_) => m.updates(n, 0),
                    Err(status) => {
                        let failed = per_update_errors(status, n)
                            .map_or(n, |per| per.iter().filter(|r| r.is_err()).count());
                        m.updates(n - failed, failed);
                    }
                }
            }
            match outcome {
                Ok(_) => results.extend((0..n).map(|_| Ok(()))),
                Err(status) => match per_update_errors(&status, n) {
                    Some(per) => {
                        let failed = per.iter().filter(|r| r.is_err()).count();
                        span.in_scope(|| debug!(updates = n, failed, "write partly failed"));
                        results.extend(per);
                    }
                    None if matches!(
                        status.code(),
                        tonic::Code::PermissionDenied
                            | tonic::Code::Unavailable
                            | tonic::Code::Cancelled
                            | tonic::Code::Unauthenticated
                    ) =>
                    {
                        return Err(ClientError::Rpc {
                            device_id: self.device_id(),
                            rpc: "Write",
                            status,
                        })
                    }
                    None => {
                        let e = UpdateError::from_status(&status);
                        results.extend((0..n).map(|_| Err(e.clone())));
                    }
                },
            }
        }
        Ok(results)
    }

    /// Writes every entity of `entities` with the same update `kind`; see
    /// [`Self::write`].
    ///
    /// # Errors
    /// As [`Self::write`].
    pub async fn write_all(
        &self,
        kind: p4::update::Type,
        entities: Vec<p4::Entity>,
    ) -> Result<Vec<Result<(), UpdateError>>, ClientError> {
        self.write(entities.into_iter().map(|e| update(kind, e)).collect())
            .await
    }

    /// Inserts `entities`; see [`Self::write`].
    ///
    /// # Errors
    /// As [`Self::write`].
    pub async fn insert(
        &self,
        entities: Vec<p4::Entity>,
    ) -> Result<Vec<Result<(), UpdateError>>, ClientError> {
        self.write_all(p4::update::Type::Insert, entities).await
    }

    /// Modifies `entities`; see [`Self::write`].
    ///
    /// # Errors
    /// As [`Self::write`].
    pub async fn modify(
        &self,
        entities: Vec<p4::Entity>,
    ) -> Result<Vec<Result<(), UpdateError>>, ClientError> {
        self.write_all(p4::update::Type::Modify, entities).await
    }

    /// Deletes `entities`; see [`Self::write`].
    ///
    /// # Errors
    /// As [`Self::write`].
    pub async fn delete(
        &self,
        entities: Vec<p4::Entity>,
    ) -> Result<Vec<Result<(), UpdateError>>, ClientError> {
        self.write_all(p4::update::Type::Delete, entities).await
    }
}
