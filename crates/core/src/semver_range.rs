//! Semver ranges as Flux reads them (`OCIRepository.spec.ref.semver`).
//!
//! Flux parses ranges with the Masterminds/semver constraint grammar, which differs from
//! Cargo's: `||` alternatives, space- or comma-separated comparators, `x` wildcards, hyphen
//! ranges (`1.2 - 1.4.5`) and an optional `v`. A typo here would leave a tenant on its last
//! version forever, with a Flux error no one reads, so the range is checked with that grammar
//! before it is written.

/// Check a constraint string; the error says which part is malformed.
pub fn validate(range: &str) -> Result<(), String> {
    if range.trim().is_empty() {
        return Err("must not be empty (e.g. \">=1.0.0\")".to_owned());
    }
    for alternative in range.split("||") {
        validate_and_group(alternative.trim())
            .map_err(|e| format!("{e} in {range:?} (Flux semver syntax, e.g. \">=1.0.0\", \"~1.2\", \"1.x || >=2.1 <3\")"))?;
    }
    Ok(())
}

fn validate_and_group(group: &str) -> Result<(), String> {
    if group.is_empty() {
        return Err("empty alternative".to_owned());
    }
    // Hyphen range: "<version> - <version>".
    if let Some((low, high)) = group.split_once(" - ") {
        version(low.trim())?;
        return version(high.trim());
    }
    let mut tokens = group
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .peekable();
    if tokens.peek().is_none() {
        return Err("empty alternative".to_owned());
    }
    while let Some(token) = tokens.next() {
        // An operator may stand apart from its version: ">= 1.0".
        let token = if is_operator(token) {
            match tokens.next() {
                Some(v) => {
                    version(v)?;
                    continue;
                }
                None => return Err(format!("operator {token:?} has no version")),
            }
        } else {
            token
        };
        let rest = strip_operator(token);
        version(rest)?;
    }
    Ok(())
}

const OPERATORS: &[&str] = &["!=", ">=", "=>", "<=", "=<", "~>", ">", "<", "=", "~", "^"];

fn is_operator(token: &str) -> bool {
    OPERATORS.contains(&token)
}

fn strip_operator(token: &str) -> &str {
    for op in OPERATORS {
        if let Some(rest) = token.strip_prefix(op) {
            return rest;
        }
    }
    token
}

/// `v?MAJOR[.MINOR[.PATCH]][-prerelease][+build]`, where any numeric part may be `x`, `X` or `*`.
fn version(text: &str) -> Result<(), String> {
    let text = text.strip_prefix(['v', 'V']).unwrap_or(text);
    if text.is_empty() {
        return Err("missing version".to_owned());
    }
    if text == "*" || text == "x" || text == "X" {
        return Ok(());
    }
    let (core, build) = match text.split_once('+') {
        Some((c, b)) => (c, Some(b)),
        None => (text, None),
    };
    let (core, pre) = match core.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (core, None),
    };
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() > 3 {
        return Err(format!("version {text:?} has more than three parts"));
    }
    for part in &parts {
        let wildcard = matches!(*part, "x" | "X" | "*");
        if !wildcard && (part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit())) {
            return Err(format!("version {text:?} is not MAJOR[.MINOR[.PATCH]]"));
        }
    }
    for (name, ids) in [("pre-release", pre), ("build", build)] {
        if let Some(ids) = ids
            && (ids.is_empty()
                || ids.split('.').any(|id| {
                    id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                }))
        {
            return Err(format!("version {text:?} has a malformed {name}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::validate;

    #[test]
    fn accepts_what_flux_accepts() {
        for ok in [
            ">=1.0.0",
            ">= 1.0.0",
            "1.2.3",
            "v1.2.3",
            "~1.2",
            "~> 1.2",
            "^1.2.3",
            "1.x",
            "*",
            ">=1.0.0 <2.0.0",
            ">=1.0.0, <2.0.0",
            "1.2 - 1.4.5",
            "1.x || >=2.1 <3",
            ">=1.0.0-rc.1",
            "=1.0.0+build.5",
            "!=1.3.0",
        ] {
            assert_eq!(validate(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn refuses_malformed_ranges() {
        for bad in [
            "",
            "   ",
            ">=",
            "1.2.3.4",
            "latest",
            ">=1.0.0 ||",
            "=>a",
            "1.2.3-",
            "1..2",
        ] {
            assert!(validate(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
