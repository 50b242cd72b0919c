//! Provisioning: read what OpenBao holds, compare with what was rendered, write only the
//! difference.
//!
//! The plan is computed from reads alone and printed before anything is written, so a
//! converged platform costs reads only (a test counts the requests). Per tenant the policy
//! is written before the role: an interrupted run can leave a policy without its role, which
//! grants nothing (no login reaches it) and is completed by the next run, never a role that
//! points at a missing policy. A policy or role Tenantry did not write is someone else's and
//! is left alone unless `force` says otherwise; the tenant is then skipped whole, so nothing
//! half-provisioned is left either way.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::{
    access::{DesiredAccess, Layout},
    api::{MountInfo, SecretsApi},
    error::SecretsError,
};

/// What a step is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// The KV v2 secrets engine.
    KvMount,
    /// The Kubernetes auth method.
    AuthMethod,
    /// A tenant's ACL policy.
    Policy,
    /// A tenant's Kubernetes-auth role.
    Role,
}

/// What a step will do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    /// It is missing and will be created.
    Create,
    /// It differs and will be rewritten.
    Update,
    /// It is as rendered: nothing is sent.
    Unchanged,
    /// It exists but Tenantry did not write it: left alone (`--force` replaces it).
    Foreign,
    /// Another step of the same tenant is refused, so this one is not written either.
    Blocked,
}

impl Change {
    /// Whether applying this step sends a write.
    pub fn writes(self) -> bool {
        matches!(self, Change::Create | Change::Update)
    }
}

/// One line of the plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// The tenant, for policies and roles.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// What it is about.
    pub target: Target,
    /// Its name or path.
    pub name: String,
    /// What will be done.
    pub change: Change,
    /// Why: fields that differ, or why it is refused.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub detail: Vec<String>,
    /// Whether the write was made (after `apply`).
    pub done: bool,
}

/// Every step, mounts first, then each tenant's policy and role.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The steps, in the order they are applied.
    pub steps: Vec<Step>,
}

impl Plan {
    /// How many writes applying it sends.
    pub fn writes(&self) -> usize {
        self.steps.iter().filter(|s| s.change.writes()).count()
    }

    /// Steps refused because their object is not Tenantry's.
    pub fn foreign(&self) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(|s| s.change == Change::Foreign)
    }
}

/// Options of a provisioning run.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Replace policies and roles Tenantry did not write.
    pub force: bool,
}

/// Refuse a sealed server before anything else, naming it.
pub async fn ensure_unsealed(api: &impl SecretsApi) -> Result<(), SecretsError> {
    if api.sealed().await? {
        return Err(SecretsError::Sealed {
            address: api.address().to_owned(),
        });
    }
    Ok(())
}

/// Read OpenBao and compare: the plan. Sends reads only.
pub async fn plan(
    api: &impl SecretsApi,
    layout: &Layout,
    tenants: &[DesiredAccess],
    options: Options,
) -> Result<Plan, SecretsError> {
    ensure_unsealed(api).await?;
    let mut plan = Plan::default();
    let mounts = api.mounts().await?;
    plan.steps.extend(mount_step(
        api.address(),
        layout,
        Target::KvMount,
        &layout.kv_mount,
        mounts.get(&format!("{}/", layout.kv_mount)),
    )?);
    let auths = api.auth_methods().await?;
    let auth_step = mount_step(
        api.address(),
        layout,
        Target::AuthMethod,
        &layout.auth_mount,
        auths.get(&format!("{}/", layout.auth_mount)),
    )?;
    let auth_missing = auth_step.is_some();
    plan.steps.extend(auth_step);
    for t in tenants {
        let n = &t.names;
        let step = |target, name: &str, (change, detail): (Change, Vec<String>)| Step {
            tenant: Some(n.tenant.clone()),
            target,
            name: name.to_owned(),
            change,
            detail,
            done: false,
        };
        let live_policy = api.read_policy(&n.policy).await?;
        let mut policy = step(
            Target::Policy,
            &n.policy,
            policy_change(live_policy.as_deref(), &t.policy),
        );
        // An auth method about to be enabled has no roles yet.
        let live_role = if auth_missing {
            None
        } else {
            api.read_role(&layout.auth_mount, &n.role).await?
        };
        let mut role = step(
            Target::Role,
            &n.role,
            role_change(live_role.as_ref(), &t.role, &n.policy),
        );
        for s in [&mut policy, &mut role] {
            if s.change == Change::Foreign && options.force {
                s.change = Change::Update;
                s.detail.push("replaced because of --force".to_owned());
            }
        }
        if policy.change == Change::Foreign || role.change == Change::Foreign {
            for s in [&mut policy, &mut role] {
                if s.change.writes() {
                    s.change = Change::Blocked;
                }
            }
        }
        plan.steps.push(policy);
        plan.steps.push(role);
    }
    Ok(plan)
}

/// Plan, print-ready, then (unless `dry_run`) apply: the one provisioning path of
/// `secrets provision`, `onboard` and `apply`. `plan` is filled in as the run goes, so a
/// failure part-way still shows what was planned and which writes were made.
pub async fn provision(
    api: &impl SecretsApi,
    layout: &Layout,
    tenants: &[DesiredAccess],
    options: Options,
    dry_run: bool,
    plan: &mut Plan,
) -> Result<(), SecretsError> {
    *plan = self::plan(api, layout, tenants, options).await?;
    if dry_run {
        return Ok(());
    }
    apply(api, layout, tenants, plan).await
}

/// Send the plan's writes, in order; each step records whether it was done. The first
/// failure stops the run (a re-run resumes: planning keeps no state).
pub async fn apply(
    api: &impl SecretsApi,
    layout: &Layout,
    tenants: &[DesiredAccess],
    plan: &mut Plan,
) -> Result<(), SecretsError> {
    for step in &mut plan.steps {
        if !step.change.writes() {
            continue;
        }
        let desired = || {
            tenants
                .iter()
                .find(|t| Some(&t.names.tenant) == step.tenant.as_ref())
        };
        match step.target {
            Target::KvMount => api.enable_kv2(&step.name).await?,
            Target::AuthMethod => api.enable_auth(&step.name, "kubernetes").await?,
            Target::Policy => {
                if let Some(t) = desired() {
                    api.write_policy(&step.name, &t.policy).await?;
                }
            }
            Target::Role => {
                if let Some(t) = desired() {
                    api.write_role(&layout.auth_mount, &step.name, &t.role)
                        .await?;
                }
            }
        }
        step.done = true;
    }
    Ok(())
}

/// A mount's step: `None` when it is there with the right type; an error when it is missing
/// and may not be created, or is the wrong kind.
fn mount_step(
    address: &str,
    layout: &Layout,
    target: Target,
    path: &str,
    live: Option<&MountInfo>,
) -> Result<Option<Step>, SecretsError> {
    let (kind, version, what, enable) = match target {
        Target::KvMount => (
            "kv",
            Some("2"),
            "KV version 2 secrets engine",
            format!("bao secrets enable -path={path} kv-v2"),
        ),
        _ => (
            "kubernetes",
            None,
            "Kubernetes auth method",
            format!("bao auth enable -path={path} kubernetes"),
        ),
    };
    match live {
        Some(m) if m.kind == kind && (version.is_none() || m.version.as_deref() == version) => {
            Ok(None)
        }
        Some(m) => Err(SecretsError::Setup(format!(
            "OpenBao at {address}: {path}/ is a {} engine{}, not a {what} (openbao.{} in tenantry.yaml)",
            m.kind,
            m.version
                .as_deref()
                .map(|v| format!(" version {v}"))
                .unwrap_or_default(),
            if target == Target::KvMount {
                "kvMount"
            } else {
                "authMount"
            },
        ))),
        None if layout.manage_mounts => Ok(Some(Step {
            tenant: None,
            target,
            name: path.to_owned(),
            change: Change::Create,
            detail: vec![format!("enable the {what}")],
            done: false,
        })),
        None => Err(SecretsError::Setup(format!(
            "OpenBao at {address} has no {what} at {path}/: enable it (`{enable}`) or set openbao.manageMounts: true in tenantry.yaml; nothing was written"
        ))),
    }
}

/// A policy is Tenantry's when its first line is the header Tenantry renders, which names the
/// policy and the tenant.
fn policy_change(live: Option<&str>, desired: &str) -> (Change, Vec<String>) {
    let Some(live) = live else {
        return (Change::Create, Vec::new());
    };
    if live == desired {
        return (Change::Unchanged, Vec::new());
    }
    if live.lines().next() != desired.lines().next() {
        return (
            Change::Foreign,
            vec!["the policy exists and was not written by Tenantry".to_owned()],
        );
    }
    (Change::Update, vec!["policy text".to_owned()])
}

/// A role is Tenantry's when the only policy it grants is the tenant's own: any other role
/// under that name was written by someone else, and rewriting it could take access away
/// from whoever relies on it.
fn role_change(
    live: Option<&Map<String, Value>>,
    desired: &Value,
    policy: &str,
) -> (Change, Vec<String>) {
    let Some(live) = live else {
        return (Change::Create, Vec::new());
    };
    let live_policies = sorted_strings(live.get("token_policies"));
    if live_policies != [policy] {
        return (
            Change::Foreign,
            vec![format!(
                "the role exists and was not written by Tenantry (it grants {})",
                if live_policies.is_empty() {
                    "no policy".to_owned()
                } else {
                    live_policies.join(", ")
                }
            )],
        );
    }
    let differ: Vec<String> = desired
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(field, want)| !same_value(live.get(field.as_str()), want))
        .map(|(field, _)| field.clone())
        .collect();
    if differ.is_empty() {
        (Change::Unchanged, Vec::new())
    } else {
        (Change::Update, differ)
    }
}

/// Whether a live role field holds the rendered value, in the server's terms: durations come
/// back as seconds, lists in any order.
fn same_value(live: Option<&Value>, want: &Value) -> bool {
    let Some(live) = live else {
        return false;
    };
    match (want, live) {
        (Value::String(text), Value::Number(n)) => {
            tenantry_api::duration::parse(text).is_ok_and(|d| Some(d.as_secs()) == n.as_u64())
        }
        (Value::Array(_), Value::Array(_)) => {
            sorted_strings(Some(want)) == sorted_strings(Some(live))
        }
        _ => want == live,
    }
}

fn sorted_strings(v: Option<&Value>) -> Vec<String> {
    let mut out: Vec<String> = v
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const POLICY: &str =
        "# OpenBao policy app-a for tenant a, rendered by Tenantry.\npath \"x\" {}\n";

    #[test]
    fn policies_are_ours_only_with_our_header() {
        assert_eq!(policy_change(None, POLICY).0, Change::Create);
        assert_eq!(policy_change(Some(POLICY), POLICY).0, Change::Unchanged);
        let edited = POLICY.replace("\"x\"", "\"y\"");
        assert_eq!(policy_change(Some(&edited), POLICY).0, Change::Update);
        assert_eq!(
            policy_change(Some("path \"secret/*\" {}"), POLICY).0,
            Change::Foreign
        );
    }

    #[test]
    fn roles_compare_in_the_servers_terms() {
        let desired = json!({
            "bound_service_account_names": ["a"],
            "bound_service_account_namespaces": ["a", "a-dev"],
            "token_policies": ["app-a"],
            "token_ttl": "1h",
        });
        let live = json!({
            "bound_service_account_names": ["a"],
            "bound_service_account_namespaces": ["a-dev", "a"],
            "token_policies": ["app-a"],
            "token_ttl": 3600,
            "token_period": 0,
        });
        let live = live.as_object().unwrap();
        assert_eq!(
            role_change(Some(live), &desired, "app-a"),
            (Change::Unchanged, vec![])
        );
        let mut longer = live.clone();
        longer.insert("token_ttl".into(), json!(7200));
        assert_eq!(
            role_change(Some(&longer), &desired, "app-a"),
            (Change::Update, vec!["token_ttl".to_owned()])
        );
        let mut foreign = live.clone();
        foreign.insert("token_policies".into(), json!(["admin"]));
        assert_eq!(
            role_change(Some(&foreign), &desired, "app-a").0,
            Change::Foreign
        );
    }
}
