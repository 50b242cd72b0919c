//! The kubeconfig Flux reconciles a tenant through the tenant proxy with (`flux.proxy` in
//! `tenantry.yaml`), kept by the operator in the tenant's primary namespace.
//!
//! Capsule's pattern stores a ServiceAccount's static token there: it never expires, and
//! anyone who copies the Secret keeps the tenant's identity for ever. Here the token is a
//! TokenRequest token of the ServiceAccount the Kustomization names, minted by the function
//! `tenantry kubeconfig` uses ([`credential::mint_bound`]), living `flux.proxy.tokenExpiration`
//! and bound to the Secret it sits in (kind Secret + uid): deleting the Secret, or
//! offboarding (which deletes it and the ServiceAccount), makes the API server refuse the
//! token at once. A new token is minted at two thirds of the lifetime, so Flux, which reads
//! the Secret on every reconcile, never holds an expired one; the old token stays valid until
//! its own expiry (it is bound to the same Secret).
//!
//! One Secret name for every tenant ([`FLUX_PROXY_KUBECONFIG_SECRET`]): the operator's rights
//! on Secrets are limited to it by `resourceNames`, so it can neither read nor write any other
//! Secret of a tenant. The Secret carries the tenant label but not `managed-by`, so pruning
//! (which needs both) never deletes it; it is not part of any declaration.
//!
//! Deciding is pure ([`due`], [`kubeconfig`], [`secret_object`], [`refresh_at`]); only
//! [`ensure`] and [`remove`] send requests, through [`ClusterApi`].

use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::config::Kubeconfig;
use serde_json::{Value, json};
use tenantry_api::platform::FLUX_PROXY_KUBECONFIG_SECRET;
use tenantry_cluster::{
    ClusterApi, ClusterError,
    api::Deletion,
    credential::{self, KubeconfigSpec},
};
use tenantry_core::{DesiredObject, Layer, PlatformContext, ResolvedTenant};

/// The condition that reports the kubeconfig on the Tenant (only for tenants that have one).
pub const CONDITION: &str = "FluxProxyKubeconfig";

/// Key of the kubeconfig in the Secret (what the Kustomization's `secretRef.key` names).
pub const KEY: &str = "kubeconfig";

/// What the Secret of one tenant must hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    /// The tenant.
    pub tenant: String,
    /// Its primary namespace, where the Kustomization and the Secret are.
    pub namespace: String,
    /// The ServiceAccount the Kustomization impersonates, whose token the kubeconfig holds.
    pub service_account: String,
    /// The platform's cluster name (the kubeconfig's cluster entry).
    pub cluster_name: String,
    /// The proxy's URL.
    pub server: String,
    /// The PEM bundle the proxy's certificate chains to.
    pub ca_pem: Option<String>,
    /// The token lifetime to request, in seconds.
    pub seconds: u64,
    /// The platform's tenant label.
    pub tenant_label: String,
}

/// The Secret `tenant` needs, when the platform sets `flux.proxy` and the tenant's Flux
/// Kustomization reconciles through the operator-kept Secret (not one the tenant named).
pub fn wanted(ctx: &PlatformContext, tenant: &ResolvedTenant) -> Option<Wanted> {
    let proxy = ctx.platform.flux.proxy.as_ref()?;
    let secret = tenant.delivery.proxy_kubeconfig_secret()?;
    (secret == FLUX_PROXY_KUBECONFIG_SECRET).then(|| Wanted {
        tenant: tenant.name.clone(),
        namespace: tenant.primary_namespace().to_owned(),
        // The Kustomization's serviceAccountName (`render::delivery`).
        service_account: tenant.name.clone(),
        cluster_name: ctx.platform.cluster_name.clone(),
        server: proxy.url.clone(),
        ca_pem: proxy.ca_bundle.clone(),
        seconds: proxy.token_expiration.duration().as_secs(),
        tenant_label: ctx.tenant_label().to_owned(),
    })
}

fn expires_annotation(w: &Wanted) -> String {
    format!(
        "{}/flux-proxy-token-expires-at",
        credential::label_prefix(&w.tenant_label)
    )
}

fn lifetime_annotation(w: &Wanted) -> String {
    format!(
        "{}/flux-proxy-token-seconds",
        credential::label_prefix(&w.tenant_label)
    )
}

/// The kubeconfig document: the proxy as server, its CA, the token, the tenant's primary
/// namespace as default.
pub fn kubeconfig(w: &Wanted, token: &str, expires_at: Option<&str>) -> String {
    let endpoint = credential::endpoint_for(&w.server, w.ca_pem.as_deref());
    let body = credential::kubeconfig_body(&KubeconfigSpec {
        tenant: &w.tenant,
        cluster_name: &w.cluster_name,
        namespace: &w.namespace,
        endpoint: &endpoint,
        credential_id: FLUX_PROXY_KUBECONFIG_SECRET,
        token,
        expires_at,
    });
    format!(
        "# Kept by the Tenantry operator for Flux: a token of ServiceAccount {ns}/{sa} through the tenant\n\
         # proxy{until}, bound to this Secret (deleting it revokes the token) and renewed before it expires.\n{body}",
        ns = w.namespace,
        sa = w.service_account,
        until = expires_at
            .map(|e| format!(", valid until {e}"))
            .unwrap_or_default(),
    )
}

/// When a token that expires at `expires` and lived `lifetime` is replaced: at two thirds of
/// its life, so a missed pass or a slow API server still leaves a third of it.
pub fn refresh_at(expires: Timestamp, lifetime: Duration) -> Timestamp {
    let third = SignedDuration::try_from(lifetime / 3).unwrap_or(SignedDuration::ZERO);
    expires.checked_sub(third).unwrap_or(expires)
}

/// How long until `at`, for the reconcile's requeue: at least a second, at most the periodic
/// pass (`max`).
pub fn requeue_after(at: Timestamp, now: Timestamp, max: Duration) -> Duration {
    let until = at.duration_since(now);
    Duration::try_from(until)
        .unwrap_or(Duration::ZERO)
        .clamp(Duration::from_secs(1), max)
}

/// Whether the Secret needs a new token now, and why; or when it will.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Due {
    /// Mint and write now.
    Now(&'static str),
    /// The token in place is good until this refresh time.
    At(Timestamp),
}

/// Judge the live Secret (`None`: absent) against what is wanted, at `now`.
pub fn due(w: &Wanted, live: Option<&Value>, now: Timestamp) -> Due {
    let Some(live) = live else {
        return Due::Now("missing");
    };
    let annotation = |key: String| {
        live.pointer("/metadata/annotations")
            .and_then(|a| a.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let expires = annotation(expires_annotation(w)).and_then(|e| e.parse::<Timestamp>().ok());
    let lifetime = annotation(lifetime_annotation(w)).and_then(|s| s.parse::<u64>().ok());
    let (Some(expires), Some(lifetime)) = (expires, lifetime) else {
        return Due::Now("no token recorded");
    };
    let text = credential::secret_text(live, KEY);
    let doc = text.as_deref().and_then(|t| Kubeconfig::from_yaml(t).ok());
    let (Some(doc), Some(_token)) = (doc, text.as_deref().and_then(credential::token_of)) else {
        return Due::Now("no readable kubeconfig");
    };
    let cluster = doc.clusters.first().and_then(|c| c.cluster.as_ref());
    let endpoint = credential::endpoint_for(&w.server, w.ca_pem.as_deref());
    let same_proxy = cluster.is_some_and(|c| {
        c.server.as_deref() == Some(w.server.as_str())
            && c.certificate_authority_data == endpoint.certificate_authority_data
    });
    if !same_proxy {
        return Due::Now("proxy URL or CA changed");
    }
    if lifetime > w.seconds {
        // A shorter lifetime is a platform tightening it: do not wait for the old one.
        return Due::Now("token lifetime shortened");
    }
    let at = refresh_at(expires, Duration::from_secs(lifetime));
    if now >= at {
        Due::Now("token due for renewal")
    } else {
        Due::At(at)
    }
}

/// The Secret as server-side applied: labels, the token's expiry and lifetime, and, once a
/// token is minted, the kubeconfig. `uid` (of the Secret the token is bound to) makes the
/// apply a precondition: if that Secret was deleted meanwhile, the apply fails instead of
/// creating a new Secret holding a token that is already dead.
pub fn secret_object(
    w: &Wanted,
    uid: Option<&str>,
    token: Option<(&str, &str, u64)>,
) -> DesiredObject {
    let mut metadata = json!({
        "name": FLUX_PROXY_KUBECONFIG_SECRET,
        "namespace": w.namespace,
        "labels": { w.tenant_label.as_str(): w.tenant },
    });
    if let Some(uid) = uid {
        metadata["uid"] = json!(uid);
    }
    let mut body = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": metadata,
    });
    if let Some((kubeconfig, expires_at, seconds)) = token {
        body["metadata"]["annotations"] = json!({
            expires_annotation(w): expires_at,
            lifetime_annotation(w): seconds.to_string(),
        });
        body["data"] = json!({ KEY: credential::secret_data(kubeconfig) });
    }
    DesiredObject {
        layer: Layer::Delivery,
        api_version: "v1",
        kind: "Secret",
        namespace: Some(w.namespace.clone()),
        name: FLUX_PROXY_KUBECONFIG_SECRET.to_owned(),
        body,
    }
}

/// What [`ensure`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kept {
    /// Why a new token was minted; `None` when the one in place was kept.
    pub minted: Option<&'static str>,
    /// When its token is to be replaced.
    pub refresh_at: Timestamp,
}

fn uid_of(secret: &Value) -> Option<String> {
    secret
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Keep the Secret: one GET when its token is current; otherwise (creating the Secret first
/// when missing, as the token must be bound to its uid) a TokenRequest and one apply.
pub async fn ensure<A: ClusterApi>(
    api: &A,
    w: &Wanted,
    now: Timestamp,
) -> Result<Kept, ClusterError> {
    let secrets = credential::secrets();
    let live = api
        .get(&secrets, Some(&w.namespace), FLUX_PROXY_KUBECONFIG_SECRET)
        .await?;
    let reason = match due(w, live.as_ref(), now) {
        Due::At(at) => {
            return Ok(Kept {
                minted: None,
                refresh_at: at,
            });
        }
        Due::Now(reason) => reason,
    };
    let what = format!("Secret {}/{FLUX_PROXY_KUBECONFIG_SECRET}", w.namespace);
    let no_uid = || ClusterError::Transport {
        doing: format!("writing {what}"),
        message: "the API server returned the Secret without a uid".to_owned(),
        source: None,
    };
    let uid = match live.as_ref().and_then(uid_of) {
        Some(uid) => uid,
        None => {
            let created = api
                .apply(&secrets, &secret_object(w, None, None), false)
                .await?;
            uid_of(&created).ok_or_else(no_uid)?
        }
    };
    let token = credential::mint_bound(
        api,
        &w.namespace,
        &w.service_account,
        FLUX_PROXY_KUBECONFIG_SECRET,
        &uid,
        w.seconds,
    )
    .await?;
    let seconds = token
        .expiration_seconds
        .and_then(|s| u64::try_from(s).ok())
        .unwrap_or(w.seconds);
    let lifetime = Duration::from_secs(seconds);
    let expires = token
        .expires_at
        .as_deref()
        .and_then(|e| e.parse::<Timestamp>().ok())
        .unwrap_or_else(|| {
            now.checked_add(SignedDuration::try_from(lifetime).unwrap_or(SignedDuration::ZERO))
                .unwrap_or(now)
        });
    let expires_text = expires.to_string();
    let document = kubeconfig(w, &token.token, Some(&expires_text));
    api.apply(
        &secrets,
        &secret_object(w, Some(&uid), Some((&document, &expires_text, seconds))),
        false,
    )
    .await?;
    Ok(Kept {
        minted: Some(reason),
        refresh_at: refresh_at(expires, lifetime),
    })
}

/// Delete the tenant's Secret (offboarding): its token dies with it.
pub async fn remove<A: ClusterApi>(api: &A, namespace: &str) -> Result<Deletion, ClusterError> {
    api.delete(
        &credential::secrets(),
        Some(namespace),
        FLUX_PROXY_KUBECONFIG_SECRET,
        None,
        false,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted_shop() -> Wanted {
        Wanted {
            tenant: "shop".into(),
            namespace: "shop".into(),
            service_account: "shop".into(),
            cluster_name: "prod".into(),
            server: "https://tenantry-proxy.tenantry-system.svc:8443".into(),
            ca_pem: Some("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into()),
            seconds: 3600,
            tenant_label: "tenantry.dev/tenant".into(),
        }
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// The Secret as the API server would return it after [`secret_object`].
    fn live(w: &Wanted, token: &str, expires: &str, seconds: u64) -> Value {
        let doc = kubeconfig(w, token, Some(expires));
        let mut body = secret_object(w, Some("u-1"), Some((&doc, expires, seconds))).body;
        body["metadata"]["uid"] = json!("u-1");
        body
    }

    #[test]
    fn the_kubeconfig_points_at_the_proxy_with_its_ca_and_the_token() {
        let w = wanted_shop();
        let text = kubeconfig(&w, "tok-123", Some("2026-12-01T05:00:00Z"));
        assert!(
            text.starts_with("# Kept by the Tenantry operator for Flux"),
            "{text}"
        );
        let doc = Kubeconfig::from_yaml(&text).unwrap();
        let cluster = doc.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some(w.server.as_str()));
        let ca =
            credential::endpoint_for(&w.server, w.ca_pem.as_deref()).certificate_authority_data;
        assert!(ca.is_some());
        assert_eq!(cluster.certificate_authority_data, ca);
        assert_eq!(cluster.insecure_skip_tls_verify, None);
        assert_eq!(credential::token_of(&text).as_deref(), Some("tok-123"));
        let context = &doc.contexts[0];
        assert_eq!(doc.current_context.as_deref(), Some(context.name.as_str()));
        assert_eq!(
            context.context.as_ref().unwrap().namespace.as_deref(),
            Some("shop")
        );
    }

    #[test]
    fn the_secret_holds_the_kubeconfig_under_the_key_the_kustomization_names() {
        let w = wanted_shop();
        let secret = live(&w, "tok", "2026-12-01T05:00:00Z", 3600);
        let text = credential::secret_text(&secret, KEY).unwrap();
        assert_eq!(credential::token_of(&text).as_deref(), Some("tok"));
        assert_eq!(secret["metadata"]["name"], FLUX_PROXY_KUBECONFIG_SECRET);
        assert_eq!(secret["metadata"]["labels"]["tenantry.dev/tenant"], "shop");
        // Never `managed-by`: pruning deletes only objects with both labels.
        assert!(
            secret["metadata"]["labels"]
                .get("app.kubernetes.io/managed-by")
                .is_none()
        );
        // The first apply, before the token: no data, no uid precondition.
        let first = secret_object(&w, None, None).body;
        assert!(first.get("data").is_none());
        assert!(first["metadata"].get("uid").is_none());
    }

    #[test]
    fn a_token_is_renewed_at_two_thirds_of_its_life() {
        let expires = ts("2026-12-01T04:00:00Z");
        assert_eq!(
            refresh_at(expires, Duration::from_secs(3600)),
            ts("2026-12-01T03:40:00Z")
        );
        assert_eq!(
            refresh_at(expires, Duration::from_secs(600)),
            ts("2026-12-01T03:56:40Z")
        );
        let w = wanted_shop();
        let secret = live(&w, "tok", "2026-12-01T04:00:00Z", 3600);
        assert_eq!(
            due(&w, Some(&secret), ts("2026-12-01T03:10:00Z")),
            Due::At(ts("2026-12-01T03:40:00Z"))
        );
        assert_eq!(
            due(&w, Some(&secret), ts("2026-12-01T03:40:00Z")),
            Due::Now("token due for renewal")
        );
    }

    #[test]
    fn the_requeue_is_the_time_to_renewal_within_bounds() {
        let now = ts("2026-12-01T03:00:00Z");
        let max = Duration::from_secs(600);
        assert_eq!(
            requeue_after(ts("2026-12-01T03:04:00Z"), now, max),
            Duration::from_secs(240)
        );
        assert_eq!(requeue_after(ts("2026-12-01T05:00:00Z"), now, max), max);
        assert_eq!(
            requeue_after(ts("2026-12-01T02:00:00Z"), now, max),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn a_missing_unreadable_or_outdated_secret_gets_a_new_token() {
        let w = wanted_shop();
        let now = ts("2026-12-01T03:00:00Z");
        assert_eq!(due(&w, None, now), Due::Now("missing"));
        let bare = secret_object(&w, None, None).body;
        assert_eq!(due(&w, Some(&bare), now), Due::Now("no token recorded"));
        let mut garbled = live(&w, "tok", "2026-12-01T04:00:00Z", 3600);
        garbled["data"][KEY] = json!("not base64!");
        assert_eq!(
            due(&w, Some(&garbled), now),
            Due::Now("no readable kubeconfig")
        );
        let secret = live(&w, "tok", "2026-12-01T04:00:00Z", 3600);
        let moved = Wanted {
            server: "https://proxy.elsewhere:8443".into(),
            ..w.clone()
        };
        assert_eq!(
            due(&moved, Some(&secret), now),
            Due::Now("proxy URL or CA changed")
        );
        let new_ca = Wanted {
            ca_pem: None,
            ..w.clone()
        };
        assert_eq!(
            due(&new_ca, Some(&secret), now),
            Due::Now("proxy URL or CA changed")
        );
        let shorter = Wanted {
            seconds: 600,
            ..w.clone()
        };
        assert_eq!(
            due(&shorter, Some(&secret), now),
            Due::Now("token lifetime shortened")
        );
        // A longer lifetime waits for the renewal of the current token.
        let longer = Wanted { seconds: 7200, ..w };
        assert!(matches!(due(&longer, Some(&secret), now), Due::At(_)));
    }
}
