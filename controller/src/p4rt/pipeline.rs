//! Pushing and fetching the forwarding pipeline (P4Info + device config).

use std::sync::Arc;

use prost::Message;
use solyx_p4runtime::proto::p4::config::v1::P4Info;
use solyx_p4runtime::proto::p4::v1 as p4;
use solyx_p4runtime::P4InfoIndex;
use tracing::info;

use super::session::lock;
use super::{ClientError, DeviceSession};

/// What [`DeviceSession::set_pipeline`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipelineOutcome {
    /// The device already ran this pipeline (same cookie); nothing was sent.
    AlreadyInstalled,
    /// The pipeline was pushed.
    Installed,
}

/// A stable cookie for a pipeline: FNV-1a over the P4Info and device config.
/// Equal pipelines give equal cookies on every run and every machine.
#[must_use]
pub fn cookie_of(p4info: &P4Info, device_config: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in p4info.encode_to_vec().iter().chain(device_config) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl DeviceSession {
    /// Makes the device run `p4info` + `device_config`. When the device
    /// already holds a pipeline with the same cookie nothing is sent;
    /// otherwise the pipeline is pushed with VERIFY_AND_COMMIT, or
    /// RECONCILE_AND_COMMIT when `reconcile` is set (keeps the entries the
    /// new pipeline can still hold). The session uses the P4Info for name
    /// lookups afterwards.
    ///
    /// # Errors
    /// An invalid P4Info, not primary, or the device refused the pipeline.
    pub async fn set_pipeline(
        &self,
        p4info: P4Info,
        device_config: Vec<u8>,
        reconcile: bool,
    ) -> Result<PipelineOutcome, ClientError> {
        let index = Arc::new(
            P4InfoIndex::new(p4info.clone()).map_err(|e| ClientError::Rpc {
                device_id: self.device_id(),
                rpc: "SetForwardingPipelineConfig",
                status: tonic::Status::invalid_argument(e.to_string()),
            })?,
        );
        self.require_primary()?;
        let cookie = cookie_of(&p4info, &device_config);
        if self.device_cookie().await? == Some(cookie) {
            *lock(&self.inner.index) = Some(index);
            self.inner
                .span
                .in_scope(|| info!(cookie, "pipeline already installed"));
            return Ok(PipelineOutcome::AlreadyInstalled);
        }
        let action = if reconcile {
            p4::set_forwarding_pipeline_config_request::Action::ReconcileAndCommit
        } else {
            p4::set_forwarding_pipeline_config_request::Action::VerifyAndCommit
        };
        let request = p4::SetForwardingPipelineConfigRequest {
            device_id: self.device_id(),
            role: self.role_name(),
            election_id: self.election(),
            action: action as i32,
            config: Some(p4::ForwardingPipelineConfig {
                p4info: Some(p4info),
                p4_device_config: device_config,
                cookie: Some(p4::forwarding_pipeline_config::Cookie { cookie }),
            }),
            ..Default::default()
        };
        let started = std::time::Instant::now();
        let outcome = self.client()?.set_forwarding_pipeline_config(request).await;
        if let Some(m) = &self.inner.config.metrics {
            let code = outcome
                .as_ref()
                .map_or_else(tonic::Status::code, |_| tonic::Code::Ok);
            m.rpc("SetForwardingPipelineConfig", code, started);
        }
        outcome.map_err(|status| ClientError::Rpc {
            device_id: self.device_id(),
            rpc: "SetForwardingPipelineConfig",
            status,
        })?;
        *lock(&self.inner.index) = Some(index);
        self.inner
            .span
            .in_scope(|| info!(cookie, "pipeline installed"));
        Ok(PipelineOutcome::Installed)
    }

    /// The cookie of the device's pipeline, `None` if it has none.
    ///
    /// # Errors
    /// Not connected, or the device refused the request.
    pub async fn device_cookie(&self) -> Result<Option<u64>, ClientError> {
        let config = self
            .get_pipeline_with(p4::get_forwarding_pipeline_config_request::ResponseType::CookieOnly)
            .await?;
        Ok(config.and_then(|c| c.cookie).map(|c| c.cookie))
    }

    /// Reads the whole pipeline back (P4Info and device config), and uses
    /// its P4Info for name lookups.
    ///
    /// # Errors
    /// Not connected, or the device refused the request.
    pub async fn get_pipeline(&self) -> Result<Option<p4::ForwardingPipelineConfig>, ClientError> {
        let config = self
            .get_pipeline_with(p4::get_forwarding_pipeline_config_request::ResponseType::All)
            .await?;
        if let Some(p4info) = config.as_ref().and_then(|c| c.p4info.clone()) {
            if let Ok(index) = P4InfoIndex::new(p4info) {
                *lock(&self.inner.index) = Some(Arc::new(index));
            }
        }
        Ok(config)
    }

    async fn get_pipeline_with(
        &self,
        kind: p4::get_forwarding_pipeline_config_request::ResponseType,
    ) -> Result<Option<p4::ForwardingPipelineConfig>, ClientError> {
        let request = p4::GetForwardingPipelineConfigRequest {
            device_id: self.device_id(),
            response_type: kind as i32,
        };
        match self.client()?.get_forwarding_pipeline_config(request).await {
            Ok(resp) => Ok(resp.into_inner().config),
            // A device without a pipeline answers FAILED_PRECONDITION.
            Err(s) if s.code() == tonic::Code::FailedPrecondition => Ok(None),
            Err(status) => Err(ClientError::Rpc {
                device_id: self.device_id(),
                rpc: "GetForwardingPipelineConfig",
                status,
            }),
        }
    }
}
