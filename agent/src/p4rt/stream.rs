//! The StreamChannel: arbitration requests in and updates out, packet-outs
//! from the primary to the data plane, packet-ins from the data plane to
//! the primaries, digest acknowledgements.
//!
//! Controller packet metadata follows the P4Info controller headers: a
//! packet-out's `egress_port` field of the `packet_out` header names the
//! port; a packet-in carries its port in the `ingress_port` field of the
//! `packet_in` header, as a canonical byte string.

use std::sync::Arc;
use std::time::Duration;

use solyx_p4runtime::canonical;
use solyx_p4runtime::proto::p4::v1 as p4;
use solyx_p4runtime::P4InfoIndex;
use tokio::sync::mpsc::error::TrySendError;
use tonic::Status;
use tracing::{debug, info, warn, Span};

use super::arbitration::{ElectionId, Notice, Standing, StreamId};
use super::dataplane::{PacketIn, PacketOut};
use super::error::{rpc_status, StoreError};
use super::service::{lock, Shared, StreamTx};

/// Name of the controller header of packet-outs.
pub const PACKET_OUT_HEADER: &str = "packet_out";
/// Name of the controller header of packet-ins.
pub const PACKET_IN_HEADER: &str = "packet_in";
/// The `packet_out` field naming the port to send out of.
pub const EGRESS_PORT_FIELD: &str = "egress_port";
/// The `packet_in` field naming the port a packet came in on.
pub const INGRESS_PORT_FIELD: &str = "ingress_port";

/// How long a closing stream waits to queue its final error.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// The 128-bit value of an election ID, if given.
pub(crate) fn election_of(v: Option<&p4::Uint128>) -> Option<ElectionId> {
    v.map(|v| (u128::from(v.high) << 64) | u128::from(v.low))
}

fn to_uint128(v: ElectionId) -> p4::Uint128 {
    p4::Uint128 {
        high: (v >> 64) as u64,
        low: v as u64,
    }
}

/// Serves one StreamChannel until the client closes it, it fails, it is
/// refused, or the server shuts down.
pub(crate) async fn run(
    shared: Arc<Shared>,
    id: StreamId,
    mut inbound: tonic::Streaming<p4::StreamMessageRequest>,
    tx: StreamTx,
) {
    lock(&shared.sessions).senders.insert(id, tx.clone());
    let mut shutdown = shared.shutdown.subscribe();
    debug!("stream opened");
    loop {
        let msg = tokio::select! {
            m = inbound.message() => m,
            _ = shutdown.wait_for(|closed| *closed) => {
                debug!("server shutting down: closing the stream");
                break;
            }
        };
        match msg {
            Ok(Some(m)) => {
                if let Err(status) = handle(&shared, id, &tx, m).await {
                    warn!(code = ?status.code(), message = status.message(), "closing the stream");
                    let _ = tokio::time::timeout(CLOSE_TIMEOUT, tx.send(Err(status))).await;
                    break;
                }
            }
            Ok(None) => {
                debug!("client closed the stream");
                break;
            }
            Err(status) => {
                debug!(%status, "stream broken");
                break;
            }
        }
    }
    let notices = {
        let mut s = lock(&shared.sessions);
        s.senders.remove(&id);
        s.arbiter.remove(id)
    };
    for n in notices.iter().filter(|n| n.standing == Standing::Primary) {
        info!(
            promoted = n.stream,
            election_id = ?n.election_id,
            role = %n.role,
            "primary stream closed: promoted the next highest election ID"
        );
    }
    send_notices(&shared, notices);
}

async fn handle(
    shared: &Shared,
    id: StreamId,
    tx: &StreamTx,
    msg: p4::StreamMessageRequest,
) -> Result<(), Status> {
    use p4::stream_message_request::Update;
    let Some(update) = msg.update else {
        return Ok(());
    };
    if !matches!(update, Update::Arbitration(_)) && !lock(&shared.sessions).arbiter.is_bound(id) {
        return Err(StoreError::NotArbitrated.into());
    }
    match update {
        Update::Arbitration(a) => arbitrate(shared, id, &a),
        Update::Packet(p) => {
            if let Err(e) = packet_out(shared, id, &p) {
                debug!(error = %e, "packet-out refused");
                let mut error = p4::StreamError::from(&e);
                error.details = Some(p4::stream_error::Details::PacketOut(p4::PacketOutError {
                    packet_out: Some(p),
                }));
                queue(tx, error);
            }
            Ok(())
        }
        Update::DigestAck(ack) => {
            // TODO-completeness: no data plane produces digests yet, so
            // acknowledgements are accepted and ignored.
            debug!(
                digest_id = ack.digest_id,
                list_id = ack.list_id,
                "digest ack"
            );
            Ok(())
        }
        Update::Other(any) => {
            let e = StoreError::Unsupported(format!(
                "stream message {:?} is not supported",
                any.type_url
            ));
            let mut error = p4::StreamError::from(&e);
            error.details = Some(p4::stream_error::Details::Other(p4::StreamOtherError {
                other: Some(any),
            }));
            queue(tx, error);
            Ok(())
        }
    }
}

fn queue(tx: &StreamTx, error: p4::StreamError) {
    let msg = p4::StreamMessageResponse {
        update: Some(p4::stream_message_response::Update::Error(error)),
    };
    if tx.try_send(Ok(msg)).is_err() {
        debug!("stream queue full: stream error dropped");
    }
}

fn arbitrate(shared: &Shared, id: StreamId, a: &p4::MasterArbitrationUpdate) -> Result<(), Status> {
    let role = a.role.as_ref().map_or("", |r| r.name.as_str());
    let election = election_of(a.election_id.as_ref());
    // TODO-security: role configs (`Role.config`) are ignored: every role
    // may write and read every entity.
    let notices = lock(&shared.sessions)
        .arbiter
        .arbitrate(id, a.device_id, role, election)?;
    let span = Span::current();
    span.record("device_id", a.device_id);
    span.record("role", role);
    if let Some(e) = election {
        span.record("election_id", tracing::field::display(e));
    }
    if let Some(own) = notices.iter().find(|n| n.stream == id) {
        info!(standing = ?own.standing, primary_election_id = ?own.election_id, "arbitration");
    }
    send_notices(shared, notices);
    Ok(())
}

fn arbitration_message(n: &Notice) -> p4::StreamMessageResponse {
    let (code, message) = n.standing.status();
    p4::StreamMessageResponse {
        update: Some(p4::stream_message_response::Update::Arbitration(
            p4::MasterArbitrationUpdate {
                device_id: n.device_id,
                role: (!n.role.is_empty()).then(|| p4::Role {
                    name: n.role.clone(),
                    ..Default::default()
                }),
                election_id: n.election_id.map(to_uint128),
                status: Some(rpc_status(code, message)),
            },
        )),
    }
}

/// Sends arbitration updates. A stream whose queue is full gets its update
/// from a task, so that no update is lost.
// TODO-robustness: an update sent from a task may overtake a later one to
// the same stream; it only happens when that stream's queue is full.
pub(crate) fn send_notices(shared: &Shared, notices: Vec<Notice>) {
    if notices.is_empty() {
        return;
    }
    let targets: Vec<(StreamTx, p4::StreamMessageResponse)> = {
        let s = lock(&shared.sessions);
        notices
            .iter()
            .filter_map(|n| {
                s.senders
                    .get(&n.stream)
                    .map(|tx| (tx.clone(), arbitration_message(n)))
            })
            .collect()
    };
    for (tx, msg) in targets {
        match tx.try_send(Ok(msg)) {
            Ok(()) | Err(TrySendError::Closed(_)) => {}
            Err(TrySendError::Full(msg)) => {
                tokio::spawn(async move {
                    let _ = tx.send(msg).await;
                });
            }
        }
    }
}

fn packet_out(shared: &Shared, id: StreamId, p: &p4::PacketOut) -> Result<(), StoreError> {
    {
        let s = lock(&shared.sessions);
        if !s.arbiter.is_primary_stream(id) {
            return Err(StoreError::NotPrimary {
                role: s.arbiter.role_of(id).unwrap_or_default().to_string(),
                detail: "only the primary stream may send packets".into(),
            });
        }
    }
    let index = lock(&shared.packet_index)
        .clone()
        .ok_or(StoreError::NoPipeline)?;
    let packet = decode_packet_out(&index, p)?;
    shared.dataplane.packet_out(packet)?;
    Ok(())
}

/// Reads the egress port of a packet-out from its metadata, checked
/// against the `packet_out` header of the P4Info.
pub(crate) fn decode_packet_out(
    index: &P4InfoIndex,
    p: &p4::PacketOut,
) -> Result<PacketOut, StoreError> {
    let pipeline = index.package().1;
    let header = index
        .packet_metadata
        .by_name(PACKET_OUT_HEADER)
        .ok_or_else(|| {
            StoreError::Invalid(format!(
                "pipeline {pipeline:?} declares no {PACKET_OUT_HEADER} controller header: it takes no packet-outs"
            ))
        })?;
    let port_field = header
        .metadata
        .iter()
        .find(|m| m.name == EGRESS_PORT_FIELD)
        .ok_or_else(|| {
            StoreError::Invalid(format!(
                "the {PACKET_OUT_HEADER} header of pipeline {pipeline:?} has no {EGRESS_PORT_FIELD:?} field"
            ))
        })?;
    let mut port = None;
    for (i, m) in p.metadata.iter().enumerate() {
        let decl = header
            .metadata
            .iter()
            .find(|d| d.id == m.metadata_id)
            .ok_or_else(|| {
                StoreError::Invalid(format!(
                    "{PACKET_OUT_HEADER}: no metadata field with ID {}",
                    m.metadata_id
                ))
            })?;
        let at = format!("{PACKET_OUT_HEADER} field {:?}", decl.name);
        if p.metadata
            .iter()
            .take(i)
            .any(|q| q.metadata_id == m.metadata_id)
        {
            return Err(StoreError::Invalid(format!("{at} is given twice")));
        }
        if m.value.is_empty() {
            return Err(StoreError::Invalid(format!("{at}: empty value")));
        }
        let needed = canonical::bit_length(&m.value);
        if decl.bitwidth > 0 && needed > decl.bitwidth {
            return Err(StoreError::Invalid(format!(
                "{at}: value needs {needed} bits but the field is {} bits wide",
                decl.bitwidth
            )));
        }
        if decl.id == port_field.id {
            port = Some(m.value.as_slice());
        }
    }
    // TODO-completeness: packet_out fields other than egress_port are
    // checked but not passed to the data plane.
    let value = port.ok_or_else(|| {
        StoreError::Invalid(format!(
            "{PACKET_OUT_HEADER}: the {EGRESS_PORT_FIELD:?} field is missing"
        ))
    })?;
    let egress_port = canonical::to_u128(value)
        .ok()
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| {
            StoreError::Invalid(format!(
                "{PACKET_OUT_HEADER} field {EGRESS_PORT_FIELD:?}: the port does not fit in 32 bits"
            ))
        })?;
    Ok(PacketOut {
        egress_port,
        payload: p.payload.clone(),
    })
}

/// Builds the packet-in message, with the port in the `ingress_port`
/// field of the P4Info `packet_in` header.
pub(crate) fn encode_packet_in(
    index: &P4InfoIndex,
    packet: PacketIn,
) -> Result<p4::StreamMessageResponse, StoreError> {
    let pipeline = index.package().1;
    let header = index
        .packet_metadata
        .by_name(PACKET_IN_HEADER)
        .ok_or_else(|| {
            StoreError::Invalid(format!(
                "pipeline {pipeline:?} declares no {PACKET_IN_HEADER} controller header"
            ))
        })?;
    let field = header
        .metadata
        .iter()
        .find(|m| m.name == INGRESS_PORT_FIELD)
        .ok_or_else(|| {
            StoreError::Invalid(format!(
                "the {PACKET_IN_HEADER} header of pipeline {pipeline:?} has no {INGRESS_PORT_FIELD:?} field"
            ))
        })?;
    let value = canonical::canonical(&packet.ingress_port.to_be_bytes());
    if field.bitwidth > 0 && canonical::bit_length(&value) > field.bitwidth {
        return Err(StoreError::Invalid(format!(
            "ingress port {} does not fit the {}-bit {INGRESS_PORT_FIELD:?} field",
            packet.ingress_port, field.bitwidth
        )));
    }
    // TODO-completeness: packet_in fields other than ingress_port are not
    // sent (the controller reads the port only).
    Ok(p4::StreamMessageResponse {
        update: Some(p4::stream_message_response::Update::Packet(p4::PacketIn {
            payload: packet.payload,
            metadata: vec![p4::PacketMetadata {
                metadata_id: field.id,
                value,
            }],
        })),
    })
}

/// Queues a packet-in to the primary stream of every role; returns to how
/// many it was queued. Never blocks: a full queue drops the packet.
pub(crate) fn deliver_packet_in(shared: &Shared, packet: PacketIn) -> usize {
    let Some(index) = lock(&shared.packet_index).clone() else {
        return 0;
    };
    let msg = match encode_packet_in(&index, packet) {
        Ok(m) => m,
        Err(e) => {
            debug!(error = %e, "packet-in dropped");
            return 0;
        }
    };
    let targets: Vec<StreamTx> = {
        let s = lock(&shared.sessions);
        s.arbiter
            .primary_streams()
            .filter_map(|id| s.senders.get(&id).cloned())
            .collect()
    };
    targets
        .into_iter()
        .filter(|tx| tx.try_send(Ok(msg.clone())).is_ok())
        .count()
}
