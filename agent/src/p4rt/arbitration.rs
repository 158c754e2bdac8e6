//! Primary election per (device ID, role), as a plain state machine with no
//! I/O: the stream layer feeds it arbitration requests and stream closures
//! and sends the [`Notice`]s it returns.
//!
//! Rules:
//! - the primary of a role is its stream with the highest election ID;
//!   a stream without an election ID is a backup that can never be primary;
//! - a second stream with an election ID already in use in that role is
//!   refused ([`ArbitrationError::DuplicateElectionId`]);
//! - a request for another device is refused ([`ArbitrationError::WrongDevice`]);
//! - whenever the primary changes (a higher election ID arrives, the primary
//!   lowers its ID, the primary's stream closes) every stream of the role is
//!   told; otherwise only the stream that asked is answered.
//!
//! When the primary's stream closes, the stream with the next highest
//! election ID is promoted at once. (The P4Runtime specification leaves a
//! role without primary until a client asks again; the Solyx controller
//! relies on the promotion to fail over between its replicas.)

use std::collections::{BTreeMap, HashMap};

/// Identifies one StreamChannel for the lifetime of the server.
pub type StreamId = u64;

/// Election IDs are 128-bit in P4Runtime.
pub type ElectionId = u128;

/// A stream's standing in its role, as told in an arbitration update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// The stream is primary (status OK).
    Primary,
    /// Another stream is primary (status ALREADY_EXISTS).
    Backup,
    /// No stream of the role is primary (status NOT_FOUND).
    NoPrimary,
}

/// An arbitration update to send to one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The stream to tell.
    pub stream: StreamId,
    /// Its device.
    pub device_id: u64,
    /// Its role name ("" is the default role).
    pub role: String,
    /// The primary's election ID, or the highest one seen in the role when
    /// there is no primary (`None` when none was ever given).
    pub election_id: Option<ElectionId>,
    /// Where the stream stands.
    pub standing: Standing,
}

/// Why an arbitration request is refused; the stream is then closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArbitrationError {
    /// The request names a device this server does not serve.
    #[error("device {given} is not served here (this agent serves device {served})")]
    WrongDevice {
        /// Device ID asked for.
        given: u64,
        /// Device ID served.
        served: u64,
    },
    /// Another stream of the role already uses this election ID.
    #[error("election ID {election_id} is already used by another stream of role {role:?}")]
    DuplicateElectionId {
        /// Role name.
        role: String,
        /// The election ID in use.
        election_id: ElectionId,
    },
    /// A stream asked to move to another role or device.
    #[error("a stream cannot change role or device: it was bound to role {role:?}")]
    Rebind {
        /// The role the stream is bound to.
        role: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RoleKey {
    device_id: u64,
    role: String,
}

#[derive(Debug, Default)]
struct RoleState {
    /// Election ID of each stream of the role.
    streams: BTreeMap<StreamId, Option<ElectionId>>,
    primary: Option<StreamId>,
    highest_seen: Option<ElectionId>,
}

impl RoleState {
    fn elect(&self) -> Option<StreamId> {
        self.streams
            .iter()
            .filter_map(|(s, e)| e.map(|e| (e, *s)))
            .max()
            .map(|(_, s)| s)
    }

    fn primary_election(&self) -> Option<ElectionId> {
        self.primary
            .and_then(|p| self.streams.get(&p).copied().flatten())
    }

    fn notice(&self, key: &RoleKey, stream: StreamId) -> Notice {
        let standing = match self.primary {
            Some(p) if p == stream => Standing::Primary,
            Some(_) => Standing::Backup,
            None => Standing::NoPrimary,
        };
        Notice {
            stream,
            device_id: key.device_id,
            role: key.role.clone(),
            election_id: self.primary_election().or(self.highest_seen),
            standing,
        }
    }

    fn notify_all(&self, key: &RoleKey) -> Vec<Notice> {
        self.streams.keys().map(|s| self.notice(key, *s)).collect()
    }
}

/// The election state of every role of one device.
#[derive(Debug)]
pub struct Arbiter {
    device_id: u64,
    roles: HashMap<RoleKey, RoleState>,
    bound: HashMap<StreamId, RoleKey>,
}

impl Arbiter {
    /// No streams yet, for device `device_id`.
    #[must_use]
    pub fn new(device_id: u64) -> Self {
        Self {
            device_id,
            roles: HashMap::new(),
            bound: HashMap::new(),
        }
    }

    /// Handles an arbitration request of `stream`. Returns the notices to
    /// send: to every stream of the role when the primary changed, else to
    /// `stream` alone.
    ///
    /// # Errors
    /// Wrong device, an election ID in use by another stream of the role, or
    /// a stream moving to another role. The stream's previous state, if
    /// any, is kept; the caller closes the stream and calls [`Self::remove`].
    pub fn arbitrate(
        &mut self,
        stream: StreamId,
        device_id: u64,
        role: &str,
        election_id: Option<ElectionId>,
    ) -> Result<Vec<Notice>, ArbitrationError> {
        if device_id != self.device_id {
            return Err(ArbitrationError::WrongDevice {
                given: device_id,
                served: self.device_id,
            });
        }
        let key = RoleKey {
            device_id,
            role: role.to_string(),
        };
        if let Some(bound) = self.bound.get(&stream) {
            if *bound != key {
                return Err(ArbitrationError::Rebind {
                    role: bound.role.clone(),
                });
            }
        }
        let state = self.roles.entry(key.clone()).or_default();
        if let Some(e) = election_id {
            if state
                .streams
                .iter()
                .any(|(s, id)| *s != stream && *id == Some(e))
            {
                if state.streams.is_empty() {
                    self.roles.remove(&key);
                }
                return Err(ArbitrationError::DuplicateElectionId {
                    role: role.to_string(),
                    election_id: e,
                });
            }
            state.highest_seen = state.highest_seen.max(Some(e));
        }
        state.streams.insert(stream, election_id);
        self.bound.insert(stream, key.clone());
        let elected = state.elect();
        if elected != state.primary {
            state.primary = elected;
            return Ok(state.notify_all(&key));
        }
        Ok(vec![state.notice(&key, stream)])
    }

    /// Forgets a closed stream. Returns the notices for the remaining
    /// streams of its role when the primary changed (none otherwise).
    pub fn remove(&mut self, stream: StreamId) -> Vec<Notice> {
        let Some(key) = self.bound.remove(&stream) else {
            return Vec::new();
        };
        let Some(state) = self.roles.get_mut(&key) else {
            return Vec::new();
        };
        state.streams.remove(&stream);
        if state.streams.is_empty() {
            self.roles.remove(&key);
            return Vec::new();
        }
        let elected = state.elect();
        if elected == state.primary {
            return Vec::new();
        }
        state.primary = elected;
        state.notify_all(&key)
    }

    /// Whether `election_id` is that of the current primary of `role` on
    /// `device_id`: the test Write and SetForwardingPipelineConfig pass.
    #[must_use]
    pub fn is_primary(&self, device_id: u64, role: &str, election_id: Option<ElectionId>) -> bool {
        let Some(e) = election_id else {
            return false;
        };
        let key = RoleKey {
            device_id,
            role: role.to_string(),
        };
        self.roles
            .get(&key)
            .and_then(RoleState::primary_election)
            .is_some_and(|p| p == e)
    }

    /// The current primary election ID of `role`, if any (for messages).
    #[must_use]
    pub fn primary_election(&self, device_id: u64, role: &str) -> Option<ElectionId> {
        let key = RoleKey {
            device_id,
            role: role.to_string(),
        };
        self.roles.get(&key).and_then(RoleState::primary_election)
    }

    /// Whether `stream` is the primary of its role.
    #[must_use]
    pub fn is_primary_stream(&self, stream: StreamId) -> bool {
        self.bound
            .get(&stream)
            .and_then(|k| self.roles.get(k))
            .is_some_and(|s| s.primary == Some(stream))
    }

    /// The role `stream` is bound to, once it has been through arbitration.
    #[must_use]
    pub fn role_of(&self, stream: StreamId) -> Option<&str> {
        self.bound.get(&stream).map(|k| k.role.as_str())
    }

    /// Whether `stream` has been through arbitration.
    #[must_use]
    pub fn is_bound(&self, stream: StreamId) -> bool {
        self.bound.contains_key(&stream)
    }

    /// The primary stream of every role.
    pub fn primary_streams(&self) -> impl Iterator<Item = StreamId> + '_ {
        self.roles.values().filter_map(|s| s.primary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn standing(notices: &[Notice], stream: StreamId) -> Option<(Standing, Option<ElectionId>)> {
        notices
            .iter()
            .find(|n| n.stream == stream)
            .map(|n| (n.standing, n.election_id))
    }

    #[test]
    fn first_stream_with_an_election_id_is_primary() {
        let mut a = Arbiter::new(1);
        let n = a.arbitrate(10, 1, "", Some(5)).unwrap();
        assert_eq!(n.len(), 1);
        assert_eq!(standing(&n, 10), Some((Standing::Primary, Some(5))));
        assert!(a.is_primary(1, "", Some(5)));
        assert!(!a.is_primary(1, "", Some(4)));
        assert!(!a.is_primary(1, "", None));
        assert!(a.is_primary_stream(10));
    }

    #[test]
    fn higher_election_id_takes_over_and_everyone_is_told() {
        let mut a = Arbiter::new(1);
        a.arbitrate(10, 1, "", Some(5)).unwrap();
        let n = a.arbitrate(11, 1, "", Some(9)).unwrap();
        assert_eq!(standing(&n, 10), Some((Standing::Backup, Some(9))));
        assert_eq!(standing(&n, 11), Some((Standing::Primary, Some(9))));
        assert!(!a.is_primary(1, "", Some(5)));
        assert!(a.is_primary(1, "", Some(9)));
    }

    #[test]
    fn lower_election_id_joins_as_backup_and_only_it_is_told() {
        let mut a = Arbiter::new(1);
        a.arbitrate(10, 1, "", Some(5)).unwrap();
        let n = a.arbitrate(11, 1, "", Some(3)).unwrap();
        assert_eq!(n.len(), 1);
        assert_eq!(standing(&n, 11), Some((Standing::Backup, Some(5))));
        assert!(a.is_primary_stream(10));
        assert!(!a.is_primary_stream(11));
    }

    #[test]
    fn duplicate_election_id_is_refused_and_leaves_state_alone() {
        let mut a = Arbiter::new(1);
        a.arbitrate(10, 1, "", Some(5)).unwrap();
        let e = a.arbitrate(11, 1, "", Some(5)).unwrap_err();
        assert!(matches!(
            e,
            ArbitrationError::DuplicateElectionId { election_id: 5, .. }
        ));
        assert!(!a.is_bound(11));
        assert!(a.is_primary_stream(10));
        // The same ID in another role is fine.
        let n = a.arbitrate(12, 1, "telemetry", Some(5)).unwrap();
        assert_eq!(standing(&n, 12), Some((Standing::Primary, Some(5))));
    }

    #[test]
    fn wrong_device_is_refused() {
        let mut a = Arbiter::new(1);
        let e = a.arbitrate(10, 2, "", Some(5)).unwrap_err();
        assert_eq!(
            e,
            ArbitrationError::WrongDevice {
                given: 2,
                served: 1
            }
        );
    }

    #[test]
    fn primary_closing_promotes_the_next_highest() {
        let mut a = Arbiter::new(1);
        a.arbitrate(10, 1, "", Some(5)).unwrap();
        a.arbitrate(11, 1, "", Some(9)).unwrap();
        a.arbitrate(12, 1, "", Some(7)).unwrap();
        let n = a.remove(11);
        assert_eq!(n.len(), 2);
        assert_eq!(standing(&n, 12), Some((Standing::Primary, Some(7))));
        assert_eq!(standing(&n, 10), Some((Standing::Backup, Some(7))));
        assert!(a.is_primary(1, "", Some(7)));
        // A backup closing tells nobody.
        assert!(a.remove(10).is_empty());
        assert!(a.remove(12).is_empty());
        assert_eq!(a.primary_streams().count(), 0);
    }

    #[test]
    fn streams_without_election_id_are_never_primary() {
        let mut a = Arbiter::new(1);
        let n = a.arbitrate(10, 1, "", None).unwrap();
        assert_eq!(standing(&n, 10), Some((Standing::NoPrimary, None)));
        let n = a.arbitrate(11, 1, "", None).unwrap();
        assert_eq!(standing(&n, 11), Some((Standing::NoPrimary, None)));
        let n = a.arbitrate(12, 1, "", Some(2)).unwrap();
        assert_eq!(n.len(), 3);
        assert_eq!(standing(&n, 10), Some((Standing::Backup, Some(2))));
        let n = a.remove(12);
        assert_eq!(standing(&n, 10), Some((Standing::NoPrimary, Some(2))));
        assert_eq!(standing(&n, 11), Some((Standing::NoPrimary, Some(2))));
    }

    #[test]
    fn primary_lowering_its_id_below_a_backup_hands_over() {
        let mut a = Arbiter::new(1);
        a.arbitrate(10, 1, "", Some(5)).unwrap();
        a.arbitrate(11, 1, "", Some(4)).unwrap();
        let n = a.arbitrate(10, 1, "", Some(3)).unwrap();
        assert_eq!(standing(&n, 11), Some((Standing::Primary, Some(4))));
        assert_eq!(standing(&n, 10), Some((Standing::Backup, Some(4))));
        // Re-sending the same ID is answered to the sender only.
        let n = a.arbitrate(11, 1, "", Some(4)).unwrap();
        assert_eq!(n.len(), 1);
    }

    #[test]
    fn a_stream_cannot_change_role() {
        let mut a = Arbiter::new(1);
        a.arbitrate(10, 1, "", Some(5)).unwrap();
        let e = a.arbitrate(10, 1, "other", Some(5)).unwrap_err();
        assert!(matches!(e, ArbitrationError::Rebind { .. }));
        assert!(a.is_primary_stream(10));
    }

    #[test]
    fn roles_elect_independently() {
        let mut a = Arbiter::new(1);
        a.arbitrate(10, 1, "", Some(5)).unwrap();
        a.arbitrate(11, 1, "r2", Some(1)).unwrap();
        let mut p: Vec<_> = a.primary_streams().collect();
        p.sort_unstable();
        assert_eq!(p, vec![10, 11]);
        assert_eq!(a.primary_election(1, "r2"), Some(1));
        assert!(!a.is_primary(1, "r2", Some(5)));
    }
}
