//! The webhook over real TLS on 127.0.0.1: reviews answered on keep-alive connections, the
//! serving certificate replaced without a restart, and a bad replacement ignored.

mod common;

use std::time::{Duration, Instant};

use axum::body::Bytes;
use common::{
    fixture_bytes,
    tls::{Client, Pki, Server},
};
use serde_json::Value;

#[tokio::test]
async fn reviews_are_answered_over_tls_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    pki.leaf().write(dir.path());
    let server = Server::start(common::state("restricted"), dir.path()).await;
    let mut client = Client::connect(server.addr, &pki.ca_der()).await;
    // Several reviews on one connection, as the API server sends them.
    for (fixture, allowed) in [
        ("pod-create.json", false),
        ("configmap-create-denied.json", true),
        ("deployment-create.json", false),
    ] {
        let (status, body) = client
            .request(
                "POST",
                "/validate?timeout=5s",
                Bytes::from(fixture_bytes(fixture)),
            )
            .await;
        assert_eq!(status, 200, "{fixture}");
        let answer: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            answer["response"]["allowed"], allowed,
            "{fixture}: {answer}"
        );
    }
    let (status, body) = client
        .request("POST", "/validate", Bytes::from_static(b"{"))
        .await;
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("malformed AdmissionReview"));
    let (status, _) = client.request("GET", "/readyz", Bytes::new()).await;
    assert_eq!(status, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn certificate_is_replaced_without_a_restart_and_bad_ones_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let first = pki.leaf();
    first.write(dir.path());
    let server = Server::start(common::state("restricted"), dir.path()).await;
    let mut old_connection = Client::connect(server.addr, &pki.ca_der()).await;
    assert_eq!(old_connection.peer, first.der);
    assert!(
        !server.certificate.reload_if_changed().unwrap(),
        "nothing changed"
    );

    // Rotation: new handshakes get the new certificate, open connections keep working.
    let second = pki.leaf();
    second.write(dir.path());
    assert!(server.certificate.reload_if_changed().unwrap());
    assert_eq!(
        Client::connect(server.addr, &pki.ca_der()).await.peer,
        second.der
    );
    let (status, _) = old_connection
        .request(
            "POST",
            "/validate",
            Bytes::from(fixture_bytes("pod-create.json")),
        )
        .await;
    assert_eq!(
        status, 200,
        "the connection opened before the rotation still works"
    );

    // A half-written certificate and a key that does not match are rejected; the previous
    // certificate keeps serving.
    std::fs::write(
        dir.path().join("tls.crt"),
        "-----BEGIN CERTIFICATE-----\ngarbage",
    )
    .unwrap();
    assert!(server.certificate.reload_if_changed().is_err());
    assert_eq!(
        Client::connect(server.addr, &pki.ca_der()).await.peer,
        second.der
    );
    let third = pki.leaf();
    std::fs::write(dir.path().join("tls.crt"), &third.cert_pem).unwrap();
    let err = server.certificate.reload_if_changed().unwrap_err();
    assert!(err.to_string().contains("tls.crt"), "{err}");
    assert_eq!(
        Client::connect(server.addr, &pki.ca_der()).await.peer,
        second.der
    );

    // The background poller picks the good pair up once both files are in place.
    let poller = server
        .certificate
        .clone()
        .spawn_reloader(Duration::from_millis(20));
    third.write(dir.path());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if Client::connect(server.addr, &pki.ca_der()).await.peer == third.der {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the poller did not reload within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    poller.abort();
    server.shutdown().await;
}

#[test]
fn a_webhook_never_starts_without_a_usable_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let leaf = pki.leaf();
    let provider = tenantry_admission::tls::provider();
    let cert = dir.path().join("tls.crt");
    let key = dir.path().join("tls.key");
    let err =
        tenantry_admission::ReloadingCertificate::load(&cert, &key, provider.clone()).unwrap_err();
    assert!(err.to_string().contains("tls.crt"), "{err}");
    std::fs::write(&cert, &leaf.cert_pem).unwrap();
    std::fs::write(&key, "not a key").unwrap();
    let err =
        tenantry_admission::ReloadingCertificate::load(&cert, &key, provider.clone()).unwrap_err();
    assert!(err.to_string().contains("tls.key"), "{err}");
    std::fs::write(&key, pki.leaf().key_pem).unwrap();
    let err = tenantry_admission::ReloadingCertificate::load(&cert, &key, provider).unwrap_err();
    assert!(err.to_string().to_lowercase().contains("key"), "{err}");
}
