//! Wire compatibility of Solyx's generated P4Runtime types with the official
//! P4Runtime Python bindings (the `p4runtime` package on PyPI).
//!
//! `tests/py/wire_compat.py` and this file build the same corpus of messages,
//! case by case. Three checks run against that script:
//!
//! * Python → Rust → Python: Python serializes every case; Rust decodes each
//!   into its prost type, compares it with the Rust-built case, asserts
//!   specific field values, re-encodes it, and Python checks that its parse
//!   of the Rust bytes equals what it built.
//! * Rust → Python: Rust encodes its own corpus and Python checks each case.
//! * Descriptors: Python compares [`solyx_p4runtime::FILE_DESCRIPTOR_SET`]
//!   with the official descriptors, field by field and enum by enum.
//!
//! The Python comes from `SOLYX_P4RT_PYTHON` (a path to an interpreter) or
//! else `.venv-p4rt/bin/python` at the workspace root. Set it up with
//! `python3 -m venv .venv-p4rt && .venv-p4rt/bin/pip install p4runtime==1.6.0 protobuf`.
//! When neither imports the bindings, each test prints why it was skipped
//! and passes, unless `SOLYX_REQUIRE_PY=1`, in which case it fails.

use std::collections::{BTreeSet, HashMap};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;
use prost_types::Any;
use solyx_p4runtime::proto::p4::config::v1 as cfg;
use solyx_p4runtime::proto::p4::v1 as p4;
use solyx_p4runtime::FILE_DESCRIPTOR_SET;
use tonic_types::pb::Status;

use p4::entity::Entity as E;
use p4::field_match::FieldMatchType as Fm;
use p4::update::Type as UpdateType;
use p4::write_request::Atomicity;

// ---------------------------------------------------------------------------
// Finding Python and running the script

pub(crate) const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/wire_compat.py");

/// The interpreters to try, in order.
pub(crate) fn python_candidates() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(p) = std::env::var_os("SOLYX_P4RT_PYTHON") {
        out.push(PathBuf::from(p));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate lives inside the workspace");
    out.push(root.join(".venv-p4rt").join("bin").join("python"));
    out
}

pub(crate) fn python_command(python: &Path) -> Command {
    let mut cmd = Command::new(python);
    cmd.env("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python");
    cmd
}

/// The first interpreter that imports the official bindings, or `None` after
/// reporting the skip (or panics when `SOLYX_REQUIRE_PY=1`).
pub(crate) fn python_or_skip(test: &str) -> Option<PathBuf> {
    let candidates = python_candidates();
    for python in &candidates {
        let ok = python_command(python)
            .args(["-c", "import p4.v1.p4runtime_pb2"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if ok {
            return Some(python.clone());
        }
    }
    let why = format!(
        "no Python with the P4Runtime bindings (tried {candidates:?}; set SOLYX_P4RT_PYTHON or \
         create .venv-p4rt with `pip install p4runtime==1.6.0 protobuf`)"
    );
    if std::env::var("SOLYX_REQUIRE_PY").as_deref() == Ok("1") {
        panic!("{test}: SOLYX_REQUIRE_PY=1 but {why}");
    }
    // Written to the stderr handle rather than with eprintln!, which the test
    // harness captures, so that the skip shows in every run.
    let _ = writeln!(std::io::stderr(), "skipped: {test}: {why}");
    None
}

/// Runs the script in one mode; panics with its output when it fails.
pub(crate) fn run_script(python: &Path, mode: &str, arg: &Path) -> String {
    let out = python_command(python)
        .arg(SCRIPT)
        .arg(mode)
        .arg(arg)
        .output()
        .expect("run the Python interpreter");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "wire_compat.py {mode} failed:\n{text}"
    );
    text
}

/// A fresh directory under the system temp dir, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "solyx-wire-compat-{tag}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------
// The message kinds of the corpus

/// One corpus message, tagged with its protobuf type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Msg {
    Write(p4::WriteRequest),
    StreamRequest(p4::StreamMessageRequest),
    StreamResponse(p4::StreamMessageResponse),
    SetPipeline(p4::SetForwardingPipelineConfigRequest),
    GetPipelineRequest(p4::GetForwardingPipelineConfigRequest),
    GetPipelineResponse(p4::GetForwardingPipelineConfigResponse),
    ReadRequest(p4::ReadRequest),
    ReadResponse(p4::ReadResponse),
    Status(Status),
    CapabilitiesRequest(p4::CapabilitiesRequest),
    CapabilitiesResponse(p4::CapabilitiesResponse),
}

impl Msg {
    fn encode(&self) -> Vec<u8> {
        match self {
            Msg::Write(m) => m.encode_to_vec(),
            Msg::StreamRequest(m) => m.encode_to_vec(),
            Msg::StreamResponse(m) => m.encode_to_vec(),
            Msg::SetPipeline(m) => m.encode_to_vec(),
            Msg::GetPipelineRequest(m) => m.encode_to_vec(),
            Msg::GetPipelineResponse(m) => m.encode_to_vec(),
            Msg::ReadRequest(m) => m.encode_to_vec(),
            Msg::ReadResponse(m) => m.encode_to_vec(),
            Msg::Status(m) => m.encode_to_vec(),
            Msg::CapabilitiesRequest(m) => m.encode_to_vec(),
            Msg::CapabilitiesResponse(m) => m.encode_to_vec(),
        }
    }

    /// Decodes bytes as the same protobuf type as `self`.
    fn decode_like(&self, bytes: &[u8]) -> Result<Msg, prost::DecodeError> {
        Ok(match self {
            Msg::Write(_) => Msg::Write(Message::decode(bytes)?),
            Msg::StreamRequest(_) => Msg::StreamRequest(Message::decode(bytes)?),
            Msg::StreamResponse(_) => Msg::StreamResponse(Message::decode(bytes)?),
            Msg::SetPipeline(_) => Msg::SetPipeline(Message::decode(bytes)?),
            Msg::GetPipelineRequest(_) => Msg::GetPipelineRequest(Message::decode(bytes)?),
            Msg::GetPipelineResponse(_) => Msg::GetPipelineResponse(Message::decode(bytes)?),
            Msg::ReadRequest(_) => Msg::ReadRequest(Message::decode(bytes)?),
            Msg::ReadResponse(_) => Msg::ReadResponse(Message::decode(bytes)?),
            Msg::Status(_) => Msg::Status(Message::decode(bytes)?),
            Msg::CapabilitiesRequest(_) => Msg::CapabilitiesRequest(Message::decode(bytes)?),
            Msg::CapabilitiesResponse(_) => Msg::CapabilitiesResponse(Message::decode(bytes)?),
        })
    }
}

// ---------------------------------------------------------------------------
// Building blocks, mirroring the helpers of wire_compat.py

mod corpus_other;
mod corpus_write;
mod expect;

use corpus_other::*;
use corpus_write::*;
use expect::*;

#[test]
fn python_to_rust_to_python() {
    let Some(python) = python_or_skip("python_to_rust_to_python") else {
        return;
    };
    let from_py = TempDir::new("py");
    let from_rust = TempDir::new("rs");
    run_script(&python, "gen", from_py.path());

    let cases = corpus();
    let written: BTreeSet<String> = std::fs::read_dir(from_py.path())
        .expect("list Python output")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".bin")
                .map(str::to_string)
        })
        .collect();
    let known: BTreeSet<String> = cases.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(
        written, known,
        "the Python and Rust corpora name different cases"
    );

    for (name, expected) in &cases {
        let bytes = std::fs::read(from_py.path().join(format!("{name}.bin")))
            .unwrap_or_else(|e| panic!("{name}: read Python bytes: {e}"));
        let decoded = expected
            .decode_like(&bytes)
            .unwrap_or_else(|e| panic!("{name}: Rust cannot decode Python's bytes: {e}"));
        assert_case(name, &decoded);
        assert_eq!(
            &decoded, expected,
            "{name}: decoded message differs from the Rust corpus"
        );
        std::fs::write(
            from_rust.path().join(format!("{name}.bin")),
            decoded.encode(),
        )
        .unwrap_or_else(|e| panic!("{name}: write re-encoded bytes: {e}"));
    }
    let report = run_script(&python, "check", from_rust.path());
    eprintln!(
        "python -> rust -> python: {} cases; {}",
        cases.len(),
        report.trim()
    );
}

#[test]
fn rust_to_python() {
    let Some(python) = python_or_skip("rust_to_python") else {
        return;
    };
    let dir = TempDir::new("rust-corpus");
    let cases = corpus();
    for (name, msg) in &cases {
        std::fs::write(dir.path().join(format!("{name}.bin")), msg.encode())
            .unwrap_or_else(|e| panic!("{name}: write bytes: {e}"));
    }
    let report = run_script(&python, "check", dir.path());
    eprintln!("rust -> python: {} cases; {}", cases.len(), report.trim());
}

#[test]
fn descriptors_match_official() {
    let Some(python) = python_or_skip("descriptors_match_official") else {
        return;
    };
    let dir = TempDir::new("descriptors");
    let path = dir.path().join("solyx_p4runtime.fds");
    std::fs::write(&path, FILE_DESCRIPTOR_SET).expect("write descriptor set");
    let report = run_script(&python, "descriptors", &path);
    eprintln!("descriptors: {}", report.trim());
}

/// Every corpus case has field assertions and survives a Rust-only round
/// trip; this part needs no Python.
#[test]
fn corpus_round_trips_in_rust() {
    for (name, msg) in corpus() {
        assert_case(name, &msg);
        let again = msg
            .decode_like(&msg.encode())
            .unwrap_or_else(|e| panic!("{name}: decode own bytes: {e}"));
        assert_eq!(again, msg, "{name}");
    }
}
