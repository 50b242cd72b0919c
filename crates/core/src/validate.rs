//! Field-level checks: is each value one the API server, Flux, Argo CD, External Secrets
//! and OpenBao would accept?
//!
//! These run where a value is written — on a tenant's `spec` when the tenant is resolved, on
//! the platform's `defaults` and settings once when the platform is loaded — so the error
//! names the file a person has to edit. Cross-field rules that need resolved values
//! (requests within limits) live in `resolve`.

use tenantry_api::{
    Platform, Quantity,
    platform::{GrantBinding, GrantScope},
    tenant::{Delivery, OwnerKind, TenantSpec},
};

use crate::{
    error::Errors,
    names,
    resolve::{COMPUTE, LIMIT_KINDS, QUOTA_QUANTITIES},
    semver_range,
};

/// Check every value a (partial) spec sets, reporting paths under `at`.
pub(crate) fn validate_spec_fields(spec: &TenantSpec, at: &str, errors: &mut Errors) {
    for (i, owner) in spec.owners.iter().enumerate() {
        let path = format!("{at}.owners[{i}]");
        if owner.name.trim().is_empty() {
            errors.push(format!("{path}.name"), "must not be empty");
        }
        match (owner.kind, &owner.namespace) {
            (OwnerKind::ServiceAccount, None) => errors.push(
                format!("{path}.namespace"),
                "is required for a ServiceAccount owner",
            ),
            (OwnerKind::ServiceAccount, Some(ns)) => {
                if let Some(p) = names::dns_label_problem(ns) {
                    errors.push(format!("{path}.namespace"), format!("{ns:?} {p}"));
                }
                if let Some(p) = names::dns_subdomain_problem(&owner.name) {
                    errors.push(format!("{path}.name"), format!("{:?} {p}", owner.name));
                }
            }
            (_, Some(_)) => errors.push(
                format!("{path}.namespace"),
                format!(
                    "only ServiceAccount owners have a namespace, not {}",
                    owner.kind.as_str()
                ),
            ),
            _ => {}
        }
    }
    if let Some(q) = &spec.quota {
        for (_, field, get) in QUOTA_QUANTITIES {
            if let Some(v) = get(q) {
                check_quantity(
                    v,
                    &format!("{at}.quota.{field}"),
                    field.ends_with("cpu"),
                    errors,
                );
            }
        }
    }
    if let Some(l) = &spec.limits {
        for (kind, get_kind) in LIMIT_KINDS {
            if let Some(c) = get_kind(l) {
                for (_, field, get) in COMPUTE {
                    if let Some(v) = get(c) {
                        check_quantity(
                            v,
                            &format!("{at}.limits.{kind}.{field}"),
                            field == "cpu",
                            errors,
                        );
                    }
                }
            }
        }
    }
    if let Some(n) = &spec.network {
        for (i, ns) in n.allow_from.iter().flatten().enumerate() {
            if let Some(p) = names::dns_label_problem(ns) {
                errors.push(
                    format!("{at}.network.allowFrom[{i}]"),
                    format!("{ns:?} {p}"),
                );
            }
        }
    }
    if let Some(r) = &spec.rbac
        && let Some(role) = &r.cluster_role
    {
        let path = format!("{at}.rbac.clusterRole");
        if let Some(p) = names::rbac_name_problem(role) {
            errors.push(path, format!("{role:?} {p}"));
        } else if role == "cluster-admin" {
            errors.push(
                path,
                "cluster-admin in a namespace can delete the tenant's own quota, limits and network policy; use edit or admin",
            );
        }
    }
    for (i, reg) in spec.registries.iter().flatten().enumerate() {
        if let Some(p) = registry_problem(reg) {
            errors.push(format!("{at}.registries[{i}]"), format!("{reg:?} {p}"));
        }
    }
    if let Some(d) = &spec.delivery {
        validate_delivery(d, &format!("{at}.delivery.{}", d.kind_name()), errors);
    }
}

fn check_quantity(q: &Quantity, path: &str, is_cpu: bool, errors: &mut Errors) {
    match q.parse() {
        Err(e) => errors.push(path, format!("{:?} is not a quantity: {e}", q.as_str())),
        Ok(v) if v.is_negative() => errors.push(path, format!("{:?} must not be negative", q.as_str())),
        Ok(v) if !is_cpu && v.nanos() % 1_000_000_000 != 0 => errors.push(
            path,
            format!(
                "{:?} is a fraction of a byte (the `m` suffix means thousandths); did you mean {}Mi?",
                q.as_str(),
                q.as_str().trim_end_matches('m')
            ),
        ),
        Ok(_) => {}
    }
}

/// Why a registry entry is not `host[:port][/path]`, or `None`.
fn registry_problem(reg: &str) -> Option<&'static str> {
    if reg.contains("://") {
        return Some("must not have a scheme (write ghcr.io/acme, not https://ghcr.io/acme)");
    }
    if reg.contains(['@'])
        || reg
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':') && reg.contains('/'))
    {
        return Some("must be a registry or repository prefix without a tag or digest");
    }
    let mut parts = reg.split('/');
    let host = parts.next().unwrap_or_default();
    let (host_name, port) = match host.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (host, None),
    };
    if host_name.is_empty()
        || !host_name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return Some(
            "must start with a lower-case registry host (e.g. ghcr.io, docker.io, registry.local:5000)",
        );
    }
    if let Some(p) = port
        && (p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.len() > 5)
    {
        return Some("has a malformed port");
    }
    for seg in parts {
        if seg.is_empty()
            || !seg.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            })
        {
            return Some(
                "has a malformed path segment (lower-case letters, digits, '.', '_', '-')",
            );
        }
    }
    None
}

fn validate_delivery(d: &Delivery, at: &str, errors: &mut Errors) {
    match d {
        Delivery::FluxOci(x) => {
            if let Some(u) = &x.url {
                check_url(u, &["oci"], &format!("{at}.url"), errors);
            }
            if let Some(s) = &x.semver
                && let Err(e) = semver_range::validate(s)
            {
                errors.push(format!("{at}.semver"), e);
            }
            if let Some(v) = &x.verify {
                for (field, value) in [("issuer", &v.issuer), ("subject", &v.subject)] {
                    if let Some(re) = value {
                        check_regex(re, &format!("{at}.verify.{field}"), errors);
                    }
                }
                if let Some(secret) = &v.secret_ref {
                    check_subdomain(secret, &format!("{at}.verify.secretRef"), errors);
                    if v.issuer.is_some() || v.subject.is_some() {
                        errors.push(
                            format!("{at}.verify.secretRef"),
                            "set either secretRef (verify with a public key) or issuer and \
                             subject (keyless), not both",
                        );
                    }
                }
            }
            if let Some(s) = &x.pull_secret {
                check_subdomain(s, &format!("{at}.pullSecret"), errors);
            }
        }
        Delivery::FluxGit(x) => {
            if let Some(u) = &x.url {
                check_url(u, &["https", "ssh"], &format!("{at}.url"), errors);
            }
            if let Some(b) = &x.branch
                && (b.is_empty()
                    || b.contains([' ', '~', '^', ':', '?', '*', '[', '\\'])
                    || b.contains(".."))
            {
                errors.push(
                    format!("{at}.branch"),
                    format!("{b:?} is not a valid Git branch name"),
                );
            }
            if let Some(p) = &x.path {
                check_repo_path(p, &format!("{at}.path"), errors);
            }
            if let Some(s) = &x.proxy_kubeconfig_secret {
                check_subdomain(s, &format!("{at}.proxyKubeconfigSecret"), errors);
            }
        }
        Delivery::ArgoCd(x) => {
            if let Some(u) = &x.repo_url
                && !is_scp_like(u)
            {
                check_url(u, &["https", "ssh"], &format!("{at}.repoURL"), errors);
            }
            if let Some(p) = &x.path {
                check_repo_path(p, &format!("{at}.path"), errors);
            }
            if let Some(r) = &x.revision
                && (r.is_empty() || r.contains(char::is_whitespace))
            {
                errors.push(
                    format!("{at}.revision"),
                    format!("{r:?} is not a Git revision"),
                );
            }
        }
        Delivery::None(_) => {}
    }
}

fn is_scp_like(u: &str) -> bool {
    // git@github.com:org/repo.git
    !u.contains("://")
        && u.split_once('@')
            .and_then(|(_, rest)| rest.split_once(':'))
            .is_some_and(|(host, path)| !host.is_empty() && !path.is_empty())
}

fn check_url(u: &str, schemes: &[&str], path: &str, errors: &mut Errors) {
    // `{tenant}` placeholders are legal in platform templates; check the shape around them.
    let probe = u.replace("{tenant}", "tenant");
    match url::Url::parse(&probe) {
        Ok(parsed)
            if schemes.contains(&parsed.scheme())
                && parsed.host_str().is_some_and(|h| !h.is_empty()) => {}
        Ok(parsed) if !schemes.contains(&parsed.scheme()) => errors.push(
            path,
            format!(
                "{u:?} has scheme {:?}; allowed: {}",
                parsed.scheme(),
                schemes
                    .iter()
                    .map(|s| format!("{s}://"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        Ok(_) => errors.push(path, format!("{u:?} has no host")),
        Err(e) => errors.push(path, format!("{u:?} is not a URL: {e}")),
    }
}

fn check_regex(re: &str, path: &str, errors: &mut Errors) {
    let probe = re.replace("{tenant}", "tenant");
    if let Err(e) = regex::Regex::new(&probe) {
        let first = e
            .to_string()
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_owned();
        errors.push(
            path,
            format!("{re:?} is not a valid regular expression: {first}"),
        );
    }
}

fn check_subdomain(name: &str, path: &str, errors: &mut Errors) {
    if let Some(p) = names::dns_subdomain_problem(&name.replace("{tenant}", "tenant")) {
        errors.push(path, format!("{name:?} {p}"));
    }
}

/// A path inside a repository: relative, and never climbing out of it.
fn check_repo_path(p: &str, path: &str, errors: &mut Errors) {
    if p.starts_with('/') || p.split('/').any(|seg| seg == "..") || p.contains('\\') {
        errors.push(
            path,
            format!(
                "{p:?} must be a relative path inside the repository (no leading '/', no '..')"
            ),
        );
    }
}

/// Check the platform's settings. Values that are valid or not on their own (durations, name
/// patterns, the Pod Security version) were checked when the file was parsed; what is left are
/// the rules about names the cluster will see and how fields relate to each other.
pub(crate) fn validate_platform(p: &Platform, errors: &mut Errors) {
    validate_repository(p, errors);
    validate_gateway_and_mesh(p, errors);
    validate_pull_secret(p, errors);
    validate_openbao(p, errors);
    validate_delivery_settings(p, errors);
    validate_grants(p, errors);
    validate_dns(p, errors);
    validate_credentials(p, errors);
    if let Some(name) = &p.policies.tenant_repo_contract.secret_store_name {
        check_subdomain(name, "policies.tenantRepoContract.secretStoreName", errors);
    }
    if !p.defaults.namespaces.is_empty() {
        errors.push(
            "defaults.namespaces",
            "namespaces are per tenant and cannot have a platform default",
        );
    }
    validate_spec_fields(&p.defaults, "defaults", errors);
}

fn validate_repository(p: &Platform, errors: &mut Errors) {
    let dir = &p.tenants_dir;
    if dir.is_empty()
        || dir.starts_with('/')
        || dir.contains('\\')
        || dir
            .split('/')
            .any(|s| s == ".." || s.is_empty() && dir != ".")
    {
        errors.push("tenantsDir", format!("{dir:?} must be a relative directory inside the repository (no '..', no leading '/')"));
    } else if dir.trim_end_matches('/') == "."
        || dir.trim_end_matches('/').rsplit('/').next() == Some("platform")
    {
        // The platform-wide objects live in `<parent of tenantsDir>/platform/`; here that
        // directory would sit among the tenants' and a tenant could be named over it.
        errors.push(
            "tenantsDir",
            format!("{dir:?} would hold the platform directory (platform/) among the tenants; use a directory of its own, e.g. tenants"),
        );
    }
    if let Some(problem) = names::dns_subdomain_problem(&p.label_prefix) {
        errors.push("labelPrefix", format!("{:?} {problem}", p.label_prefix));
    }
    if p.cluster_name.is_empty()
        || p.cluster_name
            .contains(|c: char| c.is_whitespace() || c.is_control())
    {
        errors.push("clusterName", "must be non-empty, without spaces");
    }
}

fn validate_gateway_and_mesh(p: &Platform, errors: &mut Errors) {
    if let Some(gw) = &p.gateway {
        check_subdomain(&gw.name, "gateway.name", errors);
        if let Some(pr) = names::dns_label_problem(&gw.namespace) {
            errors.push("gateway.namespace", format!("{:?} {pr}", gw.namespace));
        }
        if let Some(s) = &gw.section_name {
            check_subdomain(s, "gateway.sectionName", errors);
        }
    }
    check_label_pair(&p.mesh_label.key, &p.mesh_label.value, "meshLabel", errors);
}

fn validate_pull_secret(p: &Platform, errors: &mut Errors) {
    let ps = &p.pull_secret;
    check_subdomain(&ps.name, "pullSecret.name", errors);
    check_subdomain(
        &ps.cluster_secret_store,
        "pullSecret.clusterSecretStore",
        errors,
    );
    if ps.key.trim().is_empty() {
        errors.push("pullSecret.key", "must not be empty");
    }
    if ps.property.trim().is_empty() {
        errors.push("pullSecret.property", "must not be empty");
    }
    check_label_pair(
        &ps.namespace_label.key,
        &ps.namespace_label.value,
        "pullSecret.namespaceLabel",
        errors,
    );
}

fn validate_openbao(p: &Platform, errors: &mut Errors) {
    let ob = &p.openbao;
    check_url(&ob.address, &["http", "https"], "openbao.address", errors);
    for (field, value) in [
        ("kvMount", &ob.kv_mount),
        ("pathPrefix", &ob.path_prefix),
        ("authMount", &ob.auth_mount),
    ] {
        if value.is_empty()
            || value.starts_with('/')
            || value.ends_with('/')
            || value
                .split('/')
                .any(|s| s.is_empty() || s == ".." || s == ".")
            || !value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'/' | b'.'))
        {
            errors.push(format!("openbao.{field}"), format!("{value:?} must be a relative OpenBao path like \"secret\" or \"apps\" (no leading or trailing '/', no '..')"));
        }
    }
    check_subdomain(&ob.store_name, "openbao.storeName", errors);
    // OpenBao's own `root` and `default` policies must not be reachable as a tenant's.
    if ob.policy_prefix.is_empty() {
        errors.push(
            "openbao.policyPrefix",
            "must not be empty: a tenant named \"default\" or \"root\" would take OpenBao's built-in policy",
        );
    }
    if let Some(audience) = &ob.audience
        && (audience.trim().is_empty() || audience.chars().any(char::is_whitespace))
    {
        errors.push(
            "openbao.audience",
            format!("{audience:?} must be a non-empty audience without spaces"),
        );
    }
    for (field, value) in [
        ("policyPrefix", &ob.policy_prefix),
        ("rolePrefix", &ob.role_prefix),
    ] {
        if !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
        {
            errors.push(
                format!("openbao.{field}"),
                format!("{value:?} may contain only letters, digits, '-' and '_'"),
            );
        }
    }
}

fn validate_delivery_settings(p: &Platform, errors: &mut Errors) {
    if let Some(pr) = names::dns_label_problem(&p.flux.namespace) {
        errors.push("flux.namespace", format!("{:?} {pr}", p.flux.namespace));
    }
    if p.flux.reconciler.trim().is_empty() {
        errors.push("flux.reconciler", "must not be empty");
    }
    if let Some(proxy) = &p.flux.proxy {
        // The kubeconfig carries a bearer token: never over plain HTTP.
        check_url(&proxy.url, &["https"], "flux.proxy.url", errors);
        if let Some(ca) = &proxy.ca_bundle
            && !ca.contains("-----BEGIN CERTIFICATE-----")
        {
            errors.push(
                "flux.proxy.caBundle",
                "must hold PEM certificates (-----BEGIN CERTIFICATE-----)",
            );
        }
    }
    if let Some(pr) = names::dns_label_problem(&p.argocd.namespace) {
        errors.push("argocd.namespace", format!("{:?} {pr}", p.argocd.namespace));
    }
    check_url(
        &p.argocd.destination_server,
        &["https", "http"],
        "argocd.destinationServer",
        errors,
    );
}

fn validate_grants(p: &Platform, errors: &mut Errors) {
    for (name, grant) in &p.grants {
        let at = format!("grants.{name}");
        if let Some(pr) = names::dns_label_problem(name) {
            errors.push(at.clone(), format!("grant name {name:?} {pr}"));
        }
        if let Some(sa) = &grant.service_account {
            check_subdomain(sa, &format!("{at}.serviceAccount"), errors);
        }
        if grant.bindings.is_empty() {
            errors.push(
                format!("{at}.bindings"),
                "must bind at least one ClusterRole",
            );
        }
        for (i, b) in grant.bindings.iter().enumerate() {
            validate_grant_binding(b, &format!("{at}.bindings[{i}]"), errors);
        }
    }
}

fn validate_grant_binding(b: &GrantBinding, bp: &str, errors: &mut Errors) {
    if let Some(pr) = names::rbac_name_problem(&b.cluster_role) {
        errors.push(
            format!("{bp}.clusterRole"),
            format!("{:?} {pr}", b.cluster_role),
        );
    } else if b.cluster_role == "cluster-admin" {
        errors.push(
            format!("{bp}.clusterRole"),
            "a grant must never bind cluster-admin",
        );
    }
    match (b.scope, &b.namespace) {
        (GrantScope::Namespace, None) => {
            errors.push(
                format!("{bp}.namespace"),
                "is required when scope is namespace",
            );
        }
        (GrantScope::Namespace, Some(ns)) => {
            if let Some(pr) = names::dns_label_problem(ns) {
                errors.push(format!("{bp}.namespace"), format!("{ns:?} {pr}"));
            }
        }
        (_, Some(_)) => errors.push(
            format!("{bp}.namespace"),
            "is only allowed when scope is namespace",
        ),
        _ => {}
    }
}

fn validate_dns(p: &Platform, errors: &mut Errors) {
    if let Some(pr) = names::dns_label_problem(&p.dns.namespace) {
        errors.push("dns.namespace", format!("{:?} {pr}", p.dns.namespace));
    }
    for (k, v) in &p.dns.pod_labels {
        check_label_pair(k, v, &format!("dns.podLabels.{k}"), errors);
    }
    if p.dns.ports.is_empty() || p.dns.ports.contains(&0) {
        errors.push("dns.ports", "must list the DNS ports (e.g. [53])");
    }
}

fn validate_credentials(p: &Platform, errors: &mut Errors) {
    // Each lifetime is at least the API server's minimum by its type; what is left is how
    // the two relate.
    let creds = &p.credentials;
    if creds.default_token_duration.duration() > creds.max_token_duration.duration() {
        errors.push(
            "credentials.defaultTokenDuration",
            format!(
                "must be between 10m and maxTokenDuration ({})",
                creds.max_token_duration
            ),
        );
    }
}

fn check_label_pair(key: &str, value: &str, path: &str, errors: &mut Errors) {
    if let Some(pr) = names::label_key_problem(key) {
        errors.push(format!("{path}.key"), format!("{key:?}: {pr}"));
    }
    if let Some(pr) = names::label_value_problem(value) {
        errors.push(format!("{path}.value"), format!("{value:?} {pr}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries() {
        for ok in [
            "ghcr.io",
            "ghcr.io/acme",
            "registry.local:5000/team/app",
            "docker.io/library",
        ] {
            assert_eq!(registry_problem(ok), None, "{ok}");
        }
        for bad in [
            "https://ghcr.io",
            "GHCR.io",
            "ghcr.io/acme:1.0",
            "ghcr.io/acme@sha256:x",
            "ghcr.io//x",
            ":5000",
            "ghcr.io:abc",
        ] {
            assert!(registry_problem(bad).is_some(), "{bad:?}");
        }
    }
}
