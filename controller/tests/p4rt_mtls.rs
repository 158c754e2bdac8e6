//! P4Runtime between the controller and the agent over mutual TLS: the
//! agent (memory data plane) accepts a controller whose certificate its CA
//! signed and refuses one without a certificate, or with one from another
//! CA. Certificates are made here with rcgen.

#![allow(clippy::unwrap_used)] // test helpers: a failed setup is a failed test

use std::sync::Arc;
use std::time::Duration;

mod common;

use common::certs::{ca, leaf, Ca};
use rcgen::ExtendedKeyUsagePurpose;
use solyx::p4rt::{Backoff, ClientError, ClientTls, DeviceSession, SessionConfig};
use solyx_agent::p4rt::{spawn_tcp_tls, AgentService, MemoryDataplane, ServerConfig, ServerTls};

async fn agent_with_mtls(ca: &Ca) -> solyx_agent::p4rt::RunningServer {
    let (cert, key) = leaf(ca, "localhost", ExtendedKeyUsagePurpose::ServerAuth);
    let tls = ServerTls::from_pem(cert, key, Some(ca.pem.clone().into_bytes()));
    let service = AgentService::new(ServerConfig::new(1), Arc::new(MemoryDataplane::new()));
    spawn_tcp_tls(service, "127.0.0.1:0".parse().unwrap(), tls)
        .await
        .unwrap()
}

fn session(agent: &solyx_agent::p4rt::RunningServer, tls: ClientTls) -> DeviceSession {
    let port = agent.local_addr().unwrap().port();
    let mut c = SessionConfig::new(format!("localhost:{port}"), 1, 10);
    c.backoff = Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(200),
    };
    c.tls = Some(tls);
    DeviceSession::start(c).unwrap()
}

#[tokio::test]
async fn a_controller_with_a_certificate_from_the_agents_ca_becomes_primary() {
    let ca = ca("solyx test CA");
    let agent = agent_with_mtls(&ca).await;
    let (cert, key) = leaf(&ca, "controller", ExtendedKeyUsagePurpose::ClientAuth);
    let s = session(
        &agent,
        ClientTls::new(ca.pem.clone().into_bytes()).identity(cert, key),
    );
    s.wait_primary(Duration::from_secs(10)).await.unwrap();
    // And the session works: a read of the (empty) pipeline goes through.
    assert!(s.get_pipeline().await.unwrap().is_none());
    s.close();
    agent.stop().await.unwrap();
}

#[tokio::test]
async fn the_agent_refuses_a_controller_without_a_certificate() {
    let ca = ca("solyx test CA");
    let other = ca_other();
    let agent = agent_with_mtls(&ca).await;

    let anonymous = session(&agent, ClientTls::new(ca.pem.clone().into_bytes()));
    let e = anonymous
        .wait_primary(Duration::from_secs(2))
        .await
        .unwrap_err();
    // The TLS handshake itself fails: the agent demands a certificate.
    assert!(matches!(e, ClientError::Timeout { .. }), "{e}");
    assert!(e.to_string().contains("CertificateRequired"), "{e}");
    anonymous.close();

    let (cert, key) = leaf(&other, "intruder", ExtendedKeyUsagePurpose::ClientAuth);
    let stranger = session(
        &agent,
        ClientTls::new(ca.pem.clone().into_bytes()).identity(cert, key),
    );
    let e = stranger
        .wait_primary(Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Timeout { .. }), "{e}");
    assert!(e.to_string().contains("UnknownCA"), "{e}");
    stranger.close();
    agent.stop().await.unwrap();
}

fn ca_other() -> Ca {
    ca("another CA")
}

#[tokio::test]
async fn the_controller_refuses_an_agent_its_ca_did_not_sign() {
    let agent_ca = ca("agent CA");
    let agent = agent_with_mtls(&agent_ca).await;
    let controller_ca = ca("controller's idea of the CA");
    let (cert, key) = leaf(&agent_ca, "controller", ExtendedKeyUsagePurpose::ClientAuth);
    let s = session(
        &agent,
        ClientTls::new(controller_ca.pem.clone().into_bytes()).identity(cert, key),
    );
    let e = s.wait_primary(Duration::from_secs(2)).await.unwrap_err();
    assert!(e.to_string().contains("UnknownIssuer"), "{e}");
    s.close();
    agent.stop().await.unwrap();
}
