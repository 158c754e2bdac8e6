//! [`Slots`]: hands out counter slots (indexes into a per-CPU counter
//! array) to table entries, so that an entry's counter stays its own for
//! as long as the entry exists, whatever else changes.

/// A fixed set of slots `0..capacity`, each free or taken.
#[derive(Debug, Clone)]
pub(crate) struct Slots {
    taken: Vec<bool>,
    /// Where the search for a free slot starts (the lowest possibly free).
    next: usize,
}

impl Slots {
    /// `capacity` free slots.
    pub(crate) fn new(capacity: u32) -> Self {
        Self {
            taken: vec![false; capacity as usize],
            next: 0,
        }
    }

    /// Takes the lowest free slot; `None` when all are taken.
    pub(crate) fn take(&mut self) -> Option<u32> {
        let offset = self.taken[self.next..].iter().position(|t| !t)?;
        let slot = self.next + offset;
        self.taken[slot] = true;
        self.next = slot + 1;
        u32::try_from(slot).ok()
    }

    /// Takes `slot` if it exists and is free (a slot found in a pinned map
    /// at restart). False otherwise.
    pub(crate) fn reserve(&mut self, slot: u32) -> bool {
        match self.taken.get_mut(slot as usize) {
            Some(t) if !*t => {
                *t = true;
                true
            }
            _ => false,
        }
    }

    /// Gives `slot` back.
    pub(crate) fn free(&mut self, slot: u32) {
        if let Some(t) = self.taken.get_mut(slot as usize) {
            *t = false;
            self.next = self.next.min(slot as usize);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_reused_lowest_first() {
        let mut s = Slots::new(3);
        assert_eq!(
            (s.take(), s.take(), s.take(), s.take()),
            (Some(0), Some(1), Some(2), None)
        );
        s.free(1);
        assert!(!s.reserve(0), "taken");
        assert!(s.reserve(1));
        assert_eq!(s.take(), None);
        s.free(2);
        s.free(0);
        assert_eq!(s.take(), Some(0));
        assert_eq!(s.take(), Some(2));
        assert!(!s.reserve(7), "out of range");
    }
}
