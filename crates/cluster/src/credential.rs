//! The tenant's credentials: short-lived tokens of its ServiceAccount, each bound to its own
//! handle so it can be listed and revoked alone, packaged as a kubeconfig, and proven to
//! reach no further than the tenant before it is handed out.
//!
//! Why a TokenRequest token and not a ServiceAccount token Secret: a Secret-backed token
//! never expires and lives in etcd where anyone who can read Secrets in the namespace can
//! copy it. A TokenRequest token is minted on demand, expires (8 hours by default, at most
//! what `tenantry.yaml` allows), is stored nowhere in the cluster, and carries the API
//! server's own audience, so it is good for the API server and for nothing that checks
//! audiences.
//!
//! Why each token is bound to a Secret of its own: a token bound only to the ServiceAccount
//! can be revoked only by deleting the ServiceAccount, which revokes every kubeconfig of the
//! tenant at once and breaks delivery, which runs as that ServiceAccount. So every issued
//! token is bound (TokenRequest `boundObjectRef`) to a data-less Secret in the tenant's
//! namespace, `tenantry-credential-<id>`, labelled with the tenant and the credential ID and
//! annotated with the holder and the expiry. The API server rejects the token as soon as
//! that Secret is gone (or replaced: the binding names its uid), so deleting it revokes
//! exactly one kubeconfig ([`revoke`]); listing those Secrets lists the credentials
//! ([`list`]); deleting the ServiceAccount (offboarding) still revokes them all. The Secret
//! holds no token: reading it gives nothing away, and the tenant's own `edit` role, which
//! may delete Secrets in its namespace, can only revoke its own credentials.
//!
//! What the kubeconfig can do is what the tenant's RoleBindings allow in its namespaces,
//! nothing more; [`issue_checked`] asks the API server, *with the new token*, and a
//! credential whose answers are wrong (or cannot be had) is revoked before the caller sees
//! it. The file is a bearer credential: it is created with mode 0600 (no moment where it is
//! readable by others), under `out/`, which is kept out of Git.

use std::{
    fs, io,
    io::Write,
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant, SystemTime},
};

use k8s_openapi::jiff::Timestamp;
use kube::config::{
    AuthInfo, Cluster, Context, Kubeconfig, NamedAuthInfo, NamedCluster, NamedContext,
};
use serde::Serialize;
use serde_json::{Value, json};
use tenantry_api::{MANAGED_BY, MANAGED_BY_LABEL, platform::CredentialsConfig};
use tracing::debug;

use crate::{
    api::{AccessCheck, BoundObject, ClusterApi, Deletion, IssuedToken, TokenStatus},
    catalog::ResourceType,
    error::ClusterError,
    kube_api::ClusterEndpoint,
    ops::{Waits, wait_token_rejected},
};

/// The API server refuses TokenRequests shorter than this.
pub const MIN_TOKEN_SECONDS: u64 = 600;

/// Parse a Go-style duration as `kubectl` and `tenantry.yaml` write them: `8h`, `30m`,
/// `1h30m`, `90s`, `1.5h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    tenantry_api::duration::parse(text)
}

/// Render a duration the way it was probably written: `8h`, `1h30m`, `45m`, `90s`.
pub fn format_duration(duration: Duration) -> String {
    tenantry_api::duration::format(duration)
}

/// The platform's limits on token lifetimes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenPolicy {
    /// Used when no duration is asked for.
    pub default: Duration,
    /// Never exceeded.
    pub max: Duration,
}

/// The lifetime a token will be requested with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct TokenLifetime {
    /// Seconds to request.
    pub seconds: u64,
    /// True when the requested duration was longer than the platform allows and was cut.
    pub capped: bool,
}

impl TokenPolicy {
    /// The `credentials` section of `tenantry.yaml` (its durations are checked when the
    /// file is read: at least the API server's minimum).
    pub fn from_platform(config: &CredentialsConfig) -> Result<Self, ClusterError> {
        Ok(Self {
            default: config.default_token_duration.duration(),
            max: config.max_token_duration.duration(),
        })
    }

    /// The lifetime for a request of `requested` (the default when `None`), capped at the
    /// maximum. Shorter than the API server's minimum is refused rather than lengthened:
    /// someone asking for five minutes wants less, not more.
    pub fn lifetime(&self, requested: Option<Duration>) -> Result<TokenLifetime, ClusterError> {
        let wanted = requested.unwrap_or(self.default);
        if wanted.as_secs() < MIN_TOKEN_SECONDS {
            return Err(ClusterError::Input(format!(
                "a token must live at least 10m (the API server's minimum); {} was asked for",
                format_duration(wanted)
            )));
        }
        let capped = wanted > self.max;
        Ok(TokenLifetime {
            seconds: wanted.min(self.max).as_secs(),
            capped,
        })
    }
}

/// `out/tenant-<name>.kubeconfig` under the repository root.
pub fn kubeconfig_path(root: &Path, tenant: &str) -> PathBuf {
    root.join("out").join(format!("tenant-{tenant}.kubeconfig"))
}

/// The context name of an issued kubeconfig: `tenant-<name>@<cluster>`.
pub fn context_name(tenant: &str, cluster: &str) -> String {
    format!("tenant-{tenant}@{cluster}")
}

/// Everything an issued kubeconfig says.
#[derive(Clone, Debug)]
pub struct KubeconfigSpec<'a> {
    /// The tenant.
    pub tenant: &'a str,
    /// The platform's cluster name.
    pub cluster_name: &'a str,
    /// The tenant's primary namespace, the default of the context.
    pub namespace: &'a str,
    /// Where the API server is and how to trust it.
    pub endpoint: &'a ClusterEndpoint,
    /// The credential's ID (for the revoke hint in the header).
    pub credential_id: &'a str,
    /// The bearer token.
    pub token: &'a str,
    /// When the token expires, for the header comment.
    pub expires_at: Option<&'a str>,
}

/// The kubeconfig document for an issued credential.
pub fn kubeconfig_yaml(spec: &KubeconfigSpec<'_>) -> String {
    let body = kubeconfig_body(spec);
    format!(
        "# Issued by Tenantry for tenant {tenant}: credential {id}, a bearer token of ServiceAccount\n\
         # {namespace}/{tenant}, valid in the tenant's namespaces only{expiry}. Keep it private; never commit it.\n\
         # `tenantry credentials revoke {tenant} {id}` revokes it; `tenantry kubeconfig {tenant}` issues a new one.\n{body}",
        tenant = spec.tenant,
        id = spec.credential_id,
        namespace = spec.namespace,
        expiry = spec
            .expires_at
            .map(|e| format!(", until {e}"))
            .unwrap_or_default(),
    )
}

/// The kubeconfig itself, without a header comment: one cluster (`spec.endpoint`), one user
/// holding the token, one context `tenant-<name>@<cluster>` defaulting to the tenant's
/// primary namespace. Every kubeconfig Tenantry hands out (a person's, or the operator's for
/// Flux through the proxy) is this document.
pub fn kubeconfig_body(spec: &KubeconfigSpec<'_>) -> String {
    let context = context_name(spec.tenant, spec.cluster_name);
    let user = format!("tenant-{}", spec.tenant);
    let doc = Kubeconfig {
        api_version: Some("v1".to_owned()),
        kind: Some("Config".to_owned()),
        clusters: vec![NamedCluster {
            name: spec.cluster_name.to_owned(),
            cluster: Some(Cluster {
                server: Some(spec.endpoint.server.clone()),
                certificate_authority_data: spec.endpoint.certificate_authority_data.clone(),
                tls_server_name: spec.endpoint.tls_server_name.clone(),
                insecure_skip_tls_verify: spec.endpoint.insecure_skip_tls_verify.then_some(true),
                proxy_url: spec.endpoint.proxy_url.clone(),
                ..Cluster::default()
            }),
            ..NamedCluster::default()
        }],
        contexts: vec![NamedContext {
            name: context.clone(),
            context: Some(Context {
                cluster: spec.cluster_name.to_owned(),
                user: Some(user.clone()),
                namespace: Some(spec.namespace.to_owned()),
                ..Context::default()
            }),
            ..NamedContext::default()
        }],
        current_context: Some(context),
        auth_infos: vec![NamedAuthInfo {
            name: user,
            auth_info: Some(AuthInfo {
                token: Some(spec.token.to_owned().into()),
                ..AuthInfo::default()
            }),
            ..NamedAuthInfo::default()
        }],
        ..Kubeconfig::default()
    };
    serde_saphyr::to_string(&doc).unwrap_or_default()
}

/// An endpoint for a kubeconfig that reaches `server` and trusts the PEM bundle `ca_pem`
/// (inlined), or the system roots when `None`.
pub fn endpoint_for(server: &str, ca_pem: Option<&str>) -> ClusterEndpoint {
    use base64::Engine as _;
    ClusterEndpoint {
        context: String::new(),
        server: server.to_owned(),
        certificate_authority_data: ca_pem
            .map(|pem| base64::engine::general_purpose::STANDARD.encode(pem)),
        tls_server_name: None,
        insecure_skip_tls_verify: false,
        proxy_url: None,
    }
}

/// `text` as a Secret's `data` value (base64).
pub fn secret_data(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// The UTF-8 text under `data.<key>` of a Secret as the API server returns it; `None` when
/// absent or not base64 of UTF-8.
pub fn secret_text(secret: &Value, key: &str) -> Option<String> {
    use base64::Engine as _;
    let encoded = secret.get("data")?.get(key)?.as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// The bearer token of an issued kubeconfig (its first user's), for revocation checks.
pub fn token_of(kubeconfig: &str) -> Option<String> {
    let doc = Kubeconfig::from_yaml(kubeconfig).ok()?;
    let user = doc.auth_infos.into_iter().next()?.auth_info?;
    // kube keeps the token in a `SecretString`; serializing is its way of exposing it.
    serde_json::to_value(&user)
        .ok()?
        .get("token")?
        .as_str()
        .map(str::to_owned)
}

fn file_error(path: &Path, e: io::Error) -> ClusterError {
    ClusterError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Replace `path` with `content` atomically: a temporary file in the same directory, created
/// with `mode` (on Unix) before a byte is written, then renamed over the target, so a reader
/// sees the old file or the new one, never half of one, and no looser copy ever exists.
fn replace_file(path: &Path, content: &[u8], mode: u32) -> Result<(), ClusterError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".tenantry-").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(mode));
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = builder.tempfile_in(dir).map_err(|e| file_error(path, e))?;
    file.write_all(content)
        .and_then(|()| file.as_file().sync_all())
        .map_err(|e| file_error(path, e))?;
    // On failure the temporary file is removed when it is dropped.
    file.persist(path).map_err(|e| file_error(path, e.error))?;
    Ok(())
}

/// Write a file readable by its owner only (0600 from creation), atomically. The directory
/// is created 0700 if missing.
pub fn write_private(path: &Path, content: &[u8]) -> Result<(), ClusterError> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(dir).map_err(|e| file_error(dir, e))?;
    }
    replace_file(path, content, 0o600)
}

/// Lines that already keep the root `out/` directory out of Git.
const OUT_PATTERNS: [&str; 4] = ["out/", "/out/", "out", "/out"];

/// Make sure the repository's `.gitignore` ignores `out/`, adding one line if it does not,
/// and leaving every other byte of the file as it was. Returns whether it was changed.
pub fn ensure_out_ignored(root: &Path) -> Result<bool, ClusterError> {
    let path = root.join(".gitignore");
    let existing = match fs::read(&path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(file_error(&path, e)),
    };
    if existing.lines().any(|l| OUT_PATTERNS.contains(&l.trim())) {
        return Ok(false);
    }
    let mut text = existing;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(
        "# Issued tenant kubeconfigs hold bearer tokens (tenantry onboard / kubeconfig).\nout/\n",
    );
    replace_file(&path, text.as_bytes(), 0o644)?;
    Ok(true)
}

/// One question asked with the issued credential, and the answer a tenant-only credential
/// must get.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ScopeCheck {
    /// The question in words, e.g. `list pods in shop`.
    pub question: String,
    /// The access review sent.
    pub check: AccessCheck,
    /// The answer a namespace-scoped credential must get.
    pub expected: bool,
    /// The API server's answer.
    pub allowed: bool,
}

impl ScopeCheck {
    /// True when the answer is the expected one.
    pub fn ok(&self) -> bool {
        self.expected == self.allowed
    }
}

/// The three questions: it must work in the tenant's namespace, and must not reach cluster
/// scope (nodes) or another namespace (`kube-system`, where the platform's secrets live).
pub fn scope_questions(namespace: &str) -> Vec<(String, AccessCheck, bool)> {
    let check = |verb: &str, resource: &str, ns: Option<&str>| AccessCheck {
        verb: verb.to_owned(),
        group: String::new(),
        resource: resource.to_owned(),
        namespace: ns.map(str::to_owned),
    };
    vec![
        (
            format!("list pods in {namespace}"),
            check("list", "pods", Some(namespace)),
            true,
        ),
        (
            "list nodes (cluster scope)".to_owned(),
            check("list", "nodes", None),
            false,
        ),
        (
            "get pods in kube-system".to_owned(),
            check("get", "pods", Some("kube-system")),
            false,
        ),
    ]
}

/// Ask the three questions with the tenant's own credential.
pub async fn verify_scope<A: ClusterApi>(
    as_tenant: &A,
    namespace: &str,
) -> Result<Vec<ScopeCheck>, ClusterError> {
    let mut answers = Vec::new();
    for (question, check, expected) in scope_questions(namespace) {
        let allowed = as_tenant.review_access(&check).await?;
        answers.push(ScopeCheck {
            question,
            check,
            expected,
            allowed,
        });
    }
    Ok(answers)
}

/// Names of the credential handles: `tenantry-credential-<id>`.
pub const CREDENTIAL_SECRET_PREFIX: &str = "tenantry-credential-";

/// Characters of a credential ID: Kubernetes' `generateName` alphabet (no vowels, so no
/// words; no `0/o`, `1/l` look-alikes).
const ID_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Length of a credential ID: 27^10 ≈ 2·10^14 values, so a collision is never expected, and
/// one would be refused by the API server anyway (the handle is created, never overwritten).
pub const ID_LENGTH: usize = 10;

/// The label that carries a credential's ID, under the platform's label prefix (the prefix
/// of its tenant label): `tenantry.dev/credential`.
pub fn credential_label(tenant_label: &str) -> String {
    format!("{}/credential", label_prefix(tenant_label))
}

/// The platform's label prefix (`tenantry.dev`), from its tenant label
/// (`tenantry.dev/tenant`): the prefix of every label and annotation Tenantry writes.
pub fn label_prefix(tenant_label: &str) -> &str {
    tenant_label
        .rsplit_once('/')
        .map_or(tenant_label, |(prefix, _)| prefix)
}

fn holder_annotation(tenant_label: &str) -> String {
    format!("{}/credential-holder", label_prefix(tenant_label))
}

fn expires_annotation(tenant_label: &str) -> String {
    format!("{}/credential-expires-at", label_prefix(tenant_label))
}

/// The Secret handle of credential `id`.
pub fn credential_secret_name(id: &str) -> String {
    format!("{CREDENTIAL_SECRET_PREFIX}{id}")
}

/// A credential ID from 64 random bits.
pub fn credential_id_from(mut bits: u64) -> String {
    let base = ID_ALPHABET.len() as u64;
    (0..ID_LENGTH)
        .map(|_| {
            let c = ID_ALPHABET[(bits % base) as usize];
            bits /= base;
            char::from(c)
        })
        .collect()
}

/// A fresh credential ID. The bits come from the standard library's per-process random
/// hash keys mixed with the clock and a counter: unpredictable enough for a name that is
/// not a secret (anyone who may list the tenant's Secrets sees it), and unique in practice.
pub fn new_credential_id() -> String {
    use std::hash::{BuildHasher, RandomState};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    credential_id_from(RandomState::new().hash_one((nanos, n, std::process::id())))
}

/// True when `id` could be a credential ID (so it is safe in a name and a label value).
pub fn is_credential_id(id: &str) -> bool {
    id.len() == ID_LENGTH && id.bytes().all(|b| ID_ALPHABET.contains(&b))
}

/// Longest holder note accepted.
pub const MAX_HOLDER_LEN: usize = 200;

/// Check a holder note ("who has this kubeconfig"): one line of printable text, as it is
/// shown in a table and in the kubeconfig's header comment.
pub fn check_holder(holder: &str) -> Result<(), ClusterError> {
    if holder.chars().count() > MAX_HOLDER_LEN {
        return Err(ClusterError::Input(format!(
            "holder note: longer than {MAX_HOLDER_LEN} characters"
        )));
    }
    if holder.chars().any(char::is_control) {
        return Err(ClusterError::Input(
            "holder note: must be one line without control characters".to_owned(),
        ));
    }
    Ok(())
}

/// The Secret an issued token is bound to: no data, only the labels that find it (the
/// tenant's inventory labels and the credential ID) and who holds the credential.
pub fn credential_secret(
    tenant_label: &str,
    tenant: &str,
    namespace: &str,
    id: &str,
    holder: Option<&str>,
) -> Value {
    let mut annotations = serde_json::Map::new();
    if let Some(holder) = holder.filter(|h| !h.is_empty()) {
        annotations.insert(holder_annotation(tenant_label), json!(holder));
    }
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": credential_secret_name(id),
            "namespace": namespace,
            "labels": {
                MANAGED_BY_LABEL: MANAGED_BY,
                tenant_label: tenant,
                credential_label(tenant_label): id,
            },
            "annotations": annotations,
        },
    })
}

/// True for a credential handle (a Secret carrying the credential label). These are not
/// part of any tenant's declaration, so planning must never take them for objects the
/// tenant stopped declaring: pruning one would revoke a kubeconfig.
pub fn is_credential(object: &Value, tenant_label: &str) -> bool {
    object.get("kind").and_then(Value::as_str) == Some("Secret")
        && object.get("apiVersion").and_then(Value::as_str) == Some("v1")
        && tenantry_core::plan::label(object, &credential_label(tenant_label)).is_some()
}

/// One issued credential, as `tenantry credentials list` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialInfo {
    /// The credential ID.
    pub id: String,
    /// The tenant.
    pub tenant: String,
    /// `namespace/name` of its Secret handle.
    pub secret: String,
    /// When it was issued (the handle's creation, by the API server's clock; RFC 3339).
    pub issued_at: Option<String>,
    /// When its token expires (RFC 3339); `None` while being issued or if unknown.
    pub expires_at: Option<String>,
    /// True when `expires_at` has passed: the token authenticates nothing any more.
    pub expired: bool,
    /// Who holds it, as noted when it was issued.
    pub holder: Option<String>,
    #[serde(skip)]
    namespace: String,
    #[serde(skip)]
    name: String,
    #[serde(skip)]
    uid: Option<String>,
}

/// Read a credential handle; `None` for anything else.
pub fn credential_info(
    object: &Value,
    tenant_label: &str,
    now: Timestamp,
) -> Option<CredentialInfo> {
    if !is_credential(object, tenant_label) {
        return None;
    }
    let meta = object.get("metadata")?;
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    let annotation = |key: &str| text(meta.get("annotations").and_then(|a| a.get(key)));
    let namespace = text(meta.get("namespace"))?;
    let name = text(meta.get("name"))?;
    let expires_at = annotation(&expires_annotation(tenant_label));
    let expired = expires_at
        .as_deref()
        .and_then(|e| e.parse::<Timestamp>().ok())
        .is_some_and(|e| e <= now);
    Some(CredentialInfo {
        id: tenantry_core::plan::label(object, &credential_label(tenant_label))?.to_owned(),
        tenant: tenantry_core::plan::label(object, tenant_label)?.to_owned(),
        secret: format!("{namespace}/{name}"),
        issued_at: text(meta.get("creationTimestamp")),
        expires_at,
        expired,
        holder: annotation(&holder_annotation(tenant_label)),
        namespace,
        name,
        uid: text(meta.get("uid")),
    })
}

/// The core `v1` Secret type: always served, so credentials need no discovery request.
pub fn secrets() -> ResourceType {
    ResourceType {
        group: String::new(),
        version: "v1".to_owned(),
        kind: "Secret".to_owned(),
        plural: "secrets".to_owned(),
        namespaced: true,
        verbs: ["create", "delete", "get", "list", "patch"]
            .map(str::to_owned)
            .to_vec(),
    }
}

/// What to issue.
#[derive(Clone, Debug)]
pub struct CredentialRequest<'a> {
    /// The tenant.
    pub tenant: &'a str,
    /// Its primary namespace, where its ServiceAccount and credential handles live.
    pub namespace: &'a str,
    /// The platform's tenant label (`<labelPrefix>/tenant`).
    pub tenant_label: &'a str,
    /// The platform's cluster name.
    pub cluster_name: &'a str,
    /// The cluster to point at.
    pub endpoint: &'a ClusterEndpoint,
    /// How long the token lives.
    pub lifetime: TokenLifetime,
    /// Who will hold it (shown by `list`), checked by [`check_holder`].
    pub holder: Option<&'a str>,
}

/// A freshly issued credential.
#[derive(Clone, Debug)]
pub struct IssuedCredential {
    /// Its ID, for `tenantry credentials revoke`.
    pub id: String,
    /// `namespace/name` of the Secret its token is bound to.
    pub secret: String,
    /// The kubeconfig document (holds the token).
    pub kubeconfig: String,
    /// The token.
    pub token: String,
    /// When it expires, as the API server says.
    pub expires_at: Option<String>,
    /// The lifetime granted, in seconds.
    pub granted_seconds: Option<i64>,
}

/// Mint a token for the tenant's ServiceAccount, bound to a new credential handle, and
/// package it as a kubeconfig. The scope is *not* checked: use [`issue_checked`] for
/// anything handed to a person.
pub async fn issue<A: ClusterApi>(
    api: &A,
    request: &CredentialRequest<'_>,
) -> Result<IssuedCredential, ClusterError> {
    if let Some(holder) = request.holder {
        check_holder(holder)?;
    }
    let not_onboarded = || {
        ClusterError::Input(format!(
            "tenant {tenant} has no ServiceAccount {ns}/{tenant} in this cluster; run `tenantry onboard {tenant}` first",
            tenant = request.tenant,
            ns = request.namespace
        ))
    };
    let secrets = secrets();
    let (id, handle) = create_handle(api, &secrets, request)
        .await
        .map_err(|e| match e {
            ClusterError::Api { code: 404, .. } => not_onboarded(),
            other => other,
        })?;
    let info = handle_info(&handle, &id, request);
    match mint(api, &secrets, request, &info).await {
        Ok(issued) => Ok(issued),
        Err(e) => {
            // The handle binds no working token; remove it rather than list a ghost.
            if let Err(cleanup) = delete_handle(api, &secrets, &info).await {
                debug!(error = %cleanup, "could not remove the handle of a failed issue");
            }
            Err(match e {
                ClusterError::Api { code: 404, .. } => not_onboarded(),
                other => other,
            })
        }
    }
}

/// POST the handle under a fresh ID; a name taken (however unlikely) gets a new ID.
async fn create_handle<A: ClusterApi>(
    api: &A,
    secrets: &ResourceType,
    request: &CredentialRequest<'_>,
) -> Result<(String, Value), ClusterError> {
    let mut attempt = 0;
    loop {
        let id = new_credential_id();
        let body = credential_secret(
            request.tenant_label,
            request.tenant,
            request.namespace,
            &id,
            request.holder,
        );
        match api.create(secrets, Some(request.namespace), &body).await {
            Ok(live) => return Ok((id, live)),
            Err(ClusterError::Api { code: 409, .. }) if attempt < 3 => attempt += 1,
            Err(e) => return Err(e),
        }
    }
}

fn handle_info(handle: &Value, id: &str, request: &CredentialRequest<'_>) -> CredentialInfo {
    let text = |p: &str| handle.pointer(p).and_then(Value::as_str).map(str::to_owned);
    let name = credential_secret_name(id);
    CredentialInfo {
        id: id.to_owned(),
        tenant: request.tenant.to_owned(),
        secret: format!("{}/{name}", request.namespace),
        issued_at: text("/metadata/creationTimestamp"),
        expires_at: None,
        expired: false,
        holder: request.holder.map(str::to_owned),
        namespace: request.namespace.to_owned(),
        name,
        uid: text("/metadata/uid"),
    }
}

/// TokenRequest bound to the handle, then the expiry the server granted onto the handle.
async fn mint<A: ClusterApi>(
    api: &A,
    secrets: &ResourceType,
    request: &CredentialRequest<'_>,
    info: &CredentialInfo,
) -> Result<IssuedCredential, ClusterError> {
    let uid = info.uid.clone().ok_or_else(|| ClusterError::Transport {
        doing: format!("creating Secret {}", info.secret),
        message: "the API server returned the Secret without a uid".to_owned(),
        source: None,
    })?;
    let token = mint_bound(
        api,
        request.namespace,
        request.tenant,
        &info.name,
        &uid,
        request.lifetime.seconds,
    )
    .await?;
    if let Some(expires_at) = &token.expires_at {
        let patch = json!({ "metadata": { "annotations": {
            expires_annotation(request.tenant_label): expires_at } } });
        api.merge_patch(secrets, Some(&info.namespace), &info.name, &patch)
            .await?;
    }
    let kubeconfig = kubeconfig_yaml(&KubeconfigSpec {
        tenant: request.tenant,
        cluster_name: request.cluster_name,
        namespace: request.namespace,
        endpoint: request.endpoint,
        credential_id: &info.id,
        token: &token.token,
        expires_at: token.expires_at.as_deref(),
    });
    Ok(IssuedCredential {
        id: info.id.clone(),
        secret: info.secret.clone(),
        kubeconfig,
        token: token.token,
        expires_at: token.expires_at,
        granted_seconds: token.expiration_seconds,
    })
}

/// The one TokenRequest every Tenantry credential is minted by: a token of
/// `namespace/service_account` for the API server's audience, living `seconds` (the server
/// may grant less), bound to the Secret `secret` with `uid` in the same namespace, so deleting
/// that Secret (or replacing it: the uid is checked) revokes this token and no other.
pub async fn mint_bound<A: ClusterApi>(
    api: &A,
    namespace: &str,
    service_account: &str,
    secret: &str,
    uid: &str,
    seconds: u64,
) -> Result<IssuedToken, ClusterError> {
    let bound = BoundObject {
        kind: "Secret".to_owned(),
        api_version: "v1".to_owned(),
        name: secret.to_owned(),
        uid: uid.to_owned(),
    };
    let seconds = i64::try_from(seconds).unwrap_or(i64::MAX);
    api.request_token(namespace, service_account, seconds, Some(&bound))
        .await
}

async fn delete_handle<A: ClusterApi>(
    api: &A,
    secrets: &ResourceType,
    info: &CredentialInfo,
) -> Result<Deletion, ClusterError> {
    api.delete(
        secrets,
        Some(&info.namespace),
        &info.name,
        info.uid.as_deref(),
        false,
    )
    .await
}

/// Ask the scope questions with the issued credential. RBAC decisions for a binding created
/// a moment ago can lag behind (the authorizer reads from a cache), so a missing allow is
/// asked again until `waits` runs out; a wrong *allow* is never retried away.
pub async fn verify<A: ClusterApi>(
    api: &A,
    kubeconfig: &str,
    namespace: &str,
    waits: &Waits,
) -> Result<Vec<ScopeCheck>, ClusterError> {
    let as_tenant = api.connect_as(kubeconfig).await?;
    let start = Instant::now();
    loop {
        let checks = verify_scope(&as_tenant, namespace).await?;
        let only_missing_allows = checks.iter().all(|c| c.ok() || (c.expected && !c.allowed));
        if checks.iter().all(ScopeCheck::ok)
            || !only_missing_allows
            || start.elapsed() >= waits.timeout
        {
            return Ok(checks);
        }
        tokio::time::sleep(waits.interval).await;
    }
}

/// An issued credential and the answers its scope check got.
#[derive(Clone, Debug)]
pub struct CheckedCredential {
    /// The credential. When [`Self::revoked`] is set, its token is dead: never hand the
    /// kubeconfig out.
    pub credential: IssuedCredential,
    /// The scope questions and their answers.
    pub checks: Vec<ScopeCheck>,
    /// Set when an answer was wrong: the credential was revoked before this returned, and
    /// this is what a TokenReview of its token said afterwards (normally not
    /// authenticated).
    pub revoked: Option<TokenStatus>,
}

impl CheckedCredential {
    /// True when every answer was right: the kubeconfig may be handed out.
    pub fn ok(&self) -> bool {
        self.revoked.is_none()
    }

    /// True when the credential reached further than the tenant.
    pub fn broader(&self) -> bool {
        self.checks.iter().any(|c| !c.expected && c.allowed)
    }
}

/// Issue a credential and prove its scope with its own token; a credential whose answers
/// are wrong is revoked (its handle deleted, and the token checked to be rejected) before
/// this returns, and one whose check fails with an error is revoked before the error is
/// returned. Nothing is written to disk: write [`IssuedCredential::kubeconfig`] with
/// [`write_private`] only when [`CheckedCredential::ok`].
pub async fn issue_checked<A: ClusterApi>(
    api: &A,
    request: &CredentialRequest<'_>,
    waits: &Waits,
) -> Result<CheckedCredential, ClusterError> {
    let credential = issue(api, request).await?;
    let checks = match verify(api, &credential.kubeconfig, request.namespace, waits).await {
        Ok(checks) => checks,
        Err(e) => {
            let why = format!("could not be checked ({e})");
            revoke_unusable(api, request, &credential, waits, &why).await?;
            return Err(e);
        }
    };
    let revoked = if checks.iter().all(ScopeCheck::ok) {
        None
    } else {
        let why = if checks.iter().any(|c| !c.expected && c.allowed) {
            "reaches further than the tenant"
        } else {
            "does not work in the tenant's namespace"
        };
        Some(revoke_unusable(api, request, &credential, waits, why).await?)
    };
    Ok(CheckedCredential {
        credential,
        checks,
        revoked,
    })
}

/// Revoke a credential that must not be used, and wait until its token is rejected.
async fn revoke_unusable<A: ClusterApi>(
    api: &A,
    request: &CredentialRequest<'_>,
    credential: &IssuedCredential,
    waits: &Waits,
    why: &str,
) -> Result<TokenStatus, ClusterError> {
    let name = credential_secret_name(&credential.id);
    let deleted = api
        .delete(&secrets(), Some(request.namespace), &name, None, false)
        .await;
    match deleted {
        Ok(_) => wait_token_rejected(api, &credential.token, waits).await,
        Err(e) => Err(ClusterError::NotRevoked {
            tenant: request.tenant.to_owned(),
            id: credential.id.clone(),
            secret: credential.secret.clone(),
            why: why.to_owned(),
            source: Box::new(e),
        }),
    }
}

/// The label selector of a tenant's credential handles.
pub fn credentials_selector(tenant_label: &str, tenant: &str) -> String {
    format!(
        "{tenant_label}={tenant},{},{MANAGED_BY_LABEL}={MANAGED_BY}",
        credential_label(tenant_label)
    )
}

/// Every credential issued for `tenant` that has not been revoked (expired ones included,
/// marked), oldest first. One LIST request.
pub async fn list<A: ClusterApi>(
    api: &A,
    tenant_label: &str,
    tenant: &str,
) -> Result<Vec<CredentialInfo>, ClusterError> {
    let now = Timestamp::now();
    let items = api
        .list(&secrets(), &credentials_selector(tenant_label, tenant))
        .await?;
    let mut out: Vec<CredentialInfo> = items
        .iter()
        .filter_map(|o| credential_info(o, tenant_label, now))
        .filter(|c| c.tenant == tenant)
        .collect();
    out.sort_by(|a, b| a.issued_at.cmp(&b.issued_at).then_with(|| a.id.cmp(&b.id)));
    Ok(out)
}

/// Which of a tenant's credentials to revoke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revoke<'a> {
    /// The one with this ID.
    Id(&'a str),
    /// Every one (the ServiceAccount, and so delivery, is untouched).
    All,
    /// The expired ones: their tokens are dead already; this removes their handles.
    Expired,
}

/// What happened to one credential.
#[derive(Debug, Serialize)]
pub struct Revocation {
    /// The credential.
    #[serde(flatten)]
    pub credential: CredentialInfo,
    /// `revoked`, `already-gone` (revoked meanwhile), `failed`, or `not-attempted` (an
    /// earlier failure meant every further request would fail too).
    pub outcome: &'static str,
    /// The error, when it failed.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::error::serialize_error"
    )]
    pub error: Option<ClusterError>,
}

/// Revoke credentials of `tenant` by deleting their handles: the API server rejects their
/// tokens from then on, while the tenant's other credentials and its ServiceAccount keep
/// working. Every credential chosen gets an outcome; an unknown ID is an error before
/// anything is deleted.
pub async fn revoke<A: ClusterApi>(
    api: &A,
    tenant_label: &str,
    tenant: &str,
    which: Revoke<'_>,
) -> Result<Vec<Revocation>, ClusterError> {
    let all = list(api, tenant_label, tenant).await?;
    let chosen: Vec<CredentialInfo> = match which {
        Revoke::All => all,
        Revoke::Expired => all.into_iter().filter(|c| c.expired).collect(),
        Revoke::Id(id) => {
            let found: Vec<CredentialInfo> = all.into_iter().filter(|c| c.id == id).collect();
            if found.is_empty() {
                return Err(ClusterError::Input(format!(
                    "tenant {tenant} has no credential {id:?} (`tenantry credentials list {tenant}` shows them)"
                )));
            }
            found
        }
    };
    let secrets = secrets();
    let mut out = Vec::with_capacity(chosen.len());
    let mut stopped = false;
    for credential in chosen {
        if stopped {
            out.push(Revocation {
                credential,
                outcome: "not-attempted",
                error: None,
            });
            continue;
        }
        let (outcome, error) = match delete_handle(api, &secrets, &credential).await {
            Ok(Deletion::Started) => ("revoked", None),
            // Replaced: the handle of that name is a newer object, so the token bound to
            // the old uid is dead already.
            Ok(Deletion::AlreadyGone | Deletion::Replaced) => ("already-gone", None),
            Err(e) => {
                stopped = e.is_fatal();
                ("failed", Some(e))
            }
        };
        out.push(Revocation {
            credential,
            outcome,
            error,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_as_go_writes_them() {
        for (text, secs) in [
            ("8h", 8 * 3600),
            ("30m", 1800),
            ("1h30m", 5400),
            ("90s", 90),
            ("1.5h", 5400),
            ("24h0m0s", 86400),
        ] {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_secs(secs)),
                "{text}"
            );
        }
        for bad in ["", "8", "1d", "h", "8 hours", "-1h", "1x"] {
            assert!(parse_duration(bad).is_err(), "{bad} should be refused");
        }
        assert!(parse_duration("1d").unwrap_err().contains("24h"));
    }

    #[test]
    fn durations_print_compactly() {
        assert_eq!(format_duration(Duration::from_secs(8 * 3600)), "8h");
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_secs(0)), "0s");
    }

    fn policy() -> TokenPolicy {
        TokenPolicy::from_platform(&CredentialsConfig::default()).unwrap()
    }

    #[test]
    fn the_default_token_lives_8_hours_and_no_token_outlives_the_platform_maximum() {
        assert_eq!(
            policy().lifetime(None).unwrap(),
            TokenLifetime {
                seconds: 8 * 3600,
                capped: false
            }
        );
        assert_eq!(
            policy()
                .lifetime(Some(Duration::from_secs(72 * 3600)))
                .unwrap(),
            TokenLifetime {
                seconds: 24 * 3600,
                capped: true
            }
        );
        assert_eq!(
            policy().lifetime(Some(Duration::from_secs(1800))).unwrap(),
            TokenLifetime {
                seconds: 1800,
                capped: false
            }
        );
    }

    #[test]
    fn tokens_shorter_than_the_api_server_minimum_are_refused_not_lengthened() {
        let e = policy()
            .lifetime(Some(Duration::from_secs(300)))
            .unwrap_err();
        assert!(e.to_string().contains("at least 10m"), "{e}");
    }

    fn endpoint() -> ClusterEndpoint {
        ClusterEndpoint {
            context: "admin@prod".to_owned(),
            server: "https://10.0.0.1:6443".to_owned(),
            certificate_authority_data: Some("Q0EK".to_owned()),
            tls_server_name: None,
            insecure_skip_tls_verify: false,
            proxy_url: None,
        }
    }

    #[test]
    fn the_issued_kubeconfig_defaults_to_the_tenant_namespace_and_round_trips_its_token() {
        let ep = endpoint();
        let text = kubeconfig_yaml(&KubeconfigSpec {
            tenant: "shop",
            cluster_name: "prod",
            namespace: "shop",
            endpoint: &ep,
            credential_id: "bcdfghjklm",
            token: "tok.en",
            expires_at: Some("2026-11-23T00:35:32Z"),
        });
        assert!(text.starts_with("# Issued by Tenantry for tenant shop: credential bcdfghjklm"));
        assert!(
            text.contains("`tenantry credentials revoke shop bcdfghjklm`"),
            "{text}"
        );
        assert!(!text.contains("insecure"), "{text}");
        let parsed = kube::config::Kubeconfig::from_yaml(&text).unwrap();
        assert_eq!(parsed.current_context.as_deref(), Some("tenant-shop@prod"));
        let ctx = parsed.contexts[0].context.as_ref().unwrap();
        assert_eq!(ctx.namespace.as_deref(), Some("shop"));
        assert_eq!(ctx.cluster, "prod");
        let cluster = parsed.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://10.0.0.1:6443"));
        assert_eq!(cluster.certificate_authority_data.as_deref(), Some("Q0EK"));
        assert_eq!(cluster.insecure_skip_tls_verify, None);
        assert_eq!(token_of(&text).as_deref(), Some("tok.en"));
    }

    #[cfg(unix)]
    #[test]
    fn private_files_are_created_0600_in_a_0700_directory_and_replaced_atomically() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = kubeconfig_path(dir.path(), "shop");
        write_private(&path, b"one").unwrap();
        write_private(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    }

    #[test]
    fn gitignore_gets_out_once_and_keeps_everything_else() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(".gitignore"), "target\n# keep\n*.log").unwrap();
        assert!(ensure_out_ignored(dir.path()).unwrap());
        assert!(!ensure_out_ignored(dir.path()).unwrap());
        let text = fs::read_to_string(dir.path().join(".gitignore")).unwrap();
        assert!(text.starts_with("target\n# keep\n*.log\n"), "{text}");
        assert_eq!(text.lines().filter(|l| *l == "out/").count(), 1);
        let fresh = tempfile::tempdir().unwrap();
        assert!(ensure_out_ignored(fresh.path()).unwrap());
        fs::write(fresh.path().join(".gitignore"), "/out\n").unwrap();
        assert!(!ensure_out_ignored(fresh.path()).unwrap());
    }

    #[test]
    fn credential_ids_are_short_name_safe_and_differ() {
        let ids: std::collections::BTreeSet<String> =
            (0..1000).map(|_| new_credential_id()).collect();
        assert_eq!(ids.len(), 1000);
        for id in &ids {
            assert!(is_credential_id(id), "{id}");
        }
        assert_eq!(credential_id_from(0), "bbbbbbbbbb");
        assert_ne!(credential_id_from(1), credential_id_from(2));
        assert!(!is_credential_id("../../etc"));
        assert!(!is_credential_id("BCDFGHJKLM"));
    }

    #[test]
    fn a_credential_handle_is_a_dataless_secret_labelled_for_its_tenant_and_id() {
        let secret = credential_secret(
            "tenantry.dev/tenant",
            "shop",
            "shop",
            "bcdfghjklm",
            Some("alice (laptop)"),
        );
        assert_eq!(secret["kind"], "Secret");
        assert_eq!(secret["type"], "Opaque");
        assert_eq!(secret.get("data"), None);
        assert_eq!(secret.get("stringData"), None);
        assert_eq!(secret["metadata"]["name"], "tenantry-credential-bcdfghjklm");
        assert_eq!(
            secret["metadata"]["labels"],
            json!({ "app.kubernetes.io/managed-by": "tenantry", "tenantry.dev/tenant": "shop",
                    "tenantry.dev/credential": "bcdfghjklm" })
        );
        assert_eq!(
            secret["metadata"]["annotations"]["tenantry.dev/credential-holder"],
            "alice (laptop)"
        );
        // Another label prefix moves every key with it.
        let other = credential_secret("acme.io/tenant", "shop", "shop", "bcdfghjklm", None);
        assert_eq!(
            other["metadata"]["labels"]["acme.io/credential"],
            "bcdfghjklm"
        );
        assert_eq!(other["metadata"]["annotations"], json!({}));
    }

    #[test]
    fn a_listed_handle_reads_back_with_its_expiry_judged_against_now() {
        let mut secret = credential_secret(
            "tenantry.dev/tenant",
            "shop",
            "shop",
            "bcdfghjklm",
            Some("ci"),
        );
        secret["metadata"]["uid"] = json!("u-1");
        secret["metadata"]["creationTimestamp"] = json!("2026-11-22T10:00:00Z");
        secret["metadata"]["annotations"]["tenantry.dev/credential-expires-at"] =
            json!("2026-11-22T18:00:00Z");
        let before: Timestamp = "2026-11-22T17:59:59Z".parse().unwrap();
        let after: Timestamp = "2026-11-22T18:00:00Z".parse().unwrap();
        let info = credential_info(&secret, "tenantry.dev/tenant", before).unwrap();
        assert_eq!(info.id, "bcdfghjklm");
        assert_eq!(info.tenant, "shop");
        assert_eq!(info.secret, "shop/tenantry-credential-bcdfghjklm");
        assert_eq!(info.issued_at.as_deref(), Some("2026-11-22T10:00:00Z"));
        assert_eq!(info.expires_at.as_deref(), Some("2026-11-22T18:00:00Z"));
        assert_eq!(info.holder.as_deref(), Some("ci"));
        assert!(!info.expired);
        assert!(
            credential_info(&secret, "tenantry.dev/tenant", after)
                .unwrap()
                .expired
        );
        // Anything else is not a credential, even with the tenant's labels.
        let mut plain = secret.clone();
        plain["metadata"]["labels"]
            .as_object_mut()
            .unwrap()
            .remove("tenantry.dev/credential");
        assert!(credential_info(&plain, "tenantry.dev/tenant", before).is_none());
        let mut configmap = secret;
        configmap["kind"] = json!("ConfigMap");
        assert!(!is_credential(&configmap, "tenantry.dev/tenant"));
    }

    #[test]
    fn holder_notes_are_one_printable_line() {
        assert!(check_holder("alice@example.com, CI runner 3").is_ok());
        for bad in ["a\nb", "tab\there", &"x".repeat(MAX_HOLDER_LEN + 1)] {
            let e = check_holder(bad).unwrap_err().to_string();
            assert!(e.starts_with("holder note:"), "{e}");
        }
    }

    #[test]
    fn scope_questions_expect_only_the_tenant_namespace() {
        let q = scope_questions("shop");
        assert_eq!(q.len(), 3);
        assert_eq!((q[0].2, q[1].2, q[2].2), (true, false, false));
        assert_eq!(q[1].1.namespace, None);
        assert_eq!(q[2].1.namespace.as_deref(), Some("kube-system"));
    }
}
