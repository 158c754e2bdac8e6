//! Every log line a device session writes carries the device ID, role and
//! election ID, so an operator can follow one device in JSON logs.

#![allow(clippy::unwrap_used)] // test helpers: a failed setup is a failed test

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use solyx::p4rt::{Backoff, DeviceSession, Mastership, SessionConfig};
use solyx_agent::p4rt::{spawn_tcp, AgentService, MemoryDataplane, ServerConfig};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn session_log_lines_carry_device_role_and_election_id() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_env_filter("solyx=debug")
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let service = AgentService::new(ServerConfig::new(7), Arc::new(MemoryDataplane::new()));
    let server = spawn_tcp(service, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let mut cfg = SessionConfig::new(server.endpoint().to_string(), 7, 42);
    cfg.role = "te".into();
    cfg.backoff = Backoff {
        initial: Duration::from_millis(10),
        max: Duration::from_millis(50),
    };
    let s = DeviceSession::start(cfg).unwrap();
    s.wait_primary(Duration::from_secs(10)).await.unwrap();
    // Lose primary to a higher election ID, then get it back.
    let mut other = SessionConfig::new(server.endpoint().to_string(), 7, 99);
    other.role = "te".into();
    let o = DeviceSession::start(other).unwrap();
    s.wait_for(Duration::from_secs(10), "backup", |m| {
        matches!(m, Mastership::Backup { .. })
    })
    .await
    .unwrap();
    o.close();
    drop(o);
    s.wait_primary(Duration::from_secs(10)).await.unwrap();
    // Lose the device altogether.
    server.stop().await.unwrap();
    s.wait_for(Duration::from_secs(10), "disconnect", |m| {
        *m == Mastership::Disconnected
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.close();

    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ours: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| {
            l["target"]
                .as_str()
                .is_some_and(|t| t.starts_with("solyx::p4rt"))
        })
        .collect();
    assert!(
        ours.len() >= 3,
        "expected become-primary, lost-primary and reconnect lines:\n{text}"
    );
    let messages: Vec<&str> = ours
        .iter()
        .filter_map(|l| l["fields"]["message"].as_str())
        .collect();
    assert!(
        messages.iter().any(|m| m.contains("lost primary")),
        "{messages:?}"
    );
    for l in &ours {
        let span = &l["span"];
        assert_eq!(span["device_id"], 7, "{l}");
        assert_eq!(span["role"], "te", "{l}");
        // Two sessions log here: each line names its own.
        assert!(
            span["election_id"] == "42" || span["election_id"] == "99",
            "{l}"
        );
    }
    let lost = ours.iter().find(|l| {
        l["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("lost primary"))
    });
    assert_eq!(
        lost.unwrap()["span"]["election_id"],
        "42",
        "the session that lost says so"
    );
}
