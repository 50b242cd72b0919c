//! Revocation: take a tenant's OpenBao access away and leave no live token behind.
//!
//! The role goes first, so no new login can happen while the rest is cleaned up; then every
//! token issued through the role or carrying the tenant's policy is revoked by accessor
//! (deleting a policy alone leaves the tokens alive, merely powerless until a policy of that
//! name is written again); then the policy. The tenant's secrets are data, not access: they
//! are kept, and counted in the report, unless purging was asked for, which deletes each one
//! with its metadata and every version.

use serde::Serialize;

use crate::{
    access::{Layout, TenantNames},
    api::SecretsApi,
    error::SecretsError,
    provision::ensure_unsealed,
};

/// What happened to a policy or role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Removal {
    /// It was deleted.
    Deleted,
    /// It was not there.
    Absent,
    /// It is not Tenantry's and was kept (`--force` deletes it).
    KeptForeign,
}

/// Options of a revocation.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Delete the tenant's secrets too.
    pub purge_secrets: bool,
    /// Delete a policy or role Tenantry did not write.
    pub force: bool,
}

/// What a revocation did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Revocation {
    /// The tenant.
    pub tenant: String,
    /// The role's name.
    pub role_name: String,
    /// What happened to the role.
    pub role: Removal,
    /// The policy's name.
    pub policy_name: String,
    /// What happened to the policy.
    pub policy: Removal,
    /// Tokens revoked (by accessor; never the tokens themselves).
    pub tokens_revoked: usize,
    /// `<kvMount>/<pathPrefix>/<tenant>/`.
    pub secrets_path: String,
    /// Secrets found there.
    pub secrets: usize,
    /// Whether they were deleted (else kept).
    pub secrets_purged: bool,
}

/// Revoke `names`' access on `api`.
pub async fn revoke(
    api: &impl SecretsApi,
    layout: &Layout,
    names: &TenantNames,
    options: Options,
) -> Result<Revocation, SecretsError> {
    ensure_unsealed(api).await?;
    let mut out = Revocation {
        tenant: names.tenant.clone(),
        role_name: names.role.clone(),
        role: Removal::Absent,
        policy_name: names.policy.clone(),
        policy: Removal::Absent,
        tokens_revoked: 0,
        secrets_path: format!("{}/{}/", layout.kv_mount, names.path),
        secrets: 0,
        secrets_purged: false,
    };
    let auth_enabled = api
        .auth_methods()
        .await?
        .contains_key(&format!("{}/", layout.auth_mount));
    if auth_enabled && let Some(role) = api.read_role(&layout.auth_mount, &names.role).await? {
        let policies: Vec<&str> = role
            .get("token_policies")
            .and_then(|p| p.as_array())
            .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        if policies == [names.policy.as_str()] || options.force {
            api.delete_role(&layout.auth_mount, &names.role).await?;
            out.role = Removal::Deleted;
        } else {
            out.role = Removal::KeptForeign;
        }
    }
    let login_path = format!("auth/{}/login", layout.auth_mount);
    for accessor in api.token_accessors().await? {
        let Some(token) = api.lookup_accessor(&accessor).await? else {
            continue;
        };
        let through_role =
            token.path == login_path && token.role.as_deref() == Some(names.role.as_str());
        if through_role || token.policies.contains(&names.policy) {
            api.revoke_accessor(&accessor).await?;
            out.tokens_revoked += 1;
        }
    }
    if let Some(text) = api.read_policy(&names.policy).await? {
        let ours = text.lines().next().is_some_and(|l| {
            l.contains(&format!(
                "policy {} for tenant {}",
                names.policy, names.tenant
            )) && l.contains("rendered by Tenantry")
        });
        if ours || options.force {
            api.delete_policy(&names.policy).await?;
            out.policy = Removal::Deleted;
        } else {
            out.policy = Removal::KeptForeign;
        }
    }
    let secrets = list_secrets(api, &layout.kv_mount, &names.path).await?;
    out.secrets = secrets.len();
    if options.purge_secrets {
        for path in &secrets {
            api.kv_destroy(&layout.kv_mount, path).await?;
        }
        out.secrets_purged = true;
    }
    Ok(out)
}

/// Every secret under `folder`, recursively, as paths under the mount.
async fn list_secrets(
    api: &impl SecretsApi,
    mount: &str,
    folder: &str,
) -> Result<Vec<String>, SecretsError> {
    let mut found = Vec::new();
    let mut folders = vec![format!("{folder}/")];
    while let Some(dir) = folders.pop() {
        for key in api.kv_list(mount, &dir).await? {
            let path = format!("{dir}{key}");
            if key.ends_with('/') {
                folders.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}
