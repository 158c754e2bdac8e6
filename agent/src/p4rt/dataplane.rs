//! The seam between the P4Runtime server and whatever forwards packets:
//! the [`Dataplane`] trait, the changes it is given, the packets it
//! exchanges with the controller, and its errors.
//!
//! The server calls a data plane only with validated, normalised entities
//! (see [`solyx_p4runtime::entity::normalize`]): every ID exists in the
//! committed P4Info, every value fits its field, every reference resolves.
//! A data plane may still refuse a change (a full map, a feature it lacks);
//! the server then leaves its own store as it was, so store and data plane
//! never disagree.

use std::ops::Range;
use std::sync::Arc;

use solyx_p4runtime::proto::p4::v1 as p4;
use solyx_p4runtime::P4InfoIndex;

/// What kind of failure a data plane reports; decides the gRPC code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataplaneErrorKind {
    /// Out of room (a map or table is full).
    Full,
    /// The data plane cannot do this (a feature it lacks).
    Unsupported,
    /// The data plane refuses the value (a port that does not exist, ...).
    Invalid,
    /// The data plane is not reachable right now.
    Unavailable,
    /// Anything else.
    Failed,
}

/// A failure reported by a data plane.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DataplaneError {
    /// The kind of failure.
    pub kind: DataplaneErrorKind,
    /// What happened, for the client.
    pub message: String,
}

impl DataplaneError {
    /// A failure of `kind` described by `message`.
    #[must_use]
    pub fn new(kind: DataplaneErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

/// One programmable entity, borrowed from the server's store.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Entry<'a> {
    /// A table entry. `is_default_action` marks a table's default entry;
    /// a default entry whose `action` is `None` stands for the program's
    /// own default action.
    Table(&'a p4::TableEntry),
    /// An action-profile member.
    Member(&'a p4::ActionProfileMember),
    /// An action-profile group (of an action selector).
    Group(&'a p4::ActionProfileGroup),
    /// A multicast group of the packet replication engine.
    MulticastGroup(&'a p4::MulticastGroupEntry),
    /// A clone session of the packet replication engine.
    CloneSession(&'a p4::CloneSessionEntry),
}

/// A validated change to apply to the data plane.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Change<'a> {
    /// A new entity.
    Insert(Entry<'a>),
    /// An entity with the same identity replaces `old`.
    Modify {
        /// What the data plane holds now.
        old: Entry<'a>,
        /// What it must hold afterwards.
        new: Entry<'a>,
    },
    /// The entity goes away.
    Delete(Entry<'a>),
}

/// A packet the controller sends out of a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketOut {
    /// The port to send it out of (the `egress_port` field of the P4Info
    /// `packet_out` header).
    pub egress_port: u32,
    /// The whole frame.
    pub payload: Vec<u8>,
}

/// A packet the data plane sends up to the controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketIn {
    /// The port it came in on (sent as the `ingress_port` field of the
    /// P4Info `packet_in` header).
    pub ingress_port: u32,
    /// The whole frame.
    pub payload: Vec<u8>,
}

type Deliver = dyn Fn(PacketIn) -> usize + Send + Sync;

/// Where a data plane hands packet-ins to the server. Cheap to clone and
/// callable from any thread; it never blocks: a packet that finds a
/// client's queue full is dropped for that client.
#[derive(Clone)]
pub struct PacketInSink {
    deliver: Arc<Deliver>,
}

impl std::fmt::Debug for PacketInSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PacketInSink")
    }
}

impl PacketInSink {
    /// A sink that calls `deliver` for each packet; `deliver` returns to
    /// how many clients the packet was queued.
    #[must_use]
    pub fn new(deliver: impl Fn(PacketIn) -> usize + Send + Sync + 'static) -> Self {
        Self {
            deliver: Arc::new(deliver),
        }
    }

    /// A sink that drops every packet.
    #[must_use]
    pub fn discard() -> Self {
        Self::new(|_| 0)
    }

    /// Sends `packet` to the primary client(s). Returns to how many
    /// clients it was queued (0 when no primary is connected, no pipeline
    /// is set, or the pipeline has no `packet_in` header).
    pub fn deliver(&self, packet: PacketIn) -> usize {
        (self.deliver)(packet)
    }
}

/// A data plane the P4Runtime server programs.
///
/// Every method is called with validated input, from the server's tasks,
/// while it holds the lock of the device state: implementations must not
/// block for long and must not call back into the server. A method that
/// returns an error must leave the data plane as it was.
pub trait Dataplane: Send + Sync + 'static {
    /// A short name for logs ("memory", "ebpf-fabric", ...).
    fn name(&self) -> &str;

    /// Called once, when the server starts, with the sink for packet-ins.
    fn attach(&self, packet_ins: PacketInSink);

    /// Checks that the data plane can run this pipeline (VERIFY and the
    /// verify step of the other actions). The default accepts any.
    ///
    /// # Errors
    /// Why the pipeline cannot run here.
    fn verify_pipeline(
        &self,
        p4info: &P4InfoIndex,
        device_config: &[u8],
    ) -> Result<(), DataplaneError> {
        let _ = (p4info, device_config);
        Ok(())
    }

    /// Switches to a new pipeline. The data plane starts it empty; entities
    /// kept across a RECONCILE_AND_COMMIT are inserted again afterwards with
    /// [`Dataplane::apply`].
    ///
    /// # Errors
    /// The pipeline could not be loaded; the old one must keep running.
    fn commit_pipeline(
        &self,
        p4info: &Arc<P4InfoIndex>,
        device_config: &[u8],
    ) -> Result<(), DataplaneError>;

    /// Takes over a pipeline saved by an earlier run of the agent
    /// (`ServerConfig::state_file`), or the new pipeline of a
    /// RECONCILE_AND_COMMIT, instead of starting it empty: the data plane
    /// may still hold (and forward with) what was installed before.
    /// The server then replays every saved entity with [`Dataplane::apply`]
    /// as inserts and calls [`Dataplane::restore_finished`]. The default
    /// starts the pipeline empty ([`Dataplane::commit_pipeline`]), after
    /// which the replay installs everything again.
    ///
    /// # Errors
    /// The pipeline could not be taken over; the server starts without one.
    fn restore_pipeline(
        &self,
        p4info: &Arc<P4InfoIndex>,
        device_config: &[u8],
    ) -> Result<(), DataplaneError> {
        self.commit_pipeline(p4info, device_config)
    }

    /// Ends a restore: whatever the data plane holds that the replay did
    /// not insert again is removed. The default does nothing.
    ///
    /// # Errors
    /// The clean-up failed; the server logs it.
    fn restore_finished(&self) -> Result<(), DataplaneError> {
        Ok(())
    }

    /// Applies one change. A data plane may collect changes and make them
    /// visible to packets only at [`Dataplane::end_batch`] (one swap for a
    /// whole Write instead of one per update).
    ///
    /// # Errors
    /// The change was refused; nothing of it may remain applied.
    fn apply(&self, change: &Change<'_>) -> Result<(), DataplaneError>;

    /// Ends a batch of changes: the server calls it once per Write request,
    /// after every update of it (and, for a failed batch that is rolled
    /// back, after the undoing changes), with no other call in between. A
    /// data plane that collected changes makes them visible now. The
    /// default does nothing.
    ///
    /// # Errors
    /// The collected changes could not be made visible. They must then
    /// stay pending (a later `end_batch` may publish them): the server
    /// undoes every change of the batch and calls `end_batch` again, so
    /// the data plane ends up as it was before the Write.
    fn end_batch(&self) -> Result<(), DataplaneError> {
        Ok(())
    }

    /// Reads cells `indices` of indexed counter `counter_id` (inside the
    /// counter's size). Returns one value per index, in order.
    ///
    /// # Errors
    /// The counter could not be read.
    fn read_counter(
        &self,
        counter_id: u32,
        indices: Range<i64>,
    ) -> Result<Vec<p4::CounterData>, DataplaneError>;

    /// Reads cells `indices` of register `register_id` (inside the
    /// register's size). Returns one value per index, in order. The
    /// default refuses: a data plane without registers.
    ///
    /// # Errors
    /// The register could not be read, or this data plane has none.
    fn read_register(
        &self,
        register_id: u32,
        indices: Range<i64>,
    ) -> Result<Vec<p4::P4Data>, DataplaneError> {
        let _ = indices;
        Err(DataplaneError::new(
            DataplaneErrorKind::Unsupported,
            format!("register {register_id:#010x}: this data plane has no registers to read"),
        ))
    }

    /// Reads the direct counter of the (stored, normalised) table entry.
    ///
    /// # Errors
    /// The counter could not be read.
    fn read_direct_counter(
        &self,
        entry: &p4::TableEntry,
    ) -> Result<p4::CounterData, DataplaneError>;

    /// Sends a packet out of a port.
    ///
    /// # Errors
    /// The packet could not be sent (unknown port, ...).
    fn packet_out(&self, packet: PacketOut) -> Result<(), DataplaneError>;
}
