//! `openbao-paths`: every key the tenant's ExternalSecrets read through the tenant's own
//! SecretStore lies under the tenant's OpenBao path, is stored there (the version a
//! `remoteRef.version` pins included), and is readable with the tenant's policy; every
//! `dataFrom[].find` searches a folder of the tenant's that the policy may list and that
//! holds at least one readable key its name pattern matches.
//!
//! This is the "empty OpenBao path" and "permission denied" rows of the External Secrets
//! failure table found before External Secrets trips over them, with the key and the field
//! that names it, rather than read back from a condition message.
//!
//! Readability is judged on the *rendered* policy's path rules, not by asking OpenBao
//! (`sys/capabilities`). Asking needs a token that carries the tenant's policy: minting one
//! takes `sudo` on `auth/token/create` (a policy the doctor's token does not hold itself), is
//! a write to OpenBao in a command that never writes, and for as long as it lives is a
//! credential to every secret of the tenant. The rendered policy is Tenantry's own, a fixed
//! form (path rules ending in a `*` glob), and the `openbao` check already holds the live
//! policy equal to it byte for byte, so the two answers agree whenever that check is ok;
//! when it is not, this check says it judged the rendered policy and points there. The
//! evaluator follows OpenBao's ACL rules for that form (an exact path beats a glob, the
//! longest glob wins, `deny` wins) and refuses any other form instead of guessing.
//!
//! Keys are resolved as External Secrets' Vault provider does for a KV v2 store: a key that
//! starts with the store's mount (and `data/`) has them cut. Existence is read from the KV
//! metadata with the platform's token (never the value), and only for keys inside the
//! tenant's path: the doctor's token needs `read` and `list` on
//! `<mount>/metadata/<pathPrefix>/<tenant>/*` and nothing about other tenants' keys, not even
//! whether they exist, is looked up. A `find` is judged as External Secrets runs it: the
//! folder listed recursively, `name.regexp` searched (unanchored, RE2 syntax, which the
//! `regex` crate shares) in each key's path under the mount; tags are not judged.

use serde_json::Value;
use tenantry_core::{PlatformContext, Rendered, ResolvedTenant, names::dns_label_problem};

use crate::{Check, KvVersion, KvView, Observed, reference};

/// One key an ExternalSecret reads, where it reads it and what the tenant's access says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyRef {
    /// `ExternalSecret namespace/name`.
    pub(crate) object: String,
    /// `spec.data[0].remoteRef.key`.
    pub(crate) field: String,
    /// The key as written.
    pub(crate) key: String,
    /// The secret's path under the KV mount, as External Secrets resolves the key.
    pub(crate) path: String,
    /// Whether it may be read.
    pub(crate) access: Access,
    /// The version it pins (`remoteRef.version`), if any.
    pub(crate) version: Option<String>,
}

/// One `dataFrom[].find` of an ExternalSecret through the tenant's store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FindRef {
    /// `ExternalSecret namespace/name`.
    pub(crate) object: String,
    /// `spec.dataFrom[0].find`.
    pub(crate) field: String,
    /// The folder searched, under the mount, without a trailing `/`; `None`: the whole mount.
    pub(crate) folder: Option<String>,
    /// `name.regexp`, if any (without one, every key matches: tags are not judged).
    pub(crate) regexp: Option<String>,
    /// Whether the tenant may list the folder (`Outside`, `Denied`, `Readable`).
    pub(crate) access: Access,
}

/// What the CLI reads from OpenBao for the check: exactly these, all inside the tenant's path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KvReads {
    /// Secret paths (under the mount) whose metadata to read.
    pub secrets: Vec<String>,
    /// Folders (under the mount, no trailing `/`) to list recursively.
    pub folders: Vec<String>,
}

/// What the tenant's scope and policy say about one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// Outside `<pathPrefix>/<tenant>/`.
    Outside,
    /// Inside, but the policy grants no `read` on its data path.
    Denied,
    /// Inside and readable.
    Readable,
}

/// The OpenBao keys an ExternalSecret reads (`data[].remoteRef.key`, `dataFrom[].extract.key`).
pub(crate) fn remote_keys(object: &Value) -> Vec<&str> {
    entries(object)
        .into_iter()
        .filter_map(|(_, _, key)| key)
        .collect()
}

/// Each entry of an ExternalSecret that reads a key: its field, the entry and the key.
fn entries(object: &Value) -> Vec<(String, &Value, Option<&str>)> {
    let mut out = Vec::new();
    for (list, reference) in [("data", "remoteRef"), ("dataFrom", "extract")] {
        for (i, entry) in object["spec"][list]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            if entry[reference].is_object() {
                out.push((
                    format!("spec.{list}[{i}].{reference}.key"),
                    entry,
                    entry[reference]["key"].as_str(),
                ));
            }
        }
    }
    out
}

/// What to read from OpenBao: the metadata of the keys the tenant's ExternalSecrets read
/// through its store, and the folders their `find`s search, that its scope and policy allow,
/// each once. The CLI reads exactly these, so nothing outside the tenant's path is looked up.
pub fn kv_paths(
    ctx: &PlatformContext,
    tenant: &ResolvedTenant,
    rendered: &Rendered,
    secret_sync: &[Value],
) -> Result<KvReads, String> {
    let policy = Policy::rendered(rendered)?;
    let secrets = each_once(
        key_refs(ctx, tenant, &policy, secret_sync)
            .into_iter()
            .filter(|r| r.access == Access::Readable)
            .map(|r| r.path),
    );
    let folders = each_once(
        find_refs(ctx, tenant, &policy, secret_sync)
            .into_iter()
            .filter(|r| r.access == Access::Readable)
            .filter_map(|r| r.folder),
    );
    Ok(KvReads { secrets, folders })
}

/// `paths` sorted, each once: a path many ExternalSecrets read is read from OpenBao once.
fn each_once(paths: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = paths.collect();
    out.sort();
    out.dedup();
    out
}

/// The store an entry reads through: its own `sourceRef.storeRef`, else the ExternalSecret's.
fn store_of<'v>(es: &'v Value, entry: &'v Value) -> &'v Value {
    match &entry["sourceRef"]["storeRef"] {
        Value::Object(_) => &entry["sourceRef"]["storeRef"],
        _ => &es["spec"]["secretStoreRef"],
    }
}

/// Every `dataFrom[].find` read through the tenant's SecretStore by a live ExternalSecret,
/// judged on the tenant's scope and the rendered policy's `list`.
pub(crate) fn find_refs(
    ctx: &PlatformContext,
    tenant: &ResolvedTenant,
    policy: &Policy,
    objects: &[Value],
) -> Vec<FindRef> {
    let bao = &ctx.platform.openbao;
    let root = bao.tenant_path(&tenant.name);
    let prefix = format!("{root}/");
    let mut out = Vec::new();
    for es in tenant_external_secrets(objects) {
        for (i, entry) in es["spec"]["dataFrom"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let find = &entry["find"];
            if !find.is_object()
                || entry["sourceRef"]["generatorRef"].is_object()
                || !is_tenant_store(ctx, store_of(es, entry))
            {
                continue;
            }
            let folder = find["path"]
                .as_str()
                .map(|p| p.trim_end_matches('/').to_owned())
                .filter(|p| !p.is_empty());
            let access = match &folder {
                Some(f) if f == &root || inside(&prefix, f) => {
                    if policy.grants(&format!("{}/metadata/{f}/", bao.kv_mount), "list") {
                        Access::Readable
                    } else {
                        Access::Denied
                    }
                }
                _ => Access::Outside,
            };
            out.push(FindRef {
                object: reference(es),
                field: format!("spec.dataFrom[{i}].find"),
                folder,
                regexp: find["name"]["regexp"].as_str().map(str::to_owned),
                access,
            });
        }
    }
    out
}

/// Every key read through the tenant's SecretStore by a live ExternalSecret, judged.
pub(crate) fn key_refs(
    ctx: &PlatformContext,
    tenant: &ResolvedTenant,
    policy: &Policy,
    objects: &[Value],
) -> Vec<KeyRef> {
    let bao = &ctx.platform.openbao;
    let prefix = format!("{}/", bao.tenant_path(&tenant.name));
    let mut out = Vec::new();
    for es in tenant_external_secrets(objects) {
        for (field, entry, key) in entries(es) {
            if entry["sourceRef"]["generatorRef"].is_object() {
                continue;
            }
            let (Some(key), true) = (key, is_tenant_store(ctx, store_of(es, entry))) else {
                continue;
            };
            let path = kv_path(&bao.kv_mount, key).to_owned();
            let access = if !inside(&prefix, &path) {
                Access::Outside
            } else if policy.grants(&format!("{}/data/{path}", bao.kv_mount), "read") {
                Access::Readable
            } else {
                Access::Denied
            };
            let reference_field = field.trim_end_matches(".key");
            let version = entry[reference_field.rsplit('.').next().unwrap_or_default()]["version"]
                .as_str()
                .map(str::to_owned);
            out.push(KeyRef {
                object: reference(es),
                field,
                key: key.to_owned(),
                path,
                access,
                version,
            });
        }
    }
    out
}

/// The live ExternalSecrets of the tenant's namespaces that are not being deleted.
fn tenant_external_secrets(objects: &[Value]) -> impl Iterator<Item = &Value> {
    objects
        .iter()
        .filter(|o| o["kind"] == "ExternalSecret" && o["metadata"]["deletionTimestamp"].is_null())
}

/// Whether a `secretStoreRef` names the tenant's store: a namespaced SecretStore (External
/// Secrets' default kind) named as the platform names it.
fn is_tenant_store(ctx: &PlatformContext, store: &Value) -> bool {
    store["kind"].as_str().unwrap_or("SecretStore") == "SecretStore"
        && store["name"].as_str() == Some(ctx.platform.openbao.store_name.as_str())
}

/// The path External Secrets' Vault provider reads for `key` through a KV v2 store on
/// `mount`, without the mount: a leading `<mount>/`, then a `data/`, are cut.
fn kv_path<'k>(mount: &str, key: &'k str) -> &'k str {
    match key
        .strip_prefix(mount)
        .and_then(|rest| rest.strip_prefix('/'))
    {
        Some(rest) => rest.strip_prefix("data/").unwrap_or(rest),
        None => key,
    }
}

/// Whether `path` names a secret below `prefix` (`apps/<tenant>/`), with no `.` or `..`
/// segment that could climb out of it: the `restrict-secret-stores` guardrail's rule.
fn inside(prefix: &str, path: &str) -> bool {
    path.len() > prefix.len()
        && path.starts_with(prefix)
        && !path.split('/').any(|s| s == "." || s == "..")
}

/// One `path "…" { capabilities = […] }` rule.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Rule {
    /// The path, a trailing `*` included.
    path: String,
    capabilities: Vec<String>,
}

/// A policy of the form Tenantry renders, by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Policy {
    rules: Vec<Rule>,
}

impl Policy {
    /// The tenant's rendered policy.
    pub(crate) fn rendered(rendered: &Rendered) -> Result<Self, String> {
        let file = tenantry_core::render::OPENBAO_POLICY_FILE;
        let text = rendered
            .artifacts
            .iter()
            .find(|a| a.file_name == file)
            .map(|a| a.content.as_str())
            .ok_or_else(|| format!("the tenant renders no {file}"))?;
        Self::parse(text).map_err(|e| format!("{file}: {e}"))
    }

    /// Read the policy text: comments, and `path` blocks holding one `capabilities` list.
    /// Anything else (other keys, `+` or inner `*` globs) is refused, naming the line.
    fn parse(text: &str) -> Result<Self, String> {
        let mut rules = Vec::new();
        let mut open: Option<Rule> = None;
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim();
            let bad = || {
                format!(
                    "line {}: {line:?} is not of the form Tenantry renders, so it is not judged",
                    n + 1
                )
            };
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match open.as_mut() {
                None => {
                    let path = line
                        .strip_prefix("path \"")
                        .and_then(|l| l.strip_suffix("\" {"))
                        .filter(|p| {
                            !p.contains(['+', '"'])
                                && !p.trim_end_matches('*').contains('*')
                                && !p.ends_with("**")
                        })
                        .ok_or_else(bad)?;
                    open = Some(Rule {
                        path: path.to_owned(),
                        capabilities: Vec::new(),
                    });
                }
                Some(rule) if line == "}" => {
                    rules.push(rule.clone());
                    open = None;
                }
                Some(rule) => {
                    let list = line
                        .strip_prefix("capabilities")
                        .map(str::trim_start)
                        .and_then(|l| l.strip_prefix('='))
                        .map(str::trim)
                        .and_then(|l| l.strip_prefix('['))
                        .and_then(|l| l.strip_suffix(']'))
                        .ok_or_else(bad)?;
                    for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                        let word = item
                            .strip_prefix('"')
                            .and_then(|i| i.strip_suffix('"'))
                            .ok_or_else(bad)?;
                        rule.capabilities.push(word.to_owned());
                    }
                }
            }
        }
        if open.is_some() {
            return Err("a path block is not closed".to_owned());
        }
        Ok(Self { rules })
    }

    /// Whether the policy grants `capability` on `path`: the exact rule if there is one, else
    /// the matching glob with the longest prefix; `deny` in that rule grants nothing.
    fn grants(&self, path: &str, capability: &str) -> bool {
        let exact = self.rules.iter().find(|r| r.path == path);
        let rule = exact.or_else(|| {
            self.rules
                .iter()
                .filter_map(|r| Some((r, r.path.strip_suffix('*')?)))
                .filter(|(_, prefix)| path.starts_with(prefix))
                .max_by_key(|(_, prefix)| prefix.len())
                .map(|(r, _)| r)
        });
        rule.is_some_and(|r| {
            r.capabilities.iter().any(|c| c == capability)
                && !r.capabilities.iter().any(|c| c == "deny")
        })
    }
}

/// Judge one `find`; `true` when what it needs was not read from OpenBao.
fn judge_find(
    c: &mut Check,
    o: &Observed<'_>,
    policy: &Policy,
    kv: Result<&KvView, &str>,
    r: FindRef,
) -> bool {
    let bao = &o.ctx.platform.openbao;
    let tenant = &o.tenant.name;
    let policy_name = bao.policy_name(tenant);
    let prefix = bao.tenant_path(tenant);
    let mount = &bao.kv_mount;
    let field = &r.field;
    let set_path = format!("set {field}.path to {prefix} (or a folder under it)");
    let folder = match (r.access, &r.folder) {
        (Access::Outside, None) => {
            c.fail(
                r.object,
                format!(
                    "{field}.path is not set, so External Secrets lists the whole mount {mount}/: policy {policy_name} allows listing only under {prefix}/, so it reports permission denied"
                ),
                set_path,
            );
            return false;
        }
        (Access::Outside, Some(folder)) => {
            c.fail(
                r.object,
                format!(
                    "{field}.path {folder} is outside the tenant's OpenBao path {prefix}/: policy {policy_name} denies listing {mount}/metadata/{folder}/, so External Secrets reports permission denied"
                ),
                set_path,
            );
            return false;
        }
        (Access::Denied, folder) => {
            let folder = folder.as_deref().unwrap_or_default();
            c.fail(
                r.object,
                format!(
                    "{field}.path {folder}: the rendered policy {policy_name} grants no list on {mount}/metadata/{folder}/"
                ),
                format!(
                    "keep the path to a plain folder under {prefix}/, then `tenantry secrets provision {tenant}`"
                ),
            );
            return false;
        }
        (Access::Readable, folder) => folder.clone().unwrap_or_default(),
    };
    let pattern = r.regexp.as_deref().unwrap_or("");
    let matcher = match regex::Regex::new(pattern) {
        Ok(m) => m,
        Err(e) => {
            c.fail(
                r.object,
                format!(
                    "{field}.name.regexp {pattern:?} is not a regular expression External Secrets can use: {e}"
                ),
                format!("correct {field}.name.regexp (RE2 syntax)"),
            );
            return false;
        }
    };
    c.looked_at(format!("OpenBao folder {mount}/{folder}/"));
    let Some(keys) = kv.ok().and_then(|kv| kv.folders.get(&folder)) else {
        return true;
    };
    let readable = keys
        .iter()
        .any(|k| matcher.is_match(k) && policy.grants(&format!("{mount}/data/{k}"), "read"));
    if !readable {
        let what = match &r.regexp {
            Some(re) => format!("matches name.regexp {re:?} and "),
            None => String::new(),
        };
        let there = if keys.is_empty() {
            "the folder is empty".to_owned()
        } else {
            let shown: Vec<&str> = keys.iter().take(5).map(String::as_str).collect();
            let more = keys.len() - shown.len();
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            format!("it holds {}{more}", shown.join(", "))
        };
        c.fail(
            r.object,
            format!(
                "{field}: no key under {mount}/{folder}/ {what}is readable with policy {policy_name} ({there}), so the ExternalSecret finds nothing to sync"
            ),
            format!(
                "store one there (`bao kv put -mount={mount} {folder}/<name> <field>=<value>`{}){}",
                if r.regexp.is_some() { ", <name> matching the pattern" } else { "" },
                if r.regexp.is_some() { format!(", or change {field}.name.regexp to match a key there") } else { String::new() }
            ),
        );
    }
    false
}

/// The check (`openbao-paths`).
pub(crate) fn check(o: &Observed<'_>) -> Check {
    let mut c = Check::new(
        "openbao-paths",
        "the keys ExternalSecrets read are the tenant's, stored and readable",
    );
    if !o.tenant.openbao {
        return c.skipped("the tenant has no secrets.openbao");
    }
    let bao = &o.ctx.platform.openbao;
    let tenant = &o.tenant.name;
    let policy_name = bao.policy_name(tenant);
    let policy = match Policy::rendered(o.rendered) {
        Ok(p) => p,
        Err(reason) => return c.skipped(reason),
    };
    let objects = match &o.cluster {
        Err(reason) => return c.skipped(reason.clone()),
        Ok(view) => match &view.secret_sync {
            Ok(objects) => objects,
            Err(reason) => return c.skipped(reason.clone()),
        },
    };
    let kv: Result<&KvView, &str> = match &o.openbao_kv {
        Some(Ok(kv)) => Ok(kv),
        Some(Err(reason)) => Err(reason),
        None => Err("OpenBao was not read"),
    };
    let mut unread = false;
    let prefix = bao.tenant_path(tenant);
    let mount = &bao.kv_mount;
    for r in key_refs(o.ctx, o.tenant, &policy, objects) {
        c.looked_at(r.object.clone());
        let at = format!("{} ({})", r.key, r.field);
        match r.access {
            Access::Outside => c.fail(
                r.object,
                format!(
                    "key {at} is outside the tenant's OpenBao path {prefix}/: policy {policy_name} denies reading {mount}/data/{}, so External Secrets reports permission denied",
                    r.path
                ),
                format!(
                    "store the secret under {prefix}/ (`bao kv put -mount={mount} {prefix}/<name> <field>=<value>`) and set {} to {prefix}/<name>",
                    r.field
                ),
            ),
            Access::Denied => c.fail(
                r.object,
                format!(
                    "key {at}: the rendered policy {policy_name} grants no read on {mount}/data/{}",
                    r.path
                ),
                format!(
                    "keep the key to a plain name under {prefix}/, then `tenantry secrets provision {tenant}`"
                ),
            ),
            Access::Readable => {
                c.looked_at(format!("OpenBao secret {mount}/{}", r.path));
                let Ok(kv) = kv else {
                    unread = true;
                    continue;
                };
                match kv.secrets.get(&r.path) {
                    None => unread = true,
                    Some(None) => {
                        let scaffold = r
                            .path
                            .strip_prefix(&format!("{prefix}/"))
                            .filter(|name| dns_label_problem(name).is_none())
                            .map(|name| {
                                format!(
                                    ", or, for a generated password, `tenantry secrets scaffold {tenant} {name}` (pushes one there from the cluster)"
                                )
                            })
                            .unwrap_or_default();
                        c.fail(
                            r.object,
                            format!(
                                "key {at}: nothing is stored at {mount}/{}, so the ExternalSecret cannot sync (an empty OpenBao path)",
                                r.path
                            ),
                            format!(
                                "write it: `bao kv put -mount={mount} {} <field>=<value>`{scaffold}",
                                r.path
                            ),
                        );
                    }
                    Some(Some(meta)) if r.version.is_some() => {
                        let version = r.version.as_deref().unwrap_or_default();
                        let field = r.field.replace(".key", ".version");
                        let path = &r.path;
                        let kept = || {
                            let kept: Vec<String> =
                                meta.versions.keys().map(u64::to_string).collect();
                            kept.join(", ")
                        };
                        let problem = match version.parse::<u64>() {
                            Err(_) => Some((
                                format!("{field} {version:?} is not a KV v2 version number"),
                                format!("set {field} to one of the versions OpenBao keeps ({}), or remove it to read the latest", kept()),
                            )),
                            Ok(n) => match meta.versions.get(&n) {
                                Some(KvVersion::Live) => None,
                                None => Some((
                                    format!("{field} pins version {n} of {mount}/{path}, which OpenBao does not hold (it keeps versions {})", kept()),
                                    format!("set {field} to one of {}, or remove it to read the latest (version {})", kept(), meta.current_version),
                                )),
                                Some(KvVersion::Deleted) => Some((
                                    format!("{field} pins version {n} of {mount}/{path}, which is deleted, so a read finds nothing"),
                                    format!("restore it (`bao kv undelete -mount={mount} -versions={n} {path}`) or set {field} to a live version"),
                                )),
                                Some(KvVersion::Destroyed) => Some((
                                    format!("{field} pins version {n} of {mount}/{path}, which is destroyed for good"),
                                    format!("set {field} to a live version ({}), or remove it to read the latest", kept()),
                                )),
                            },
                        };
                        if let Some((message, fix)) = problem {
                            c.fail(r.object, format!("key {at}: {message}"), fix);
                        }
                    }
                    Some(Some(meta)) if meta.current_deleted => c.fail(
                        r.object,
                        format!(
                            "key {at}: the latest version ({}) of {mount}/{} is deleted, so a read finds nothing",
                            meta.current_version, r.path
                        ),
                        format!(
                            "restore it (`bao kv undelete -mount={mount} -versions={} {}`) or write a new version (`bao kv put -mount={mount} {} <field>=<value>`)",
                            meta.current_version, r.path, r.path
                        ),
                    ),
                    Some(Some(_)) => {}
                }
            }
        }
    }
    for r in find_refs(o.ctx, o.tenant, &policy, objects) {
        c.looked_at(r.object.clone());
        unread |= judge_find(&mut c, o, &policy, kv, r);
    }
    if unread {
        let reason = match kv {
            Err(reason) => reason.to_owned(),
            Ok(_) => "a key was not read from OpenBao".to_owned(),
        };
        if c.findings.is_empty() {
            return c.skipped(format!("whether the keys exist was not checked: {reason}"));
        }
        c.notes
            .push(format!("whether the keys exist was not checked: {reason}"));
    }
    let policy_differs = matches!(&o.openbao, Some(Ok(steps))
        if steps.iter().any(|s| s.target == "policy" && s.change != "unchanged"));
    if policy_differs {
        c.notes.push(format!(
            "read access judged on the rendered policy {policy_name}; OpenBao holds a different one or none (see the openbao check)"
        ));
    }
    c
}

#[cfg(test)]
mod tests;
