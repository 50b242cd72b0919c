//! `tenantry secrets scaffold`: the tenant-side objects of a generated secret, written into
//! the *tenant's* `deploy/` tree, not the platform repository.
//!
//! A value nobody needs to know (an admin code, a session key) should be generated where it
//! is used, never typed into Git. The pattern is the onboarding guide's: a `Password`
//! generator, a `PushSecret` that writes the generated value once to the tenant's own
//! OpenBao path `<pathPrefix>/<tenant>/<secret>`, and an `ExternalSecret` that reads it back
//! into the Kubernetes Secret the application mounts. Every reference goes through the
//! tenant's namespaced SecretStore, and the path is `OpenBaoConfig::tenant_path`, the same
//! derivation as the tenant's OpenBao policy, so the objects pass `tenantry check` for that
//! tenant and the store's role can write exactly there.
//!
//! The two policies of the PushSecret decide what a rotation can break, so they are chosen,
//! not defaulted (and each file says why in a comment, because these files belong to the
//! tenant, who will edit them):
//! - `updatePolicy: IfNotExists`. The generator makes a new value on every reconcile (a spec
//!   edit, a controller restart). With the default `Replace` each would overwrite the value
//!   in OpenBao that the running application, and whatever it protects, already uses, and the
//!   ExternalSecret would then roll the new one out silently. With `IfNotExists` the first
//!   value stays until someone replaces it in OpenBao on purpose.
//! - `deletionPolicy: None`. With `Delete`, removing or renaming the PushSecret (a refactor
//!   of `deploy/`, a prune by the delivery) deletes the value from OpenBao; the next push
//!   then finds nothing and writes a fresh value, the same silent rotation. The value
//!   outlives the objects; deleting it is a deliberate act (`bao kv delete`, or
//!   `tenantry secrets revoke --purge-secrets` when the tenant goes).
//!
//! The objects carry no Tenantry labels: they are the tenant's, delivered by the tenant's own
//! reconciler, and must never be taken for objects Tenantry prunes or protects.

use serde_json::{Value, json};

use super::platform::granted_resources;
use crate::{
    names::dns_label_problem,
    object::{DesiredObject, Layer},
    resolve::{PlatformContext, ResolvedTenant},
    yaml,
};

const PASSWORD: (&str, &str) = ("generators.external-secrets.io/v1alpha1", "Password");
const PUSH_SECRET: (&str, &str) = ("external-secrets.io/v1alpha1", "PushSecret");
const EXTERNAL_SECRET: (&str, &str) = ("external-secrets.io/v1", "ExternalSecret");

/// The key the generator fills, the property written in OpenBao and the key of the
/// application's Secret.
pub const PASSWORD_KEY: &str = "password";

/// Why a scaffold cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScaffoldError {
    /// `NAME` (the tenant) or `SECRET` is not a DNS-1123 label.
    #[error("{argument} {value:?} {problem}")]
    BadName {
        /// The argument, as the command line names it.
        argument: &'static str,
        /// What was given.
        value: String,
        /// Why it is refused.
        problem: String,
    },
    /// The tenant has no OpenBao path or SecretStore.
    #[error(
        "tenant {tenant} does not have secrets.openbao on, so it has no OpenBao path and no SecretStore to push to; set spec.secrets.openbao: true in its tenant.yaml (or defaults.secrets.openbao in tenantry.yaml) and render it first"
    )]
    NoOpenBao {
        /// The tenant.
        tenant: String,
    },
    /// The tenant's delivery could not create one of the kinds.
    #[error(
        "the platform does not let tenants create {resource}.{group} (tenantRbac.{field} in tenantry.yaml), so the tenant's delivery would be refused"
    )]
    NotGranted {
        /// API group.
        group: &'static str,
        /// Resource (plural).
        resource: &'static str,
        /// The `tenantRbac` setting that grants it.
        field: &'static str,
    },
}

/// One file to write into the tenant's deploy directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaffoldFile {
    /// File name, relative to the deploy directory.
    pub file_name: String,
    /// Its text: a comment saying why, then the object.
    pub content: String,
}

/// Refuse a command-line argument that is not a DNS-1123 label, naming the argument: the
/// tenant (`NAME`) and the secret (`SECRET`) become object names, a Secret name and an
/// OpenBao path segment, where neither `/` nor `.` may appear.
pub fn check_argument(argument: &'static str, value: &str) -> Result<(), ScaffoldError> {
    match dns_label_problem(value) {
        Some(problem) => Err(ScaffoldError::BadName {
            argument,
            value: value.to_owned(),
            problem,
        }),
        None => Ok(()),
    }
}

/// The generator, PushSecret and ExternalSecret for the generated secret `secret`: each
/// object and the application's Kubernetes Secret are named `secret`, the value is stored at
/// `<pathPrefix>/<tenant>/<secret>`, all in the tenant's primary namespace, in apply order.
pub fn generated_secret(
    ctx: &PlatformContext,
    t: &ResolvedTenant,
    secret: &str,
) -> Result<Vec<DesiredObject>, ScaffoldError> {
    check_argument("SECRET", secret)?;
    let name = secret;
    if !t.openbao {
        return Err(ScaffoldError::NoOpenBao {
            tenant: t.name.clone(),
        });
    }
    let granted = granted_resources(&ctx.platform);
    for (group, resource, field) in [
        ("generators.external-secrets.io", "passwords", "generators"),
        ("external-secrets.io", "pushsecrets", "externalSecrets"),
        ("external-secrets.io", "externalsecrets", "externalSecrets"),
    ] {
        if !granted.contains(&(group, resource)) {
            return Err(ScaffoldError::NotGranted {
                group,
                resource,
                field,
            });
        }
    }
    let ob = &ctx.platform.openbao;
    let remote_key = format!("{}/{secret}", ob.tenant_path(&t.name));
    let namespace = t.primary_namespace();
    let object = |(api_version, kind): (&'static str, &'static str), spec: Value| DesiredObject {
        layer: Layer::Secrets,
        api_version,
        kind,
        namespace: Some(namespace.to_owned()),
        name: name.to_owned(),
        body: json!({
            "apiVersion": api_version,
            "kind": kind,
            "metadata": { "name": name, "namespace": namespace },
            "spec": spec,
        }),
    };
    Ok(vec![
        object(
            PASSWORD,
            // 32 letters and digits (~190 bits); no symbols, so the value survives URLs,
            // connection strings and shell quoting unescaped.
            json!({
                "length": 32,
                "digits": 8,
                "symbols": 0,
                "noUpper": false,
                "allowRepeat": true,
                "secretKeys": [PASSWORD_KEY],
            }),
        ),
        object(
            PUSH_SECRET,
            json!({
                // Pushed once, as the onboarding guide does; IfNotExists keeps any later
                // reconcile from replacing the value (see the module documentation).
                "refreshInterval": "0",
                "updatePolicy": "IfNotExists",
                "deletionPolicy": "None",
                "secretStoreRefs": [{ "kind": "SecretStore", "name": ob.store_name }],
                "selector": {
                    "generatorRef": {
                        "apiVersion": PASSWORD.0,
                        "kind": PASSWORD.1,
                        "name": name,
                    }
                },
                "data": [{
                    "match": {
                        "secretKey": PASSWORD_KEY,
                        "remoteRef": { "remoteKey": remote_key, "property": PASSWORD_KEY },
                    }
                }],
            }),
        ),
        object(
            EXTERNAL_SECRET,
            json!({
                "refreshInterval": "1h",
                "secretStoreRef": { "kind": "SecretStore", "name": ob.store_name },
                "target": { "name": name, "creationPolicy": "Owner" },
                "data": [{
                    "secretKey": PASSWORD_KEY,
                    "remoteRef": { "key": remote_key, "property": PASSWORD_KEY },
                }],
            }),
        ),
    ])
}

/// [`generated_secret`] as files: `<secret>-password.yaml`, `<secret>-pushsecret.yaml`,
/// `<secret>-externalsecret.yaml`, each opening with a comment saying what it does and why.
pub fn generated_secret_files(
    ctx: &PlatformContext,
    t: &ResolvedTenant,
    secret: &str,
) -> Result<Vec<ScaffoldFile>, ScaffoldError> {
    let objects = generated_secret(ctx, t, secret)?;
    let name = secret;
    let path = format!(
        "{}/{}/{secret}",
        ctx.platform.openbao.kv_mount,
        ctx.platform.openbao.tenant_path(&t.name)
    );
    Ok(objects
        .iter()
        .map(|o| {
            let comment = match o.kind {
                "Password" => format!(
                    "# Generates the value of {name}; the PushSecret of the same name stores it once in OpenBao.\n"
                ),
                "PushSecret" => format!(
                    "# Writes the generated value of {name} to OpenBao at {path} (property {PASSWORD_KEY}).\n\
                     # updatePolicy: IfNotExists - every reconcile generates a new value; Replace would\n\
                     #   overwrite the one the application already uses. Rotate on purpose, in OpenBao.\n\
                     # deletionPolicy: None - deleting or renaming this PushSecret must not delete the\n\
                     #   value: the next push would then write a fresh one, a silent rotation.\n"
                ),
                _ => format!(
                    "# Reads {path} back into Secret {name} (key {PASSWORD_KEY}) for the application.\n"
                ),
            };
            let mut content = String::from("# Scaffolded by `tenantry secrets scaffold`; yours to edit.\n");
            content.push_str(&comment);
            content.push_str(&yaml::object_yaml(o));
            ScaffoldFile {
                file_name: format!("{name}-{}.yaml", o.kind.to_ascii_lowercase()),
                content,
            }
        })
        .collect())
}
