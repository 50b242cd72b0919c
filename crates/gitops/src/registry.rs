//! Registering tenants in `tenants/kustomization.yaml` without disturbing anything else.
//!
//! The file is shared: platform engineers add comments, other entries and other fields. A
//! YAML round-trip would drop comments and reflow the file, so the `resources:` list is
//! edited as text, line by line, and the result is re-parsed to prove the edit did exactly
//! what was intended.

use std::fmt;

/// Why the registration file could not be edited.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EditError(pub String);

impl fmt::Display for EditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A new registration file listing `entry`.
pub fn new_file(entry: &str) -> String {
    format!(
        "# Tenants registered by Tenantry; each entry is a tenants/<name>/ directory.\n\
         apiVersion: kustomize.config.k8s.io/v1beta1\n\
         kind: Kustomization\n\
         resources:\n\
         - {entry}\n"
    )
}

/// The entry for a tenant directory: `<name>/`.
pub fn entry_for(tenant: &str) -> String {
    format!("{tenant}/")
}

/// The same directory however it is spelt: `shop`, `shop/`, `./shop/`.
fn normalize(value: &str) -> &str {
    let v = value.trim();
    let v = v
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
        .unwrap_or(v);
    let v = v.strip_prefix("./").unwrap_or(v);
    v.strip_suffix('/').unwrap_or(v)
}

struct Item {
    line: usize,
    value: String,
}

struct ResourcesBlock {
    /// Line index of `resources:`.
    key_line: usize,
    /// Items in file order.
    items: Vec<Item>,
    /// The prefix (indent and dash) items are written with.
    item_prefix: String,
    /// Index of the line after the block.
    end: usize,
    /// Written in flow style on the key's line (`resources: [a/, b/]`).
    flow: bool,
}

fn strip_comment(s: &str) -> &str {
    // A `#` starts a comment at line start or after whitespace, outside quotes. Entries are
    // directory names, so quotes containing `#` are not a concern beyond this.
    let bytes = s.as_bytes();
    for i in 0..bytes.len() {
        if bytes[i] == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()) {
            return &s[..i];
        }
    }
    s
}

fn parse(lines: &[&str]) -> Result<Option<ResourcesBlock>, EditError> {
    let Some(key_line) = lines.iter().position(|l| {
        let l = strip_comment(l).trim_end();
        l == "resources:" || l.starts_with("resources: ") || l.starts_with("resources:[")
    }) else {
        return Ok(None);
    };
    let rest = strip_comment(lines[key_line]).trim_end()["resources:".len()..].trim();
    if !rest.is_empty() {
        // Flow style: `resources: []` or `resources: [a/, b/]` on one line.
        let inner = rest
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .ok_or_else(|| {
                EditError(format!(
                    "line {}: `resources:` must be a list; write it as a block list (`- name/` per line)",
                    key_line + 1
                ))
            })?;
        let items = inner
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Item {
                line: key_line,
                value: s.to_owned(),
            })
            .collect();
        return Ok(Some(ResourcesBlock {
            key_line,
            items,
            item_prefix: "- ".to_owned(),
            end: key_line + 1,
            flow: true,
        }));
    }
    let mut items = Vec::new();
    let mut item_prefix: Option<String> = None;
    let mut end = key_line + 1;
    for (i, line) in lines.iter().enumerate().skip(key_line + 1) {
        let content = strip_comment(line);
        if content.trim().is_empty() {
            continue;
        }
        let trimmed = content.trim_start();
        let indent = &content[..content.len() - trimmed.len()];
        if let Some(value) = trimmed
            .strip_prefix("- ")
            .or_else(|| (trimmed == "-").then_some(""))
        {
            if value.trim().is_empty() || value.trim_start().starts_with(['[', '{', '|', '>']) {
                return Err(EditError(format!(
                    "line {}: a resources entry must be a plain path like `shop/`",
                    i + 1
                )));
            }
            item_prefix.get_or_insert_with(|| format!("{indent}- "));
            items.push(Item {
                line: i,
                value: value.trim().to_owned(),
            });
            end = i + 1;
        } else if indent.is_empty() {
            break;
        } else {
            return Err(EditError(format!(
                "line {}: unexpected content inside `resources:`",
                i + 1
            )));
        }
    }
    Ok(Some(ResourcesBlock {
        key_line,
        items,
        item_prefix: item_prefix.unwrap_or_else(|| "- ".to_owned()),
        end,
        flow: false,
    }))
}

fn verify(text: &str, entry: &str, present: bool) -> Result<(), EditError> {
    let doc: serde_json::Value = serde_saphyr::from_str(text)
        .map_err(|e| EditError(format!("the edited file would not parse: {e}")))?;
    let listed = doc
        .get("resources")
        .and_then(|r| r.as_array())
        .is_some_and(|items| {
            items
                .iter()
                .any(|i| i.as_str().is_some_and(|s| normalize(s) == normalize(entry)))
        });
    if listed == present {
        Ok(())
    } else {
        Err(EditError(
            "could not edit `resources:` safely; edit the file by hand".to_owned(),
        ))
    }
}

/// Add `entry` to the `resources:` list, keeping the list sorted where it already is and
/// leaving every other line as it was. `None` when the entry is already listed.
pub fn add(text: &str, entry: &str) -> Result<Option<String>, EditError> {
    let lines: Vec<&str> = text.lines().collect();
    let block = parse(&lines)?;
    let mut out: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    match block {
        None => {
            if !text.is_empty() && !text.ends_with('\n') {
                // `lines()` already dropped the missing newline; rebuilding adds it.
            }
            out.push("resources:".to_owned());
            out.push(format!("- {entry}"));
        }
        Some(block) => {
            if block
                .items
                .iter()
                .any(|i| normalize(&i.value) == normalize(entry))
            {
                return Ok(None);
            }
            if block.flow {
                // Flow style: rewrite as a block list.
                let mut values: Vec<String> = block.items.iter().map(|i| i.value.clone()).collect();
                let at = values
                    .iter()
                    .position(|v| normalize(v) > normalize(entry))
                    .unwrap_or(values.len());
                values.insert(at, entry.to_owned());
                let mut replacement = vec!["resources:".to_owned()];
                replacement.extend(values.into_iter().map(|v| format!("- {v}")));
                out.splice(block.key_line..block.key_line + 1, replacement);
            } else if block.items.is_empty() && block.end == block.key_line + 1 {
                out.insert(block.key_line + 1, format!("{}{entry}", block.item_prefix));
            } else {
                let line = block
                    .items
                    .iter()
                    .find(|i| normalize(&i.value) > normalize(entry))
                    .map(|i| i.line)
                    .unwrap_or(block.end);
                out.insert(line, format!("{}{entry}", block.item_prefix));
            }
        }
    }
    let mut result = out.join("\n");
    result.push('\n');
    verify(&result, entry, true)?;
    Ok(Some(result))
}

/// Add several entries at once: to a new file when `text` is `None`. Returns the new text
/// (`None` when every entry was already listed) and the entries that were added.
pub fn add_many(
    text: Option<&str>,
    entries: &[String],
) -> Result<(Option<String>, Vec<String>), EditError> {
    let mut current: Option<String> = None;
    let mut added = Vec::new();
    let mut sorted: Vec<&String> = entries.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut listed: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    if let Some(t) = text {
        let lines: Vec<&str> = t.lines().collect();
        if let Some(block) = parse(&lines)? {
            listed.extend(block.items.iter().map(|i| normalize(&i.value).to_owned()));
        }
    }
    for entry in sorted {
        if listed.contains(normalize(entry)) {
            continue;
        }
        let base = current.as_deref().or(text);
        let next = match base {
            None => Some(new_file(entry)),
            Some(t) => add(t, entry)?,
        };
        if let Some(next) = next {
            current = Some(next);
            listed.insert(normalize(entry).to_owned());
            added.push(entry.clone());
        }
    }
    Ok((current, added))
}

/// Remove `entry` from the `resources:` list. `None` when it was not listed.
pub fn remove(text: &str, entry: &str) -> Result<Option<String>, EditError> {
    let lines: Vec<&str> = text.lines().collect();
    let Some(block) = parse(&lines)? else {
        return Ok(None);
    };
    let matching: Vec<usize> = block
        .items
        .iter()
        .filter(|i| normalize(&i.value) == normalize(entry))
        .map(|i| i.line)
        .collect();
    if matching.is_empty() {
        return Ok(None);
    }
    let mut out: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    if block.flow {
        let values: Vec<String> = block
            .items
            .iter()
            .filter(|i| normalize(&i.value) != normalize(entry))
            .map(|i| i.value.clone())
            .collect();
        out[block.key_line] = format!("resources: [{}]", values.join(", "));
    } else {
        for line in matching.into_iter().rev() {
            out.remove(line);
        }
        if block.items.len() == 1 {
            // Leave a valid empty list rather than a `resources:` key with a null value.
            out[block.key_line] = "resources: []".to_owned();
        }
    }
    let mut result = out.join("\n");
    result.push('\n');
    verify(&result, entry, false)?;
    Ok(Some(result))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_sorted_keeping_comments_and_other_fields() {
        let text = "# platform tenants\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  # the first one\n  - alpha/\n  - gamma/ # late\ncommonLabels:\n  x: y\n";
        let out = add(text, "beta/").unwrap().unwrap();
        assert_eq!(
            out,
            "# platform tenants\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  # the first one\n  - alpha/\n  - beta/\n  - gamma/ # late\ncommonLabels:\n  x: y\n"
        );
        let out = add(&out, "zeta/").unwrap().unwrap();
        assert!(
            out.contains("  - gamma/ # late\n  - zeta/\ncommonLabels:"),
            "{out}"
        );
    }

    #[test]
    fn already_listed_in_any_spelling_is_a_no_op() {
        for spelt in ["shop", "shop/", "./shop/", "\"shop/\""] {
            let text = format!("resources:\n- {spelt}\n");
            assert_eq!(add(&text, "shop/").unwrap(), None, "{spelt}");
        }
    }

    #[test]
    fn adds_to_missing_and_flow_lists() {
        assert_eq!(
            add("kind: Kustomization\n", "a/").unwrap().unwrap(),
            "kind: Kustomization\nresources:\n- a/\n"
        );
        assert_eq!(
            add("resources: []\n", "a/").unwrap().unwrap(),
            "resources:\n- a/\n"
        );
        assert_eq!(
            add("resources: [c/, a/]\n", "b/").unwrap().unwrap(),
            "resources:\n- b/\n- c/\n- a/\n"
        );
    }

    #[test]
    fn removes_only_the_entry() {
        let text = "resources:\n- a/\n# keep me\n- b/\n- c/\n";
        assert_eq!(
            remove(text, "b/").unwrap().unwrap(),
            "resources:\n- a/\n# keep me\n- c/\n"
        );
        assert_eq!(remove(text, "x/").unwrap(), None);
        assert_eq!(
            remove("resources:\n- a/\n", "a/").unwrap().unwrap(),
            "resources: []\n"
        );
    }

    #[test]
    fn refuses_what_it_cannot_edit_safely() {
        assert!(add("resources: shop\n", "a/").is_err());
        assert!(add("resources:\n- {path: x}\n", "a/").is_err());
    }
}
