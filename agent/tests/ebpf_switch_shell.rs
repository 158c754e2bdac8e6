//! p4runtime-shell, a P4Runtime client Solyx did not write, programs the
//! eBPF fabric switch: it pushes the `solyx_fabric` pipeline, inserts the
//! egress rewrite, a `wcmp_selector` member and a route to it, and reads
//! them back; then real UDP traffic from h1 reaches h2 through that route,
//! and p4runtime-shell reads the route's counter.
//!
//! Needs root, the eBPF object and `.venv-shell` (scripts/setup.sh) or
//! `SOLYX_SHELL_PYTHON`; skips otherwise (fails with `SOLYX_REQUIRE_ROOT=1`
//! or, for the Python part, `SOLYX_REQUIRE_PY=1`).

mod switch;

use std::net::{Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use switch::{can_run, in_netns, mac_text, Switch, Topology};

const H1: [u8; 6] = [0x02, 0x5f, 0, 0, 0x41, 0x01];
const S1_P1: [u8; 6] = [0x02, 0x5f, 0, 0, 0x41, 0xfe];
const S1_P2: [u8; 6] = [0x02, 0x5f, 0, 0, 0x42, 0xfe];
const H2: [u8; 6] = [0x02, 0x5f, 0, 0, 0x42, 0x02];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The Python with p4runtime-shell, or `None` (printed) when absent.
fn shell_python() -> Option<PathBuf> {
    let candidates = std::env::var_os("SOLYX_SHELL_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain([root().join(".venv-shell/bin/python")]);
    for p in candidates {
        let ok = std::process::Command::new(&p)
            .args(["-c", "import p4runtime_sh.shell"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(p);
        }
    }
    let msg = "p4runtime-shell not found (run scripts/setup.sh or set SOLYX_SHELL_PYTHON)";
    assert!(
        std::env::var("SOLYX_REQUIRE_PY").as_deref() != Ok("1"),
        "{msg}"
    );
    eprintln!("skipped: {msg}");
    None
}

/// Runs the helper script; its JSON output.
async fn shell(python: &Path, args: &[String]) -> serde_json::Value {
    let out = tokio::process::Command::new(python)
        .arg(root().join("agent/tests/py/fabric_shell.py"))
        .args(args)
        .output()
        .await
        .expect("run p4runtime-shell");
    assert!(
        out.status.success(),
        "p4runtime-shell failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p4runtime_shell_installs_a_route_that_forwards() {
    if !can_run("p4runtime_shell_installs_a_route_that_forwards") {
        return;
    }
    let Some(python) = shell_python() else { return };
    let mut t = Topology::new("shell", "s", &["h1", "s1", "h2"]);
    t.link(("h1", "h1", H1), ("s1", "p1", S1_P1));
    t.link(("s1", "p2", S1_P2), ("h2", "h2", H2));
    t.host(
        "h1",
        "h1",
        "10.80.1.1/24",
        "10.80.1.254",
        S1_P1,
        &["10.80.2.0/24"],
    );
    t.host("h2", "h2", "10.80.2.2/24", "10.80.2.254", S1_P2, &[]);
    let s1 = Switch::start(&t, "s1", 1, &[(1, "p1"), (2, "p2")]).await;
    let addr = s1.server.local_addr().expect("address").to_string();
    let p4info = root().join("p4/solyx_fabric/solyx_fabric.p4info.txtpb");

    let programmed = shell(
        &python,
        &[
            "program".into(),
            addr.clone(),
            "1".into(),
            "5".into(),
            p4info.display().to_string(),
            "2".into(),
            mac_text(H2),
            mac_text(S1_P2),
            "10.80.2.0/24".into(),
        ],
    )
    .await;
    let routes = programmed["routes"].as_array().expect("routes");
    assert_eq!(
        routes.len(),
        1,
        "p4runtime-shell reads the route back: {programmed}"
    );
    assert_eq!(routes[0]["prefix_len"], 24);
    assert_eq!(routes[0]["value"], "0a500200", "canonical 10.80.2.0");
    assert_eq!(routes[0]["member"], 1);
    assert_eq!(programmed["members"], serde_json::json!([1]));

    // The route p4runtime-shell installed forwards real traffic.
    const N: usize = 10;
    let rx = in_netns(&t.ns("h2"), || {
        UdpSocket::bind("10.80.2.2:6200").expect("bind h2")
    });
    in_netns(&t.ns("h1"), || {
        let tx = UdpSocket::bind("10.80.1.1:0").expect("bind h1");
        for i in 0..N {
            tx.send_to(format!("shell-{i}").as_bytes(), "10.80.2.2:6200")
                .expect("send");
        }
    });
    rx.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let mut got = 0;
    let deadline = Instant::now() + Duration::from_secs(3);
    while got < N && Instant::now() < deadline {
        let mut buf = [0u8; 64];
        if let Ok((_, from)) = rx.recv_from(&mut buf) {
            assert_eq!(from.ip(), Ipv4Addr::new(10, 80, 1, 1));
            got += 1;
        }
    }
    assert_eq!(got, N, "h2 got {got} of {N} datagrams");

    let counted = shell(&python, &["counters".into(), addr, "1".into(), "6".into()]).await;
    let packets: i64 = counted["route_packets"]
        .as_array()
        .expect("counters")
        .iter()
        .filter_map(serde_json::Value::as_i64)
        .sum();
    eprintln!("p4runtime-shell: route installed and read back; {got} datagrams forwarded; route counter {packets}");
    assert_eq!(
        packets, N as i64,
        "the route's counter, read by p4runtime-shell"
    );
    drop(s1);
}
