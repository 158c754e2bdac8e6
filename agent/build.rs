//! Builds the eBPF programs of `ebpf/` and leaves the fabric object in
//! `$OUT_DIR/solyx-fabric.o` and the host object in
//! `$OUT_DIR/solyx-host.o`, which `src/ebpf` embeds.
//!
//! The programs need nightly Rust (with `rust-src`, for `-Z build-std=core`)
//! and `bpf-linker`; the rest of the workspace builds with stable. So this
//! script runs `cargo +nightly build --release` in `ebpf/` (its own
//! workspace, with its own target directory `ebpf/target`, shared by every
//! profile of the agent), after clearing the variables that cargo sets for
//! build scripts and that would make the inner cargo use the outer
//! toolchain (`RUSTC`, `RUSTUP_TOOLCHAIN`, `CARGO`, wrappers, flags).
//!
//! When nightly, `rust-src` or `bpf-linker` are missing, the agent must still
//! build: the script warns and leaves an empty object, and the agent reports
//! at run time that it was built without eBPF programs. A build that can run
//! but fails (a compile error in `ebpf/`) fails the agent's build.
//!
//! `SOLYX_EBPF_BUILD=skip` skips the eBPF build (empty object);
//! `SOLYX_EBPF_BUILD=require` turns a missing toolchain into an error (for
//! CI and release builds).

use std::env;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

/// The bin targets of `ebpf/` (each an ELF object) and the file the agent
/// embeds for each, in `OUT_DIR`: the fabric switch and the host.
const OBJECTS: [(&str, &str); 2] = [
    ("solyx-fabric", "solyx-fabric.o"),
    ("solyx-host", "solyx-host.o"),
];
/// The eBPF target triple (also set in `ebpf/.cargo/config.toml`).
const BPF_TARGET: &str = "bpfel-unknown-none";
/// What to run to get the toolchain.
const FIX: &str = "install nightly rust-src and bpf-linker 0.10.0 (scripts/setup.sh)";

/// Why the eBPF build did not produce an object.
enum Failure {
    /// The toolchain is not there: warn, embed nothing.
    Missing(String),
    /// The build ran and failed: stop.
    Failed(String),
}

fn main() -> ExitCode {
    let Some(out_dir) = env::var_os("OUT_DIR").map(PathBuf::from) else {
        eprintln!("OUT_DIR is not set: run this through cargo");
        return ExitCode::FAILURE;
    };
    let Some(manifest_dir) = env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from) else {
        eprintln!("CARGO_MANIFEST_DIR is not set: run this through cargo");
        return ExitCode::FAILURE;
    };
    let ebpf_dir = manifest_dir.join("..").join("ebpf");

    for source in [
        "Cargo.toml",
        "Cargo.lock",
        "rust-toolchain.toml",
        ".cargo/config.toml",
        "common/Cargo.toml",
        "common/src",
        "fabric/Cargo.toml",
        "fabric/src",
        "host/Cargo.toml",
        "host/src",
    ] {
        println!("cargo:rerun-if-changed={}", ebpf_dir.join(source).display());
    }
    println!("cargo:rerun-if-env-changed=SOLYX_EBPF_BUILD");

    let mode = env::var("SOLYX_EBPF_BUILD").unwrap_or_default();
    if mode == "skip" {
        println!("cargo:warning=SOLYX_EBPF_BUILD=skip: the agent is built without eBPF programs");
        return write_empty(&out_dir);
    }

    let cargo_home = cargo_home();
    let cargo_bin = cargo_home.as_ref().map(|home| home.join("bin"));
    if let Some(bin) = &cargo_bin {
        // Rerun once bpf-linker appears (a missing path always reruns).
        println!(
            "cargo:rerun-if-changed={}",
            bin.join("bpf-linker").display()
        );
    }

    match build(&ebpf_dir, cargo_bin.as_deref()) {
        Ok(built) => {
            for (path, (_, object)) in built.iter().zip(OBJECTS) {
                let object = out_dir.join(object);
                if let Err(e) = fs::copy(path, &object) {
                    eprintln!("copying {} to {}: {e}", path.display(), object.display());
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        Err(Failure::Missing(why)) if mode == "require" => {
            eprintln!("SOLYX_EBPF_BUILD=require, but the eBPF toolchain is missing: {why}; {FIX}");
            ExitCode::FAILURE
        }
        Err(Failure::Missing(why)) => {
            println!(
                "cargo:warning=building the agent without eBPF programs ({why}); to get them, {FIX}"
            );
            write_empty(&out_dir)
        }
        Err(Failure::Failed(why)) => {
            eprintln!("{why}");
            ExitCode::FAILURE
        }
    }
}

/// Builds `ebpf/` with nightly and returns the objects' paths, in
/// [`OBJECTS`] order.
fn build(ebpf_dir: &Path, cargo_bin: Option<&Path>) -> Result<Vec<PathBuf>, Failure> {
    let path = search_path(cargo_bin);
    let cargo = tool("cargo", cargo_bin, &path)
        .ok_or_else(|| Failure::Missing("no cargo (rustup proxy) found".into()))?;
    let rustc = tool("rustc", cargo_bin, &path)
        .ok_or_else(|| Failure::Missing("no rustc (rustup proxy) found".into()))?;
    if tool("bpf-linker", cargo_bin, &path).is_none() {
        return Err(Failure::Missing("bpf-linker is not installed".into()));
    }

    // The nightly toolchain and its rust-src component.
    let sysroot = run_quiet(command(&rustc, &path).args(["+nightly", "--print", "sysroot"]))
        .ok_or_else(|| Failure::Missing("no nightly toolchain (rustup)".into()))?;
    let core_src = Path::new(sysroot.trim()).join("lib/rustlib/src/rust/library/core");
    if !core_src.is_dir() {
        return Err(Failure::Missing(
            "the nightly toolchain has no rust-src component".into(),
        ));
    }

    if run_quiet(command(&cargo, &path).args(["+nightly", "--version"])).is_none() {
        return Err(Failure::Missing(format!(
            "{} +nightly does not run (not a rustup proxy?)",
            cargo.display()
        )));
    }

    // The inner cargo's stdout goes to stderr: a build script's stdout is
    // read by the outer cargo as directives.
    let status = command(&cargo, &path)
        .current_dir(ebpf_dir)
        .args(["+nightly", "build", "--release", "--locked"])
        .args(OBJECTS.iter().flat_map(|(bin, _)| ["--bin", bin]))
        .stdout(Stdio::from(io::stderr()))
        .status()
        .map_err(|e| Failure::Missing(format!("cannot run {}: {e}", cargo.display())))?;
    if !status.success() {
        return Err(Failure::Failed(format!(
            "the eBPF build (cargo +nightly build --release in {}) failed: {status}",
            ebpf_dir.display()
        )));
    }
    let release = ebpf_dir.join("target").join(BPF_TARGET).join("release");
    let mut built = Vec::new();
    for (bin, _) in OBJECTS {
        let path = release.join(bin);
        if !path.is_file() {
            return Err(Failure::Failed(format!(
                "the eBPF build succeeded but {} is missing",
                path.display()
            )));
        }
        built.push(path);
    }
    Ok(built)
}

/// A command running `program` in the environment a top-level cargo would
/// have: without what cargo sets for build scripts (which would pin the
/// outer, stable toolchain or pass host flags to the BPF build) and with
/// `path` as PATH.
fn command(program: &Path, path: &OsString) -> Command {
    let mut command = Command::new(program);
    for (key, _) in env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let drop = (key.starts_with("CARGO_") && key != "CARGO_HOME" && key != "CARGO_MAKEFLAGS")
            || key.starts_with("CLIPPY_")
            || key.starts_with("RUSTC")
            || key.starts_with("RUSTDOC")
            || matches!(
                key,
                "CARGO"
                    | "RUSTUP_TOOLCHAIN"
                    | "RUSTFLAGS"
                    | "LD_LIBRARY_PATH"
                    | "TARGET"
                    | "HOST"
                    | "OUT_DIR"
                    | "OPT_LEVEL"
                    | "PROFILE"
                    | "DEBUG"
                    | "NUM_JOBS"
            );
        if drop {
            command.env_remove(key);
        }
    }
    command.env("PATH", path);
    command
}

/// PATH with `$CARGO_HOME/bin` (rustup's proxies, bpf-linker) in front.
fn search_path(cargo_bin: Option<&Path>) -> OsString {
    let mut dirs: Vec<PathBuf> = cargo_bin.map(Path::to_path_buf).into_iter().collect();
    if let Some(path) = env::var_os("PATH") {
        dirs.extend(env::split_paths(&path));
    }
    env::join_paths(dirs).unwrap_or_else(|_| env::var_os("PATH").unwrap_or_default())
}

/// `$CARGO_HOME`, or `~/.cargo`.
fn cargo_home() -> Option<PathBuf> {
    env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))
}

/// The executable `name`: in `$CARGO_HOME/bin` first (the rustup proxies,
/// not the toolchain binaries cargo puts on a build script's PATH), then
/// on `path`.
fn tool(name: &str, cargo_bin: Option<&Path>, path: &OsString) -> Option<PathBuf> {
    cargo_bin
        .map(|bin| bin.join(name))
        .into_iter()
        .chain(env::split_paths(path).map(|dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// Runs `command` and returns its stdout when it succeeds.
fn run_quiet(command: &mut Command) -> Option<String> {
    let output = command.output().ok()?;
    if !output.status.success() {
        return None;
    }
    String::from_utf8(output.stdout).ok()
}

/// Leaves empty objects in `out_dir`, so that the agent builds and
/// reports the missing programs at run time.
fn write_empty(out_dir: &Path) -> ExitCode {
    for (_, object) in OBJECTS {
        let object = out_dir.join(object);
        if let Err(e) = fs::write(&object, []) {
            eprintln!("writing {}: {e}", object.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
