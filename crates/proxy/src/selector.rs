//! Label and field selectors, parsed and matched the way the API server does for namespaces.
//!
//! The proxy answers namespace lists and watches itself, so a selector a tenant's tool sends
//! (`kubectl get ns -l team=web`, an informer's `fieldSelector=metadata.name=x`) must select
//! exactly what the API server would have selected: the same grammar (`=`, `==`, `!=`, `in`,
//! `notin`, existence, `!key`), the same refusal of what it does not understand (a field
//! other than `metadata.name` and `status.phase` is a 400, as upstream), never a silent
//! "match everything".

use std::collections::BTreeMap;

/// Longest selector accepted; the API server's URL limit is far above any real selector.
pub const MAX_SELECTOR_LEN: usize = 4096;

/// Why a selector was refused; the message is the one the 400 carries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SelectorError {
    /// What is wrong, in the API server's words where it has some.
    pub message: String,
}

fn error(message: impl Into<String>) -> SelectorError {
    SelectorError {
        message: message.into(),
    }
}

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `key`.
    Exists(String),
    /// `!key`.
    DoesNotExist(String),
    /// `key=value`, `key==value`, `key in (a,b)`.
    In(String, Vec<String>),
    /// `key!=value`, `key notin (a,b)` (also true when the key is absent).
    NotIn(String, Vec<String>),
}

/// A parsed label selector: every requirement must hold. Empty selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector(pub Vec<Requirement>);

impl LabelSelector {
    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| match r {
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
            Requirement::In(k, values) => labels.get(k).is_some_and(|v| values.contains(v)),
            Requirement::NotIn(k, values) => labels.get(k).is_none_or(|v| !values.contains(v)),
        })
    }
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/')
}

fn is_value_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

fn check_key(key: &str, whole: &str) -> Result<(), SelectorError> {
    let (prefix, name) = key.rsplit_once('/').map_or(("", key), |(p, n)| (p, n));
    let ok = !name.is_empty()
        && name.len() <= 63
        && prefix.len() <= 253
        && !key.starts_with('/')
        && key.chars().all(is_key_char)
        && key.matches('/').count() <= 1
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(error(format!(
            "unable to parse requirement: invalid label key {key:?} in selector {whole:?}"
        )))
    }
}

fn check_value(value: &str, whole: &str) -> Result<(), SelectorError> {
    let ok = value.is_empty()
        || (value.len() <= 63
            && value.chars().all(is_value_char)
            && value.starts_with(|c: char| c.is_ascii_alphanumeric())
            && value.ends_with(|c: char| c.is_ascii_alphanumeric()));
    if ok {
        Ok(())
    } else {
        Err(error(format!(
            "unable to parse requirement: invalid label value {value:?} in selector {whole:?}"
        )))
    }
}

/// Split at commas outside parentheses.
fn split_requirements(text: &str) -> Result<Vec<&str>, SelectorError> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0u32, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| error(format!("unbalanced ')' in selector {text:?}")))?;
            }
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(error(format!("unbalanced '(' in selector {text:?}")));
    }
    parts.push(&text[start..]);
    Ok(parts)
}

fn set_values(rest: &str, whole: &str) -> Result<Vec<String>, SelectorError> {
    let inner = rest
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| error(format!("expected a (value, ...) set in selector {whole:?}")))?;
    let values: Vec<String> = inner.split(',').map(|v| v.trim().to_owned()).collect();
    for value in &values {
        check_value(value, whole)?;
    }
    Ok(values)
}

/// Parse a label selector (`labelSelector=`).
pub fn parse_label_selector(text: &str) -> Result<LabelSelector, SelectorError> {
    if text.len() > MAX_SELECTOR_LEN {
        return Err(error(format!(
            "label selector longer than {MAX_SELECTOR_LEN} bytes"
        )));
    }
    if text.trim().is_empty() {
        return Ok(LabelSelector::default());
    }
    let mut requirements = Vec::new();
    for part in split_requirements(text)? {
        let part = part.trim();
        if part.is_empty() {
            return Err(error(format!("empty requirement in selector {text:?}")));
        }
        let requirement = if let Some(key) = part.strip_prefix('!') {
            let key = key.trim();
            check_key(key, text)?;
            Requirement::DoesNotExist(key.to_owned())
        } else if let Some((key, value)) = part.split_once("!=") {
            let (key, value) = (key.trim(), value.trim());
            check_key(key, text)?;
            check_value(value, text)?;
            Requirement::NotIn(key.to_owned(), vec![value.to_owned()])
        } else if let Some((key, value)) = part.split_once("==").or_else(|| part.split_once('=')) {
            let (key, value) = (key.trim(), value.trim());
            check_key(key, text)?;
            check_value(value, text)?;
            Requirement::In(key.to_owned(), vec![value.to_owned()])
        } else if let Some((key, rest)) = split_word(part, "notin") {
            check_key(key, text)?;
            Requirement::NotIn(key.to_owned(), set_values(rest, text)?)
        } else if let Some((key, rest)) = split_word(part, "in") {
            check_key(key, text)?;
            Requirement::In(key.to_owned(), set_values(rest, text)?)
        } else {
            check_key(part, text)?;
            Requirement::Exists(part.to_owned())
        };
        requirements.push(requirement);
    }
    Ok(LabelSelector(requirements))
}

/// `key <word> (…)`: the key and what follows the operator word.
fn split_word<'a>(part: &'a str, word: &str) -> Option<(&'a str, &'a str)> {
    let (key, rest) = part.split_once(char::is_whitespace)?;
    let rest = rest.trim_start().strip_prefix(word)?;
    rest.trim_start()
        .starts_with('(')
        .then_some((key.trim(), rest))
}

/// The fields a namespace can be selected by, as upstream allows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamespaceField {
    /// `metadata.name`.
    Name,
    /// `status.phase`.
    Phase,
}

/// A parsed field selector for namespaces: every term must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector(pub Vec<(NamespaceField, bool, String)>);

impl FieldSelector {
    /// Whether a namespace with this name and phase is selected.
    pub fn matches(&self, name: &str, phase: &str) -> bool {
        self.0.iter().all(|(field, equal, value)| {
            let actual = match field {
                NamespaceField::Name => name,
                NamespaceField::Phase => phase,
            };
            (actual == value) == *equal
        })
    }

    /// A selector for exactly one name (the watch of a single namespace).
    pub fn name(name: &str) -> Self {
        Self(vec![(NamespaceField::Name, true, name.to_owned())])
    }
}

/// Parse a field selector (`fieldSelector=`) for namespaces.
pub fn parse_field_selector(text: &str) -> Result<FieldSelector, SelectorError> {
    if text.len() > MAX_SELECTOR_LEN {
        return Err(error(format!(
            "field selector longer than {MAX_SELECTOR_LEN} bytes"
        )));
    }
    if text.trim().is_empty() {
        return Ok(FieldSelector::default());
    }
    let mut terms = Vec::new();
    for part in text.split(',') {
        let (field, equal, value) = if let Some((f, v)) = part.split_once("!=") {
            (f, false, v)
        } else if let Some((f, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
            (f, true, v)
        } else {
            return Err(error(format!(
                "invalid selector: '{text}'; can't understand '{part}'"
            )));
        };
        let field = match field.trim() {
            "metadata.name" => NamespaceField::Name,
            "status.phase" => NamespaceField::Phase,
            other => {
                return Err(error(format!(
                    "\"{other}\" is not a known field selector: only \"metadata.name\", \"status.phase\""
                )));
            }
        };
        terms.push((field, equal, value.trim().to_owned()));
    }
    Ok(FieldSelector(terms))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn label_selectors_select_like_the_api_server() {
        let ns = labels(&[("tenantry.dev/tenant", "shop"), ("env", "dev")]);
        let yes = [
            "",
            "env=dev",
            "env==dev",
            "env!=prod",
            "missing!=x",
            "env in (dev, prod)",
            "env notin (prod)",
            "tenantry.dev/tenant",
            "!missing",
            "env=dev,tenantry.dev/tenant=shop",
        ];
        let no = [
            "env=prod",
            "env!=dev",
            "env in (prod)",
            "env notin (dev,x)",
            "!env",
            "missing",
            "missing=x",
            "env=dev,tenantry.dev/tenant=blog",
        ];
        for s in yes {
            assert!(parse_label_selector(s).unwrap().matches(&ns), "{s}");
        }
        for s in no {
            assert!(!parse_label_selector(s).unwrap().matches(&ns), "{s}");
        }
    }

    #[test]
    fn malformed_label_selectors_are_refused_not_widened() {
        for s in [
            "env=(x",
            "env in dev",
            "=x",
            "env=a b",
            ",",
            "env in (a,",
            "a)",
            "-bad=x",
            "a/b/c=x",
        ] {
            assert!(parse_label_selector(s).is_err(), "{s}");
        }
    }

    #[test]
    fn field_selectors_know_name_and_phase_only() {
        let f = parse_field_selector("metadata.name=shop,status.phase!=Terminating").unwrap();
        assert!(f.matches("shop", "Active"));
        assert!(!f.matches("shop", "Terminating"));
        assert!(!f.matches("blog", "Active"));
        let err = parse_field_selector("spec.finalizers=x").unwrap_err();
        assert!(err.message.contains("not a known field selector"), "{err}");
        assert!(parse_field_selector("metadata.name").is_err());
    }

    proptest! {
        /// Whatever the text, parsing ends in a selector or an error, never a panic; and a
        /// selector that parses selects the same set when parsed again from its source.
        #[test]
        fn any_text_parses_or_is_refused(text in "[a-z=!,() .\\-/]{0,40}") {
            let _ = parse_label_selector(&text);
            let _ = parse_field_selector(&text);
        }

        #[test]
        fn equality_selects_exactly_the_equal_value(value in "[a-z0-9]{1,10}", other in "[a-z0-9]{1,10}") {
            let s = parse_label_selector(&format!("k={value}")).unwrap();
            prop_assert_eq!(s.matches(&labels(&[("k", &other)])), value == other);
            let s = parse_label_selector(&format!("k!={value}")).unwrap();
            prop_assert_eq!(s.matches(&labels(&[("k", &other)])), value != other);
        }
    }
}
