//! Test PKI (a CA and serving certificates for 127.0.0.1), a real HTTPS webhook on loopback,
//! and a keep-alive HTTP/1.1 client for it.

use std::{net::SocketAddr, path::Path, sync::Arc, time::Duration};

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, client::conn::http1::SendRequest};
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use tenantry_admission::{AppState, ReloadingCertificate, router, serve, tls};
use tokio::{net::TcpStream, sync::oneshot, task::JoinHandle};
use tokio_rustls::TlsConnector;

/// A CA that signs serving certificates for 127.0.0.1.
pub struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

/// One serving certificate and its key, PEM.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
}

impl Pki {
    pub fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { ca }
    }

    pub fn ca_der(&self) -> CertificateDer<'static> {
        self.ca.der().clone()
    }

    /// A fresh key and certificate for `127.0.0.1`.
    pub fn leaf(&self) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }
}

impl Leaf {
    pub fn write(&self, dir: &Path) {
        std::fs::write(dir.join("tls.crt"), &self.cert_pem).unwrap();
        std::fs::write(dir.join("tls.key"), &self.key_pem).unwrap();
    }
}

/// A webhook serving HTTPS on 127.0.0.1 from `dir/tls.crt` and `dir/tls.key`.
pub struct Server {
    pub addr: SocketAddr,
    pub certificate: Arc<ReloadingCertificate>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Server {
    pub async fn start(state: AppState, dir: &Path) -> Self {
        let certificate = Arc::new(
            ReloadingCertificate::load(dir.join("tls.crt"), dir.join("tls.key"), tls::provider())
                .expect("certificate loads"),
        );
        let config = tls::server_config(certificate.clone()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(serve(listener, config, router(state), async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            certificate,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Ask for shutdown and wait for the server to drain.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(15), task)
                .await
                .expect("server stops")
                .expect("server task");
        }
    }
}

/// One keep-alive HTTP/1.1 connection over TLS, trusting only `ca`.
pub struct Client {
    sender: SendRequest<Full<Bytes>>,
    /// The certificate the server presented.
    pub peer: CertificateDer<'static>,
}

impl Client {
    pub async fn connect(addr: SocketAddr, ca: &CertificateDer<'static>) -> Self {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.clone()).unwrap();
        let mut config = rustls::ClientConfig::builder_with_provider(tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let tcp = TcpStream::connect(addr).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let stream = TlsConnector::from(Arc::new(config))
            .connect(ServerName::IpAddress(addr.ip().into()), tcp)
            .await
            .expect("TLS handshake");
        let peer = stream.get_ref().1.peer_certificates().unwrap()[0].clone();
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection);
        Self { sender, peer }
    }

    /// Send one request on this connection; returns status and body.
    pub async fn request(&mut self, method: &str, path: &str, body: Bytes) -> (u16, Bytes) {
        self.sender.ready().await.expect("connection usable");
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "127.0.0.1")
            .header("content-type", "application/json")
            .body(Full::new(body))
            .unwrap();
        let response = self.sender.send_request(request).await.expect("response");
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, body)
    }
}
