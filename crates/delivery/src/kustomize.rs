//! `kustomize build` for the subset a tenant's `deploy/` tree uses, because no kustomize
//! implementation exists as a crate or a Debian package here and shelling out would make
//! `publish` depend on a binary the tenant's CI may not have.
//!
//! Supported: `resources` (files, and directories with their own kustomization, local
//! only), `namespace`, `commonLabels`, `labels` (`pairs`, `includeSelectors`,
//! `includeTemplates`) and `images` (`name`, `newName`, `newTag`, `digest`). Anything else
//! changes what kustomize would build, so it is refused, naming the file and the field,
//! rather than silently built differently: what is published must be what the tenant means.
//! Labels reach the places kustomize's built-in field specs name for the kinds a tenant
//! deploys (workload selectors and pod templates, Service selectors, PodDisruptionBudgets);
//! a resource file must lie inside its kustomization's directory, as kustomize's default
//! load restrictor requires.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

use serde_json::{Map, Value};
use tenantry_policy::input;

use crate::DeliveryError;

/// The file names kustomize looks for, in its order.
pub const KUSTOMIZATION_FILES: [&str; 3] =
    ["kustomization.yaml", "kustomization.yml", "Kustomization"];
const SUPPORTED: [&str; 7] = [
    "apiVersion",
    "kind",
    "resources",
    "namespace",
    "commonLabels",
    "labels",
    "images",
];
/// Kinds that have no namespace (left alone by `namespace:`).
const CLUSTER_SCOPED: [&str; 14] = [
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
    "IngressClass",
    "RuntimeClass",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "APIService",
];
const WORKLOADS: [&str; 4] = ["Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"];

/// Build the kustomization in `dir`: its objects, in kustomize's resource order.
pub fn build(dir: &Path) -> Result<Vec<Value>, DeliveryError> {
    let mut stack = Vec::new();
    build_dir(dir, &mut stack)
}

fn kustomize_error(file: &Path, field: &str, message: impl Into<String>) -> DeliveryError {
    DeliveryError::Kustomize {
        file: file.to_path_buf(),
        field: field.to_owned(),
        message: message.into(),
    }
}

fn read(path: &Path) -> Result<String, DeliveryError> {
    fs::read_to_string(path).map_err(|source| DeliveryError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn parse(path: &Path, text: &str) -> Result<Vec<Value>, DeliveryError> {
    let format = input::Format::for_file_name(&path.display().to_string());
    input::parse(text, format)
        .map(|docs| docs.into_iter().map(|d| d.value).collect())
        .map_err(|e| DeliveryError::Parse {
            file: path.to_path_buf(),
            line: e.line,
            message: e.message,
        })
}

fn build_dir(dir: &Path, stack: &mut Vec<PathBuf>) -> Result<Vec<Value>, DeliveryError> {
    let canonical = fs::canonicalize(dir).map_err(|source| DeliveryError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let Some(file) = KUSTOMIZATION_FILES
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
    else {
        return Err(kustomize_error(
            dir,
            "",
            "has no kustomization.yaml (publish builds a kustomize directory)",
        ));
    };
    if stack.contains(&canonical) {
        return Err(kustomize_error(
            &file,
            "resources",
            "includes itself (a cycle)",
        ));
    }
    stack.push(canonical.clone());
    let text = read(&file)?;
    let docs = parse(&file, &text)?;
    let k = match docs.as_slice() {
        [Value::Object(k)] => k.clone(),
        [Value::Null] | [] => Map::new(),
        _ => return Err(kustomize_error(&file, "", "must be one YAML mapping")),
    };
    for field in k.keys() {
        if !SUPPORTED.contains(&field.as_str()) {
            return Err(kustomize_error(
                &file,
                field,
                format!(
                    "is not supported by tenantry's kustomize subset (supported: {}); build \
                     with kustomize and check the output with `tenantry check`, or remove it",
                    SUPPORTED[2..].join(", ")
                ),
            ));
        }
    }
    let mut objects = Vec::new();
    let resources = match k.get("resources") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(_) => {
            return Err(kustomize_error(
                &file,
                "resources",
                "must be a list of paths",
            ));
        }
    };
    for (i, entry) in resources.iter().enumerate() {
        let field = format!("resources[{i}]");
        let Some(entry) = entry.as_str() else {
            return Err(kustomize_error(&file, &field, "must be a path"));
        };
        if tenantry_policy::is_remote_kustomize_resource(entry) {
            return Err(kustomize_error(
                &file,
                &field,
                format!("{entry:?} is remote; publish builds only what is in the repository"),
            ));
        }
        let target = dir.join(entry);
        let meta = fs::metadata(&target)
            .map_err(|e| kustomize_error(&file, &field, format!("{entry:?}: {e}")))?;
        if meta.is_dir() {
            objects.extend(build_dir(&target, stack)?);
        } else {
            let inside = fs::canonicalize(&target).is_ok_and(|t| t.starts_with(&canonical));
            if !inside {
                return Err(kustomize_error(
                    &file,
                    &field,
                    format!(
                        "{entry:?} is outside {} (kustomize's load restrictor refuses it)",
                        dir.display()
                    ),
                ));
            }
            let text = read(&target)?;
            for doc in parse(&target, &text)? {
                push_objects(doc, &target, &mut objects)?;
            }
        }
    }
    apply(&k, &file, &mut objects)?;
    stack.pop();
    Ok(objects)
}

fn push_objects(doc: Value, file: &Path, out: &mut Vec<Value>) -> Result<(), DeliveryError> {
    match doc {
        Value::Null => Ok(()),
        Value::Object(ref m) if m.get("kind").and_then(Value::as_str) == Some("List") => {
            for item in m
                .get("items")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                push_objects(item.clone(), file, out)?;
            }
            Ok(())
        }
        Value::Object(ref m) if m.contains_key("kind") && m.contains_key("apiVersion") => {
            out.push(doc);
            Ok(())
        }
        _ => Err(DeliveryError::Parse {
            file: file.to_path_buf(),
            line: None,
            message: "a document without apiVersion and kind is not a Kubernetes object".into(),
        }),
    }
}

/// How far a label reaches.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reach {
    Metadata,
    Templates,
    Selectors,
}

fn string_map(
    v: &Value,
    file: &Path,
    field: &str,
) -> Result<BTreeMap<String, String>, DeliveryError> {
    let Some(m) = v.as_object() else {
        return Err(kustomize_error(file, field, "must be a mapping of strings"));
    };
    m.iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            Value::Number(n) => Ok((k.clone(), n.to_string())),
            Value::Bool(b) => Ok((k.clone(), b.to_string())),
            _ => Err(kustomize_error(
                file,
                &format!("{field}.{k}"),
                "must be a string",
            )),
        })
        .collect()
}

fn apply(k: &Map<String, Value>, file: &Path, objects: &mut [Value]) -> Result<(), DeliveryError> {
    if let Some(ns) = k.get("namespace").filter(|v| !v.is_null()) {
        let Some(ns) = ns.as_str() else {
            return Err(kustomize_error(file, "namespace", "must be a string"));
        };
        for o in objects.iter_mut() {
            let kind = o.get("kind").and_then(Value::as_str).unwrap_or_default();
            if !CLUSTER_SCOPED.contains(&kind) {
                set(o, &["metadata", "namespace"], Value::from(ns));
            }
        }
    }
    if let Some(v) = k.get("commonLabels").filter(|v| !v.is_null()) {
        let pairs = string_map(v, file, "commonLabels")?;
        for o in objects.iter_mut() {
            add_labels(o, &pairs, Reach::Selectors);
        }
    }
    if let Some(v) = k.get("labels").filter(|v| !v.is_null()) {
        let Some(list) = v.as_array() else {
            return Err(kustomize_error(file, "labels", "must be a list"));
        };
        for (i, entry) in list.iter().enumerate() {
            let at = format!("labels[{i}]");
            let Some(entry) = entry.as_object() else {
                return Err(kustomize_error(file, &at, "must be a mapping"));
            };
            for key in entry.keys() {
                if !["pairs", "includeSelectors", "includeTemplates"].contains(&key.as_str()) {
                    return Err(kustomize_error(
                        file,
                        &format!("{at}.{key}"),
                        "is not supported (supported: pairs, includeSelectors, includeTemplates)",
                    ));
                }
            }
            let flag = |name: &str| entry.get(name).and_then(Value::as_bool).unwrap_or(false);
            let reach = if flag("includeSelectors") {
                Reach::Selectors
            } else if flag("includeTemplates") {
                Reach::Templates
            } else {
                Reach::Metadata
            };
            let pairs = string_map(
                entry.get("pairs").unwrap_or(&Value::Null),
                file,
                &format!("{at}.pairs"),
            )?;
            for o in objects.iter_mut() {
                add_labels(o, &pairs, reach);
            }
        }
    }
    if let Some(v) = k.get("images").filter(|v| !v.is_null()) {
        let Some(list) = v.as_array() else {
            return Err(kustomize_error(file, "images", "must be a list"));
        };
        for (i, entry) in list.iter().enumerate() {
            let at = format!("images[{i}]");
            let Some(entry) = entry.as_object() else {
                return Err(kustomize_error(file, &at, "must be a mapping"));
            };
            let get = |key: &str| -> Result<Option<String>, DeliveryError> {
                match entry.get(key) {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::String(s)) => Ok(Some(s.clone())),
                    Some(Value::Number(n)) => Ok(Some(n.to_string())),
                    Some(_) => Err(kustomize_error(
                        file,
                        &format!("{at}.{key}"),
                        "must be a string",
                    )),
                }
            };
            for key in entry.keys() {
                if !["name", "newName", "newTag", "digest"].contains(&key.as_str()) {
                    return Err(kustomize_error(
                        file,
                        &format!("{at}.{key}"),
                        "is not supported (supported: name, newName, newTag, digest)",
                    ));
                }
            }
            let Some(name) = get("name")? else {
                return Err(kustomize_error(file, &format!("{at}.name"), "is required"));
            };
            let rule = ImageRule {
                name,
                new_name: get("newName")?,
                new_tag: get("newTag")?,
                digest: get("digest")?,
            };
            for o in objects.iter_mut() {
                for_each_container(o, |c| {
                    if let Some(image) = c.get("image").and_then(Value::as_str)
                        && let Some(new) = rule.rewrite(image)
                    {
                        c.insert("image".into(), Value::from(new));
                    }
                });
            }
        }
    }
    Ok(())
}

fn set(o: &mut Value, path: &[&str], value: Value) {
    let mut at = o;
    for (i, key) in path.iter().enumerate() {
        if !at.is_object() {
            *at = Value::Object(Map::new());
        }
        let map = at.as_object_mut().expect("made an object above");
        if i + 1 == path.len() {
            map.insert((*key).to_owned(), value);
            return;
        }
        at = map
            .entry((*key).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

fn merge_labels(o: &mut Value, path: &[&str], pairs: &BTreeMap<String, String>, create: bool) {
    let exists = path.iter().try_fold(&*o, |v, k| v.get(*k)).is_some();
    if !exists && !create {
        return;
    }
    for (k, v) in pairs {
        let mut full: Vec<&str> = path.to_vec();
        full.push(k);
        set(o, &full, Value::from(v.clone()));
    }
}

fn add_labels(o: &mut Value, pairs: &BTreeMap<String, String>, reach: Reach) {
    if pairs.is_empty() {
        return;
    }
    merge_labels(o, &["metadata", "labels"], pairs, true);
    if reach == Reach::Metadata {
        return;
    }
    let kind = o
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let selectors = reach == Reach::Selectors;
    match kind.as_str() {
        k if WORKLOADS.contains(&k) => {
            merge_labels(o, &["spec", "template", "metadata", "labels"], pairs, true);
            if selectors {
                merge_labels(o, &["spec", "selector", "matchLabels"], pairs, true);
            }
        }
        "Job" => merge_labels(o, &["spec", "template", "metadata", "labels"], pairs, true),
        "CronJob" => {
            merge_labels(
                o,
                &["spec", "jobTemplate", "metadata", "labels"],
                pairs,
                true,
            );
            merge_labels(
                o,
                &[
                    "spec",
                    "jobTemplate",
                    "spec",
                    "template",
                    "metadata",
                    "labels",
                ],
                pairs,
                true,
            );
        }
        "Service" if selectors => merge_labels(o, &["spec", "selector"], pairs, true),
        "PodDisruptionBudget" if selectors => {
            merge_labels(o, &["spec", "selector", "matchLabels"], pairs, false);
        }
        _ => {}
    }
}

fn for_each_container(o: &mut Value, mut f: impl FnMut(&mut Map<String, Value>)) {
    let kind = o.get("kind").and_then(Value::as_str).unwrap_or_default();
    let spec_path: &[&str] = match kind {
        "Pod" => &["spec"],
        "CronJob" => &["spec", "jobTemplate", "spec", "template", "spec"],
        _ => &["spec", "template", "spec"],
    };
    let Some(spec) = spec_path.iter().try_fold(o, |v, k| v.get_mut(*k)) else {
        return;
    };
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for c in spec
            .get_mut(list)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if let Some(c) = c.as_object_mut() {
                f(c);
            }
        }
    }
}

/// One `images` entry.
struct ImageRule {
    name: String,
    new_name: Option<String>,
    new_tag: Option<String>,
    digest: Option<String>,
}

impl ImageRule {
    /// The rewritten reference, or `None` when `image` is not this rule's.
    fn rewrite(&self, image: &str) -> Option<String> {
        let (name, tag, digest) = split_image(image);
        if name != self.name {
            return None;
        }
        let name = self.new_name.as_deref().unwrap_or(name);
        Some(match (&self.digest, &self.new_tag) {
            (Some(d), _) => format!("{name}@{d}"),
            (None, Some(t)) => format!("{name}:{t}"),
            (None, None) => match (tag, digest) {
                (_, Some(d)) => format!("{name}@{d}"),
                (Some(t), None) => format!("{name}:{t}"),
                (None, None) => name.to_owned(),
            },
        })
    }
}

/// `name[:tag][@digest]` into its parts (a `:` before the last `/` is a registry port).
fn split_image(image: &str) -> (&str, Option<&str>, Option<&str>) {
    let (rest, digest) = match image.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (image, None),
    };
    let slash = rest.rfind('/').map_or(0, |i| i + 1);
    match rest[slash..].rfind(':') {
        Some(i) => (&rest[..slash + i], Some(&rest[slash + i + 1..]), digest),
        None => (rest, None, digest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        let p = dir.join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n        - name: web\n          image: registry.example:5000/team/web:1.0\n";

    #[test]
    fn builds_resources_with_namespace_labels_and_images() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "base/deployment.yaml", DEPLOYMENT);
        write(
            d.path(),
            "base/kustomization.yaml",
            "resources: [deployment.yaml]\n",
        );
        write(
            d.path(),
            "service.yaml",
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector:\n    app: web\n",
        );
        write(
            d.path(),
            "kustomization.yaml",
            "namespace: shop\ncommonLabels:\n  team: shop\nlabels:\n  - pairs: {tier: front}\nimages:\n  - name: registry.example:5000/team/web\n    newTag: \"2.0\"\nresources:\n  - base\n  - service.yaml\n",
        );
        let objects = build(d.path()).unwrap();
        assert_eq!(objects.len(), 2);
        let dep = &objects[0];
        assert_eq!(dep["metadata"]["namespace"], "shop");
        assert_eq!(dep["metadata"]["labels"]["team"], "shop");
        assert_eq!(dep["metadata"]["labels"]["tier"], "front");
        assert_eq!(dep["spec"]["selector"]["matchLabels"]["team"], "shop");
        assert_eq!(
            dep["spec"]["template"]["metadata"]["labels"]["team"],
            "shop"
        );
        assert!(dep["spec"]["selector"]["matchLabels"].get("tier").is_none());
        assert_eq!(
            dep["spec"]["template"]["spec"]["containers"][0]["image"],
            "registry.example:5000/team/web:2.0"
        );
        assert_eq!(objects[1]["spec"]["selector"]["team"], "shop");
    }

    #[test]
    fn refuses_unsupported_fields_naming_file_and_field() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "kustomization.yaml",
            "resources: []\npatches:\n  - path: p.yaml\n",
        );
        let e = build(d.path()).unwrap_err().to_string();
        assert!(
            e.contains("kustomization.yaml") && e.contains("patches"),
            "{e}"
        );
        write(
            d.path(),
            "kustomization.yaml",
            "labels:\n  - pairs: {a: b}\n    fields: []\n",
        );
        let e = build(d.path()).unwrap_err().to_string();
        assert!(e.contains("labels[0].fields"), "{e}");
    }

    #[test]
    fn refuses_remote_escaping_and_missing_resources() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "k/kustomization.yaml",
            "resources: [\"https://github.com/x/y//deploy\"]\n",
        );
        assert!(
            build(&d.path().join("k"))
                .unwrap_err()
                .to_string()
                .contains("remote")
        );
        write(d.path(), "outside.yaml", DEPLOYMENT);
        write(
            d.path(),
            "k/kustomization.yaml",
            "resources: [../outside.yaml]\n",
        );
        assert!(
            build(&d.path().join("k"))
                .unwrap_err()
                .to_string()
                .contains("outside")
        );
        write(d.path(), "k/kustomization.yaml", "resources: [gone.yaml]\n");
        let e = build(&d.path().join("k")).unwrap_err().to_string();
        assert!(e.contains("resources[0]") && e.contains("gone.yaml"), "{e}");
    }

    #[test]
    fn image_rules_follow_kustomize() {
        let rule =
            |new_name: Option<&str>, new_tag: Option<&str>, digest: Option<&str>| ImageRule {
                name: "nginx".into(),
                new_name: new_name.map(Into::into),
                new_tag: new_tag.map(Into::into),
                digest: digest.map(Into::into),
            };
        assert_eq!(
            rule(None, Some("1.2"), None).rewrite("nginx:1.0").unwrap(),
            "nginx:1.2"
        );
        assert_eq!(
            rule(Some("r.io/nginx"), None, None)
                .rewrite("nginx:1.0")
                .unwrap(),
            "r.io/nginx:1.0"
        );
        assert_eq!(
            rule(None, Some("x"), Some("sha256:ab"))
                .rewrite("nginx")
                .unwrap(),
            "nginx@sha256:ab"
        );
        assert_eq!(rule(None, Some("1"), None).rewrite("other/nginx:1.0"), None);
        assert_eq!(split_image("host:5000/a/b"), ("host:5000/a/b", None, None));
    }
}
