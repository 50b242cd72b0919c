//! Rendered objects as YAML text, exactly as they are committed and printed.
//!
//! The text is part of Tenantry's contract: `onboard` compares it byte for byte to decide
//! `unchanged`, and reviewers read it in pull requests. So the format is fixed here, once: a
//! header naming the source, then the object in the block style `kubectl` users know.
//!
//! Rendered objects are written by a small emitter for JSON values rather than a general
//! YAML serializer: it is the hot path of every GitOps write (re-rendering 10,000 tenants
//! serializes 100,000 objects), and a JSON value needs only a fraction of YAML. The emitter
//! is deliberately conservative: a string is written plain only when it is made of a small
//! set of characters and cannot be read as anything but a string by a YAML 1.1 or 1.2
//! reader (no `yes`, `on`, `0x1F`, `1e3`, `1:20`); everything else is quoted. Everything
//! Tenantry *reads* is parsed with serde-saphyr, and the tests check every emitted document
//! against serde-saphyr's reading of it.

use std::fmt::Write as _;

use serde_json::Value;

use crate::object::DesiredObject;

/// The header written above every rendered object.
pub fn header(tenant: &str) -> String {
    format!(
        "# Rendered by Tenantry from tenant {tenant}; edit tenant.yaml or tenantry.yaml, not this file.\n"
    )
}

/// One object as a YAML document body (no `---`).
pub fn object_yaml(object: &DesiredObject) -> String {
    to_yaml(&object.body)
}

/// One object as it is written to its file: header, then the object.
pub fn object_file(tenant: &str, object: &DesiredObject) -> String {
    let mut text = header(tenant);
    emit_document(&mut text, &object.body);
    text
}

/// A platform-wide object as it is written to its file: a header naming the component and
/// `tenantry.yaml` as its source, then the object.
pub fn platform_object_file(component: &str, object: &DesiredObject) -> String {
    let mut text = platform_header(component);
    emit_document(&mut text, &object.body);
    text
}

/// The header written above every platform-wide file.
pub fn platform_header(component: &str) -> String {
    format!(
        "# Rendered by Tenantry for the platform ({component}); edit tenantry.yaml, not this file.\n"
    )
}

/// Objects as one multi-document YAML stream, each document starting with `---`.
pub fn multi_document<'a>(objects: impl IntoIterator<Item = &'a DesiredObject>) -> String {
    let mut out = String::new();
    for object in objects {
        out.push_str("---\n");
        emit_document(&mut out, &object.body);
    }
    out
}

/// A JSON value as a YAML document (no `---`).
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::with_capacity(512);
    emit_document(&mut out, value);
    out
}

fn emit_document(out: &mut String, value: &Value) {
    match value {
        Value::Object(map) if !map.is_empty() => emit_map(out, map, 0, false),
        Value::Array(items) if !items.is_empty() => emit_seq(out, items, 0),
        scalar => {
            emit_inline(out, scalar);
            out.push('\n');
        }
    }
}

fn indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

/// Scalars and empty collections, which fit on the line of their key or dash.
fn emit_inline(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => emit_string(out, s),
        Value::Array(_) => out.push_str("[]"),
        Value::Object(_) => out.push_str("{}"),
    }
}

/// `after_dash`: the map is a sequence item whose first entry sits on the dash's line.
fn emit_map(out: &mut String, map: &serde_json::Map<String, Value>, at: usize, after_dash: bool) {
    for (i, (key, value)) in map.iter().enumerate() {
        if i > 0 || !after_dash {
            indent(out, at);
        }
        emit_string(out, key);
        out.push(':');
        match value {
            Value::Object(m) if !m.is_empty() => {
                out.push('\n');
                emit_map(out, m, at + 2, false);
            }
            Value::Array(items) if !items.is_empty() => {
                // Sequences under a key sit at the key's indentation, as kubectl writes them.
                out.push('\n');
                emit_seq(out, items, at);
            }
            scalar => {
                out.push(' ');
                emit_inline(out, scalar);
                out.push('\n');
            }
        }
    }
}

fn emit_seq(out: &mut String, items: &[Value], at: usize) {
    for item in items {
        indent(out, at);
        match item {
            Value::Object(m) if !m.is_empty() => {
                out.push_str("- ");
                emit_map(out, m, at + 2, true);
            }
            Value::Array(inner) if !inner.is_empty() => {
                out.push_str("-\n");
                emit_seq(out, inner, at + 2);
            }
            scalar => {
                out.push_str("- ");
                emit_inline(out, scalar);
                out.push('\n');
            }
        }
    }
}

fn emit_string(out: &mut String, s: &str) {
    if is_plain_safe(s) {
        out.push_str(s);
    } else if s.contains('\\') && s.chars().all(single_quotable) {
        // Backslashes (regular expressions) read better single-quoted, where they are
        // literal and only `'` needs escaping (as `''`).
        out.push('\'');
        out.push_str(&s.replace('\'', "''"));
        out.push('\'');
    } else {
        emit_double_quoted(out, s);
    }
}

/// Characters a single-quoted scalar may hold as they are: printable, and not a line break
/// in YAML 1.1 (`U+0085`, `U+2028`, `U+2029`) or a byte-order mark.
fn single_quotable(c: char) -> bool {
    let c = c as u32;
    (0x20..0x7f).contains(&c)
        || (0xa0..=0xd7ff).contains(&c) && c != 0x2028 && c != 0x2029
        || (0xe000..=0xfffd).contains(&c) && c != 0xfeff
        || (0x1_0000..=0x10_ffff).contains(&c)
}

/// A double-quoted scalar: every character that is not safely printable is escaped.
fn emit_double_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if single_quotable(c) => out.push(c),
            c if (c as u32) <= 0xff => {
                let _ = write!(out, "\\x{:02X}", c as u32);
            }
            c if (c as u32) <= 0xffff => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08X}", c as u32);
            }
        }
    }
    out.push('"');
}

/// True when `s` can be written as a plain scalar and read back by any YAML 1.1 or 1.2
/// reader as exactly this string.
fn is_plain_safe(s: &str) -> bool {
    let bytes = s.as_bytes();
    let Some(&first) = bytes.first() else {
        return false;
    };
    // Only characters that are never YAML syntax inside a block-context plain scalar.
    let body_ok = bytes.iter().all(|&b| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'/'
                    | b':'
                    | b'@'
                    | b'+'
                    | b'='
                    | b'^'
                    | b'$'
                    | b'\\'
                    | b'('
                    | b')'
                    | b'*'
            )
    });
    if !body_ok {
        return false;
    }
    // Indicators and signs may not start a plain scalar; a trailing ':' would read as a key.
    if !(first.is_ascii_alphanumeric()
        || matches!(first, b'/' | b'.' | b'_' | b'^' | b'$' | b'(' | b'\\'))
        || s.ends_with(':')
        || s.starts_with("...")
    {
        return false;
    }
    // Words YAML 1.1 or 1.2 reads as booleans, nulls or special floats.
    const SPECIAL: &[&str] = &[
        "y", "n", "yes", "no", "on", "off", "true", "false", "null", ".inf", ".nan",
    ];
    if s.len() <= 5 && SPECIAL.iter().any(|w| w.eq_ignore_ascii_case(s)) {
        return false;
    }
    // Anything that could be a number (ints, floats, exponents, hex, octal, sexagesimal,
    // dates) is quoted. A digit run followed only by letters (`500m`, `8Gi`, `10m`) is safe,
    // unless the letters form an exponent or a radix prefix.
    let starts_numeric =
        first.is_ascii_digit() || (first == b'.' && bytes.get(1).is_some_and(u8::is_ascii_digit));
    if starts_numeric {
        let digits = bytes
            .iter()
            .take_while(|b| b.is_ascii_digit() || **b == b'.')
            .count();
        let rest = &bytes[digits..];
        let letters_only = !rest.is_empty() && rest.iter().all(u8::is_ascii_alphabetic);
        let exponent_or_radix = matches!(
            rest.first(),
            Some(b'e' | b'E' | b'x' | b'X' | b'o' | b'O' | b'b' | b'B')
        );
        if !letters_only || exponent_or_radix || first == b'.' {
            return false;
        }
    }
    true
}

/// `text` as lines of at most `width` characters, broken between words, for the comments
/// above generated manifests (a word longer than `width` stands on its own line).
pub fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_block_style_like_kubectl() {
        let v = json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": { "name": "shop", "labels": { "a.b/c": "true", "n": "53" } },
            "spec": { "list": [ { "x": 1, "y": [] }, "plain" ], "empty": {}, "nested": [[1, 2]] }
        });
        assert_eq!(
            to_yaml(&v),
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n  labels:\n    a.b/c: \"true\"\n    \"n\": \"53\"\nspec:\n  list:\n  - x: 1\n    \"y\": []\n  - plain\n  empty: {}\n  nested:\n  -\n    - 1\n    - 2\n"
        );
    }

    #[test]
    fn quotes_what_a_yaml_reader_would_not_read_as_the_same_string() {
        for s in [
            "",
            "true",
            "Yes",
            "on",
            "N",
            "null",
            "~",
            "53",
            "1.5",
            "1e3",
            "0x1F",
            "0o17",
            "1:20",
            "2001-12-14",
            ".5",
            ".inf",
            "-1",
            "- x",
            "a: b",
            "a #b",
            "#x",
            "*x",
            "&x",
            "!x",
            "%x",
            "@x",
            "`x",
            "'x",
            "\"x",
            "x:",
            "{x}",
            "[x]",
            "a,b",
            "|",
            ">",
            "?x",
            ">=1.0.0",
            "a b",
            "line\nbreak",
            "tab\there",
            "...",
            "1h30m",
            "1E5",
        ] {
            assert!(!is_plain_safe(s), "{s:?} would be plain");
        }
        for s in [
            "shop",
            "500m",
            "8Gi",
            "10m",
            "https://x.example/a",
            "k8s:io.pod",
            ".dockerconfigjson",
            "app.kubernetes.io/name",
            "^https://x\\.y$",
            "v1",
        ] {
            assert!(is_plain_safe(s), "{s:?} would be quoted");
        }
    }

    #[test]
    fn backslashes_are_single_quoted_and_control_characters_escaped() {
        assert_eq!(
            to_yaml(&json!({"r": "^a\\.b$ it's"})),
            "r: '^a\\.b$ it''s'\n"
        );
        assert_eq!(to_yaml(&json!({"r": "a\\b\n"})), "r: \"a\\\\b\\n\"\n");
    }
}
