//! Errors of the eBPF data path: loading, pinning, attaching, map access.
//!
//! [`Error::TableFull`] is kept apart from every other map failure so that
//! the P4Runtime layer can answer `RESOURCE_EXHAUSTED` for it;
//! [`Error::Invalid`] is a refused value (`INVALID_ARGUMENT`), and
//! [`Error::NotBuilt`] means the agent binary carries no eBPF object.

use std::io;
use std::path::PathBuf;

/// A failure of the eBPF data path.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The agent was compiled without the eBPF toolchain, so the embedded
    /// object is empty.
    #[error(
        "built without eBPF programs: install nightly rust-src and bpf-linker 0.10.0 \
         (scripts/setup.sh)"
    )]
    NotBuilt,

    /// A map has no room for another entry (`E2BIG` from the kernel).
    #[error("map {map} is full ({capacity} entries)")]
    TableFull {
        /// The map's name.
        map: &'static str,
        /// Its capacity.
        capacity: u32,
    },

    /// A value the data path cannot hold (label out of range, port number
    /// too large, unknown flag bits, an interface index of 0, ...).
    #[error("invalid {what}: {detail}")]
    Invalid {
        /// What was refused.
        what: &'static str,
        /// Why.
        detail: String,
    },

    /// An interface name that does not resolve in the current network
    /// namespace.
    #[error("interface {name:?}: {source}")]
    Interface {
        /// The name asked for.
        name: String,
        /// Why it did not resolve.
        #[source]
        source: io::Error,
    },

    /// The BPF filesystem could not be mounted, or a pin directory could
    /// not be created, inspected or removed.
    #[error("bpffs {path}: {source}")]
    Bpffs {
        /// The path involved.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: io::Error,
    },

    /// The object could not be loaded (ELF parsing, map creation, pinning,
    /// BTF).
    #[error("loading the fabric object: {0}")]
    Load(#[source] Box<aya::EbpfError>),

    /// A program could not be loaded (the verifier's log is in the message)
    /// or attached.
    #[error("program {program}: {source}")]
    Program {
        /// The program's name.
        program: &'static str,
        /// The failure.
        #[source]
        source: Box<aya::programs::ProgramError>,
    },

    /// The clsact qdisc could not be added to an interface.
    #[error("clsact qdisc on {interface}: {source}")]
    Qdisc {
        /// The interface.
        interface: String,
        /// The failure.
        #[source]
        source: Box<aya::programs::tc::TcError>,
    },

    /// Any other failure of a map operation.
    #[error("map {map}: {source}")]
    Map {
        /// The map's name.
        map: &'static str,
        /// The failure.
        #[source]
        source: Box<aya::maps::MapError>,
    },
}

impl Error {
    /// Whether this is the "no room" failure (P4Runtime `RESOURCE_EXHAUSTED`).
    #[must_use]
    pub fn is_table_full(&self) -> bool {
        matches!(self, Self::TableFull { .. })
    }

    pub(crate) fn invalid(what: &'static str, detail: impl Into<String>) -> Self {
        Self::Invalid {
            what,
            detail: detail.into(),
        }
    }

    /// Wraps a map failure of `map`, turning `E2BIG` into
    /// [`Error::TableFull`].
    pub(crate) fn map(map: &'static str, capacity: u32, source: aya::maps::MapError) -> Self {
        if is_e2big(&source) {
            return Self::TableFull { map, capacity };
        }
        Self::Map {
            map,
            source: Box::new(source),
        }
    }
}

/// Whether a map failure is the kernel's "map full" answer.
fn is_e2big(error: &aya::maps::MapError) -> bool {
    match error {
        aya::maps::MapError::SyscallError(e) => {
            e.io_error.raw_os_error() == Some(nix::errno::Errno::E2BIG as i32)
        }
        aya::maps::MapError::IoError(e) => {
            e.raw_os_error() == Some(nix::errno::Errno::E2BIG as i32)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e2big_becomes_table_full() {
        let source = aya::maps::MapError::SyscallError(aya::sys::SyscallError {
            call: "bpf_map_update_elem",
            io_error: io::Error::from_raw_os_error(nix::errno::Errno::E2BIG as i32),
        });
        let error = Error::map("MPLS_FORWARD", 4096, source);
        assert!(error.is_table_full());
        assert_eq!(error.to_string(), "map MPLS_FORWARD is full (4096 entries)");
    }

    #[test]
    fn other_map_errors_stay_map_errors() {
        let error = Error::map("PORT_RX", 512, aya::maps::MapError::KeyNotFound);
        assert!(!error.is_table_full());
        assert!(matches!(error, Error::Map { map: "PORT_RX", .. }));
    }

    #[test]
    fn not_built_names_the_fix() {
        assert_eq!(
            Error::NotBuilt.to_string(),
            "built without eBPF programs: install nightly rust-src and bpf-linker 0.10.0 \
             (scripts/setup.sh)"
        );
    }
}
