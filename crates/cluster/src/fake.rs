//! An in-memory API server behind [`ClusterApi`], counting every request.
//!
//! It exists so that ordering, resume, pruning, offboarding and credential checks can be
//! tested as behaviour (not as mocks of call sequences), and so that benchmarks can report
//! how many requests a command costs. It models what those decisions depend on:
//! server-side apply with `managedFields` and no-op detection (same `resourceVersion`),
//! server defaults, namespaces that start `Active` with a `default` ServiceAccount and
//! terminate before they disappear, tokens that die with their ServiceAccount or the object
//! they are bound to, and an RBAC
//! check that reads RoleBindings. It is not a Kubernetes conformance target; the recorded
//! wire fixtures and the end-to-end tests cover the real server.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex, MutexGuard},
};

use serde_json::{Map, Value, json};
use tenantry_core::{DesiredObject, plan::FIELD_MANAGER};

use crate::{
    api::{
        AccessCheck, AccessDecision, BoundObject, ClusterApi, Deletion, IssuedToken, SubjectAccess,
        TokenStatus,
    },
    catalog::{Catalog, ResourceType},
    error::ClusterError,
};

/// Requests served, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Requests {
    /// Discovery documents read (aggregated discovery is two).
    pub discovery: usize,
    /// LIST requests.
    pub list: usize,
    /// GET requests.
    pub get: usize,
    /// Server-side apply PATCH requests (dry runs included).
    pub apply: usize,
    /// POST (create) and merge-patch requests.
    pub update: usize,
    /// DELETE requests.
    pub delete: usize,
    /// TokenRequest, SelfSubjectAccessReview and TokenReview requests.
    pub auth: usize,
}

impl Requests {
    /// Requests that change stored objects: applies and deletes.
    pub fn writes(&self) -> usize {
        self.apply + self.update + self.delete
    }

    /// Requests that only read: discovery, lists and gets.
    pub fn reads(&self) -> usize {
        self.discovery + self.list + self.get
    }

    /// Every request.
    pub fn total(&self) -> usize {
        self.reads() + self.writes() + self.auth
    }
}

type Key = (String, String, Option<String>, String);

/// When every fake token expires: the fake has no clock.
pub const FAKE_EXPIRY: &str = "2030-01-01T00:00:00Z";

#[derive(Clone, Debug)]
struct Token {
    namespace: String,
    service_account: String,
    uid: String,
    /// The bound object's key and uid.
    bound: Option<(Key, String)>,
}

#[derive(Debug, Default)]
struct State {
    objects: BTreeMap<Key, Value>,
    tokens: BTreeMap<String, Token>,
    next_version: u64,
    next_uid: u64,
    requests: Requests,
    /// Kinds whose applies fail with 422, once each time they are set.
    fail_apply: BTreeSet<String>,
    /// GETs a terminating namespace survives before it disappears.
    namespace_linger: usize,
    lingering: BTreeMap<String, usize>,
    /// Grant the tenant credential everything (to test the "broader than the tenant" path).
    broad_tenants: bool,
    /// Access reviews fail with this error (to test a scope check that cannot be made).
    fail_access_reviews: Option<ClusterError>,
    /// Deletes of these kinds fail with these errors.
    fail_deletes: BTreeMap<String, ClusterError>,
    /// Groups removed from discovery (to test missing CRDs).
    hidden_groups: BTreeSet<String>,
    /// `apply Kind ns/name` and `delete Kind ns/name`, in the order they were served.
    writes: Vec<String>,
}

/// The in-memory API server. Clones share state; [`ClusterApi::connect_as`] returns a view
/// that acts as the token's ServiceAccount.
#[derive(Clone, Debug)]
pub struct FakeCluster {
    state: Arc<Mutex<State>>,
    /// `None` for the admin; the token used otherwise.
    identity: Option<String>,
}

impl Default for FakeCluster {
    fn default() -> Self {
        Self::new()
    }
}

fn rt(group: &str, version: &str, kind: &str, plural: &str, namespaced: bool) -> ResourceType {
    ResourceType {
        group: group.to_owned(),
        version: version.to_owned(),
        kind: kind.to_owned(),
        plural: plural.to_owned(),
        namespaced,
        verbs: [
            "create", "delete", "get", "list", "patch", "update", "watch",
        ]
        .map(str::to_owned)
        .to_vec(),
    }
}

/// The resource types the fake serves: core, RBAC, networking and the CRDs Tenantry renders.
fn served_types() -> Vec<ResourceType> {
    vec![
        rt("", "v1", "Namespace", "namespaces", false),
        rt("", "v1", "ServiceAccount", "serviceaccounts", true),
        rt("", "v1", "ResourceQuota", "resourcequotas", true),
        rt("", "v1", "LimitRange", "limitranges", true),
        rt("", "v1", "ConfigMap", "configmaps", true),
        rt("", "v1", "Secret", "secrets", true),
        rt("", "v1", "Pod", "pods", true),
        rt("", "v1", "Node", "nodes", false),
        rt(
            "rbac.authorization.k8s.io",
            "v1",
            "RoleBinding",
            "rolebindings",
            true,
        ),
        rt(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRoleBinding",
            "clusterrolebindings",
            false,
        ),
        rt(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRole",
            "clusterroles",
            false,
        ),
        rt(
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingAdmissionPolicyBinding",
            "validatingadmissionpolicybindings",
            false,
        ),
        rt(
            "tenantry.dev",
            "v1alpha1",
            "GuardrailParameters",
            "guardrailparameters",
            false,
        ),
        rt(
            "networking.k8s.io",
            "v1",
            "NetworkPolicy",
            "networkpolicies",
            true,
        ),
        rt(
            "cilium.io",
            "v2",
            "CiliumNetworkPolicy",
            "ciliumnetworkpolicies",
            true,
        ),
        rt(
            "external-secrets.io",
            "v1",
            "ExternalSecret",
            "externalsecrets",
            true,
        ),
        rt(
            "external-secrets.io",
            "v1",
            "SecretStore",
            "secretstores",
            true,
        ),
        rt(
            "external-secrets.io",
            "v1",
            "ClusterExternalSecret",
            "clusterexternalsecrets",
            false,
        ),
        rt(
            "source.toolkit.fluxcd.io",
            "v1",
            "OCIRepository",
            "ocirepositories",
            true,
        ),
        rt(
            "source.toolkit.fluxcd.io",
            "v1",
            "GitRepository",
            "gitrepositories",
            true,
        ),
        rt(
            "kustomize.toolkit.fluxcd.io",
            "v1",
            "Kustomization",
            "kustomizations",
            true,
        ),
        rt("argoproj.io", "v1alpha1", "AppProject", "appprojects", true),
        rt(
            "argoproj.io",
            "v1alpha1",
            "Application",
            "applications",
            true,
        ),
    ]
}

fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

fn key_of(object: &Value) -> Option<Key> {
    Some((
        group_of(object.get("apiVersion")?.as_str()?).to_owned(),
        object.get("kind")?.as_str()?.to_owned(),
        object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(str::to_owned),
        object.pointer("/metadata/name")?.as_str()?.to_owned(),
    ))
}

/// The `fieldsV1` set of an applied object (lists are atomic, as for most built-in types).
fn fields_of(value: &Value) -> Value {
    let mut out = Map::new();
    if let Value::Object(fields) = value {
        for (k, v) in fields {
            out.insert(
                format!("f:{k}"),
                match v {
                    Value::Object(_) => fields_of(v),
                    _ => json!({}),
                },
            );
        }
    }
    Value::Object(out)
}

fn managed_fields(body: &Value) -> Value {
    let mut applied = body.clone();
    if let Some(fields) = applied.as_object_mut() {
        fields.remove("apiVersion");
        fields.remove("kind");
    }
    if let Some(meta) = applied.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("name");
        meta.remove("namespace");
        if meta.is_empty() {
            applied.as_object_mut().map(|f| f.remove("metadata"));
        }
    }
    json!([{ "manager": FIELD_MANAGER, "operation": "Apply",
             "apiVersion": body.get("apiVersion").cloned().unwrap_or(Value::Null),
             "fieldsType": "FieldsV1", "fieldsV1": fields_of(&applied) }])
}

/// Remove from `live` every leaf `previous` set (what the previous apply owned).
fn remove_owned(live: &mut Value, previous: &Value) {
    if let (Value::Object(live), Value::Object(prev)) = (live, previous) {
        for (k, v) in prev {
            if k == "apiVersion" || k == "kind" || k == "name" || k == "namespace" {
                continue;
            }
            match (live.get_mut(k), v) {
                (Some(child @ Value::Object(_)), Value::Object(_)) => {
                    remove_owned(child, v);
                    if child.as_object().is_some_and(Map::is_empty) {
                        live.remove(k);
                    }
                }
                _ => {
                    live.remove(k);
                }
            }
        }
    }
}

fn merge(into: &mut Value, from: &Value) {
    match (into, from) {
        (Value::Object(into), Value::Object(from)) => {
            for (k, v) in from {
                match into.get_mut(k) {
                    Some(existing @ Value::Object(_)) if v.is_object() => merge(existing, v),
                    _ => {
                        into.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (into, from) => *into = from.clone(),
    }
}

fn not_found(what: &str) -> ClusterError {
    ClusterError::Api {
        doing: format!("reading {what}"),
        code: 404,
        reason: "NotFound".to_owned(),
        message: format!("{what} not found"),
    }
}

fn matches_selector(object: &Value, selector: &str) -> bool {
    let labels = object
        .pointer("/metadata/labels")
        .and_then(Value::as_object);
    selector.split(',').filter(|t| !t.is_empty()).all(|term| {
        let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        match term.split_once('=') {
            Some((k, v)) => label(k) == Some(v),
            None => label(term).is_some(),
        }
    })
}

impl FakeCluster {
    /// An empty cluster serving the built-in types and every CRD Tenantry renders.
    pub fn new() -> Self {
        let fake = Self {
            state: Arc::new(Mutex::new(State {
                next_version: 1000,
                namespace_linger: 1,
                ..State::default()
            })),
            identity: None,
        };
        {
            let mut s = fake.lock();
            for ns in ["default", "kube-system", "argocd", "flux-system"] {
                let object =
                    json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": ns } });
                Self::store_new(&mut s, &object);
            }
        }
        fake
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// A view of the same cluster that authenticates with `token` (an issued token, or
    /// anything else, which the fake rejects as a real server would).
    pub fn acting_as(&self, token: &str) -> Self {
        Self {
            state: Arc::clone(&self.state),
            identity: Some(token.to_owned()),
        }
    }

    /// What discovery would return, without counting a request (for an HTTP front that
    /// routes by resource type).
    pub fn catalog(&self) -> Catalog {
        let hidden = self.lock().hidden_groups.clone();
        Catalog::new(
            served_types()
                .into_iter()
                .filter(|t| !hidden.contains(&t.group))
                .collect(),
        )
    }

    /// Requests served so far (by every view of this cluster).
    pub fn requests(&self) -> Requests {
        self.lock().requests
    }

    /// Forget the request counts and the write log.
    pub fn reset_requests(&self) {
        let mut s = self.lock();
        s.requests = Requests::default();
        s.writes.clear();
    }

    /// Every write served, in order: `apply Kind ns/name`, `delete Kind ns/name`.
    pub fn write_log(&self) -> Vec<String> {
        self.lock().writes.clone()
    }

    /// Stop serving an API group, as if its CRDs were not installed.
    pub fn hide_group(&self, group: &str) {
        self.lock().hidden_groups.insert(group.to_owned());
    }

    /// Serve an API group again.
    pub fn show_group(&self, group: &str) {
        self.lock().hidden_groups.remove(group);
    }

    /// Make the next apply of `kind` fail with 422 Invalid.
    pub fn fail_next_apply(&self, kind: &str) {
        self.lock().fail_apply.insert(kind.to_owned());
    }

    /// How many GETs a deleted namespace stays `Terminating` for.
    pub fn set_namespace_linger(&self, gets: usize) {
        self.lock().namespace_linger = gets;
    }

    /// Make tenant credentials all-powerful, as a misconfigured platform binding would.
    pub fn grant_tenants_everything(&self) {
        self.lock().broad_tenants = true;
    }

    /// Make every access review fail with `error` (`None` to stop).
    pub fn fail_access_reviews(&self, error: Option<ClusterError>) {
        self.lock().fail_access_reviews = error;
    }

    /// Make every DELETE of `kind` fail with `error`.
    pub fn fail_deletes(&self, kind: &str, error: ClusterError) {
        self.lock().fail_deletes.insert(kind.to_owned(), error);
    }

    /// The stored object, as the API server would return it.
    pub fn object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let key = (
            group_of(api_version).to_owned(),
            kind.to_owned(),
            namespace.map(str::to_owned),
            name.to_owned(),
        );
        self.lock().objects.get(&key).cloned()
    }

    /// Store an object as another manager would (e.g. `kubectl`), bypassing Tenantry.
    pub fn insert(&self, object: Value) {
        let mut s = self.lock();
        Self::store_new(&mut s, &object);
    }

    /// Change a stored object in place, as another manager would; bumps its resourceVersion.
    pub fn edit(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        edit: impl FnOnce(&mut Value),
    ) {
        let key = (
            group_of(api_version).to_owned(),
            kind.to_owned(),
            namespace.map(str::to_owned),
            name.to_owned(),
        );
        let mut s = self.lock();
        s.next_version += 1;
        let version = s.next_version.to_string();
        if let Some(object) = s.objects.get_mut(&key) {
            edit(object);
            object["metadata"]["resourceVersion"] = json!(version);
        }
    }

    /// Every stored object.
    pub fn objects(&self) -> Vec<Value> {
        self.lock().objects.values().cloned().collect()
    }

    fn store_new(s: &mut State, object: &Value) -> Value {
        let Some(key) = key_of(object) else {
            return object.clone();
        };
        s.next_version += 1;
        s.next_uid += 1;
        let mut live = object.clone();
        live["metadata"]["uid"] = json!(format!("uid-{}", s.next_uid));
        live["metadata"]["resourceVersion"] = json!(s.next_version.to_string());
        live["metadata"]["creationTimestamp"] = json!("2026-11-22T23:34:51Z");
        if key.0.is_empty() && key.1 == "Namespace" {
            live["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(key.3);
            live["spec"] = json!({ "finalizers": ["kubernetes"] });
            live["status"] = json!({ "phase": "Active" });
            let sa = json!({ "apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": { "name": "default", "namespace": key.3 } });
            s.objects.insert(key.clone(), live.clone());
            Self::store_new(s, &sa);
            return live;
        }
        s.objects.insert(key, live.clone());
        live
    }

    fn identity(&self, s: &State) -> Result<Option<Token>, ClusterError> {
        match &self.identity {
            None => Ok(None),
            Some(token) => match s.tokens.get(token) {
                Some(t) if Self::token_alive(s, t) => Ok(Some(t.clone())),
                _ => Err(ClusterError::Unauthorized {
                    doing: "calling the fake API server".to_owned(),
                }),
            },
        }
    }

    fn admin_only(&self, s: &State, doing: &str) -> Result<(), ClusterError> {
        match self.identity(s)? {
            None => Ok(()),
            Some(t) => Err(ClusterError::Forbidden {
                doing: doing.to_owned(),
                message: format!(
                    "User \"system:serviceaccount:{}:{}\" cannot {doing}",
                    t.namespace, t.service_account
                ),
            }),
        }
    }

    fn token_alive(s: &State, token: &Token) -> bool {
        let key = (
            String::new(),
            "ServiceAccount".to_owned(),
            Some(token.namespace.clone()),
            token.service_account.clone(),
        );
        let uid_of = |key: &Key| {
            s.objects
                .get(key)
                .and_then(|o| o.pointer("/metadata/uid"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        uid_of(&key).as_deref() == Some(token.uid.as_str())
            && token
                .bound
                .as_ref()
                .is_none_or(|(key, uid)| uid_of(key).as_deref() == Some(uid.as_str()))
    }

    /// Finish deleting a namespace: it and everything in it disappear.
    fn purge_namespace(s: &mut State, namespace: &str) {
        s.objects.retain(|(_, kind, ns, name), _| {
            !(ns.as_deref() == Some(namespace)
                || (kind == "Namespace" && ns.is_none() && name == namespace))
        });
        s.lingering.remove(namespace);
    }
}

impl ClusterApi for FakeCluster {
    async fn discover(&self) -> Result<Catalog, ClusterError> {
        let mut s = self.lock();
        s.requests.discovery += 2;
        self.identity(&s)?;
        let hidden = s.hidden_groups.clone();
        Ok(Catalog::new(
            served_types()
                .into_iter()
                .filter(|t| !hidden.contains(&t.group))
                .collect(),
        ))
    }

    async fn list(
        &self,
        resource: &ResourceType,
        label_selector: &str,
    ) -> Result<Vec<Value>, ClusterError> {
        let mut s = self.lock();
        s.requests.list += 1;
        self.admin_only(&s, &format!("list {}", resource.plural))?;
        Ok(s.objects
            .iter()
            .filter(|((group, kind, _, _), object)| {
                *group == resource.group
                    && *kind == resource.kind
                    && matches_selector(object, label_selector)
            })
            .map(|(_, object)| {
                let mut object = object.clone();
                object["apiVersion"] = json!(resource.api_version());
                object
            })
            .collect())
    }

    async fn get(
        &self,
        resource: &ResourceType,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, ClusterError> {
        let mut s = self.lock();
        s.requests.get += 1;
        self.admin_only(&s, &format!("get {}", resource.plural))?;
        if resource.group.is_empty()
            && resource.kind == "Namespace"
            && let Some(left) = s.lingering.get_mut(name)
        {
            if *left == 0 {
                Self::purge_namespace(&mut s, name);
            } else {
                *left -= 1;
            }
        }
        let key = (
            resource.group.clone(),
            resource.kind.clone(),
            namespace.map(str::to_owned),
            name.to_owned(),
        );
        Ok(s.objects.get(&key).cloned())
    }

    async fn apply(
        &self,
        resource: &ResourceType,
        object: &DesiredObject,
        dry_run: bool,
    ) -> Result<Value, ClusterError> {
        let mut s = self.lock();
        s.requests.apply += 1;
        self.admin_only(&s, &format!("patch {}", resource.plural))?;
        let what = object.reference();
        if s.fail_apply.remove(object.kind) {
            return Err(ClusterError::Invalid {
                object: what,
                message: "injected failure".to_owned(),
                causes: vec![crate::error::Cause {
                    field: "spec".to_owned(),
                    message: "Invalid value: injected by the test".to_owned(),
                }],
            });
        }
        if let Some(ns) = &object.namespace {
            let ns_key = (String::new(), "Namespace".to_owned(), None, ns.clone());
            match s.objects.get(&ns_key) {
                None => return Err(not_found(&format!("namespaces \"{ns}\""))),
                Some(live) if live.pointer("/metadata/deletionTimestamp").is_some() => {
                    return Err(ClusterError::Forbidden {
                        doing: format!("applying {what}"),
                        message: format!(
                            "unable to create new content in namespace {ns} because it is being terminated"
                        ),
                    });
                }
                Some(_) => {}
            }
        }
        let Some(key) = key_of(&object.body) else {
            return Err(ClusterError::Input(format!("{what} has no identity")));
        };
        if !dry_run {
            s.writes.push(format!("apply {what}"));
        }
        let mut applied = object.body.clone();
        applied["metadata"]["managedFields"] = managed_fields(&object.body);
        match s.objects.get(&key).cloned() {
            None => {
                if dry_run {
                    return Ok(applied);
                }
                Ok(Self::store_new(&mut s, &applied))
            }
            Some(previous) => {
                let mut next = previous.clone();
                let previous_applied = previous
                    .pointer("/metadata/managedFields")
                    .and_then(Value::as_array)
                    .and_then(|m| m.iter().find(|e| e["manager"] == FIELD_MANAGER))
                    .map(|e| e["fieldsV1"].clone());
                if let Some(fields) = &previous_applied {
                    let owned = fields_to_value(fields);
                    remove_owned(&mut next, &owned);
                }
                merge(&mut next, &applied);
                next["metadata"]["resourceVersion"] =
                    previous["metadata"]["resourceVersion"].clone();
                if next != previous && !dry_run {
                    s.next_version += 1;
                    next["metadata"]["resourceVersion"] = json!(s.next_version.to_string());
                    s.objects.insert(key, next.clone());
                }
                Ok(next)
            }
        }
    }

    async fn create(
        &self,
        resource: &ResourceType,
        namespace: Option<&str>,
        object: &Value,
    ) -> Result<Value, ClusterError> {
        let mut s = self.lock();
        s.requests.update += 1;
        self.admin_only(&s, &format!("create {}", resource.plural))?;
        let mut object = object.clone();
        object["apiVersion"] = json!(resource.api_version());
        object["kind"] = json!(resource.kind);
        if let Some(ns) = namespace {
            object["metadata"]["namespace"] = json!(ns);
        }
        let Some(key) = key_of(&object) else {
            return Err(ClusterError::Input(format!(
                "a {} without a name",
                resource.kind
            )));
        };
        if s.objects.contains_key(&key) {
            return Err(ClusterError::Api {
                doing: format!("creating {} {}", resource.kind, key.3),
                code: 409,
                reason: "AlreadyExists".to_owned(),
                message: format!("{} \"{}\" already exists", resource.plural, key.3),
            });
        }
        s.writes.push(match namespace {
            Some(ns) => format!("create {} {ns}/{}", resource.kind, key.3),
            None => format!("create {} {}", resource.kind, key.3),
        });
        Ok(Self::store_new(&mut s, &object))
    }

    async fn merge_patch(
        &self,
        resource: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        patch: &Value,
    ) -> Result<Value, ClusterError> {
        let mut s = self.lock();
        s.requests.update += 1;
        self.admin_only(&s, &format!("patch {}", resource.plural))?;
        let key = (
            resource.group.clone(),
            resource.kind.clone(),
            namespace.map(str::to_owned),
            name.to_owned(),
        );
        s.next_version += 1;
        let version = s.next_version.to_string();
        let Some(object) = s.objects.get_mut(&key) else {
            return Err(not_found(&format!("{} \"{name}\"", resource.plural)));
        };
        merge(object, patch);
        object["metadata"]["resourceVersion"] = json!(version);
        let object = object.clone();
        s.writes.push(match namespace {
            Some(ns) => format!("patch {} {ns}/{name}", resource.kind),
            None => format!("patch {} {name}", resource.kind),
        });
        Ok(object)
    }

    async fn delete(
        &self,
        resource: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        uid: Option<&str>,
        dry_run: bool,
    ) -> Result<Deletion, ClusterError> {
        let mut s = self.lock();
        s.requests.delete += 1;
        self.admin_only(&s, &format!("delete {}", resource.plural))?;
        if let Some(e) = s.fail_deletes.get(&resource.kind) {
            return Err(e.clone());
        }
        let key = (
            resource.group.clone(),
            resource.kind.clone(),
            namespace.map(str::to_owned),
            name.to_owned(),
        );
        let Some(live) = s.objects.get(&key) else {
            return Ok(Deletion::AlreadyGone);
        };
        if let Some(uid) = uid
            && live.pointer("/metadata/uid").and_then(Value::as_str) != Some(uid)
        {
            return Ok(Deletion::Replaced);
        }
        if dry_run {
            return Ok(Deletion::Started);
        }
        s.writes.push(match namespace {
            Some(ns) => format!("delete {} {ns}/{name}", resource.kind),
            None => format!("delete {} {name}", resource.kind),
        });
        if resource.group.is_empty() && resource.kind == "Namespace" {
            let linger = s.namespace_linger;
            if let Some(live) = s.objects.get_mut(&key) {
                live["metadata"]["deletionTimestamp"] = json!("2026-11-22T23:35:51Z");
                live["status"]["phase"] = json!("Terminating");
            }
            if linger == 0 {
                Self::purge_namespace(&mut s, name);
            } else {
                s.lingering.insert(name.to_owned(), linger);
            }
        } else {
            s.objects.remove(&key);
        }
        Ok(Deletion::Started)
    }

    async fn request_token(
        &self,
        namespace: &str,
        service_account: &str,
        expiration_seconds: i64,
        bound: Option<&BoundObject>,
    ) -> Result<IssuedToken, ClusterError> {
        let mut s = self.lock();
        s.requests.auth += 1;
        self.admin_only(&s, "create serviceaccounts/token")?;
        let bound = match bound {
            None => None,
            Some(b) => {
                let key = (
                    group_of(&b.api_version).to_owned(),
                    b.kind.clone(),
                    Some(namespace.to_owned()),
                    b.name.clone(),
                );
                let live_uid = s
                    .objects
                    .get(&key)
                    .and_then(|o| o.pointer("/metadata/uid"))
                    .and_then(Value::as_str);
                if live_uid != Some(b.uid.as_str()) {
                    return Err(not_found(&format!("{} \"{}\"", b.kind, b.name)));
                }
                Some((key, b.uid.clone()))
            }
        };
        let key = (
            String::new(),
            "ServiceAccount".to_owned(),
            Some(namespace.to_owned()),
            service_account.to_owned(),
        );
        let uid = s
            .objects
            .get(&key)
            .and_then(|sa| sa.pointer("/metadata/uid"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| not_found(&format!("serviceaccounts \"{service_account}\"")))?;
        s.next_uid += 1;
        let token = format!("fake.{namespace}.{service_account}.{}", s.next_uid);
        s.tokens.insert(
            token.clone(),
            Token {
                namespace: namespace.to_owned(),
                service_account: service_account.to_owned(),
                uid,
                bound,
            },
        );
        Ok(IssuedToken {
            token,
            expires_at: Some(FAKE_EXPIRY.to_owned()),
            expiration_seconds: Some(expiration_seconds),
        })
    }

    async fn review_access(&self, check: &AccessCheck) -> Result<bool, ClusterError> {
        let mut s = self.lock();
        s.requests.auth += 1;
        if let Some(e) = &s.fail_access_reviews {
            return Err(e.clone());
        }
        let Some(me) = self.identity(&s)? else {
            return Ok(true);
        };
        if s.broad_tenants {
            return Ok(true);
        }
        let Some(ns) = &check.namespace else {
            return Ok(false);
        };
        Ok(s.objects
            .iter()
            .any(|((group, kind, namespace, _), binding)| {
                group == "rbac.authorization.k8s.io"
                    && kind == "RoleBinding"
                    && namespace.as_ref() == Some(ns)
                    && binding
                        .get("subjects")
                        .and_then(Value::as_array)
                        .is_some_and(|subjects| {
                            subjects.iter().any(|sub| {
                                sub["kind"] == "ServiceAccount"
                                    && sub["name"] == me.service_account.as_str()
                                    && sub["namespace"] == me.namespace.as_str()
                            })
                        })
            }))
    }

    /// The fake has no authorizer for other identities: it answers every question "denied",
    /// which is what a tenant with nothing granted outside its namespaces would get.
    async fn review_subject_access(
        &self,
        _review: &SubjectAccess,
    ) -> Result<AccessDecision, ClusterError> {
        let mut s = self.lock();
        s.requests.auth += 1;
        self.admin_only(&s, "create subjectaccessreviews")?;
        Ok(AccessDecision {
            allowed: false,
            reason: String::new(),
        })
    }

    fn impersonate(&self, user: &str, _groups: &[String]) -> Result<Self, ClusterError> {
        Err(ClusterError::Input(format!(
            "the in-memory cluster cannot act as {user}: impersonation needs a real API server"
        )))
    }

    async fn review_token(&self, token: &str) -> Result<TokenStatus, ClusterError> {
        let mut s = self.lock();
        s.requests.auth += 1;
        self.admin_only(&s, "create tokenreviews")?;
        Ok(match s.tokens.get(token) {
            Some(t) if Self::token_alive(&s, t) => TokenStatus {
                authenticated: true,
                username: Some(format!(
                    "system:serviceaccount:{}:{}",
                    t.namespace, t.service_account
                )),
                error: None,
            },
            _ => TokenStatus {
                authenticated: false,
                username: None,
                error: Some("invalid bearer token".to_owned()),
            },
        })
    }

    async fn connect_as(&self, kubeconfig: &str) -> Result<Self, ClusterError> {
        let token = crate::credential::token_of(kubeconfig)
            .ok_or_else(|| ClusterError::Kubeconfig("the kubeconfig has no token".to_owned()))?;
        Ok(Self {
            state: Arc::clone(&self.state),
            identity: Some(token),
        })
    }
}

/// Turn a `fieldsV1` set back into the shape of the values it covers (leaves are null), so
/// the fields a previous apply owned can be removed from the live object.
fn fields_to_value(fields: &Value) -> Value {
    let mut out = Map::new();
    if let Value::Object(map) = fields {
        for (k, v) in map {
            if let Some(name) = k.strip_prefix("f:") {
                let child = if v.as_object().is_some_and(|c| !c.is_empty()) {
                    fields_to_value(v)
                } else {
                    Value::Null
                };
                out.insert(name.to_owned(), child);
            }
        }
    }
    Value::Object(out)
}
