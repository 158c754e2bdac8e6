//! [`MemoryDataplane`]: a data plane that forwards nothing, so that the
//! P4Runtime behaviour can be served and tested where no data plane is
//! attached.

use std::collections::HashSet;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use solyx_p4runtime::proto::p4::v1 as p4;
use solyx_p4runtime::P4InfoIndex;
use tokio::sync::broadcast;

use super::dataplane::{
    Change, Dataplane, DataplaneError, DataplaneErrorKind, Entry, PacketIn, PacketInSink, PacketOut,
};

/// A data plane that **forwards nothing**: it accepts every change without
/// programming anything, keeps every counter at zero, and sends no packet
/// anywhere. It exists so that the P4Runtime server can be served and
/// tested on a machine with no data plane attached.
///
/// For tests it shows what the server asked of it: packet-outs can be
/// watched with [`MemoryDataplane::packet_outs`], packet-ins injected with
/// [`MemoryDataplane::inject_packet_in`], changes to chosen tables
/// refused with [`MemoryDataplane::refuse_table`], ends of batches counted
/// with [`MemoryDataplane::batches_ended`] and the next one failed with
/// [`MemoryDataplane::fail_next_end_batch`].
#[derive(Debug)]
pub struct MemoryDataplane {
    sink: Mutex<Option<PacketInSink>>,
    packet_outs: broadcast::Sender<PacketOut>,
    changes: AtomicU64,
    refused_tables: Mutex<HashSet<u32>>,
    batches: AtomicU64,
    fail_end_batch: AtomicBool,
}

impl Default for MemoryDataplane {
    fn default() -> Self {
        Self::new()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The data behind these locks stays consistent whatever panicked.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MemoryDataplane {
    /// A data plane that forwards nothing.
    #[must_use]
    pub fn new() -> Self {
        Self {
            sink: Mutex::new(None),
            packet_outs: broadcast::channel(1024).0,
            changes: AtomicU64::new(0),
            refused_tables: Mutex::new(HashSet::new()),
            batches: AtomicU64::new(0),
            fail_end_batch: AtomicBool::new(false),
        }
    }

    /// The same, in an `Arc`, as the server takes it.
    #[must_use]
    pub fn shared() -> Arc<Self> {
        Arc::new(Self::new())
    }

    /// Packet-outs the server hands to this data plane, from now on.
    #[must_use]
    pub fn packet_outs(&self) -> broadcast::Receiver<PacketOut> {
        self.packet_outs.subscribe()
    }

    /// Hands `packet` to the server as if it had arrived from the data
    /// plane. Returns to how many clients it was queued (0 before the
    /// server is attached).
    pub fn inject_packet_in(&self, packet: PacketIn) -> usize {
        let sink = lock(&self.sink).clone();
        sink.map_or(0, |s| s.deliver(packet))
    }

    /// How many changes were applied (inserts, modifies, deletes).
    #[must_use]
    pub fn changes_applied(&self) -> u64 {
        self.changes.load(Ordering::Relaxed)
    }

    /// From now on, refuses every change to table `table_id` (as a data
    /// plane with a full map would), to test that the server then leaves
    /// its store unchanged.
    pub fn refuse_table(&self, table_id: u32) {
        lock(&self.refused_tables).insert(table_id);
    }

    /// Accepts changes to every table again.
    pub fn accept_all_tables(&self) {
        lock(&self.refused_tables).clear();
    }

    /// How many times the server ended a batch ([`Dataplane::end_batch`]).
    #[must_use]
    pub fn batches_ended(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }

    /// Makes the next [`Dataplane::end_batch`] fail (as a data plane that
    /// cannot publish what it collected would), to test that the server
    /// then undoes the batch.
    pub fn fail_next_end_batch(&self) {
        self.fail_end_batch.store(true, Ordering::Relaxed);
    }
}

impl Dataplane for MemoryDataplane {
    fn name(&self) -> &str {
        "memory (forwards nothing)"
    }

    fn attach(&self, packet_ins: PacketInSink) {
        *lock(&self.sink) = Some(packet_ins);
    }

    fn commit_pipeline(
        &self,
        _p4info: &Arc<P4InfoIndex>,
        _device_config: &[u8],
    ) -> Result<(), DataplaneError> {
        Ok(())
    }

    fn apply(&self, change: &Change<'_>) -> Result<(), DataplaneError> {
        let entry = match change {
            Change::Insert(e) | Change::Delete(e) | Change::Modify { new: e, .. } => e,
        };
        if let Entry::Table(t) = entry {
            let refused = lock(&self.refused_tables);
            if !refused.is_empty() && refused.contains(&t.table_id) {
                return Err(DataplaneError::new(
                    DataplaneErrorKind::Full,
                    format!(
                        "memory data plane told to refuse table {:#010x}",
                        t.table_id
                    ),
                ));
            }
        }
        self.changes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn end_batch(&self) -> Result<(), DataplaneError> {
        self.batches.fetch_add(1, Ordering::Relaxed);
        if self.fail_end_batch.swap(false, Ordering::Relaxed) {
            return Err(DataplaneError::new(
                DataplaneErrorKind::Failed,
                "memory data plane told to fail the end of this batch",
            ));
        }
        Ok(())
    }

    fn read_counter(
        &self,
        _counter_id: u32,
        indices: Range<i64>,
    ) -> Result<Vec<p4::CounterData>, DataplaneError> {
        let n = usize::try_from(indices.end.saturating_sub(indices.start)).unwrap_or(0);
        Ok(vec![p4::CounterData::default(); n])
    }

    fn read_direct_counter(
        &self,
        _entry: &p4::TableEntry,
    ) -> Result<p4::CounterData, DataplaneError> {
        Ok(p4::CounterData::default())
    }

    fn packet_out(&self, packet: PacketOut) -> Result<(), DataplaneError> {
        // Nobody watching is fine: the packet goes nowhere either way.
        let _ = self.packet_outs.send(packet);
        Ok(())
    }
}
