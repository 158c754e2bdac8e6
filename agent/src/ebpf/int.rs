//! [`IntTransit`]: the INT-MD transit stage of the fabric (TC egress
//! program `fabric_egress`), its attachments, and typed access to its maps:
//! the P4 tables `FabricEgress.int_switch_config` and
//! `FabricEgress.int_watchlist`, their direct counters, the egress port
//! counters (`PORT_TX`, P4 `egress_port_counter`) and the INT event
//! counters.
//!
//! The program lives in the fabric object, so it is loaded from, and
//! attached through, a [`Fabric`]: the ingress program records each
//! packet's ingress time in `skb->mark`, and both programs share
//! `PORT_OF_IFINDEX`. The queue state the program reports (backlog, drain
//! rate, TX utilisation) comes from the [`QueuePublisher`] task.
//!
//! What the P4Runtime data plane calls, with decoded values:
//!
//! | P4Runtime | call |
//! | --- | --- |
//! | `int_switch_config` default action `int_set_switch_id(id)` | [`IntTransit::set_switch_id`] |
//! | reset of that default action | [`IntTransit::clear_switch_id`] |
//! | `int_watchlist` insert / modify | [`IntTransit::insert_watch_rule`] |
//! | `int_watchlist` delete | [`IntTransit::remove_watch_rule`] |
//! | every `int_watchlist` entry gone (a new pipeline) | [`IntTransit::clear_watch_rules`] |
//! | `int_watchlist_counter` | [`IntTransit::watch_rule_hits`] |
//! | `int_switch_config_counter` | [`IntTransit::switch_config_hits`] |
//! | `egress_port_counter` | [`IntTransit::port_tx`] |
//!
//! [`QueuePublisher`]: super::QueuePublisher

use std::collections::HashMap as StdHashMap;
use std::io;
use std::path::{Path, PathBuf};

use aya::maps::{Array, MapData, MapType, PerCpuArray, PerCpuValues};
use aya::programs::links::FdLink;
use aya::programs::tc::{SchedClassifierLinkId, TcAttachType};
use aya::programs::SchedClassifier;
use aya::Ebpf;
use solyx_ebpf_common::int::{
    IntConfig, IntEvent, PortQueueState, WatchRule, INT_CONFIG_SWITCH_ID_SET, INT_EVENT_SLOTS,
    INT_PORT_SLOTS, INT_WATCHLIST_CAPACITY, INT_WATCHLIST_SLOTS, MAP_INT_CONFIG, MAP_INT_EVENTS,
    MAP_INT_PORT_STATE, MAP_INT_SWITCH_HITS, MAP_INT_WATCHLIST, MAP_INT_WATCH_HITS, MAP_PORT_TX,
    PROG_FABRIC_EGRESS, WATCH_FLAG_MARK, WATCH_FLAG_VALID,
};
use solyx_ebpf_common::Counter;

use super::bpffs::MapLayout;
use super::fabric::replace_in_pinned_link;
use super::{Error, Fabric};

/// The egress program's pinned maps and their layouts; `Fabric::load` pins
/// them with its own.
pub(crate) const INT_LAYOUTS: [MapLayout; 7] = [
    MapLayout {
        name: MAP_INT_CONFIG,
        map_type: MapType::Array,
        key_size: size_of::<u32>() as u32,
        value_size: size_of::<IntConfig>() as u32,
        max_entries: 1,
    },
    MapLayout {
        name: MAP_INT_WATCHLIST,
        map_type: MapType::Array,
        key_size: size_of::<u32>() as u32,
        value_size: size_of::<WatchRule>() as u32,
        max_entries: INT_WATCHLIST_SLOTS,
    },
    MapLayout {
        name: MAP_INT_WATCH_HITS,
        map_type: MapType::PerCpuArray,
        key_size: size_of::<u32>() as u32,
        value_size: size_of::<Counter>() as u32,
        max_entries: INT_WATCHLIST_CAPACITY,
    },
    MapLayout {
        name: MAP_INT_SWITCH_HITS,
        map_type: MapType::PerCpuArray,
        key_size: size_of::<u32>() as u32,
        value_size: size_of::<Counter>() as u32,
        max_entries: 1,
    },
    MapLayout {
        name: MAP_INT_PORT_STATE,
        map_type: MapType::Array,
        key_size: size_of::<u32>() as u32,
        value_size: size_of::<PortQueueState>() as u32,
        max_entries: INT_PORT_SLOTS,
    },
    MapLayout {
        name: MAP_PORT_TX,
        map_type: MapType::PerCpuArray,
        key_size: size_of::<u32>() as u32,
        value_size: size_of::<Counter>() as u32,
        max_entries: INT_PORT_SLOTS,
    },
    MapLayout {
        name: MAP_INT_EVENTS,
        map_type: MapType::PerCpuArray,
        key_size: size_of::<u32>() as u32,
        value_size: size_of::<u64>() as u32,
        max_entries: INT_EVENT_SLOTS,
    },
];

/// The action of an `int_watchlist` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WatchAction {
    /// `int_mark_int`: the packet carries INT after its TCP/UDP header.
    Mark,
    /// `int_no_mark`: it does not (excludes traffic a broader entry marks).
    NoMark,
}

/// The match of an `int_watchlist` entry: its identity in P4Runtime
/// (priority and the two ternary fields), decoded.
///
/// Values must lie within their masks (P4Runtime's canonical form); a mask
/// of 0 is a wildcard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WatchMatch {
    /// P4Runtime priority, > 0; the higher wins.
    pub priority: u32,
    /// `ipv4_dscp` value (6 bits).
    pub dscp: u8,
    /// `ipv4_dscp` mask (6 bits).
    pub dscp_mask: u8,
    /// `l4_dst_port` value.
    pub l4_dst_port: u16,
    /// `l4_dst_port` mask.
    pub l4_dst_port_mask: u16,
}

impl WatchMatch {
    /// Refuses what the table cannot hold.
    fn check(&self) -> Result<(), Error> {
        if self.priority == 0 {
            return Err(Error::invalid(
                "int_watchlist priority",
                "0 (ternary entries need a priority above 0)",
            ));
        }
        if self.dscp > 0x3f || self.dscp_mask > 0x3f {
            return Err(Error::invalid(
                "int_watchlist ipv4_dscp",
                format!(
                    "{:#x}/{:#x} is wider than 6 bits",
                    self.dscp, self.dscp_mask
                ),
            ));
        }
        if self.dscp & !self.dscp_mask != 0 {
            return Err(Error::invalid(
                "int_watchlist ipv4_dscp",
                format!(
                    "value {:#x} has bits outside mask {:#x}",
                    self.dscp, self.dscp_mask
                ),
            ));
        }
        if self.l4_dst_port & !self.l4_dst_port_mask != 0 {
            return Err(Error::invalid(
                "int_watchlist l4_dst_port",
                format!(
                    "value {:#x} has bits outside mask {:#x}",
                    self.l4_dst_port, self.l4_dst_port_mask
                ),
            ));
        }
        Ok(())
    }
}

/// One installed rule: match, action and its counter slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Installed {
    key: WatchMatch,
    action: WatchAction,
    counter: u8,
}

impl Installed {
    fn to_rule(self) -> WatchRule {
        let mark = match self.action {
            WatchAction::Mark => WATCH_FLAG_MARK,
            WatchAction::NoMark => 0,
        };
        WatchRule {
            flags: WATCH_FLAG_VALID | mark,
            dscp: self.key.dscp,
            dscp_mask: self.key.dscp_mask,
            counter: self.counter,
            l4_dst_port: self.key.l4_dst_port,
            l4_dst_port_mask: self.key.l4_dst_port_mask,
            priority: self.key.priority,
            _reserved: 0,
        }
    }

    fn from_rule(rule: &WatchRule) -> Self {
        Self {
            key: WatchMatch {
                priority: rule.priority,
                dscp: rule.dscp,
                dscp_mask: rule.dscp_mask,
                l4_dst_port: rule.l4_dst_port,
                l4_dst_port_mask: rule.l4_dst_port_mask,
            },
            action: if rule.flags & WATCH_FLAG_MARK != 0 {
                WatchAction::Mark
            } else {
                WatchAction::NoMark
            },
            counter: rule.counter,
        }
    }
}

/// The rules of a bank in the order the program scans them: highest
/// priority first; equal priorities keep their insertion order (P4Runtime
/// leaves overlapping equal-priority entries undefined).
fn bank_order(rules: &mut [Installed]) {
    rules.sort_by_key(|r| std::cmp::Reverse(r.key.priority));
}

/// The lowest counter slot no rule holds.
fn free_counter(rules: &[Installed]) -> Option<u8> {
    (0..INT_WATCHLIST_CAPACITY)
        .filter_map(|slot| u8::try_from(slot).ok())
        .find(|slot| !rules.iter().any(|r| r.counter == *slot))
}

/// The INT transit stage: the loaded `fabric_egress` program's attachments
/// and maps.
///
/// The program itself stays in the [`Fabric`]'s object. On kernels with
/// TCX (≥ 6.6) each egress link is pinned next to the maps
/// (`link-egress-<interface>`), like the ingress links: the program keeps
/// adding INT while no agent runs, and the next agent's
/// [`IntTransit::attach`] swaps its program into the pinned link
/// atomically. Without TCX the link is a clsact filter the program owns,
/// detached when the `Fabric` is dropped. Dropping an `IntTransit` detaches
/// nothing (call [`IntTransit::detach`] for that). The maps are pinned with
/// the fabric's, so the switch ID, the watchlist and the counters survive
/// an agent restart too.
pub struct IntTransit {
    config: Array<MapData, IntConfig>,
    watchlist: Array<MapData, WatchRule>,
    watch_hits: PerCpuArray<MapData, Counter>,
    switch_hits: PerCpuArray<MapData, Counter>,
    port_state: Array<MapData, PortQueueState>,
    port_tx: PerCpuArray<MapData, Counter>,
    events: PerCpuArray<MapData, u64>,
    /// The active bank's rules, in bank order.
    rules: Vec<Installed>,
    /// Interface name → (ifindex, link) of every egress attachment.
    links: StdHashMap<String, (u32, EgressLink)>,
}

/// File name prefix of a pinned egress link in the instance directory.
const LINK_PIN_PREFIX: &str = "link-egress-";

/// How an egress attachment is held.
#[derive(Debug)]
enum EgressLink {
    /// A TCX link pinned at this path: it outlives the agent; removing the
    /// pin detaches it.
    Pinned(PathBuf),
    /// A link the loaded program owns (a clsact filter, on kernels without
    /// TCX); it is detached with the `Fabric`.
    Owned(SchedClassifierLinkId),
}

impl std::fmt::Debug for IntTransit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntTransit")
            .field("watch_rules", &self.rules.len())
            .field("interfaces", &self.links.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl IntTransit {
    /// Loads the egress program of `fabric`'s object and takes its maps
    /// (once per `Fabric`). A reopened pin keeps the switch ID and the
    /// watchlist of the previous agent.
    pub fn new(fabric: &mut Fabric) -> Result<Self, Error> {
        let ebpf = fabric.ebpf_mut();
        program_mut(ebpf)?.load().map_err(program_error)?;
        let mut int = Self {
            config: take_map(ebpf, MAP_INT_CONFIG, Array::try_from)?,
            watchlist: take_map(ebpf, MAP_INT_WATCHLIST, Array::try_from)?,
            watch_hits: take_map(ebpf, MAP_INT_WATCH_HITS, PerCpuArray::try_from)?,
            switch_hits: take_map(ebpf, MAP_INT_SWITCH_HITS, PerCpuArray::try_from)?,
            port_state: take_map(ebpf, MAP_INT_PORT_STATE, Array::try_from)?,
            port_tx: take_map(ebpf, MAP_PORT_TX, PerCpuArray::try_from)?,
            events: take_map(ebpf, MAP_INT_EVENTS, PerCpuArray::try_from)?,
            rules: Vec::new(),
            links: StdHashMap::new(),
        };
        let config = int.config()?;
        int.rules = int.read_bank(config.watch_bank & 1)?;
        // The programs skip INT while `watch_rules` is 0: a pin whose count
        // does not match its active bank (written by an agent that did not
        // keep the count) is corrected.
        let count = int.rules.len() as u32;
        if config.watch_rules != count {
            int.write_config(IntConfig {
                watch_rules: count,
                ..config
            })?;
        }
        tracing::info!(
            watch_rules = int.rules.len(),
            switch_id = ?int.switch_id()?,
            "INT transit stage loaded"
        );
        Ok(int)
    }

    /// The egress program, e.g. for `BPF_PROG_TEST_RUN`; loaded by
    /// [`IntTransit::new`].
    pub fn program(fabric: &mut Fabric) -> Result<&mut SchedClassifier, Error> {
        program_mut(fabric.ebpf_mut())
    }

    /// Attaches the egress program to interface `name`, which `fabric` must
    /// have attached as a port already (its `PORT_OF_IFINDEX` entry gives
    /// the egress port). Returns the interface index.
    ///
    /// On kernels with TCX the link is pinned (`link-egress-<name>` in the
    /// fabric's pin directory) so that it outlives the agent; when a
    /// previous agent left such a pin, this program is swapped into that
    /// link atomically and INT never stops. Attaching an interface again
    /// replaces the program in place.
    pub fn attach(&mut self, fabric: &mut Fabric, name: &str) -> Result<u32, Error> {
        let Some(ifindex) = fabric
            .attached()
            .find(|(attached, _)| *attached == name)
            .map(|(_, ifindex)| ifindex)
        else {
            return Err(Error::invalid(
                "INT interface",
                format!("{name} is not a fabric port (Fabric::attach it first)"),
            ));
        };
        if let Some((_, EgressLink::Owned(link))) = self.links.remove(name) {
            program_mut(fabric.ebpf_mut())?
                .detach(link)
                .map_err(program_error)?;
        }
        let pin = fabric.pin_dir().join(format!("{LINK_PIN_PREFIX}{name}"));
        let link = attach_link(program_mut(fabric.ebpf_mut())?, &pin, name)?;
        tracing::info!(interface = name, ifindex, link = ?link, "INT transit attached");
        self.links.insert(name.to_owned(), (ifindex, link));
        Ok(ifindex)
    }

    /// Detaches the egress program from `name`; nothing for an interface
    /// this `IntTransit` did not attach.
    pub fn detach(&mut self, fabric: &mut Fabric, name: &str) -> Result<(), Error> {
        match self.links.remove(name) {
            None => Ok(()),
            Some((_, EgressLink::Owned(link))) => program_mut(fabric.ebpf_mut())?
                .detach(link)
                .map_err(program_error),
            Some((_, EgressLink::Pinned(pin))) => match std::fs::remove_file(&pin) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::Bpffs {
                    path: pin,
                    source: e,
                }),
                _ => Ok(()),
            },
        }
    }

    /// Detaches the pinned egress links a previous agent left on interfaces
    /// this `IntTransit` did not attach (ports no longer configured). Call
    /// it after attaching every configured port, like
    /// [`Fabric::retain_ports`].
    pub fn retain_ports(&mut self, fabric: &Fabric) -> Result<(), Error> {
        let dir = fabric.pin_dir();
        let entries = std::fs::read_dir(dir).map_err(|source| Error::Bpffs {
            path: dir.to_owned(),
            source,
        })?;
        for entry in entries.flatten() {
            let file = entry.file_name();
            let Some(name) = file.to_str().and_then(|f| f.strip_prefix(LINK_PIN_PREFIX)) else {
                continue;
            };
            if !self.links.contains_key(name) {
                tracing::info!(
                    interface = name,
                    "detached INT from a port of the previous agent"
                );
                std::fs::remove_file(entry.path()).map_err(|source| Error::Bpffs {
                    path: entry.path(),
                    source,
                })?;
            }
        }
        Ok(())
    }

    /// Interfaces the egress program is attached to, with their ifindexes.
    pub fn attached(&self) -> impl Iterator<Item = (&str, u32)> {
        self.links
            .iter()
            .map(|(name, (ifindex, _))| (name.as_str(), *ifindex))
    }

    fn config(&self) -> Result<IntConfig, Error> {
        self.config
            .get(&0, 0)
            .map_err(|e| Error::map(MAP_INT_CONFIG, 1, e))
    }

    fn write_config(&mut self, config: IntConfig) -> Result<(), Error> {
        self.config
            .set(0, config, 0)
            .map_err(|e| Error::map(MAP_INT_CONFIG, 1, e))
    }

    /// Sets this switch's INT ID: the default action
    /// `int_set_switch_id(switch_id)` of `int_switch_config`.
    pub fn set_switch_id(&mut self, switch_id: u32) -> Result<(), Error> {
        let config = self.config()?;
        self.write_config(IntConfig {
            switch_id,
            flags: config.flags | INT_CONFIG_SWITCH_ID_SET,
            ..config
        })
    }

    /// Resets `int_switch_config` to the P4 default
    /// (`INT_UNKNOWN_SWITCH_ID`, 0xffffffff).
    pub fn clear_switch_id(&mut self) -> Result<(), Error> {
        let config = self.config()?;
        self.write_config(IntConfig {
            switch_id: 0,
            flags: config.flags & !INT_CONFIG_SWITCH_ID_SET,
            ..config
        })
    }

    /// The switch ID set by [`IntTransit::set_switch_id`], if any.
    pub fn switch_id(&self) -> Result<Option<u32>, Error> {
        let config = self.config()?;
        Ok((config.flags & INT_CONFIG_SWITCH_ID_SET != 0).then_some(config.switch_id))
    }

    /// Installs an `int_watchlist` entry, or changes the action of the entry
    /// with the same match (which keeps its counter). A new entry starts
    /// with a zeroed counter. The whole rule set is swapped atomically: a
    /// packet sees either the old set or the new one.
    pub fn insert_watch_rule(&mut self, key: WatchMatch, action: WatchAction) -> Result<(), Error> {
        key.check()?;
        let mut rules = self.rules.clone();
        if let Some(existing) = rules.iter_mut().find(|r| r.key == key) {
            existing.action = action;
        } else {
            let Some(counter) = free_counter(&rules) else {
                return Err(Error::TableFull {
                    map: MAP_INT_WATCHLIST,
                    capacity: INT_WATCHLIST_CAPACITY,
                });
            };
            self.zero_watch_hits(counter)?;
            rules.push(Installed {
                key,
                action,
                counter,
            });
        }
        bank_order(&mut rules);
        self.commit(rules)
    }

    /// Removes the `int_watchlist` entry with match `key`. Returns whether
    /// there was one.
    pub fn remove_watch_rule(&mut self, key: &WatchMatch) -> Result<bool, Error> {
        let mut rules = self.rules.clone();
        let before = rules.len();
        rules.retain(|r| r.key != *key);
        if rules.len() == before {
            return Ok(false);
        }
        self.commit(rules)?;
        Ok(true)
    }

    /// Removes every `int_watchlist` entry, in one swap.
    pub fn clear_watch_rules(&mut self) -> Result<(), Error> {
        self.commit(Vec::new())
    }

    /// Every `int_watchlist` entry, highest priority first.
    #[must_use]
    pub fn watch_rules(&self) -> Vec<(WatchMatch, WatchAction)> {
        self.rules.iter().map(|r| (r.key, r.action)).collect()
    }

    /// Packets and bytes that hit the entry with match `key` (direct counter
    /// `int_watchlist_counter`), summed over CPUs; `None` without such an
    /// entry.
    pub fn watch_rule_hits(&self, key: &WatchMatch) -> Result<Option<Counter>, Error> {
        let Some(rule) = self.rules.iter().find(|r| r.key == *key) else {
            return Ok(None);
        };
        self.watch_hits
            .get(&u32::from(rule.counter), 0)
            .map(|values| Some(sum(&values)))
            .map_err(|e| Error::map(MAP_INT_WATCH_HITS, INT_WATCHLIST_CAPACITY, e))
    }

    /// Packets (and their bytes before the change) this hop added metadata
    /// to: the direct counter `int_switch_config_counter`.
    pub fn switch_config_hits(&self) -> Result<Counter, Error> {
        self.switch_hits
            .get(&0, 0)
            .map(|values| sum(&values))
            .map_err(|e| Error::map(MAP_INT_SWITCH_HITS, 1, e))
    }

    /// Packets and bytes sent on `port` (P4 `egress_port_counter`), counted
    /// at TC egress before INT grows them (and before the qdisc, so packets
    /// the qdisc drops are included), summed over CPUs.
    pub fn port_tx(&self, port: u16) -> Result<Counter, Error> {
        check_port(port)?;
        self.port_tx
            .get(&u32::from(port), 0)
            .map(|values| sum(&values))
            .map_err(|e| Error::map(MAP_PORT_TX, INT_PORT_SLOTS, e))
    }

    /// How many packets were counted for `event`, summed over CPUs.
    pub fn event_count(&self, event: IntEvent) -> Result<u64, Error> {
        self.events
            .get(&event.index(), 0)
            .map(|values| values.iter().fold(0u64, |acc, v| acc.saturating_add(*v)))
            .map_err(|e| Error::map(MAP_INT_EVENTS, INT_EVENT_SLOTS, e))
    }

    /// Every event with its count (zeros included), in index order.
    pub fn event_counts(&self) -> Result<Vec<(IntEvent, u64)>, Error> {
        IntEvent::ALL
            .iter()
            .map(|event| Ok((*event, self.event_count(*event)?)))
            .collect()
    }

    /// The queue state the program currently uses for `port`.
    pub fn port_state(&self, port: u16) -> Result<PortQueueState, Error> {
        check_port(port)?;
        self.port_state
            .get(&u32::from(port), 0)
            .map_err(|e| Error::map(MAP_INT_PORT_STATE, INT_PORT_SLOTS, e))
    }

    /// Overwrites the queue state of `port` (the [`QueuePublisher`] does
    /// this every period; tests and tools may set it directly).
    ///
    /// [`QueuePublisher`]: super::QueuePublisher
    pub fn set_port_state(&mut self, port: u16, state: PortQueueState) -> Result<(), Error> {
        check_port(port)?;
        self.port_state
            .set(u32::from(port), state, 0)
            .map_err(|e| Error::map(MAP_INT_PORT_STATE, INT_PORT_SLOTS, e))
    }

    /// Reads a bank's rules (up to the first invalid slot).
    fn read_bank(&self, bank: u32) -> Result<Vec<Installed>, Error> {
        let mut rules = Vec::new();
        for i in 0..INT_WATCHLIST_CAPACITY {
            let rule = self
                .watchlist
                .get(&(bank * INT_WATCHLIST_CAPACITY + i), 0)
                .map_err(|e| Error::map(MAP_INT_WATCHLIST, INT_WATCHLIST_SLOTS, e))?;
            if rule.flags & WATCH_FLAG_VALID == 0 {
                break;
            }
            rules.push(Installed::from_rule(&rule));
        }
        Ok(rules)
    }

    /// Writes `rules` (in bank order) into the inactive bank, then makes it
    /// the active one.
    fn commit(&mut self, rules: Vec<Installed>) -> Result<(), Error> {
        let config = self.config()?;
        let next = (config.watch_bank & 1) ^ 1;
        let base = next * INT_WATCHLIST_CAPACITY;
        for i in 0..INT_WATCHLIST_CAPACITY {
            let rule = rules
                .get(i as usize)
                .map_or_else(WatchRule::default, |r| r.to_rule());
            self.watchlist
                .set(base + i, rule, 0)
                .map_err(|e| Error::map(MAP_INT_WATCHLIST, INT_WATCHLIST_SLOTS, e))?;
        }
        // The bank and its rule count change in one value; the program
        // reads it once per packet, so a packet sees one bank or the other,
        // never a mix. (A torn read of the two words can only skip INT for
        // that packet or apply the previous rule set to it.)
        self.write_config(IntConfig {
            watch_bank: next,
            watch_rules: rules.len() as u32,
            ..config
        })?;
        self.rules = rules;
        Ok(())
    }

    fn zero_watch_hits(&mut self, slot: u8) -> Result<(), Error> {
        let zeroed = zeroed_per_cpu(MAP_INT_WATCH_HITS)?;
        self.watch_hits
            .set(u32::from(slot), zeroed, 0)
            .map_err(|e| Error::map(MAP_INT_WATCH_HITS, INT_WATCHLIST_CAPACITY, e))
    }
}

/// Refuses port numbers outside the per-port maps.
fn check_port(port: u16) -> Result<(), Error> {
    if u32::from(port) >= INT_PORT_SLOTS {
        return Err(Error::invalid(
            "port",
            format!("{port} is not below {INT_PORT_SLOTS}"),
        ));
    }
    Ok(())
}

/// The egress program of the fabric object.
fn program_mut(ebpf: &mut Ebpf) -> Result<&mut SchedClassifier, Error> {
    let program = ebpf
        .program_mut(PROG_FABRIC_EGRESS)
        .ok_or_else(|| Error::invalid("fabric object", "it has no fabric_egress program"))?;
    program.try_into().map_err(program_error)
}

/// Wraps a failure of the egress program.
fn program_error(source: aya::programs::ProgramError) -> Error {
    Error::Program {
        program: PROG_FABRIC_EGRESS,
        source: Box::new(source),
    }
}

/// Attaches `program` to `name`'s egress: into the pinned link of a
/// previous agent when there is a usable one, else as a new link, pinned at
/// `pin` when it is a TCX link.
fn attach_link(program: &mut SchedClassifier, pin: &Path, name: &str) -> Result<EgressLink, Error> {
    if pin.exists() {
        if replace_in_pinned_link(program, pin, name, TcAttachType::Egress) {
            return Ok(EgressLink::Pinned(pin.to_owned()));
        }
        // Dead (its interface is gone) or someone else's: unpinning
        // releases it.
        std::fs::remove_file(pin).map_err(|source| Error::Bpffs {
            path: pin.to_owned(),
            source,
        })?;
    }
    let id = program
        .attach(name, TcAttachType::Egress)
        .map_err(program_error)?;
    let link = program.take_link(id).map_err(program_error)?;
    match FdLink::try_from(link) {
        Ok(fd_link) => {
            fd_link.pin(pin).map_err(|e| Error::Bpffs {
                path: pin.to_owned(),
                source: io::Error::other(e),
            })?;
            Ok(EgressLink::Pinned(pin.to_owned()))
        }
        // TODO-robustness: without TCX (kernels before 6.6) the filter is
        // attached again as one the program owns: it goes with the agent,
        // so INT stops while no agent runs, and a taken-out clsact filter
        // stays behind without a handle (as for ingress, see
        // `Fabric::attach`).
        Err(_) => {
            let id = program
                .attach(name, TcAttachType::Egress)
                .map_err(program_error)?;
            Ok(EgressLink::Owned(id))
        }
    }
}

/// Takes map `name` out of `ebpf` as the typed map `convert` makes of it.
fn take_map<M>(
    ebpf: &mut Ebpf,
    name: &'static str,
    convert: impl FnOnce(aya::maps::Map) -> Result<M, aya::maps::MapError>,
) -> Result<M, Error> {
    let map = ebpf.take_map(name).ok_or_else(|| {
        Error::invalid(
            "fabric object",
            format!("it has no map {name} (or IntTransit::new ran twice)"),
        )
    })?;
    convert(map).map_err(|e| Error::map(name, 0, e))
}

/// One zeroed counter per possible CPU.
fn zeroed_per_cpu(map: &'static str) -> Result<PerCpuValues<Counter>, Error> {
    let io_error = |e: std::io::Error| Error::map(map, 0, aya::maps::MapError::IoError(e));
    let cpus = aya::util::nr_cpus().map_err(|(_, e)| io_error(e))?;
    PerCpuValues::try_from(vec![Counter::default(); cpus]).map_err(io_error)
}

/// The sum of per-CPU counters.
fn sum(values: &PerCpuValues<Counter>) -> Counter {
    values
        .iter()
        .fold(Counter::default(), |acc, v| acc.saturating_add(*v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(priority: u32, dscp: u8, dscp_mask: u8) -> WatchMatch {
        WatchMatch {
            priority,
            dscp,
            dscp_mask,
            l4_dst_port: 0,
            l4_dst_port_mask: 0,
        }
    }

    #[test]
    fn banks_are_ordered_by_priority_then_insertion() {
        let mut rules: Vec<Installed> = [(5, 0), (20, 1), (5, 2), (7, 3)]
            .into_iter()
            .map(|(priority, counter)| Installed {
                key: key(priority, counter, 0x3f),
                action: WatchAction::Mark,
                counter,
            })
            .collect();
        bank_order(&mut rules);
        let order: Vec<u8> = rules.iter().map(|r| r.counter).collect();
        assert_eq!(order, [1, 3, 0, 2]);
    }

    #[test]
    fn counter_slots_are_reused_lowest_first() {
        let rules: Vec<Installed> = [0u8, 1, 3]
            .into_iter()
            .map(|counter| Installed {
                key: key(1, counter, 0x3f),
                action: WatchAction::NoMark,
                counter,
            })
            .collect();
        assert_eq!(free_counter(&rules), Some(2));
        let full: Vec<Installed> = (0..INT_WATCHLIST_CAPACITY as u8)
            .map(|counter| Installed {
                key: key(1, 0, 0),
                action: WatchAction::Mark,
                counter,
            })
            .collect();
        assert_eq!(free_counter(&full), None);
    }

    #[test]
    fn rules_round_trip_through_the_map_value() {
        let installed = Installed {
            key: WatchMatch {
                priority: 9,
                dscp: 0x2e,
                dscp_mask: 0x3f,
                l4_dst_port: 4791,
                l4_dst_port_mask: 0xffff,
            },
            action: WatchAction::Mark,
            counter: 17,
        };
        let rule = installed.to_rule();
        assert!(rule.matches(0x2e, 4791));
        assert_eq!(Installed::from_rule(&rule), installed);
    }

    #[test]
    fn invalid_matches_are_refused() {
        assert!(key(0, 0, 0).check().is_err(), "priority 0");
        assert!(key(1, 0x40, 0x40).check().is_err(), "7-bit DSCP");
        assert!(key(1, 0x01, 0x02).check().is_err(), "value outside mask");
        let port = WatchMatch {
            l4_dst_port: 0x00ff,
            l4_dst_port_mask: 0xff00,
            ..key(1, 0, 0)
        };
        assert!(port.check().is_err(), "port outside mask");
        assert!(key(3, 0x20, 0x20).check().is_ok());
    }
}
