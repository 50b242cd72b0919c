//! The flags `webhook` and `proxy` serve with, tried as a new user would: `--worker-threads 1`
//! (the current-thread runtime) serves and judges; a thread count of 0 is refused by name.

use std::{
    io::{Read as _, Write as _},
    net::{TcpListener, TcpStream},
    path::Path,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

fn tenantry() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tenantry"))
}

/// A self-signed certificate for 127.0.0.1, written as `tls.crt` and `tls.key` in `dir`.
fn certificate(dir: &Path) -> rustls::pki_types::CertificateDer<'static> {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    std::fs::write(dir.join("tls.crt"), cert.cert.pem()).unwrap();
    std::fs::write(dir.join("tls.key"), cert.signing_key.serialize_pem()).unwrap();
    cert.cert.der().clone()
}

struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One HTTP/1.1 request over TLS to `port`, trusting `ca`; the status code and body.
fn request(
    port: u16,
    ca: &rustls::pki_types::CertificateDer<'static>,
    head: &str,
    body: &str,
) -> std::io::Result<(u16, String)> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut tcp = TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut stream = rustls::Stream::new(&mut tls, &mut tcp);
    write!(
        stream,
        "{head}\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = Vec::new();
    // The server closes without a TLS close_notify on some paths; what was read stands.
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let code = answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    Ok((code, body))
}

#[test]
fn one_worker_thread_serves_and_judges() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certificate(dir.path());
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _served = Served(
        tenantry()
            .args(["webhook", "--no-cluster", "--worker-threads", "1"])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--tls-cert")
            .arg(dir.path().join("tls.crt"))
            .arg("--tls-key")
            .arg(dir.path().join("tls.key"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tenantry webhook starts"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok((200, body)) = request(port, &ca, "GET /healthz HTTP/1.1", "") {
            assert_eq!(body, "ok\n");
            break;
        }
        assert!(Instant::now() < deadline, "the webhook never answered");
        std::thread::sleep(Duration::from_millis(100));
    }
    let review = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "7d1c", "operation": "CREATE", "namespace": "shop",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "userInfo": {"username": "system:serviceaccount:shop:shop"},
            "object": {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "web", "namespace": "shop"},
                "spec": {"containers": [{
                    "name": "web", "image": "nginx:1.27",
                    "securityContext": {"privileged": true},
                }]},
            },
        },
    });
    let (code, body) = request(port, &ca, "POST /validate HTTP/1.1", &review.to_string()).unwrap();
    assert_eq!(code, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["response"]["uid"], "7d1c", "{answer}");
    assert_eq!(answer["response"]["allowed"], false, "{answer}");
}

#[test]
fn zero_worker_threads_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    certificate(dir.path());
    for command in ["webhook", "proxy"] {
        let out = tenantry()
            .args([command, "--worker-threads", "0"])
            .arg("--tls-cert")
            .arg(dir.path().join("tls.crt"))
            .arg("--tls-key")
            .arg(dir.path().join("tls.key"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
        assert!(stderr.contains("--worker-threads"), "{command}: {stderr}");
    }
}
