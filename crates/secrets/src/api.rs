//! The OpenBao operations provisioning and revocation need, as a trait.
//!
//! The trait is the seam between the decisions (`provision`, `revoke`) and the transport:
//! today [`BaoClient`] over HTTP with a token; Kubernetes-auth login for an in-cluster
//! operator can implement it later without touching the decisions. It is tested against the
//! real `bao` server, never a mock.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::{
    client::{BaoClient, Verb},
    error::SecretsError,
};

/// A secrets engine or auth method as `sys/mounts` and `sys/auth` list it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountInfo {
    /// `kv`, `kubernetes`, …
    pub kind: String,
    /// `options.version` (`"2"` for KV v2), when set.
    pub version: Option<String>,
}

/// What a token accessor's lookup says about its token.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenInfo {
    /// Policies the token carries (token and identity policies).
    pub policies: Vec<String>,
    /// The login path that issued it, e.g. `auth/kubernetes/login`.
    pub path: String,
    /// `meta.role`: the auth role it logged in with, if any.
    pub role: Option<String>,
}

/// What Tenantry asks of OpenBao. Every method is one request.
#[allow(async_fn_in_trait)]
pub trait SecretsApi {
    /// The server's address, for reports and errors.
    fn address(&self) -> &str;
    /// Whether the server is sealed (`sys/seal-status`, unauthenticated).
    async fn sealed(&self) -> Result<bool, SecretsError>;
    /// An ACL policy's text, if the policy exists.
    async fn read_policy(&self, name: &str) -> Result<Option<String>, SecretsError>;
    /// Create or replace an ACL policy.
    async fn write_policy(&self, name: &str, text: &str) -> Result<(), SecretsError>;
    /// Delete an ACL policy (absent is fine).
    async fn delete_policy(&self, name: &str) -> Result<(), SecretsError>;
    /// A Kubernetes-auth role as the server returns it, if it exists.
    async fn read_role(
        &self,
        auth_mount: &str,
        name: &str,
    ) -> Result<Option<Map<String, Value>>, SecretsError>;
    /// Create or update a Kubernetes-auth role.
    async fn write_role(
        &self,
        auth_mount: &str,
        name: &str,
        body: &Value,
    ) -> Result<(), SecretsError>;
    /// Delete a Kubernetes-auth role (absent is fine).
    async fn delete_role(&self, auth_mount: &str, name: &str) -> Result<(), SecretsError>;
    /// Secrets engines by path (`secret/`).
    async fn mounts(&self) -> Result<BTreeMap<String, MountInfo>, SecretsError>;
    /// Enable a KV version 2 engine at `path`.
    async fn enable_kv2(&self, path: &str) -> Result<(), SecretsError>;
    /// Auth methods by path (`kubernetes/`).
    async fn auth_methods(&self) -> Result<BTreeMap<String, MountInfo>, SecretsError>;
    /// Enable an auth method of `kind` at `path`.
    async fn enable_auth(&self, path: &str, kind: &str) -> Result<(), SecretsError>;
    /// Every live token's accessor (`auth/token/accessors`, needs `sudo`).
    async fn token_accessors(&self) -> Result<Vec<String>, SecretsError>;
    /// What a token is, by accessor; `None` when it is gone.
    async fn lookup_accessor(&self, accessor: &str) -> Result<Option<TokenInfo>, SecretsError>;
    /// Revoke a token (and its children) by accessor.
    async fn revoke_accessor(&self, accessor: &str) -> Result<(), SecretsError>;
    /// The keys directly under a KV v2 folder (folders end in `/`).
    async fn kv_list(&self, mount: &str, path: &str) -> Result<Vec<String>, SecretsError>;
    /// A KV v2 secret's metadata as the server answers it (the `data` of
    /// `<mount>/metadata/<path>`: `current_version` and every kept version's `deletion_time`
    /// and `destroyed`; needs `read` there, and never carries a value); `None` when nothing
    /// is stored at `path`. Judging it is the reader's (`tenantry_doctor::KvMetadata`).
    async fn kv_metadata(&self, mount: &str, path: &str) -> Result<Option<Value>, SecretsError>;
    /// Delete a KV v2 secret with its metadata and every version.
    async fn kv_destroy(&self, mount: &str, path: &str) -> Result<(), SecretsError>;
}

fn data(v: Option<Value>) -> Option<Map<String, Value>> {
    match v? {
        Value::Object(mut o) => match o.remove("data") {
            Some(Value::Object(d)) => Some(d),
            _ => Some(o),
        },
        _ => None,
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn mount_table(v: Option<Value>) -> BTreeMap<String, MountInfo> {
    data(v)
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, v)| k.ends_with('/') && v.is_object())
        .map(|(k, v)| {
            let info = MountInfo {
                kind: v["type"].as_str().unwrap_or_default().to_owned(),
                version: v["options"]["version"].as_str().map(str::to_owned),
            };
            (k, info)
        })
        .collect()
}

impl SecretsApi for BaoClient {
    fn address(&self) -> &str {
        BaoClient::address(self)
    }

    async fn sealed(&self) -> Result<bool, SecretsError> {
        let status = self.request(Verb::Read, "sys/seal-status", None).await?;
        Ok(status
            .as_ref()
            .and_then(|s| s["sealed"].as_bool())
            .unwrap_or(false))
    }

    async fn read_policy(&self, name: &str) -> Result<Option<String>, SecretsError> {
        let v = self
            .request(Verb::Read, &format!("sys/policies/acl/{name}"), None)
            .await?;
        Ok(data(v).and_then(|d| d.get("policy").and_then(Value::as_str).map(str::to_owned)))
    }

    async fn write_policy(&self, name: &str, text: &str) -> Result<(), SecretsError> {
        let body = json!({ "policy": text });
        self.request(
            Verb::Write,
            &format!("sys/policies/acl/{name}"),
            Some(&body),
        )
        .await?;
        Ok(())
    }

    async fn delete_policy(&self, name: &str) -> Result<(), SecretsError> {
        self.request(Verb::Delete, &format!("sys/policies/acl/{name}"), None)
            .await?;
        Ok(())
    }

    async fn read_role(
        &self,
        auth_mount: &str,
        name: &str,
    ) -> Result<Option<Map<String, Value>>, SecretsError> {
        let v = self
            .request(Verb::Read, &format!("auth/{auth_mount}/role/{name}"), None)
            .await?;
        Ok(data(v))
    }

    async fn write_role(
        &self,
        auth_mount: &str,
        name: &str,
        body: &Value,
    ) -> Result<(), SecretsError> {
        self.request(
            Verb::Write,
            &format!("auth/{auth_mount}/role/{name}"),
            Some(body),
        )
        .await?;
        Ok(())
    }

    async fn delete_role(&self, auth_mount: &str, name: &str) -> Result<(), SecretsError> {
        self.request(
            Verb::Delete,
            &format!("auth/{auth_mount}/role/{name}"),
            None,
        )
        .await?;
        Ok(())
    }

    async fn mounts(&self) -> Result<BTreeMap<String, MountInfo>, SecretsError> {
        Ok(mount_table(
            self.request(Verb::Read, "sys/mounts", None).await?,
        ))
    }

    async fn enable_kv2(&self, path: &str) -> Result<(), SecretsError> {
        let body = json!({ "type": "kv", "options": { "version": "2" } });
        self.request(Verb::Write, &format!("sys/mounts/{path}"), Some(&body))
            .await?;
        Ok(())
    }

    async fn auth_methods(&self) -> Result<BTreeMap<String, MountInfo>, SecretsError> {
        Ok(mount_table(
            self.request(Verb::Read, "sys/auth", None).await?,
        ))
    }

    async fn enable_auth(&self, path: &str, kind: &str) -> Result<(), SecretsError> {
        let body = json!({ "type": kind });
        self.request(Verb::Write, &format!("sys/auth/{path}"), Some(&body))
            .await?;
        Ok(())
    }

    async fn token_accessors(&self) -> Result<Vec<String>, SecretsError> {
        let v = self
            .request(Verb::List, "auth/token/accessors", None)
            .await?;
        Ok(strings(data(v).as_ref().and_then(|d| d.get("keys"))))
    }

    async fn lookup_accessor(&self, accessor: &str) -> Result<Option<TokenInfo>, SecretsError> {
        let body = json!({ "accessor": accessor });
        let v = match self
            .request(Verb::Write, "auth/token/lookup-accessor", Some(&body))
            .await
        {
            Ok(v) => v,
            // A token that expired between the list and the lookup.
            Err(SecretsError::Api { status: 400, .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(data(v).map(|d| {
            let mut policies = strings(d.get("policies"));
            policies.extend(strings(d.get("identity_policies")));
            TokenInfo {
                policies,
                path: d
                    .get("path")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                role: d
                    .get("meta")
                    .and_then(|m| m.get("role"))
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            }
        }))
    }

    async fn revoke_accessor(&self, accessor: &str) -> Result<(), SecretsError> {
        let body = json!({ "accessor": accessor });
        self.request(Verb::Write, "auth/token/revoke-accessor", Some(&body))
            .await?;
        Ok(())
    }

    async fn kv_list(&self, mount: &str, path: &str) -> Result<Vec<String>, SecretsError> {
        let v = self
            .request(Verb::List, &format!("{mount}/metadata/{path}"), None)
            .await?;
        Ok(strings(data(v).as_ref().and_then(|d| d.get("keys"))))
    }

    async fn kv_metadata(&self, mount: &str, path: &str) -> Result<Option<Value>, SecretsError> {
        let v = self
            .request(Verb::Read, &format!("{mount}/metadata/{path}"), None)
            .await?;
        Ok(data(v).map(Value::Object))
    }

    async fn kv_destroy(&self, mount: &str, path: &str) -> Result<(), SecretsError> {
        self.request(Verb::Delete, &format!("{mount}/metadata/{path}"), None)
            .await?;
        Ok(())
    }
}
