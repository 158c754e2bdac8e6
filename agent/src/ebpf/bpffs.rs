//! The BPF filesystem: mounting it, the per-instance pin directory, and the
//! check that a pinned map still has the layout the embedded object expects.
//!
//! Maps are pinned at `<root>/<instance>/<MAP_NAME>` (root
//! [`DEFAULT_PIN_ROOT`] unless the caller picks another bpffs directory).
//! A pinned map outlives the agent: a restarted agent reopens it and keeps
//! its entries and counters. When a new agent version changed a map's key
//! size, value size, type or capacity, the old pin cannot be reused; it is
//! removed (its state is lost, and a warning says so) and the loader creates
//! and pins a fresh map.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use aya::maps::{MapInfo, MapType};
use nix::mount::MsFlags;
use nix::sys::statfs::statfs;

use super::Error;

/// Where the agent pins its maps by default: one directory per instance.
pub const DEFAULT_PIN_ROOT: &str = "/sys/fs/bpf/solyx";

/// The standard mount point of the BPF filesystem.
const BPFFS_MOUNT: &str = "/sys/fs/bpf";

/// `BPF_FS_MAGIC` from `linux/magic.h`.
const BPF_FS_MAGIC: u32 = 0xcafe_4a11;

/// The layout a pinned map must have to be reused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct MapLayout {
    pub(crate) name: &'static str,
    pub(crate) map_type: MapType,
    pub(crate) key_size: u32,
    pub(crate) value_size: u32,
    pub(crate) max_entries: u32,
}

/// Checks that an instance name is usable as one path component: 1 to 64
/// characters from `[A-Za-z0-9_.-]`, not starting with a dot.
pub(crate) fn check_instance(instance: &str) -> Result<(), Error> {
    let ok_chars = instance
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if instance.is_empty() || instance.len() > 64 || !ok_chars || instance.starts_with('.') {
        return Err(Error::invalid(
            "instance name",
            format!("{instance:?}: use 1 to 64 characters from [A-Za-z0-9_.-], no leading dot"),
        ));
    }
    Ok(())
}

/// Whether `path` is on a BPF filesystem.
fn is_bpffs(path: &Path) -> Result<bool, Error> {
    match statfs(path) {
        // f_type is a signed word whose width depends on the target; the magic
        // is 32 bits.
        Ok(fs) => Ok(fs.filesystem_type().0 as u32 == BPF_FS_MAGIC),
        Err(nix::errno::Errno::ENOENT) => Ok(false),
        Err(e) => Err(Error::Bpffs {
            path: path.to_owned(),
            source: io::Error::from(e),
        }),
    }
}

/// Makes sure `root` can hold pins: mounts bpffs on `/sys/fs/bpf` when
/// `root` is below it and nothing is mounted there, then creates `root`.
pub(crate) fn prepare_root(root: &Path) -> Result<(), Error> {
    let standard = Path::new(BPFFS_MOUNT);
    if root.starts_with(standard) && !is_bpffs(standard)? {
        nix::mount::mount(
            Some("bpf"),
            standard,
            Some("bpf"),
            MsFlags::empty(),
            None::<&str>,
        )
        .map_err(|e| Error::Bpffs {
            path: standard.to_owned(),
            source: io::Error::from(e),
        })?;
        let own_mounts = std::fs::read_link("/proc/self/ns/mnt").ok()
            != std::fs::read_link("/proc/1/ns/mnt").ok();
        if own_mounts {
            // `ip netns exec` and containers give the process its own
            // /sys: this bpffs is private and its pins die with the
            // process (no hitless restart).
            tracing::warn!(
                path = BPFFS_MOUNT,
                "mounted a BPF filesystem in a private mount namespace: pins do not outlive \
                 this process (run `solyx-agent switch --netns NAME` instead of `ip netns exec`)"
            );
        } else {
            tracing::info!(path = BPFFS_MOUNT, "mounted the BPF filesystem");
        }
    }
    fs::create_dir_all(root).map_err(|source| Error::Bpffs {
        path: root.to_owned(),
        source,
    })?;
    if !is_bpffs(root)? {
        return Err(Error::Bpffs {
            path: root.to_owned(),
            source: io::Error::other("not on a BPF filesystem (mount -t bpf bpf <dir>)"),
        });
    }
    Ok(())
}

/// Creates the instance's pin directory and removes pins whose layout no
/// longer matches `layouts`. Returns the directory.
pub(crate) fn prepare_instance(
    root: &Path,
    instance: &str,
    layouts: &[MapLayout],
) -> Result<PathBuf, Error> {
    check_instance(instance)?;
    prepare_root(root)?;
    let dir = root.join(instance);
    fs::create_dir_all(&dir).map_err(|source| Error::Bpffs {
        path: dir.clone(),
        source,
    })?;
    for layout in layouts {
        let pin = dir.join(layout.name);
        if !pin.exists() {
            continue;
        }
        let found = match MapInfo::from_pin(&pin) {
            Ok(info) => Some(info),
            Err(e) => {
                tracing::warn!(pin = %pin.display(), error = %e, "pinned map unreadable; recreating it");
                None
            }
        };
        let compatible = found.as_ref().is_some_and(|info| {
            info.map_type().ok() == Some(layout.map_type)
                && info.key_size() == layout.key_size
                && info.value_size() == layout.value_size
                && info.max_entries() == layout.max_entries
        });
        if !compatible {
            tracing::warn!(
                pin = %pin.display(),
                "pinned map has another layout than this agent's; its state is dropped"
            );
            fs::remove_file(&pin).map_err(|source| Error::Bpffs {
                path: pin.clone(),
                source,
            })?;
        }
    }
    Ok(dir)
}

/// Removes an instance's pinned maps and its directory. Missing pins are
/// not an error. Maps still open elsewhere (a running agent) live on until
/// closed; only their names go.
pub fn remove_instance(root: &Path, instance: &str) -> Result<(), Error> {
    check_instance(instance)?;
    let dir = root.join(instance);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(Error::Bpffs { path: dir, source }),
    };
    for entry in entries {
        let path = entry
            .map_err(|source| Error::Bpffs {
                path: dir.clone(),
                source,
            })?
            .path();
        fs::remove_file(&path).map_err(|source| Error::Bpffs { path, source })?;
    }
    fs::remove_dir(&dir).map_err(|source| Error::Bpffs { path: dir, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_names_are_single_safe_components() {
        for good in ["s1", "fabric-0", "a.b_c", "X9"] {
            assert!(check_instance(good).is_ok(), "{good}");
        }
        let long = "x".repeat(65);
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "a/b",
            "a\0b",
            "sp ace",
            long.as_str(),
        ] {
            assert!(check_instance(bad).is_err(), "{bad:?}");
        }
    }
}
