//! Rendered objects as YAML text, exactly as they are committed and printed.
//!
//! The text is part of Tenantry's contract: `onboard` compares it byte for byte to decide
//! `unchanged`, and reviewers read it in pull requests. So the format is fixed here, once:
//! a header naming the source, then the object with keys in Kubernetes' conventional order
//! (`apiVersion`, `kind`, `metadata`, `spec`).

use crate::object::DesiredObject;

/// The header written above every rendered object.
pub fn header(tenant: &str) -> String {
    format!(
        "# Rendered by Tenantry from tenant {tenant}; edit tenant.yaml or tenantry.yaml, not this file.\n"
    )
}

/// One object as a YAML document body (no `---`).
pub fn object_yaml(object: &DesiredObject) -> String {
    crate::document::to_yaml(&object.body)
}

/// One object as it is written to its file: header, then the object.
pub fn object_file(tenant: &str, object: &DesiredObject) -> String {
    let mut text = header(tenant);
    text.push_str(&object_yaml(object));
    text
}

/// Objects as one multi-document YAML stream, each document starting with `---`.
pub fn multi_document<'a>(objects: impl IntoIterator<Item = &'a DesiredObject>) -> String {
    let mut out = String::new();
    for object in objects {
        out.push_str("---\n");
        out.push_str(&object_yaml(object));
    }
    out
}
