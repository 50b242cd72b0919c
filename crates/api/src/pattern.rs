//! Name patterns in `tenantry.yaml`: an exact name, or a prefix followed by one trailing `*`.
//!
//! Reserved namespace names and the identities the guardrails exempt (`reconcilers`,
//! `exemptUsers`, `exemptGroups`) are lists of such patterns. They are checked once, when the
//! file is read, so rendering and the policy engine cannot disagree about which patterns are
//! valid; and they are matched by one function, so they cannot disagree about what a pattern
//! means either. A bare `*` (or a blank prefix) is refused: for an exemption list it would
//! switch a guardrail off for tenants too.

use std::{fmt, str::FromStr};

/// Whether `name` matches `pattern`: `pattern` itself, or, when it ends in `*`, anything
/// starting with what comes before the `*`.
pub fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == pattern,
    }
}

/// A valid name-or-prefix pattern.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NamePattern {
    text: String,
    exact: bool,
}

impl NamePattern {
    /// A pattern matching exactly `name`, even if it ends in `*` (an identity taken from
    /// elsewhere in `tenantry.yaml`, such as `flux.reconciler`).
    pub fn exact(name: &str) -> Self {
        Self {
            text: name.to_owned(),
            exact: true,
        }
    }

    /// A pattern matching every name that starts with `prefix`.
    pub fn prefix(prefix: &str) -> Self {
        Self {
            text: format!("{prefix}*"),
            exact: false,
        }
    }

    /// The prefix a `prefix*` pattern matches names by; `None` for an exact name.
    pub fn prefix_of(&self) -> Option<&str> {
        if self.exact {
            None
        } else {
            self.text.strip_suffix('*')
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        if self.exact {
            name == self.text
        } else {
            matches(&self.text, name)
        }
    }
}

impl FromStr for NamePattern {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let prefix = text.strip_suffix('*').unwrap_or(text);
        if prefix.trim().is_empty() {
            return Err(format!(
                "{text:?} would match every name; write a name, or a prefix followed by '*'"
            ));
        }
        if prefix.contains('*') {
            return Err(format!(
                "{text:?} has a '*' before its end; write a name, or a prefix followed by a single trailing '*'"
            ));
        }
        if text.trim() != text {
            return Err(format!(
                "{text:?} starts or ends with a space and would never match; remove the spaces"
            ));
        }
        Ok(Self {
            text: text.to_owned(),
            exact: false,
        })
    }
}

impl fmt::Display for NamePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

serde_as_text!(NamePattern);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_prefixes_are_patterns() {
        for ok in [
            "kube-*",
            "default",
            "system:serviceaccount:kube-system:*",
            "system:masters",
        ] {
            assert_eq!(ok.parse::<NamePattern>().unwrap().as_str(), ok);
        }
    }

    #[test]
    fn patterns_that_match_everyone_or_nothing_are_refused() {
        for bad in [
            "",
            " ",
            "*",
            " *",
            "**",
            "system:*:x",
            "a**",
            " kube-*",
            "x ",
        ] {
            assert!(bad.parse::<NamePattern>().is_err(), "{bad:?}");
        }
        let e = "system:*:x".parse::<NamePattern>().unwrap_err();
        assert!(e.contains("single trailing '*'"), "{e}");
    }

    #[test]
    fn prefixes_match_what_starts_with_them() {
        let p: NamePattern = "kube-*".parse().unwrap();
        assert!(p.matches("kube-system"));
        assert!(!p.matches("kubeflow"));
        let exact: NamePattern = "default".parse().unwrap();
        assert!(exact.matches("default"));
        assert!(!exact.matches("default-2"));
        assert!(!NamePattern::exact("odd*").matches("odd-one"));
    }
}
