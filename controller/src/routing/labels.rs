//! MPLS labels for paths.
//!
//! The fabric forwards a labelled packet by exact match on its one label
//! at every hop, so a label names a whole path, network-wide. The
//! allocator keeps a path's label for as long as the path exists, so a
//! recomputation that finds the same path rewrites nothing on the
//! switches. A freed label goes to the back of the free list and is
//! reused only after every never-used label is gone, so a packet still in
//! flight on an old path is unlikely to meet a new path with its label.

use std::collections::{HashMap, HashSet, VecDeque};

use super::paths::LinkPath;

/// The first label the controller hands out (0–15 are reserved by MPLS).
pub const FIRST_LABEL: u32 = 16;
/// The largest 20-bit label.
pub const MAX_LABEL: u32 = (1 << 20) - 1;

/// No label left: more distinct paths than the 20-bit label space holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("out of MPLS labels: {paths} paths, {FIRST_LABEL}..={MAX_LABEL} available")]
pub struct LabelsExhausted {
    /// How many paths wanted labels.
    pub paths: usize,
}

/// Hands out one label per distinct path.
#[derive(Debug, Clone)]
pub struct LabelAllocator {
    by_path: HashMap<LinkPath, u32>,
    free: VecDeque<u32>,
    next: u32,
}

impl Default for LabelAllocator {
    fn default() -> Self {
        Self::new()
    }
}

impl LabelAllocator {
    /// An allocator with every label free.
    #[must_use]
    pub fn new() -> Self {
        Self {
            by_path: HashMap::new(),
            free: VecDeque::new(),
            next: FIRST_LABEL,
        }
    }

    /// The label of a path that has one.
    #[must_use]
    pub fn get(&self, path: &LinkPath) -> Option<u32> {
        self.by_path.get(path).copied()
    }

    /// How many paths hold a label.
    #[must_use]
    pub fn len(&self) -> usize {
        self.by_path.len()
    }

    /// Whether no path holds a label.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_path.is_empty()
    }

    /// Makes `paths` exactly the labelled set: paths already labelled keep
    /// their label, paths no longer present free theirs, new paths get one.
    ///
    /// # Errors
    /// [`LabelsExhausted`]; the allocator is then unchanged.
    pub fn sync<'a>(
        &mut self,
        paths: impl IntoIterator<Item = &'a LinkPath>,
    ) -> Result<(), LabelsExhausted> {
        let wanted: HashSet<&LinkPath> = paths.into_iter().collect();
        let fresh = (MAX_LABEL + 1 - self.next) as usize;
        let new = wanted
            .iter()
            .filter(|p| !self.by_path.contains_key(**p))
            .count();
        let kept = wanted.len() - new;
        if new > fresh + self.free.len() + (self.by_path.len() - kept) {
            return Err(LabelsExhausted {
                paths: wanted.len(),
            });
        }
        let gone: Vec<LinkPath> = self
            .by_path
            .keys()
            .filter(|p| !wanted.contains(p))
            .cloned()
            .collect();
        for p in gone {
            if let Some(l) = self.by_path.remove(&p) {
                self.free.push_back(l);
            }
        }
        let mut new: Vec<&LinkPath> = wanted
            .into_iter()
            .filter(|p| !self.by_path.contains_key(*p))
            .collect();
        // Deterministic: the same input gives the same labels.
        new.sort();
        for p in new {
            let label = if self.next <= MAX_LABEL {
                self.next += 1;
                self.next - 1
            } else {
                self.free.pop_front().ok_or(LabelsExhausted {
                    paths: self.by_path.len(),
                })?
            };
            self.by_path.insert(p.clone(), label);
        }
        Ok(())
    }
}
