//! `restrict-secret-stores`: a tenant reads secrets only through its own namespaced
//! SecretStore.
//!
//! A ClusterSecretStore is the platform's: it can read paths no tenant owns (the shared
//! registry credential, infrastructure secrets). An ExternalSecret or PushSecret in a tenant
//! namespace that names one would let the tenant read or overwrite them, so only the
//! platform's own reconcilers, which apply the platform's pull-secret ExternalSecrets into
//! tenant namespaces, may do it. A ClusterGenerator is the platform's for the same reason (it
//! can mint registry or cloud credentials with the platform's identity).
//!
//! A namespaced SecretStore is the tenant's, but RBAC cannot see where it points. One that
//! reaches the platform's OpenBao must log in with the tenant's own Kubernetes-auth role on
//! the platform's auth mount and read the platform's KV mount: any other role, mount or auth
//! method is an attempt to act as someone else there. Keys read or pushed through the
//! tenant's store must lie under `<pathPrefix>/<tenant>/`. OpenBao's role bindings and ACL
//! policy are the boundary (a store naming another tenant's role fails to log in, a key
//! outside the tenant's path gets 403); this refuses the attempt at admission, where the
//! tenant sees why, instead of as a sync error in the tenant's ExternalSecret status.
//!
//! The platform's OpenBao is recognised by its address's host, with the cluster-DNS forms of
//! a Service name (`svc`, `svc.cluster.local`) folded together. A store reaching it by IP
//! address is not recognised; the role binding still holds there.

use serde_json::{Map, Value};

use super::{objects_in, str_of};
use crate::engine::{Eval, Mode, Sink};

const GROUP: &str = "external-secrets.io";
const CLUSTER_STORE: &str = "ClusterSecretStore";
const CLUSTER_GENERATOR: &str = "ClusterGenerator";

pub(crate) fn evaluate(eval: &Eval<'_>, sink: &mut Sink) {
    let view = eval.view;
    if view.group != GROUP {
        return;
    }
    if eval
        .ctx
        .user
        .is_some_and(|user| eval.engine.is_secret_store_reconciler(user))
    {
        return;
    }
    let spec = view.object.get("spec").and_then(Value::as_object);
    match view.kind {
        "ExternalSecret" => {
            let Some(spec) = spec else { return };
            let default_store = spec.get("secretStoreRef").and_then(Value::as_object);
            if let Some(store) = default_store {
                refuse_cluster_store(store, "spec.secretStoreRef".to_owned(), sink);
            }
            let scope = TenantScope::new(eval);
            for list in ["data", "dataFrom"] {
                for (i, entry) in objects_in(spec, list) {
                    let at = format!("spec.{list}[{i}]");
                    let source = entry.get("sourceRef").and_then(Value::as_object);
                    let store = source
                        .and_then(|s| s.get("storeRef"))
                        .and_then(Value::as_object);
                    if let Some(store) = store {
                        refuse_cluster_store(store, format!("{at}.sourceRef.storeRef"), sink);
                    }
                    if let Some(generator) = source
                        .and_then(|s| s.get("generatorRef"))
                        .and_then(Value::as_object)
                    {
                        refuse_cluster_generator(
                            generator,
                            format!("{at}.sourceRef.generatorRef"),
                            sink,
                        );
                        continue;
                    }
                    let Some(scope) = &scope else { continue };
                    if !scope.is_tenant_store(store.or(default_store)) {
                        continue;
                    }
                    for (field, key) in [
                        (
                            "remoteRef.key",
                            entry.get("remoteRef").and_then(|r| r.get("key")),
                        ),
                        (
                            "extract.key",
                            entry.get("extract").and_then(|r| r.get("key")),
                        ),
                        ("find.path", entry.get("find").and_then(|r| r.get("path"))),
                    ] {
                        if let Some(key) = key.and_then(Value::as_str) {
                            scope.key(key, format!("{at}.{field}"), sink);
                        }
                    }
                }
            }
        }
        "PushSecret" => {
            let Some(spec) = spec else { return };
            let mut to_tenant_store = false;
            let scope = TenantScope::new(eval);
            for (i, store) in objects_in(spec, "secretStoreRefs") {
                refuse_cluster_store(store, format!("spec.secretStoreRefs[{i}]"), sink);
                to_tenant_store |= scope
                    .as_ref()
                    .is_some_and(|s| s.is_tenant_store(Some(store)));
            }
            if let Some(generator) = spec
                .get("selector")
                .and_then(|s| s.get("generatorRef"))
                .and_then(Value::as_object)
            {
                refuse_cluster_generator(generator, "spec.selector.generatorRef".to_owned(), sink);
            }
            if let (Some(scope), true) = (&scope, to_tenant_store) {
                for (i, entry) in objects_in(spec, "data") {
                    let key = entry
                        .get("match")
                        .and_then(|m| m.get("remoteRef"))
                        .and_then(|r| r.get("remoteKey"))
                        .and_then(Value::as_str);
                    if let Some(key) = key {
                        scope.key(
                            key,
                            format!("spec.data[{i}].match.remoteRef.remoteKey"),
                            sink,
                        );
                    }
                }
            }
        }
        "SecretStore" => {
            let vault = spec
                .and_then(|s| s.get("provider"))
                .and_then(|p| p.get("vault"))
                .and_then(Value::as_object);
            if let Some(vault) = vault {
                judge_vault_store(eval, vault, sink);
            }
        }
        // Cluster-scoped: only reachable in `check`, where a tenant repository must not
        // contain them (admission never sees a tenant create one: RBAC forbids it).
        "ClusterSecretStore" | "ClusterExternalSecret" | "ClusterPushSecret"
            if eval.ctx.mode == Mode::Check =>
        {
            sink.deny(
                "cluster-scoped-secret-object",
                "kind".to_owned(),
                format!(
                    "{} is cluster-scoped and belongs to the platform, not a tenant repository",
                    view.kind
                ),
                "Use a namespaced SecretStore and ExternalSecret in the tenant's namespace."
                    .to_owned(),
            );
        }
        _ => {}
    }
}

fn refuse_cluster_store(store: &Map<String, Value>, at: String, sink: &mut Sink) {
    if str_of(store, "kind") != Some(CLUSTER_STORE) {
        return;
    }
    let name = str_of(store, "name").unwrap_or("");
    sink.deny(
        "cluster-secret-store",
        format!("{at}.kind"),
        format!(
            "references ClusterSecretStore {name:?}, which can read secrets beyond this tenant"
        ),
        "Reference the tenant's namespaced store: kind: SecretStore (the platform provides one \
         per tenant namespace)."
            .to_owned(),
    );
}

fn refuse_cluster_generator(generator: &Map<String, Value>, at: String, sink: &mut Sink) {
    if str_of(generator, "kind") != Some(CLUSTER_GENERATOR) {
        return;
    }
    let name = str_of(generator, "name").unwrap_or("");
    sink.deny(
        "cluster-generator",
        format!("{at}.kind"),
        format!(
            "references ClusterGenerator {name:?}, which generates with the platform's \
             credentials, not the tenant's"
        ),
        "Use a namespaced generator (e.g. kind: Password in the tenant's namespace).".to_owned(),
    );
}

/// What the tenant may reach in the platform's OpenBao, when the tenant is known.
struct TenantScope<'a> {
    store_name: &'a str,
    /// `<pathPrefix>/<tenant>/`.
    prefix: String,
}

impl<'a> TenantScope<'a> {
    fn new(eval: &Eval<'a>) -> Option<Self> {
        let tenant = eval.ctx.tenant?;
        let openbao = &eval.engine.openbao;
        Some(Self {
            store_name: &openbao.store_name,
            prefix: format!("{}/", openbao.tenant_path(&tenant.name)),
        })
    }

    /// Whether `store` (a `secretStoreRef`; `None`: none given) is the tenant's store in the
    /// platform's OpenBao: a namespaced SecretStore named as the platform names it.
    fn is_tenant_store(&self, store: Option<&Map<String, Value>>) -> bool {
        store.is_some_and(|s| {
            str_of(s, "kind").unwrap_or("SecretStore") == "SecretStore"
                && str_of(s, "name") == Some(self.store_name)
        })
    }

    /// A key read or written through the tenant's store.
    fn key(&self, key: &str, at: String, sink: &mut Sink) {
        let inside = key.starts_with(&self.prefix)
            && key.len() > self.prefix.len()
            && !key
                .split('/')
                .any(|segment| segment == ".." || segment == ".");
        if inside {
            return;
        }
        sink.deny(
            "secret-path-scope",
            at,
            format!(
                "key {key:?} is outside the tenant's OpenBao path {}*",
                self.prefix
            ),
            format!(
                "Keep the tenant's secrets under {}<name>; the tenant's OpenBao policy allows \
                 nothing else.",
                self.prefix
            ),
        );
    }
}

/// A namespaced SecretStore with a Vault provider: when it reaches the platform's OpenBao it
/// must be the tenant's own way in.
fn judge_vault_store(eval: &Eval<'_>, vault: &Map<String, Value>, sink: &mut Sink) {
    let openbao = &eval.engine.openbao;
    let server = str_of(vault, "server").unwrap_or("");
    if service_host(server) != service_host(&openbao.address) {
        return;
    }
    let at = "spec.provider.vault";
    let remedy = |what: &str| {
        format!(
            "Point the store at the tenant's own access: {what} (the platform renders this \
             store as {:?} in every tenant namespace; use that one).",
            openbao.store_name
        )
    };
    let mount = str_of(vault, "path").unwrap_or("");
    if mount.trim_matches('/') != openbao.kv_mount {
        sink.deny(
            "secret-store-scope",
            format!("{at}.path"),
            format!(
                "reads mount {mount:?} of the platform's OpenBao; tenants' secrets live in {:?}",
                openbao.kv_mount
            ),
            remedy(&format!("path: {}", openbao.kv_mount)),
        );
    }
    if str_of(vault, "version").is_some_and(|v| v != "v2") {
        sink.deny(
            "secret-store-scope",
            format!("{at}.version"),
            "the platform's tenant mount is KV version 2".to_owned(),
            remedy("version: v2"),
        );
    }
    let auth = vault.get("auth").and_then(Value::as_object);
    let methods: Vec<&str> = auth
        .map(|a| {
            a.keys()
                .map(String::as_str)
                .filter(|k| *k != "kubernetes")
                .collect()
        })
        .unwrap_or_default();
    for method in methods {
        sink.deny(
            "secret-store-scope",
            format!("{at}.auth.{method}"),
            format!(
                "logs in to the platform's OpenBao with {method}; a tenant's only identity there \
                 is its ServiceAccount's Kubernetes-auth role"
            ),
            remedy("auth.kubernetes with the tenant's role"),
        );
    }
    let Some(kubernetes) = auth
        .and_then(|a| a.get("kubernetes"))
        .and_then(Value::as_object)
    else {
        return;
    };
    // External Secrets' default auth mount is `kubernetes`.
    let auth_mount = str_of(kubernetes, "mountPath").unwrap_or("kubernetes");
    if auth_mount.trim_matches('/') != openbao.auth_mount {
        sink.deny(
            "secret-store-scope",
            format!("{at}.auth.kubernetes.mountPath"),
            format!(
                "logs in through auth mount {auth_mount:?}; the platform's tenant roles are on \
                 {:?}",
                openbao.auth_mount
            ),
            remedy(&format!("mountPath: {}", openbao.auth_mount)),
        );
    }
    if let Some(tenant) = eval.ctx.tenant {
        let role = str_of(kubernetes, "role").unwrap_or("");
        let own = openbao.role_name(&tenant.name);
        if role != own {
            sink.deny(
                "secret-store-scope",
                format!("{at}.auth.kubernetes.role"),
                format!(
                    "logs in as OpenBao role {role:?}; tenant {} has role {own:?}",
                    tenant.name
                ),
                remedy(&format!("role: {own}")),
            );
        }
    }
}

/// The host of an OpenBao address, with the cluster-DNS spellings of one Service folded
/// together: `http://openbao.openbao.svc.cluster.local:8200/` and `https://openbao.openbao`
/// are the same server.
pub(crate) fn service_host(address: &str) -> String {
    let rest = address.split_once("://").map_or(address, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let host = host.strip_suffix(".cluster.local").unwrap_or(&host);
    host.strip_suffix(".svc").unwrap_or(host).to_owned()
}
