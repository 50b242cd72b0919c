//! The naming rules of the Kubernetes API server, checked before anything is written.
//!
//! A name the API server would refuse must be refused at `onboard` time, in the platform
//! repository, not minutes later by Flux in a reconcile error nobody reads.

/// Longest DNS-1123 label (namespace names, label values).
pub const MAX_LABEL: usize = 63;
/// Longest DNS-1123 subdomain (most object names).
pub const MAX_SUBDOMAIN: usize = 253;

/// Why a name is not a DNS-1123 label, or `None` when it is one.
pub fn dns_label_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("must not be empty".to_owned());
    }
    if name.len() > MAX_LABEL {
        return Some(format!(
            "must be at most {MAX_LABEL} characters (is {})",
            name.len()
        ));
    }
    let bytes = name.as_bytes();
    if !bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
    {
        return Some(
            "must consist of lower-case letters, digits and '-' (a DNS-1123 label)".to_owned(),
        );
    }
    if !bytes[0].is_ascii_alphanumeric() || !bytes[bytes.len() - 1].is_ascii_alphanumeric() {
        return Some("must start and end with a lower-case letter or digit".to_owned());
    }
    None
}

/// True when `name` is a DNS-1123 label.
pub fn is_dns_label(name: &str) -> bool {
    dns_label_problem(name).is_none()
}

/// Why a name is not a DNS-1123 subdomain, or `None` when it is one.
pub fn dns_subdomain_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("must not be empty".to_owned());
    }
    if name.len() > MAX_SUBDOMAIN {
        return Some(format!(
            "must be at most {MAX_SUBDOMAIN} characters (is {})",
            name.len()
        ));
    }
    for part in name.split('.') {
        if part.is_empty()
            || !part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            || !part.as_bytes()[0].is_ascii_alphanumeric()
            || !part.as_bytes()[part.len() - 1].is_ascii_alphanumeric()
        {
            return Some(
                "must be lower-case letters, digits, '-' and '.', each dot-separated part starting and ending with a letter or digit (a DNS-1123 subdomain)"
                    .to_owned(),
            );
        }
    }
    None
}

/// True when `name` is a DNS-1123 subdomain.
pub fn is_dns_subdomain(name: &str) -> bool {
    dns_subdomain_problem(name).is_none()
}

/// Why a string is not a valid label or annotation key, or `None`.
/// Keys are `[prefix/]name`: an optional DNS subdomain prefix and a name of at most 63
/// characters of alphanumerics, `-`, `_` and `.` that starts and ends alphanumeric.
pub fn label_key_problem(key: &str) -> Option<String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix
        && let Some(problem) = dns_subdomain_problem(p)
    {
        return Some(format!("prefix {p:?} {problem}"));
    }
    label_name_problem(name).map(|p| format!("name part {p}"))
}

fn label_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("must not be empty".to_owned());
    }
    if name.len() > MAX_LABEL {
        return Some(format!("must be at most {MAX_LABEL} characters"));
    }
    let b = name.as_bytes();
    if !b
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        || !b[0].is_ascii_alphanumeric()
        || !b[b.len() - 1].is_ascii_alphanumeric()
    {
        return Some(
            "must be alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric"
                .to_owned(),
        );
    }
    None
}

/// Why a string is not a valid label value, or `None`. Values may be empty.
pub fn label_value_problem(value: &str) -> Option<String> {
    if value.is_empty() {
        None
    } else {
        label_name_problem(value)
    }
}

/// Why a name cannot be used for an RBAC object (Role, ClusterRole, bindings), or `None`.
/// The API server accepts any path segment there; Tenantry refuses what it could not put
/// in a file name or label either.
pub fn rbac_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("must not be empty".to_owned());
    }
    if name == "." || name == ".." || name.contains(['/', '%']) {
        return Some("must not be '.', '..' or contain '/' or '%'".to_owned());
    }
    if name.len() > MAX_SUBDOMAIN {
        return Some(format!("must be at most {MAX_SUBDOMAIN} characters"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    {
        return Some("must be letters, digits, '-', '_', '.' or ':'".to_owned());
    }
    None
}

/// Namespaces no tenant may own: Kubernetes' own, and those of the platform components a
/// tenant must never be able to write into. A trailing `*` matches any suffix.
pub const BUILTIN_RESERVED: &[&str] = &[
    "default",
    "kube-*",
    "openshift",
    "openshift-*",
    "flux-system",
    "argocd",
    "tenantry",
    "tenantry-*",
    "cert-manager",
    "external-secrets",
    "openbao",
    "vault",
    "istio-system",
    "kyverno",
    "gatekeeper-system",
    "capsule-system",
    "cilium",
    "cilium-*",
];

/// The reserved pattern `name` matches, if any, among `patterns`.
pub fn reserved_match<'a>(
    name: &str,
    patterns: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    patterns
        .into_iter()
        .find(|p| tenantry_api::pattern::matches(p, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert!(is_dns_label("a"));
        assert!(is_dns_label("shop-2"));
        assert!(is_dns_label(&"a".repeat(63)));
        for bad in ["", "-a", "a-", "A", "a_b", "a.b", &"a".repeat(64)] {
            assert!(!is_dns_label(bad), "{bad:?}");
        }
    }

    #[test]
    fn subdomains() {
        assert!(is_dns_subdomain("a.b-c.d"));
        for bad in ["", "a..b", ".a", "a.", "a_b", "A.b"] {
            assert!(!is_dns_subdomain(bad), "{bad:?}");
        }
    }

    #[test]
    fn label_keys() {
        assert!(label_key_problem("tenantry.dev/tenant").is_none());
        assert!(label_key_problem("istio-injection").is_none());
        assert!(label_key_problem("apps.platform/tenant").is_none());
        assert!(label_key_problem("a/b/c").is_some());
        assert!(label_key_problem("Bad_Prefix/x").is_some());
        assert!(label_key_problem("x/").is_some());
    }

    #[test]
    fn reserved_patterns() {
        assert_eq!(
            reserved_match("kube-system", BUILTIN_RESERVED.iter().copied()),
            Some("kube-*")
        );
        assert_eq!(
            reserved_match("default", BUILTIN_RESERVED.iter().copied()),
            Some("default")
        );
        assert_eq!(
            reserved_match("kubeflow", BUILTIN_RESERVED.iter().copied()),
            None
        );
        assert_eq!(
            reserved_match("shop", BUILTIN_RESERVED.iter().copied()),
            None
        );
    }
}
