//! Policies on pods and pod templates: Pod Security, requests and limits, registries, pull
//! policy and digests.
//!
//! All of them read the pod template the PodSecurity plugin would extract
//! ([`crate::pss::pod_template`]), so a Deployment, a CronJob and a bare Pod get the same
//! verdict at paths into their own shape. Ephemeral containers are judged on images (they run
//! code like any other) but not on resources, which the API does not let them set.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::{objects_in, str_of};
use crate::engine::{Eval, Severity, Sink, TenantInfo, join};
use crate::image::{ImageRef, RegistryPrefix};
use crate::pss::{self, PodTemplateRef};

type Object = Map<String, Value>;

/// The container lists of a pod spec, in the order upstream visits them.
const INIT: &str = "initContainers";
const REGULAR: &str = "containers";
const EPHEMERAL: &str = "ephemeralContainers";

/// One container of a pod spec with where it sits.
struct Container<'a> {
    /// `spec.containers[2]` under the template prefix.
    path: String,
    name: &'a str,
    object: &'a Object,
}

impl Container<'_> {
    fn field(&self, rest: &str) -> String {
        join(&self.path, rest)
    }
}

/// The containers of the given lists, in order. Elements that are not objects cannot carry
/// the fields these policies read and are left to the API server's validation.
fn containers<'a>(template: &PodTemplateRef<'a>, lists: &[&'static str]) -> Vec<Container<'a>> {
    let Some(spec) = template.spec.as_object() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for &list in lists {
        for (i, object) in objects_in(spec, list) {
            out.push(Container {
                path: join(template.path_prefix, &format!("spec.{list}[{i}]")),
                name: str_of(object, "name").unwrap_or(""),
                object,
            });
        }
    }
    out
}

/// `image` volumes (OCI artifacts mounted as volumes) with their paths.
fn image_volumes<'a>(template: &PodTemplateRef<'a>) -> Vec<(String, &'a Object)> {
    let Some(spec) = template.spec.as_object() else {
        return Vec::new();
    };
    objects_in(spec, "volumes")
        .filter_map(|(i, volume)| {
            let image = volume.get("image")?.as_object()?;
            Some((
                join(template.path_prefix, &format!("spec.volumes[{i}].image")),
                image,
            ))
        })
        .collect()
}

/// Whether an update of a pod or controller could create pods different from the ones that
/// exist. Controllers: the template changed. Pods: upstream PodSecurity's rule (images and
/// seccomp annotations, container counts) plus any change to ephemeral containers, which
/// are added through an update.
pub(crate) fn significant_update(template: &PodTemplateRef<'_>, old: &Value) -> bool {
    let Some(before) = pss::pod_template(old) else {
        return true;
    };
    if !template.path_prefix.is_empty() {
        return template.metadata != before.metadata || template.spec != before.spec;
    }
    const SECCOMP_POD: &str = "seccomp.security.alpha.kubernetes.io/pod";
    const SECCOMP_CONTAINER: &str = "container.seccomp.security.alpha.kubernetes.io/";
    let annotation = |t: &PodTemplateRef<'_>, key: &str| -> Option<Value> {
        t.metadata.get("annotations")?.get(key).cloned()
    };
    if annotation(template, SECCOMP_POD) != annotation(&before, SECCOMP_POD) {
        return true;
    }
    if template.spec.get(EPHEMERAL) != before.spec.get(EPHEMERAL) {
        return true;
    }
    for list in [REGULAR, INIT] {
        let now = template.spec.get(list).and_then(Value::as_array);
        let was = before.spec.get(list).and_then(Value::as_array);
        let (now, was) = (
            now.map(Vec::as_slice).unwrap_or(&[]),
            was.map(Vec::as_slice).unwrap_or(&[]),
        );
        if now.len() != was.len() {
            return true;
        }
        for (c, o) in now.iter().zip(was) {
            if c.get("image") != o.get("image") {
                return true;
            }
            let name = c.get("name").and_then(Value::as_str).unwrap_or("");
            let key = format!("{SECCOMP_CONTAINER}{name}");
            if annotation(template, &key) != annotation(&before, &key) {
                return true;
            }
        }
    }
    false
}

/// `pod-security`: the Pod Security Standards at the namespace's enforce level (denied), plus
/// what its audit/warn levels add (warnings).
pub(crate) fn pod_security(eval: &Eval<'_>, template: &PodTemplateRef<'_>, sink: &mut Sink) {
    let plan = eval.engine.pod_security_plan(eval.ctx);
    let (level, version) = plan.enforce;
    let denied = pss::check_pod(
        level,
        version,
        template.metadata,
        template.spec,
        template.path_prefix,
    );
    for finding in &denied {
        sink.deny(
            finding.check,
            finding.path.clone(),
            format!(
                "{} (violates PodSecurity \"{level}:{version}\")",
                finding.message
            ),
            finding.remediation.clone(),
        );
    }
    // Sets, not searches per finding: a pod with thousands of containers stays linear.
    let denied_at: HashSet<(&str, &str)> =
        denied.iter().map(|d| (d.check, d.path.as_str())).collect();
    let mut warned: HashSet<(&'static str, String)> = HashSet::new();
    for (also_level, also_version) in plan.also {
        let findings = pss::check_pod(
            also_level,
            also_version,
            template.metadata,
            template.spec,
            template.path_prefix,
        );
        for finding in findings {
            if denied_at.contains(&(finding.check, finding.path.as_str()))
                || !warned.insert((finding.check, finding.path.clone()))
            {
                continue;
            }
            sink.push(
                Severity::Warn,
                finding.check,
                finding.path,
                format!(
                    "{} (would violate PodSecurity \"{also_level}:{also_version}\"; the \
                     namespace enforces \"{level}:{version}\")",
                    finding.message
                ),
                finding.remediation,
            );
        }
    }
}

/// Whether `resources.<section>.<resource>` is set on a container or pod.
fn sets(object: &Object, section: &str, resource: &str) -> bool {
    object
        .get("resources")
        .and_then(|r| r.get(section))
        .and_then(|s| s.get(resource))
        .is_some_and(|v| !v.is_null())
}

/// `require-requests-limits`: cpu and memory requests and a memory limit on containers and
/// init containers. A limit alone satisfies the request (the API server defaults a missing
/// request to the limit), and pod-level `resources` cover every container.
pub(crate) fn requests_limits(template: &PodTemplateRef<'_>, sink: &mut Sink) {
    let empty = Object::new();
    let pod = template.spec.as_object().unwrap_or(&empty);
    let pod_sets = |section: &str, resource: &str| sets(pod, section, resource);
    let pod_cpu = pod_sets("requests", "cpu") || pod_sets("limits", "cpu");
    let pod_memory_request = pod_sets("requests", "memory") || pod_sets("limits", "memory");
    let pod_memory_limit = pod_sets("limits", "memory");
    for c in containers(template, &[INIT, REGULAR]) {
        let has = |section: &str, resource: &str| sets(c.object, section, resource);
        let missing = [
            (
                "cpu-request",
                !(pod_cpu || has("requests", "cpu") || has("limits", "cpu")),
                "resources.requests.cpu",
                "cpu request",
                "100m",
            ),
            (
                "memory-request",
                !(pod_memory_request || has("requests", "memory") || has("limits", "memory")),
                "resources.requests.memory",
                "memory request",
                "128Mi",
            ),
            (
                "memory-limit",
                !(pod_memory_limit || has("limits", "memory")),
                "resources.limits.memory",
                "memory limit",
                "256Mi",
            ),
        ];
        for (check, is_missing, field, what, example) in missing {
            if !is_missing {
                continue;
            }
            sink.deny(
                check,
                c.field(field),
                format!("container {:?} sets no {}", c.name, what),
                format!(
                    "Set {field} on container {:?} (for example {example}): the scheduler, the \
                     namespace quota and the memory floor of its neighbours depend on it.",
                    c.name
                ),
            );
        }
    }
}

/// `allowed-registries`: every image (containers of all three kinds and `image` volumes) from
/// one of the tenant's registries. A tenant listing none is not restricted.
pub(crate) fn allowed_registries(
    template: &PodTemplateRef<'_>,
    tenant: &TenantInfo,
    sink: &mut Sink,
) {
    if tenant.registries.is_empty() {
        return;
    }
    let allowed: Vec<RegistryPrefix> = tenant
        .registries
        .iter()
        .map(|r| RegistryPrefix::parse(r))
        .collect();
    let registries = tenant.registries.join(", ");
    let mut judge = |path: String, owner: String, image: &str| match ImageRef::parse(image) {
        Err(e) => sink.deny(
            "invalid-image",
            path,
            format!("{owner} image {image:?} is not a valid image reference: it {e}"),
            "Use a reference like registry.example.com/team/app:1.2.3 or …@sha256:<digest>."
                .to_owned(),
        ),
        Ok(parsed)
            if allowed
                .iter()
                .any(|a| a.admits(&parsed.registry, &parsed.repository)) => {}
        Ok(parsed) => sink.deny(
            "registry-not-allowed",
            path,
            format!(
                "{owner} image {image:?} ({parsed}) is not from a registry tenant {} may use",
                tenant.name
            ),
            format!(
                "Use an image from {registries} (the tenant's `registries`), or ask the \
                 platform team to add the registry."
            ),
        ),
    };
    for_each_image(template, &mut judge);
}

/// `image-pull-policy-always`: every container (and image volume) pulls on every start, so a
/// node's cached image is never used without the registry's authorisation.
pub(crate) fn pull_policy_always(template: &PodTemplateRef<'_>, sink: &mut Sink) {
    let mut judge = |path: String, owner: String, policy: Option<&str>, image: Option<&str>| {
        let effective = match policy {
            Some(p) => p,
            None => match image.map(ImageRef::parse) {
                Some(Ok(parsed)) => parsed.default_pull_policy(),
                // Nothing sensible to default from; the API server refuses such images.
                _ => return,
            },
        };
        if effective == "Always" {
            return;
        }
        let how = if policy.is_some() {
            "sets"
        } else {
            "defaults to"
        };
        sink.deny(
            "image-pull-policy",
            path,
            format!("{owner} {how} pull policy {effective:?}"),
            "Set imagePullPolicy: Always, so every start re-checks the registry's authorisation."
                .to_owned(),
        );
    };
    for c in containers(template, &[INIT, REGULAR, EPHEMERAL]) {
        judge(
            c.field("imagePullPolicy"),
            format!("container {:?}", c.name),
            str_of(c.object, "imagePullPolicy"),
            str_of(c.object, "image"),
        );
    }
    for (path, volume) in image_volumes(template) {
        judge(
            join(&path, "pullPolicy"),
            "image volume".to_owned(),
            str_of(volume, "pullPolicy"),
            str_of(volume, "reference"),
        );
    }
}

/// `require-digest`: every image is pinned by digest, so what runs is what was reviewed.
pub(crate) fn require_digest(template: &PodTemplateRef<'_>, sink: &mut Sink) {
    let mut judge = |path: String, owner: String, image: &str| {
        if ImageRef::parse(image).is_ok_and(|parsed| parsed.digest.is_some()) {
            return;
        }
        sink.deny(
            "image-digest",
            path,
            format!("{owner} image {image:?} is not pinned by digest"),
            format!(
                "Pin the image by digest: {}@sha256:<digest> (a tag may stay before the @).",
                image.split('@').next().unwrap_or(image)
            ),
        );
    };
    for_each_image(template, &mut judge);
}

/// Every image reference a pod pulls: each container's, init and ephemeral containers'
/// included, and each `image` volume's, with its field path and a name for messages.
fn for_each_image(template: &PodTemplateRef<'_>, judge: &mut impl FnMut(String, String, &str)) {
    for c in containers(template, &[INIT, REGULAR, EPHEMERAL]) {
        if let Some(image) = str_of(c.object, "image") {
            judge(c.field("image"), format!("container {:?}", c.name), image);
        }
    }
    for (path, volume) in image_volumes(template) {
        if let Some(reference) = str_of(volume, "reference") {
            judge(
                join(&path, "reference"),
                "image volume".to_owned(),
                reference,
            );
        }
    }
}
