//! What the cluster serves, as discovery reports it.
//!
//! Two questions depend on it and both must be answered before anything is written. Can
//! every layer of this tenant be applied? A tenant whose Flux CRDs are missing must stop
//! with the CRD's name before its namespace exists, not halfway through. And where can
//! objects labelled for a tenant hide? Pruning and the offboarding leftovers check list
//! every type that can be listed and deleted, not a fixed list of kinds Tenantry happens
//! to render today, so an object from an older Tenantry or a hand-made copy is still found.

use std::{collections::BTreeMap, fmt};

use serde::Serialize;
use tenantry_core::{DesiredObject, Layer};

/// One served resource type (one version of one resource).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResourceType {
    /// API group, empty for the core group.
    pub group: String,
    /// Version, e.g. `v1`.
    pub version: String,
    /// Kind, e.g. `Namespace`.
    pub kind: String,
    /// The resource (plural) name in URLs, e.g. `namespaces`.
    pub plural: String,
    /// Whether objects of this type live in a namespace.
    pub namespaced: bool,
    /// Verbs the server supports on it.
    pub verbs: Vec<String>,
}

impl ResourceType {
    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// True when the server supports `verb` on this type.
    pub fn supports(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }

    /// `plural.group` (or `plural` for the core group), as `kubectl api-resources` and
    /// CustomResourceDefinition names spell it.
    pub fn qualified_name(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

/// A kind a tenant needs that the cluster does not serve.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MissingKind {
    /// The layer that needs it.
    #[serde(serialize_with = "serialize_layer")]
    pub layer: Layer,
    /// The `apiVersion` the tenant's objects use.
    pub api_version: String,
    /// The kind.
    pub kind: String,
    /// The CustomResourceDefinition that would serve it, e.g.
    /// `ocirepositories.source.toolkit.fluxcd.io`.
    pub crd: String,
    /// Versions of the group the cluster does serve (an older or newer CRD installed).
    pub served_versions: Vec<String>,
}

impl fmt::Display for MissingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "layer {}: {} {} is not served; CustomResourceDefinition {} is not installed",
            self.layer, self.api_version, self.kind, self.crd
        )?;
        if !self.served_versions.is_empty() {
            write!(
                f,
                " at this version (the cluster serves {})",
                self.served_versions.join(", ")
            )?;
        }
        Ok(())
    }
}

/// Serialize a [`Layer`] by its short name (the type lives in `tenantry-core`, which has no
/// serde dependency for it).
pub(crate) fn serialize_layer<S: serde::Serializer>(
    layer: &Layer,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(layer.as_str())
}

/// Types a prune or leftovers scan never lists: high-volume, never labelled by Tenantry,
/// and mirrored in two groups.
const NEVER_SCANNED: [(&str, &str); 2] = [("", "events"), ("events.k8s.io", "events")];

/// Every resource type the cluster serves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Catalog {
    types: Vec<ResourceType>,
    /// Versions of each group, preferred first.
    versions: BTreeMap<String, Vec<String>>,
}

impl Catalog {
    /// A catalog from discovered types. Within a group, versions must come preferred first,
    /// as discovery lists them.
    pub fn new(types: Vec<ResourceType>) -> Self {
        let mut versions: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for t in &types {
            let list = versions.entry(t.group.clone()).or_default();
            if !list.contains(&t.version) {
                list.push(t.version.clone());
            }
        }
        Self { types, versions }
    }

    /// Every served type.
    pub fn types(&self) -> &[ResourceType] {
        &self.types
    }

    /// The type serving `kind` at `api_version`.
    pub fn find(&self, api_version: &str, kind: &str) -> Option<&ResourceType> {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.kind == kind)
    }

    /// The kinds among `objects` the cluster does not serve, once each, in apply order.
    pub fn missing(&self, objects: &[DesiredObject]) -> Vec<MissingKind> {
        let mut missing: Vec<MissingKind> = Vec::new();
        for o in objects {
            if self.find(o.api_version, o.kind).is_some()
                || missing
                    .iter()
                    .any(|m| m.api_version == o.api_version && m.kind == o.kind)
            {
                continue;
            }
            let group = o.group();
            missing.push(MissingKind {
                layer: o.layer,
                api_version: o.api_version.to_owned(),
                kind: o.kind.to_owned(),
                crd: format!("{}.{group}", plural_of(o.kind)),
                served_versions: self.versions.get(group).cloned().unwrap_or_default(),
            });
        }
        missing
    }

    /// The types a prune or leftovers scan lists: the preferred version of every resource
    /// that supports both `list` and `delete`.
    pub fn scannable(&self) -> Vec<&ResourceType> {
        let mut out: Vec<&ResourceType> = Vec::new();
        for t in &self.types {
            if !(t.supports("list") && t.supports("delete"))
                || NEVER_SCANNED.contains(&(t.group.as_str(), t.plural.as_str()))
            {
                continue;
            }
            // One version per resource: the first (preferred) version that serves it.
            let preferred = self.versions.get(&t.group).and_then(|versions| {
                versions.iter().find(|v| {
                    self.types
                        .iter()
                        .any(|o| o.group == t.group && &o.version == *v && o.plural == t.plural)
                })
            });
            if preferred == Some(&t.version) {
                out.push(t);
            }
        }
        out
    }
}

/// The plural resource name of a kind, for naming a CRD that is not installed (so discovery
/// cannot say). Exact for every kind Tenantry renders; English rules otherwise, as
/// `kubectl` guesses.
pub fn plural_of(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    if lower.ends_with("parameters") {
        // `GuardrailParameters` is already plural.
        lower
    } else if lower.ends_with('y') && !lower.ends_with("ay") && !lower.ends_with("ey") {
        format!("{}ies", &lower[..lower.len() - 1])
    } else if lower.ends_with('s')
        || lower.ends_with("sh")
        || lower.ends_with("ch")
        || lower.ends_with('x')
    {
        format!("{lower}es")
    } else {
        format!("{lower}s")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rt(group: &str, version: &str, kind: &str, plural: &str, verbs: &[&str]) -> ResourceType {
        ResourceType {
            group: group.to_owned(),
            version: version.to_owned(),
            kind: kind.to_owned(),
            plural: plural.to_owned(),
            namespaced: true,
            verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
        }
    }

    fn object(layer: Layer, api_version: &'static str, kind: &'static str) -> DesiredObject {
        DesiredObject {
            layer,
            api_version,
            kind,
            namespace: Some("shop".to_owned()),
            name: "shop".to_owned(),
            body: json!({}),
        }
    }

    const ALL: &[&str] = &["get", "list", "delete", "patch"];

    #[test]
    fn missing_kinds_name_the_crd_and_the_versions_that_are_served() {
        let catalog = Catalog::new(vec![
            rt("", "v1", "Namespace", "namespaces", ALL),
            rt(
                "external-secrets.io",
                "v1beta1",
                "ExternalSecret",
                "externalsecrets",
                ALL,
            ),
        ]);
        let objects = [
            object(Layer::Namespace, "v1", "Namespace"),
            object(Layer::Secrets, "external-secrets.io/v1", "ExternalSecret"),
            object(
                Layer::Delivery,
                "source.toolkit.fluxcd.io/v1",
                "OCIRepository",
            ),
            object(
                Layer::Delivery,
                "kustomize.toolkit.fluxcd.io/v1",
                "Kustomization",
            ),
            object(
                Layer::Delivery,
                "source.toolkit.fluxcd.io/v1",
                "OCIRepository",
            ),
        ];
        let missing = catalog.missing(&objects);
        let crds: Vec<&str> = missing.iter().map(|m| m.crd.as_str()).collect();
        assert_eq!(
            crds,
            [
                "externalsecrets.external-secrets.io",
                "ocirepositories.source.toolkit.fluxcd.io",
                "kustomizations.kustomize.toolkit.fluxcd.io"
            ]
        );
        assert_eq!(missing[0].served_versions, ["v1beta1"]);
        assert_eq!(
            missing[0].to_string(),
            "layer secrets: external-secrets.io/v1 ExternalSecret is not served; CustomResourceDefinition externalsecrets.external-secrets.io is not installed at this version (the cluster serves v1beta1)"
        );
    }

    #[test]
    fn scans_list_each_deletable_resource_once_at_its_preferred_version() {
        let catalog = Catalog::new(vec![
            rt("", "v1", "Namespace", "namespaces", ALL),
            rt("", "v1", "Event", "events", ALL),
            rt("", "v1", "Binding", "bindings", &["create"]),
            rt(
                "external-secrets.io",
                "v1",
                "ExternalSecret",
                "externalsecrets",
                ALL,
            ),
            rt(
                "external-secrets.io",
                "v1beta1",
                "ExternalSecret",
                "externalsecrets",
                ALL,
            ),
            rt("external-secrets.io", "v1beta1", "Old", "olds", ALL),
            rt("events.k8s.io", "v1", "Event", "events", ALL),
            rt(
                "metrics.k8s.io",
                "v1beta1",
                "PodMetrics",
                "pods",
                &["get", "list"],
            ),
        ]);
        let names: Vec<String> = catalog
            .scannable()
            .iter()
            .map(|t| format!("{}/{}", t.api_version(), t.plural))
            .collect();
        assert_eq!(
            names,
            [
                "v1/namespaces",
                "external-secrets.io/v1/externalsecrets",
                "external-secrets.io/v1beta1/olds"
            ]
        );
    }

    #[test]
    fn plurals_of_rendered_kinds_match_their_crds() {
        for (kind, plural) in [
            ("OCIRepository", "ocirepositories"),
            ("GitRepository", "gitrepositories"),
            ("Kustomization", "kustomizations"),
            ("AppProject", "appprojects"),
            ("Application", "applications"),
            ("ExternalSecret", "externalsecrets"),
            ("SecretStore", "secretstores"),
            ("CiliumNetworkPolicy", "ciliumnetworkpolicies"),
            ("Gateway", "gateways"),
            ("Ingress", "ingresses"),
            ("GuardrailParameters", "guardrailparameters"),
            (
                "ValidatingAdmissionPolicyBinding",
                "validatingadmissionpolicybindings",
            ),
        ] {
            assert_eq!(plural_of(kind), plural);
        }
    }
}
