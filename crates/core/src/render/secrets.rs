//! Secrets: the platform's pull credential, and a tenant's own OpenBao path.
//!
//! The two are deliberately separate. The registry pull secret is platform-owned: it is
//! read through the platform's ClusterSecretStore by the platform's reconciler, and tenants
//! never see its source. It reaches a tenant's namespaces either as one ExternalSecret per
//! namespace, or, with `pullSecret.fanOut`, through the platform's single
//! ClusterExternalSecret selecting the opt-in label (rendered in [`super::platform`] from the
//! same spec); either way each tenant namespace carries the label and each tenant
//! ServiceAccount lists the secret in `imagePullSecrets`. A tenant with `secrets.openbao` gets a namespaced SecretStore that
//! authenticates as the tenant's ServiceAccount to an OpenBao role whose policy reaches only
//! `<pathPrefix>/<tenant>/*`, so a tenant can read and seed its own secrets and nothing else.
//! The OpenBao policy and role are rendered as files for the provisioning step, because
//! OpenBao is configured through its own API, not through Kubernetes objects.

use serde_json::{Value, json};
use tenantry_api::platform::PullSecretConfig;

use super::Renderer;
use crate::{
    object::{Artifact, Layer},
    resolve::{PlatformContext, ResolvedTenant},
};

const EXTERNAL_SECRET: (&str, &str) = ("external-secrets.io/v1", "ExternalSecret");
const SECRET_STORE: (&str, &str) = ("external-secrets.io/v1", "SecretStore");

/// File name of the rendered OpenBao policy.
pub const OPENBAO_POLICY_FILE: &str = "openbao-policy.hcl";
/// File name of the rendered OpenBao Kubernetes-auth role.
pub const OPENBAO_ROLE_FILE: &str = "openbao-role.json";

pub(super) fn render(r: &mut Renderer<'_>) {
    let platform = &r.ctx.platform;
    if r.t.pull_secret && !platform.pull_secret.fan_out {
        let ps = &platform.pull_secret;
        let body = json!({ "spec": pull_secret_spec(ps) });
        for ns in r.t.namespaces.clone() {
            r.push_custom(
                Layer::Secrets,
                EXTERNAL_SECRET,
                Some(&ns),
                &ps.name,
                body.clone(),
            );
        }
    }
    if r.t.openbao {
        let ob = &platform.openbao;
        // The token External Secrets requests for the ServiceAccount must carry the audience
        // the role checks, or every login fails.
        let mut service_account_ref = json!({ "name": r.t.name });
        if let Some(audience) = &ob.audience {
            service_account_ref["audiences"] = json!([audience]);
        }
        let body = json!({
            "spec": {
                "provider": {
                    "vault": {
                        "server": ob.address,
                        "path": ob.kv_mount,
                        "version": "v2",
                        "auth": {
                            "kubernetes": {
                                "mountPath": ob.auth_mount,
                                "role": role_name(r.ctx, r.t),
                                "serviceAccountRef": service_account_ref,
                            }
                        },
                    }
                }
            }
        });
        for ns in r.t.namespaces.clone() {
            r.push_custom(
                Layer::Secrets,
                SECRET_STORE,
                Some(&ns),
                &ob.store_name,
                body.clone(),
            );
        }
    }
}

/// The spec of the ExternalSecret that materialises the platform's registry pull secret: read
/// through the platform's ClusterSecretStore, templated into the `.dockerconfigjson` key
/// Kubernetes expects. One definition for both deliveries: an ExternalSecret per tenant
/// namespace, or the `externalSecretSpec` of the platform's one ClusterExternalSecret
/// (`pullSecret.fanOut`, see [`super::platform`]), so the two can never disagree.
pub(crate) fn pull_secret_spec(ps: &PullSecretConfig) -> Value {
    json!({
        "refreshInterval": ps.refresh_interval,
        "secretStoreRef": { "kind": "ClusterSecretStore", "name": ps.cluster_secret_store },
        "target": {
            "name": ps.name,
            "creationPolicy": "Owner",
            "template": {
                "type": "kubernetes.io/dockerconfigjson",
                "data": { ".dockerconfigjson": "{{ .dockerconfigjson }}" },
            },
        },
        "data": [{
            "secretKey": "dockerconfigjson",
            "remoteRef": { "key": ps.key, "property": ps.property },
        }],
    })
}

/// The OpenBao Kubernetes-auth role name for a tenant.
pub fn role_name(ctx: &PlatformContext, t: &ResolvedTenant) -> String {
    ctx.platform.openbao.role_name(&t.name)
}

/// The OpenBao policy name for a tenant.
pub fn policy_name(ctx: &PlatformContext, t: &ResolvedTenant) -> String {
    ctx.platform.openbao.policy_name(&t.name)
}

/// The OpenBao policy (HCL) and Kubernetes-auth role (JSON, as `bao write
/// auth/<mount>/role/<role> @file` takes it) for a tenant with `secrets.openbao`.
pub(super) fn openbao_artifacts(ctx: &PlatformContext, t: &ResolvedTenant) -> Vec<Artifact> {
    if !t.openbao {
        return Vec::new();
    }
    let ob = &ctx.platform.openbao;
    let scope = ob.tenant_path(&t.name);
    let policy = format!(
        "# OpenBao policy {policy} for tenant {tenant}, rendered by Tenantry.\n\
         # The tenant may read and write its own secrets under {mount}/{scope}/ and nothing else.\n\
         path \"{mount}/data/{scope}/*\" {{\n  capabilities = [\"create\", \"read\", \"update\", \"patch\", \"delete\", \"list\"]\n}}\n\
         path \"{mount}/metadata/{scope}/*\" {{\n  capabilities = [\"read\", \"list\", \"delete\"]\n}}\n",
        policy = policy_name(ctx, t),
        tenant = t.name,
        mount = ob.kv_mount,
    );
    let mut role = json!({
        "bound_service_account_names": [t.name],
        "bound_service_account_namespaces": t.namespaces,
        "token_policies": [policy_name(ctx, t)],
        "token_ttl": ob.token_ttl,
        "token_max_ttl": ob.token_ttl,
    });
    if let Some(audience) = &ob.audience {
        role["audience"] = json!(audience);
    }
    let role = serde_json::to_string_pretty(&role).unwrap_or_default() + "\n";
    vec![
        Artifact {
            file_name: OPENBAO_POLICY_FILE.to_owned(),
            content: policy,
        },
        Artifact {
            file_name: OPENBAO_ROLE_FILE.to_owned(),
            content: role,
        },
    ]
}
