//! The tenant's credential: a short-lived token bound to its ServiceAccount, packaged as a
//! kubeconfig, and proven to reach no further than the tenant before it is handed out.
//!
//! Why a TokenRequest token and not a ServiceAccount token Secret: a Secret-backed token
//! never expires and lives in etcd where anyone who can read Secrets in the namespace can
//! copy it. A TokenRequest token is minted on demand, expires (8 hours by default, at most
//! what `tenantry.yaml` allows), is stored nowhere in the cluster, and dies with its
//! ServiceAccount, which is how offboarding revokes it. It carries the API server's own
//! audience, so it is good for the API server and for nothing that checks audiences.
//!
//! What the kubeconfig can do is what the tenant's RoleBindings allow in its namespaces,
//! nothing more; [`verify_scope`] asks the API server, *with the new token*, and the command
//! fails if the answer is broader. The file is a bearer credential: it is created with mode
//! 0600 (no moment where it is readable by others), under `out/`, which is kept out of Git.

use std::{
    fs,
    io::{self, Write},
    path::{Path, PathBuf},
    time::Duration,
};

use serde::{Deserialize, Serialize};
use tenantry_api::platform::CredentialsConfig;

use crate::{
    api::{AccessCheck, ClusterApi},
    error::ClusterError,
    kube_api::ClusterEndpoint,
};

/// The API server refuses TokenRequests shorter than this.
pub const MIN_TOKEN_SECONDS: u64 = 600;

/// Parse a Go-style duration as `kubectl` and `tenantry.yaml` write them: `8h`, `30m`,
/// `1h30m`, `90s`, `1.5h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    tenantry_core::duration::parse(text)
}

/// Render a duration the way it was probably written: `8h`, `1h30m`, `45m`, `90s`.
pub fn format_duration(duration: Duration) -> String {
    tenantry_core::duration::format(duration)
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
    /// Read and check the `credentials` section of `tenantry.yaml`.
    pub fn from_platform(config: &CredentialsConfig) -> Result<Self, ClusterError> {
        let parse = |field: &str, value: &str| {
            parse_duration(value)
                .map_err(|e| ClusterError::Input(format!("tenantry.yaml credentials.{field}: {e}")))
        };
        let policy = Self {
            default: parse("defaultTokenDuration", &config.default_token_duration)?,
            max: parse("maxTokenDuration", &config.max_token_duration)?,
        };
        if policy.max.as_secs() < MIN_TOKEN_SECONDS {
            return Err(ClusterError::Input(format!(
                "tenantry.yaml credentials.maxTokenDuration {} is below the API server's minimum of 10m",
                config.max_token_duration
            )));
        }
        Ok(policy)
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

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct KubeconfigDoc {
    #[serde(rename = "apiVersion")]
    api_version: String,
    kind: String,
    clusters: Vec<NamedCluster>,
    contexts: Vec<NamedContext>,
    current_context: String,
    users: Vec<NamedUser>,
}

#[derive(Serialize, Deserialize)]
struct NamedCluster {
    name: String,
    cluster: ClusterEntry,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct ClusterEntry {
    server: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    certificate_authority_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tls_server_name: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    insecure_skip_tls_verify: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    proxy_url: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct NamedContext {
    name: String,
    context: ContextEntry,
}

#[derive(Serialize, Deserialize)]
struct ContextEntry {
    cluster: String,
    user: String,
    namespace: String,
}

#[derive(Serialize, Deserialize)]
struct NamedUser {
    name: String,
    user: UserEntry,
}

#[derive(Serialize, Deserialize)]
struct UserEntry {
    token: String,
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
    /// The bearer token.
    pub token: &'a str,
    /// When the token expires, for the header comment.
    pub expires_at: Option<&'a str>,
}

/// The kubeconfig document for an issued credential.
pub fn kubeconfig_yaml(spec: &KubeconfigSpec<'_>) -> String {
    let context = context_name(spec.tenant, spec.cluster_name);
    let user = format!("tenant-{}", spec.tenant);
    let doc = KubeconfigDoc {
        api_version: "v1".to_owned(),
        kind: "Config".to_owned(),
        clusters: vec![NamedCluster {
            name: spec.cluster_name.to_owned(),
            cluster: ClusterEntry {
                server: spec.endpoint.server.clone(),
                certificate_authority_data: spec.endpoint.certificate_authority_data.clone(),
                tls_server_name: spec.endpoint.tls_server_name.clone(),
                insecure_skip_tls_verify: spec.endpoint.insecure_skip_tls_verify,
                proxy_url: spec.endpoint.proxy_url.clone(),
            },
        }],
        contexts: vec![NamedContext {
            name: context.clone(),
            context: ContextEntry {
                cluster: spec.cluster_name.to_owned(),
                user: user.clone(),
                namespace: spec.namespace.to_owned(),
            },
        }],
        current_context: context,
        users: vec![NamedUser {
            name: user,
            user: UserEntry {
                token: spec.token.to_owned(),
            },
        }],
    };
    let body = serde_saphyr::to_string(&doc).unwrap_or_default();
    format!(
        "# Issued by Tenantry for tenant {tenant}: a bearer token of ServiceAccount {namespace}/{tenant},\n\
         # valid in the tenant's namespaces only{expiry}. Keep it private; never commit it.\n\
         # `tenantry kubeconfig {tenant}` issues a fresh one; `tenantry offboard {tenant}` revokes it.\n{body}",
        tenant = spec.tenant,
        namespace = spec.namespace,
        expiry = spec
            .expires_at
            .map(|e| format!(", until {e}"))
            .unwrap_or_default(),
    )
}

/// The bearer token of an issued kubeconfig, for revocation checks.
pub fn token_of(kubeconfig: &str) -> Option<String> {
    let doc: KubeconfigDoc = serde_saphyr::from_str(kubeconfig).ok()?;
    doc.users.into_iter().next().map(|u| u.user.token)
}

fn file_error(path: &Path, e: io::Error) -> ClusterError {
    ClusterError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Write a file readable by its owner only, atomically: the content goes to a temporary
/// file created with mode 0600 in the same directory, then renamed over the target. At no
/// moment does a world- or group-readable copy of the token exist, and a reader sees the
/// old file or the new one, never half of one. The directory is created 0700 if missing.
pub fn write_private(path: &Path, content: &[u8]) -> Result<(), ClusterError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    if !dir.as_os_str().is_empty() && !dir.exists() {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(dir).map_err(|e| file_error(dir, e))?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tenantry-{}.tmp", std::process::id()));
    let result = (|| {
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let _ = fs::remove_file(&tmp);
        let mut file = options.open(&tmp)?;
        file.write_all(content)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(file_error(path, e));
    }
    Ok(())
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
    let tmp = root.join(format!(".gitignore.tenantry-{}.tmp", std::process::id()));
    fs::write(&tmp, text.as_bytes())
        .and_then(|()| fs::rename(&tmp, &path))
        .map_err(|e| {
            let _ = fs::remove_file(&tmp);
            file_error(&path, e)
        })?;
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

    #[test]
    fn a_platform_maximum_below_the_api_minimum_is_reported_with_its_field() {
        let config = CredentialsConfig {
            default_token_duration: "8h".to_owned(),
            max_token_duration: "5m".to_owned(),
        };
        let e = TokenPolicy::from_platform(&config).unwrap_err().to_string();
        assert!(e.contains("credentials.maxTokenDuration"), "{e}");
        let config = CredentialsConfig {
            default_token_duration: "eight hours".to_owned(),
            ..CredentialsConfig::default()
        };
        let e = TokenPolicy::from_platform(&config).unwrap_err().to_string();
        assert!(e.contains("credentials.defaultTokenDuration"), "{e}");
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
            token: "tok.en",
            expires_at: Some("2026-11-23T00:35:32Z"),
        });
        assert!(text.starts_with("# Issued by Tenantry for tenant shop"));
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
    fn scope_questions_expect_only_the_tenant_namespace() {
        let q = scope_questions("shop");
        assert_eq!(q.len(), 3);
        assert_eq!((q[0].2, q[1].2, q[2].2), (true, false, false));
        assert_eq!(q[1].1.namespace, None);
        assert_eq!(q[2].1.namespace.as_deref(), Some("kube-system"));
    }
}
