//! The HTTP side: one client per OpenBao address, rustls with ring; a token given, or one
//! obtained by logging in with a Kubernetes ServiceAccount token.
//!
//! This is a thin JSON-over-HTTP client on hyper, not `vaultrs` (see ARCHITECTURE.md, "Secrets"):
//! the role body is compared field by field as the server returns it, so the client hands
//! back the server's JSON untouched, and every error carries the address, the path and the
//! server's words. The token lives in [`Token`], whose `Debug` is redacted, and is only ever
//! written into the `X-Vault-Token` header.
//!
//! Kubernetes auth is for Tenantry running in the cluster (the operator to come): it holds no
//! OpenBao token at all, only its ServiceAccount's projected token, which it exchanges at
//! `auth/<mount>/login` on first use. The login is lazy so that constructing a client stays
//! free of I/O (as with a token) and a sealed or unreachable server is reported by the first
//! real request, the same way for both kinds of authentication. The ServiceAccount token is
//! read from its file at login time, because the kubelet rotates it.

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use rustls::{
    ClientConfig, RootCertStore,
    pki_types::{CertificateDer, pem::PemObject},
};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use crate::error::SecretsError;

/// Where a pod finds its ServiceAccount token.
pub const SERVICE_ACCOUNT_TOKEN_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// The Kubernetes auth mount Tenantry logs in at unless told otherwise.
pub const DEFAULT_AUTH_MOUNT: &str = "kubernetes";

/// How long one request may take before the server counts as unreachable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// An OpenBao token. It is never printed: `Debug` shows `Token(<redacted>)`.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    /// Wrap a token.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Where OpenBao is and how to authenticate, as flags give them; unset fields fall back to
/// the environment OpenBao's and Vault's own CLIs read.
///
/// Authentication, first match wins: a token file; a Kubernetes-auth role (flag, else
/// `BAO_K8S_ROLE`), logging in with a ServiceAccount token; `BAO_TOKEN`, else `VAULT_TOKEN`.
/// A role set on purpose beats a token that may only be lying around in the environment.
#[derive(Clone, Debug, Default)]
pub struct ConnectionFlags {
    /// `--bao-addr`; else `BAO_ADDR`, else `VAULT_ADDR`.
    pub address: Option<String>,
    /// `--token-file`; else `BAO_TOKEN`, else `VAULT_TOKEN`.
    pub token_file: Option<PathBuf>,
    /// `--ca-file`; else `BAO_CACERT`, else `VAULT_CACERT`; else the system's roots.
    pub ca_file: Option<PathBuf>,
    /// The Kubernetes-auth role to log in with; else `BAO_K8S_ROLE`.
    pub k8s_role: Option<String>,
    /// The ServiceAccount token to log in with (default [`SERVICE_ACCOUNT_TOKEN_FILE`]).
    pub k8s_token_file: Option<PathBuf>,
    /// The Kubernetes auth mount (`openbao.authMount` in `tenantry.yaml`; default
    /// [`DEFAULT_AUTH_MOUNT`]).
    pub auth_mount: Option<String>,
}

/// How requests are authenticated.
#[derive(Clone, Debug)]
pub enum Auth {
    /// With this token.
    Token(Token),
    /// With the token a Kubernetes-auth login returns.
    Kubernetes(KubernetesLogin),
}

/// A login with a Kubernetes ServiceAccount token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubernetesLogin {
    /// The auth mount (`kubernetes`).
    pub mount: String,
    /// The role.
    pub role: String,
    /// The file holding the ServiceAccount token (a JWT).
    pub jwt_file: PathBuf,
}

/// A resolved connection: address, authentication, optional CA bundle.
#[derive(Clone, Debug)]
pub struct Connection {
    /// Base URL, without a trailing `/`.
    pub address: String,
    /// How requests are authenticated.
    pub auth: Auth,
    /// PEM bundle trusted instead of the system's roots.
    pub ca_file: Option<PathBuf>,
}

impl Connection {
    /// A connection with a token.
    pub fn with_token(address: impl Into<String>, token: Token) -> Self {
        Self {
            address: address.into(),
            auth: Auth::Token(token),
            ca_file: None,
        }
    }
}

impl Connection {
    /// Resolve flags against the environment (`env` is `std::env::var` in the binary).
    pub fn resolve(
        flags: &ConnectionFlags,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SecretsError> {
        let env = |names: &[&str]| {
            names
                .iter()
                .copied()
                .filter_map(&env)
                .find(|v| !v.trim().is_empty())
        };
        let address = flags
            .address
            .clone()
            .or_else(|| env(&["BAO_ADDR", "VAULT_ADDR"]))
            .ok_or(SecretsError::NoAddress)?;
        let role = flags
            .k8s_role
            .clone()
            .filter(|r| !r.trim().is_empty())
            .or_else(|| env(&["BAO_K8S_ROLE"]));
        let auth = match (&flags.token_file, role) {
            (Some(path), _) => Auth::Token(read_token_file(path)?),
            (None, Some(role)) => Auth::Kubernetes(KubernetesLogin {
                mount: flags
                    .auth_mount
                    .clone()
                    .unwrap_or_else(|| DEFAULT_AUTH_MOUNT.to_owned()),
                role: role.trim().to_owned(),
                jwt_file: flags
                    .k8s_token_file
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(SERVICE_ACCOUNT_TOKEN_FILE)),
            }),
            (None, None) => Auth::Token(Token::new(
                env(&["BAO_TOKEN", "VAULT_TOKEN"])
                    .ok_or(SecretsError::NoToken)?
                    .trim(),
            )),
        };
        let ca_file = flags
            .ca_file
            .clone()
            .or_else(|| env(&["BAO_CACERT", "VAULT_CACERT"]).map(PathBuf::from));
        Ok(Self {
            address,
            auth,
            ca_file,
        })
    }

    /// True when some address is configured, by flag or environment.
    pub fn configured(flags: &ConnectionFlags, env: impl Fn(&str) -> Option<String>) -> bool {
        flags.address.is_some()
            || ["BAO_ADDR", "VAULT_ADDR"]
                .into_iter()
                .filter_map(env)
                .any(|v| !v.trim().is_empty())
    }
}

fn read_token_file(path: &Path) -> Result<Token, SecretsError> {
    read_secret_file(path, "token file")
}

/// A file holding one secret (a token, a JWT), trimmed; empty is refused.
fn read_secret_file(path: &Path, what: &'static str) -> Result<Token, SecretsError> {
    let text = std::fs::read_to_string(path).map_err(|e| SecretsError::File {
        what,
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(SecretsError::File {
            what,
            path: path.to_owned(),
            reason: "it is empty".to_owned(),
        });
    }
    Ok(Token::new(token))
}

/// The client token in a login's answer (`auth.client_token`).
fn client_token(answer: Option<&Value>) -> Option<Token> {
    answer?["auth"]["client_token"]
        .as_str()
        .filter(|t| !t.is_empty())
        .map(Token::new)
}

/// How a request uses the API, which decides the ACL capability it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    /// GET.
    Read,
    /// GET with `?list=true`.
    List,
    /// POST.
    Write,
    /// DELETE.
    Delete,
}

impl Verb {
    fn method(self) -> Method {
        match self {
            Verb::Read | Verb::List => Method::GET,
            Verb::Write => Method::POST,
            Verb::Delete => Method::DELETE,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Verb::Read => "GET",
            Verb::List => "LIST",
            Verb::Write => "POST",
            Verb::Delete => "DELETE",
        }
    }

    /// Whether the request changes anything on the server.
    pub fn is_write(self) -> bool {
        matches!(self, Verb::Write | Verb::Delete)
    }

    /// The ACL capability a request on `path` needs.
    fn capability(self, path: &str) -> &'static str {
        // OpenBao guards these with `sudo` on top of the verb's capability.
        let sudo = path.starts_with("sys/auth/") || path == "auth/token/accessors";
        match (self, sudo) {
            (Verb::Read, false) => "read",
            (Verb::List, false) => "list",
            (Verb::List, true) => "list+sudo",
            (Verb::Write, false) => "create/update",
            (Verb::Write, true) | (Verb::Read, true) => "update+sudo",
            (Verb::Delete, false) => "delete",
            (Verb::Delete, true) => "delete+sudo",
        }
    }
}

/// Requests made by one client, for reports and for tests that prove a converged run writes
/// nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RequestCounts {
    /// GET and LIST requests.
    pub reads: usize,
    /// POST and DELETE requests.
    pub writes: usize,
    /// Kubernetes-auth logins (POST, but they change nothing Tenantry provisions).
    #[serde(skip_serializing_if = "is_zero")]
    pub logins: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A client for one OpenBao server.
pub struct BaoClient {
    address: String,
    /// Set from the start with token auth; on first use with Kubernetes auth.
    token: OnceCell<Token>,
    login: Option<KubernetesLogin>,
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    reads: AtomicUsize,
    writes: AtomicUsize,
    logins: AtomicUsize,
}

impl fmt::Debug for BaoClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BaoClient")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl BaoClient {
    /// A client for `connection`. Nothing is sent yet.
    pub fn new(connection: &Connection) -> Result<Self, SecretsError> {
        let address = connection.address.trim().trim_end_matches('/').to_owned();
        let bad = |reason: String| SecretsError::BadAddress {
            address: connection.address.clone(),
            reason,
        };
        let url = url::Url::parse(&address).map_err(|e| bad(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(bad("it needs an http or https scheme and a host".to_owned()));
        }
        let roots = match &connection.ca_file {
            Some(path) => roots_from_file(path)?,
            None => system_roots(),
        };
        // ring, explicitly: the binary has one crypto provider (ARCHITECTURE.md).
        let tls =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| bad(format!("TLS setup failed: {e}")))?
                .with_root_certificates(roots)
                .with_no_client_auth();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let (token, login) = match &connection.auth {
            Auth::Token(t) => (OnceCell::new_with(Some(t.clone())), None),
            Auth::Kubernetes(l) => (OnceCell::new(), Some(l.clone())),
        };
        Ok(Self {
            address,
            token,
            login,
            http: Client::builder(TokioExecutor::new()).build(https),
            reads: AtomicUsize::new(0),
            writes: AtomicUsize::new(0),
            logins: AtomicUsize::new(0),
        })
    }

    /// The server's address, as reports show it.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The requests made so far.
    pub fn counts(&self) -> RequestCounts {
        RequestCounts {
            reads: self.reads.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            logins: self.logins.load(Ordering::Relaxed),
        }
    }

    /// The token requests are made with, logging in first when that is how this client
    /// authenticates (once; concurrent first uses share the one login).
    async fn token(&self) -> Result<&Token, SecretsError> {
        self.token
            .get_or_try_init(|| async {
                match &self.login {
                    Some(login) => self.log_in(login).await,
                    // Unreachable: a client without a login is built with its token.
                    None => Err(SecretsError::NoToken),
                }
            })
            .await
    }

    /// `POST auth/<mount>/login` with the ServiceAccount token; the client token it returns.
    async fn log_in(&self, login: &KubernetesLogin) -> Result<Token, SecretsError> {
        let jwt = read_secret_file(&login.jwt_file, "ServiceAccount token file")?;
        let path = format!("auth/{}/login", login.mount);
        self.logins.fetch_add(1, Ordering::Relaxed);
        let body = json!({ "role": login.role, "jwt": jwt.0 });
        let (status, answer) = self.send(Verb::Write, &path, Some(&body), None).await?;
        if status.is_success() {
            return client_token(answer.as_ref()).ok_or_else(|| SecretsError::Unexpected {
                address: self.address.clone(),
                method: "POST".to_owned(),
                path,
                reason: "the login answer holds no auth.client_token".to_owned(),
            });
        }
        let message = server_message(answer.as_ref());
        if status == StatusCode::SERVICE_UNAVAILABLE && message.contains("sealed") {
            return Err(SecretsError::Sealed {
                address: self.address.clone(),
            });
        }
        Err(SecretsError::Login {
            address: self.address.clone(),
            path,
            role: login.role.clone(),
            jwt_file: login.jwt_file.clone(),
            answer: format!("HTTP {}: {message}", status.as_u16()),
        })
    }

    /// One API request on `path` (relative to `/v1/`). `Ok(None)` is an empty answer, or a
    /// 404 to a read, list or delete (the thing is not there).
    pub async fn request(
        &self,
        verb: Verb,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Option<Value>, SecretsError> {
        // The seal status is public: a sealed server is named before any login is tried.
        let token = if path == "sys/seal-status" {
            None
        } else {
            Some(self.token().await?)
        };
        let counter = if verb.is_write() {
            &self.writes
        } else {
            &self.reads
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let (status, json) = self.send(verb, path, body, token).await?;
        if status.is_success() {
            return Ok(json);
        }
        let message = server_message(json.as_ref());
        if status == StatusCode::NOT_FOUND && verb != Verb::Write {
            return Ok(None);
        }
        if status == StatusCode::SERVICE_UNAVAILABLE && message.contains("sealed") {
            return Err(SecretsError::Sealed {
                address: self.address.clone(),
            });
        }
        if status == StatusCode::FORBIDDEN {
            return Err(SecretsError::Denied {
                address: self.address.clone(),
                method: verb.name().to_owned(),
                path: path.to_owned(),
                capability: verb.capability(path),
                message,
            });
        }
        Err(SecretsError::Api {
            address: self.address.clone(),
            method: verb.name().to_owned(),
            path: path.to_owned(),
            status: status.as_u16(),
            message,
        })
    }

    /// One HTTP exchange: the status and the JSON body, if any. Only a transport failure or
    /// a body that is not JSON is an error here.
    async fn send(
        &self,
        verb: Verb,
        path: &str,
        body: Option<&Value>,
        token: Option<&Token>,
    ) -> Result<(StatusCode, Option<Value>), SecretsError> {
        let query = if verb == Verb::List { "?list=true" } else { "" };
        let uri = format!("{}/v1/{path}{query}", self.address);
        let payload = match body {
            Some(v) => Bytes::from(serde_json::to_vec(v).unwrap_or_default()),
            None => Bytes::new(),
        };
        let mut request = Request::builder().method(verb.method()).uri(&uri);
        if let Some(token) = token {
            request = request.header("X-Vault-Token", &token.0);
        }
        let request = request
            .header("X-Vault-Request", "true")
            .header("Content-Type", "application/json")
            .body(Full::new(payload))
            .map_err(|e| SecretsError::BadAddress {
                address: self.address.clone(),
                reason: e.to_string(),
            })?;
        tracing::debug!(method = verb.name(), path, "openbao request");
        let unreachable = |reason: String| SecretsError::Unreachable {
            address: self.address.clone(),
            reason,
        };
        let response = tokio::time::timeout(REQUEST_TIMEOUT, self.http.request(request))
            .await
            .map_err(|_| unreachable(format!("no answer within {REQUEST_TIMEOUT:?}")))?
            .map_err(|e| unreachable(error_chain(&e)))?;
        let status = response.status();
        let bytes = tokio::time::timeout(REQUEST_TIMEOUT, response.into_body().collect())
            .await
            .map_err(|_| unreachable(format!("no answer within {REQUEST_TIMEOUT:?}")))?
            .map_err(|e| unreachable(error_chain(&e)))?
            .to_bytes();
        let json = if bytes.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            Some(
                serde_json::from_slice::<Value>(&bytes).map_err(|e| SecretsError::Unexpected {
                    address: self.address.clone(),
                    method: verb.name().to_owned(),
                    path: path.to_owned(),
                    reason: format!("HTTP {status}, not JSON: {e}"),
                })?,
            )
        };
        Ok((status, json))
    }
}

/// The `errors` array of a Vault API error, joined.
fn server_message(json: Option<&Value>) -> String {
    let errors: Vec<&str> = json
        .and_then(|j| j.get("errors"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if errors.is_empty() {
        "no error message".to_owned()
    } else {
        errors.join("; ")
    }
}

/// An error and its sources, `a: b: c`, so "connection refused" is not lost behind "client
/// error (Connect)".
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

fn roots_from_file(path: &Path) -> Result<RootCertStore, SecretsError> {
    let fail = |reason: String| SecretsError::File {
        what: "CA file",
        path: path.to_owned(),
        reason,
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| fail(e.to_string()))? {
        roots
            .add(cert.map_err(|e| fail(e.to_string()))?)
            .map_err(|e| fail(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(fail("it holds no PEM certificate".to_owned()));
    }
    Ok(roots)
}

fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::warn!("reading the system's CA certificates: {e}");
    }
    roots.add_parsable_certificates(found.certs);
    roots
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    fn token(c: &Connection) -> &str {
        match &c.auth {
            Auth::Token(t) => &t.0,
            Auth::Kubernetes(l) => panic!("expected a token, got a login {l:?}"),
        }
    }

    #[test]
    fn a_kubernetes_role_logs_in_with_the_service_account_token_unless_a_token_file_is_given() {
        let vars = env(&[
            ("BAO_ADDR", "http://bao:8200"),
            ("BAO_TOKEN", "ambient"),
            ("BAO_K8S_ROLE", "tenantry"),
        ]);
        let c = Connection::resolve(&ConnectionFlags::default(), &vars).unwrap();
        let Auth::Kubernetes(login) = &c.auth else {
            panic!("BAO_K8S_ROLE beats an ambient BAO_TOKEN: {c:?}");
        };
        assert_eq!(
            login,
            &KubernetesLogin {
                mount: "kubernetes".to_owned(),
                role: "tenantry".to_owned(),
                jwt_file: PathBuf::from(SERVICE_ACCOUNT_TOKEN_FILE),
            }
        );
        let flags = ConnectionFlags {
            k8s_role: Some("operator".to_owned()),
            k8s_token_file: Some(PathBuf::from("/sa/token")),
            auth_mount: Some("k8s-prod".to_owned()),
            ..ConnectionFlags::default()
        };
        let c = Connection::resolve(&flags, &vars).unwrap();
        let Auth::Kubernetes(login) = &c.auth else {
            panic!("{c:?}");
        };
        assert_eq!(
            (login.mount.as_str(), login.role.as_str()),
            ("k8s-prod", "operator")
        );
        assert_eq!(login.jwt_file, Path::new("/sa/token"));

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "from-file").unwrap();
        let flags = ConnectionFlags {
            token_file: Some(file),
            ..flags
        };
        let c = Connection::resolve(&flags, &vars).unwrap();
        assert_eq!(token(&c), "from-file", "an explicit token file wins");
    }

    #[test]
    fn a_login_answer_gives_its_client_token() {
        let answer = json!({ "auth": { "client_token": "s.abc", "accessor": "x",
            "policies": ["default"], "lease_duration": 3600 } });
        assert_eq!(
            client_token(Some(&answer)).map(|t| t.0),
            Some("s.abc".to_owned())
        );
        assert!(client_token(Some(&json!({ "auth": null }))).is_none());
        assert!(client_token(Some(&json!({ "auth": { "client_token": "" } }))).is_none());
        assert!(client_token(None).is_none());
    }

    #[test]
    fn bao_variables_win_over_vault_ones_and_flags_over_both() {
        let vars = env(&[
            ("VAULT_ADDR", "http://vault:8200"),
            ("BAO_ADDR", "http://bao:8200"),
            ("VAULT_TOKEN", "v"),
            ("BAO_TOKEN", ""),
            ("VAULT_CACERT", "/ca.pem"),
        ]);
        let c = Connection::resolve(&ConnectionFlags::default(), &vars).unwrap();
        assert_eq!(c.address, "http://bao:8200");
        assert_eq!(token(&c), "v", "an empty BAO_TOKEN counts as unset");
        assert_eq!(c.ca_file.as_deref(), Some(Path::new("/ca.pem")));
        let flags = ConnectionFlags {
            address: Some("https://flag:8200".to_owned()),
            ..ConnectionFlags::default()
        };
        assert_eq!(
            Connection::resolve(&flags, &vars).unwrap().address,
            "https://flag:8200"
        );
    }

    #[test]
    fn missing_address_or_token_says_what_to_set() {
        let e = Connection::resolve(&ConnectionFlags::default(), env(&[])).unwrap_err();
        assert!(e.to_string().contains("BAO_ADDR"), "{e}");
        let e = Connection::resolve(
            &ConnectionFlags::default(),
            env(&[("BAO_ADDR", "http://x")]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("BAO_TOKEN"), "{e}");
    }

    #[test]
    fn token_file_is_read_trimmed_and_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s.secret-value\n").unwrap();
        let flags = ConnectionFlags {
            token_file: Some(path.clone()),
            ..ConnectionFlags::default()
        };
        let c = Connection::resolve(&flags, env(&[("BAO_ADDR", "http://x")])).unwrap();
        assert_eq!(token(&c), "s.secret-value");
        assert!(!format!("{c:?}").contains("secret-value"));
        std::fs::write(&path, "\n").unwrap();
        let e = Connection::resolve(&flags, env(&[("BAO_ADDR", "http://x")])).unwrap_err();
        assert!(e.to_string().contains("is empty"), "{e}");
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
    }

    #[test]
    fn bad_address_and_bad_ca_file_are_refused_naming_them() {
        let conn = |address: &str, ca_file: Option<PathBuf>| Connection {
            ca_file,
            ..Connection::with_token(address, Token::new("t"))
        };
        let e = BaoClient::new(&conn("openbao:8200", None)).unwrap_err();
        assert!(e.to_string().contains("openbao:8200"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not a certificate").unwrap();
        let e = BaoClient::new(&conn("https://bao:8200", Some(ca.clone()))).unwrap_err();
        assert!(e.to_string().contains("CA file"), "{e}");
        assert!(e.to_string().contains(&ca.display().to_string()), "{e}");
    }

    #[test]
    fn capabilities_follow_the_verb_and_sudo_paths() {
        assert_eq!(Verb::Read.capability("secret/data/x"), "read");
        assert_eq!(
            Verb::Write.capability("sys/policies/acl/x"),
            "create/update"
        );
        assert_eq!(Verb::List.capability("auth/token/accessors"), "list+sudo");
        assert_eq!(Verb::Write.capability("sys/auth/kubernetes"), "update+sudo");
    }
}
