//! A tenant's OpenBao access as `tenantry-core` rendered it, and the names that find it.
//!
//! Nothing here decides what the policy or the role says: `core::render` does, into the same
//! `openbao-policy.hcl` and `openbao-role.json` the GitOps files hold, so what is provisioned
//! is byte for byte what the repository shows. This module only picks those artifacts up.

use serde_json::Value;
use tenantry_api::platform::OpenBaoConfig;
use tenantry_core::{
    object::Rendered,
    render::{OPENBAO_POLICY_FILE, OPENBAO_ROLE_FILE},
};

use crate::error::SecretsError;

/// Where the platform keeps tenant secrets and logins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The KV v2 mount (`secret`).
    pub kv_mount: String,
    /// The Kubernetes auth mount (`kubernetes`).
    pub auth_mount: String,
    /// Whether missing mounts may be enabled.
    pub manage_mounts: bool,
}

impl From<&OpenBaoConfig> for Layout {
    fn from(c: &OpenBaoConfig) -> Self {
        Self {
            kv_mount: c.kv_mount.clone(),
            auth_mount: c.auth_mount.clone(),
            manage_mounts: c.manage_mounts,
        }
    }
}

/// The OpenBao names of one tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantNames {
    /// The tenant.
    pub tenant: String,
    /// Its ACL policy.
    pub policy: String,
    /// Its Kubernetes-auth role.
    pub role: String,
    /// Its secrets folder under the KV mount (`apps/<tenant>`).
    pub path: String,
}

impl TenantNames {
    /// The names `config` gives `tenant`.
    pub fn new(config: &OpenBaoConfig, tenant: &str) -> Self {
        Self {
            tenant: tenant.to_owned(),
            policy: config.policy_name(tenant),
            role: config.role_name(tenant),
            path: config.tenant_path(tenant),
        }
    }
}

/// A tenant's desired OpenBao state: its names, policy text and role body.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredAccess {
    /// Its names.
    pub names: TenantNames,
    /// The ACL policy, HCL.
    pub policy: String,
    /// The role body, as `bao write auth/<mount>/role/<role>` takes it.
    pub role: Value,
}

impl DesiredAccess {
    /// The desired state in a rendered tenant; `None` when it has no `secrets.openbao`.
    pub fn from_rendered(
        config: &OpenBaoConfig,
        rendered: &Rendered,
    ) -> Result<Option<Self>, SecretsError> {
        let artifact = |name: &str| {
            rendered
                .artifacts
                .iter()
                .find(|a| a.file_name == name)
                .map(|a| a.content.as_str())
        };
        let (Some(policy), Some(role)) =
            (artifact(OPENBAO_POLICY_FILE), artifact(OPENBAO_ROLE_FILE))
        else {
            return Ok(None);
        };
        let role: Value = serde_json::from_str(role).map_err(|e| SecretsError::Render {
            tenant: rendered.tenant.clone(),
            reason: format!("{OPENBAO_ROLE_FILE} is not JSON: {e}"),
        })?;
        if !role.is_object() {
            return Err(SecretsError::Render {
                tenant: rendered.tenant.clone(),
                reason: format!("{OPENBAO_ROLE_FILE} is not a JSON object"),
            });
        }
        Ok(Some(Self {
            names: TenantNames::new(config, &rendered.tenant),
            policy: policy.to_owned(),
            role,
        }))
    }
}
