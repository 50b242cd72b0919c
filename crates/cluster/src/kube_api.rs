//! [`ClusterApi`] over kube-rs: a translation layer with no decisions in it.
//!
//! Objects are handled as `DynamicObject`s resolved through discovery, so a kind is applied
//! exactly as the renderer produced it, whatever its group, and a CRD that is not installed
//! shows up as a discovery miss rather than a compile-time type.
//!
//! Server-side apply always uses `force`. Tenantry is the declared owner of every field it
//! renders: when another manager (a person with `kubectl edit`, a controller) changed one
//! of them, that is drift from the tenant's declaration, and re-asserting the declared value
//! is the point of `onboard` and `apply`. Without force, the first such edit would make every
//! later apply fail with a 409 and leave the tenant unconverged. Fields Tenantry does not
//! render are never touched, so other managers keep theirs.

use std::path::PathBuf;

use base64::Engine as _;
use k8s_openapi::api::{
    authentication::v1::{
        BoundObjectReference, TokenRequest, TokenRequestSpec, TokenReview, TokenReviewSpec,
    },
    authorization::v1::{
        ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
        SubjectAccessReview, SubjectAccessReviewSpec,
    },
    core::v1::ServiceAccount,
};
use kube::{
    Api, Client, Config,
    api::{
        ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
        Preconditions, PropagationPolicy,
    },
    config::{KubeConfigOptions, Kubeconfig},
    core::discovery::v2::APIGroupDiscoveryList,
};
use serde_json::Value;
use tenantry_core::{DesiredObject, plan::FIELD_MANAGER};
use tracing::{debug, instrument};

use crate::{
    api::{
        AccessCheck, AccessDecision, BoundObject, ClusterApi, Deletion, IssuedToken, SubjectAccess,
        TokenStatus,
    },
    catalog::{Catalog, ResourceType},
    error::{Cause, ClusterError},
};

/// Page size for lists: big enough that a thousand tenants cost a couple of requests per
/// type, small enough that a huge cluster never returns one enormous response.
const PAGE_SIZE: u32 = 500;

/// The Kubernetes API, through kube-rs.
#[derive(Clone)]
pub struct KubeCluster {
    client: Client,
    /// The configuration the client was built from, when it came from a kubeconfig: what
    /// [`ClusterApi::impersonate`] builds a second client from.
    config: Option<Box<Config>>,
}

impl KubeCluster {
    /// Wrap a kube client (built from a kubeconfig, or over any tower service in tests).
    pub fn new(client: Client) -> Self {
        Self {
            client,
            config: None,
        }
    }

    /// Build a client from a configuration, keeping it for impersonation.
    fn from_config(config: Config) -> Result<Self, ClusterError> {
        let client = Client::try_from(config.clone()).map_err(kubeconfig_error)?;
        Ok(Self {
            client,
            config: Some(Box::new(config)),
        })
    }

    /// The underlying client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn api(&self, resource: &ResourceType, namespace: Option<&str>) -> Api<DynamicObject> {
        let ar = ApiResource {
            group: resource.group.clone(),
            version: resource.version.clone(),
            api_version: resource.api_version(),
            kind: resource.kind.clone(),
            plural: resource.plural.clone(),
        };
        match (resource.namespaced, namespace) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &ar),
            _ => Api::all_with(self.client.clone(), &ar),
        }
    }
}

/// Where to find the kubeconfig, as `kubectl` does: `--kubeconfig`, else `KUBECONFIG`
/// (several files merged), else `~/.kube/config`; `--context`, else its current context.
#[derive(Clone, Debug, Default)]
pub struct KubeconfigSource {
    /// An explicit kubeconfig file.
    pub path: Option<PathBuf>,
    /// A context other than the current one.
    pub context: Option<String>,
}

/// The cluster of the chosen context, as an issued kubeconfig must point at it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterEndpoint {
    /// The context used.
    pub context: String,
    /// The API server URL.
    pub server: String,
    /// The CA bundle, base64-encoded PEM, inlined so the issued file stands alone.
    pub certificate_authority_data: Option<String>,
    /// The name to verify the server certificate against, when it differs from the host.
    pub tls_server_name: Option<String>,
    /// Whether the source context skips TLS verification (copied, and warned about).
    pub insecure_skip_tls_verify: bool,
    /// A proxy the source context goes through.
    pub proxy_url: Option<String>,
}

fn kubeconfig_error(e: impl std::fmt::Display) -> ClusterError {
    ClusterError::Kubeconfig(e.to_string())
}

/// Read the kubeconfig, pick the context, and build a client for it.
pub async fn connect(
    source: &KubeconfigSource,
) -> Result<(KubeCluster, ClusterEndpoint), ClusterError> {
    let kubeconfig = match &source.path {
        Some(path) => Kubeconfig::read_from(path)
            .map_err(|e| ClusterError::Kubeconfig(format!("{}: {e}", path.display())))?,
        None => Kubeconfig::read().map_err(|e| {
            ClusterError::Kubeconfig(format!(
                "{e} (set --kubeconfig or KUBECONFIG, or create ~/.kube/config)"
            ))
        })?,
    };
    let endpoint = endpoint_of(&kubeconfig, source.context.as_deref())?;
    let options = KubeConfigOptions {
        context: Some(endpoint.context.clone()),
        ..KubeConfigOptions::default()
    };
    let config = Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(kubeconfig_error)?;
    Ok((KubeCluster::from_config(config)?, endpoint))
}

/// The endpoint of a context (the current one when `context` is `None`).
pub fn endpoint_of(
    kubeconfig: &Kubeconfig,
    context: Option<&str>,
) -> Result<ClusterEndpoint, ClusterError> {
    let name = context
        .map(str::to_owned)
        .or_else(|| kubeconfig.current_context.clone())
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            ClusterError::Kubeconfig("no current context is set; pass --context".to_owned())
        })?;
    let ctx = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == name)
        .and_then(|c| c.context.as_ref())
        .ok_or_else(|| {
            let known: Vec<&str> = kubeconfig
                .contexts
                .iter()
                .map(|c| c.name.as_str())
                .collect();
            ClusterError::Kubeconfig(format!(
                "context {name:?} not found (contexts: {})",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ))
        })?;
    let cluster = kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == ctx.cluster)
        .and_then(|c| c.cluster.as_ref())
        .ok_or_else(|| {
            ClusterError::Kubeconfig(format!(
                "context {name:?} refers to cluster {:?}, which is not defined",
                ctx.cluster
            ))
        })?;
    let server = cluster
        .server
        .clone()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ClusterError::Kubeconfig(format!("cluster {:?} has no server URL", ctx.cluster))
        })?;
    let certificate_authority_data = match (
        &cluster.certificate_authority_data,
        &cluster.certificate_authority,
    ) {
        (Some(data), _) if !data.is_empty() => Some(data.clone()),
        (_, Some(file)) if !file.is_empty() => {
            let pem = std::fs::read(file).map_err(|e| ClusterError::File {
                path: file.clone(),
                message: format!(
                    "cannot read the certificate-authority of cluster {:?}: {e}",
                    ctx.cluster
                ),
            })?;
            Some(base64::engine::general_purpose::STANDARD.encode(pem))
        }
        _ => None,
    };
    Ok(ClusterEndpoint {
        context: name,
        server,
        certificate_authority_data,
        tls_server_name: cluster.tls_server_name.clone(),
        insecure_skip_tls_verify: cluster.insecure_skip_tls_verify.unwrap_or(false),
        proxy_url: cluster.proxy_url.clone(),
    })
}

/// Turn a kube-rs error into one that says what Tenantry was doing and what to do.
pub(crate) fn map_error(error: kube::Error, doing: &str, object: Option<&str>) -> ClusterError {
    match error {
        kube::Error::Api(status) => {
            let object = object.unwrap_or(doing).to_owned();
            let causes: Vec<Cause> = status
                .details
                .as_ref()
                .map(|d| {
                    d.causes
                        .iter()
                        .map(|c| Cause {
                            field: c.field.clone(),
                            message: c.message.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            match status.code {
                401 => ClusterError::Unauthorized {
                    doing: doing.to_owned(),
                },
                403 => ClusterError::Forbidden {
                    doing: doing.to_owned(),
                    message: status.message.clone(),
                },
                409 if status.reason == "Conflict" && !causes.is_empty() => {
                    ClusterError::Conflict {
                        object,
                        message: status.message.clone(),
                        fields: causes.into_iter().map(|c| c.field).collect(),
                    }
                }
                422 => ClusterError::Invalid {
                    object,
                    message: status.message.clone(),
                    causes,
                },
                code => ClusterError::Api {
                    doing: doing.to_owned(),
                    code,
                    reason: status.reason.clone(),
                    message: status.message.clone(),
                },
            }
        }
        other => {
            // kube's errors repeat their cause in their own text; keep each part once.
            let mut message = other.to_string();
            let mut source = std::error::Error::source(&other);
            while let Some(cause) = source {
                let text = cause.to_string();
                if !message.contains(&text) {
                    message.push_str(": ");
                    message.push_str(&text);
                }
                source = cause.source();
            }
            ClusterError::Transport {
                doing: doing.to_owned(),
                message,
                source: Some(std::sync::Arc::new(other)),
            }
        }
    }
}

fn is_status(error: &kube::Error, code: u16) -> bool {
    matches!(error, kube::Error::Api(s) if s.code == code)
}

fn to_value(object: DynamicObject, resource: &ResourceType) -> Value {
    let mut value = serde_json::to_value(object).unwrap_or(Value::Null);
    if let Value::Object(fields) = &mut value {
        fields.insert("apiVersion".into(), Value::from(resource.api_version()));
        fields.insert("kind".into(), Value::from(resource.kind.clone()));
    }
    value
}

fn reference(resource: &ResourceType, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) if resource.namespaced => format!("{} {ns}/{name}", resource.kind),
        _ => format!("{} {name}", resource.kind),
    }
}

/// Parse aggregated discovery (`apidiscovery.k8s.io/v2`): one request for every group.
fn types_from_aggregated(list: APIGroupDiscoveryList) -> Vec<ResourceType> {
    let mut types = Vec::new();
    for group in list.items {
        let name = group.metadata.and_then(|m| m.name).unwrap_or_default();
        for version in group.versions {
            let Some(v) = version.version else { continue };
            for r in version.resources {
                let (Some(plural), Some(kind)) = (r.resource, r.response_kind.and_then(|k| k.kind))
                else {
                    continue;
                };
                types.push(ResourceType {
                    group: name.clone(),
                    version: v.clone(),
                    kind,
                    plural,
                    namespaced: r.scope.as_deref() == Some("Namespaced"),
                    verbs: r.verbs,
                });
            }
        }
    }
    types
}

fn types_from_list(
    group: &str,
    version: &str,
    list: k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList,
) -> Vec<ResourceType> {
    list.resources
        .into_iter()
        .filter(|r| !r.name.contains('/'))
        .map(|r| ResourceType {
            group: r
                .group
                .filter(|g| !g.is_empty())
                .unwrap_or_else(|| group.to_owned()),
            version: r
                .version
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| version.to_owned()),
            kind: r.kind,
            plural: r.name,
            namespaced: r.namespaced,
            verbs: r.verbs,
        })
        .collect()
}

// Every request runs in a `debug` span naming what was asked (never a token or a
// kubeconfig), so `TENANTRY_LOG=debug` shows the conversation with the API server; kube's
// own `trace` spans add the HTTP details below it.
impl ClusterApi for KubeCluster {
    #[instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn discover(&self) -> Result<Catalog, ClusterError> {
        debug!("discovery");
        let doing = "discovering the cluster's API";
        // Core resources: `/api/v1` (one request).
        let core = self
            .client
            .list_core_api_resources("v1")
            .await
            .map_err(|e| map_error(e, doing, None))?;
        let mut types = types_from_list("", "v1", core);
        // Every other group: aggregated discovery (one request) on Kubernetes ≥ 1.26; a
        // server without it answers with the legacy group list, which parses as no items.
        let aggregated = self
            .client
            .list_api_groups_aggregated()
            .await
            .map_err(|e| map_error(e, doing, None))?;
        if !aggregated.items.is_empty() {
            types.extend(types_from_aggregated(aggregated));
        } else {
            let groups = self
                .client
                .list_api_groups()
                .await
                .map_err(|e| map_error(e, doing, None))?;
            for group in groups.groups {
                // Preferred version first, as the catalog expects.
                let mut versions: Vec<String> = Vec::new();
                if let Some(p) = &group.preferred_version {
                    versions.push(p.version.clone());
                }
                for v in &group.versions {
                    if !versions.contains(&v.version) {
                        versions.push(v.version.clone());
                    }
                }
                for version in versions {
                    let gv = format!("{}/{version}", group.name);
                    let list = self
                        .client
                        .list_api_group_resources(&gv)
                        .await
                        .map_err(|e| map_error(e, doing, None))?;
                    types.extend(types_from_list(&group.name, &version, list));
                }
            }
        }
        Ok(Catalog::new(types))
    }

    #[instrument(level = "debug", skip_all, err(level = "debug"),
        fields(resource = %resource.qualified_name(), selector = label_selector))]
    async fn list(
        &self,
        resource: &ResourceType,
        label_selector: &str,
    ) -> Result<Vec<Value>, ClusterError> {
        debug!("LIST");
        let doing = format!("listing {}", resource.qualified_name());
        let api = self.api(resource, None);
        let mut items = Vec::new();
        let mut continue_token: Option<String> = None;
        let mut restarts = 0;
        loop {
            let mut params = ListParams::default()
                .labels(label_selector)
                .limit(PAGE_SIZE);
            if let Some(token) = &continue_token {
                params = params.continue_token(token);
            }
            match api.list(&params).await {
                Ok(page) => {
                    items.extend(page.items.into_iter().map(|o| to_value(o, resource)));
                    match page.metadata.continue_.filter(|c| !c.is_empty()) {
                        Some(next) => continue_token = Some(next),
                        None => return Ok(items),
                    }
                }
                // The continue token expired (the list took longer than etcd keeps
                // history): start over for a consistent answer rather than stitch pages
                // from two points in time.
                Err(e) if is_status(&e, 410) && continue_token.is_some() && restarts < 3 => {
                    restarts += 1;
                    items.clear();
                    continue_token = None;
                }
                Err(e) => return Err(map_error(e, &doing, None)),
            }
        }
    }

    #[instrument(level = "debug", skip_all, err(level = "debug"),
        fields(resource = %resource.qualified_name(), namespace = namespace, name = name))]
    async fn get(
        &self,
        resource: &ResourceType,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, ClusterError> {
        debug!("GET");
        let what = reference(resource, namespace, name);
        self.api(resource, namespace)
            .get_opt(name)
            .await
            .map(|o| o.map(|o| to_value(o, resource)))
            .map_err(|e| map_error(e, &format!("reading {what}"), Some(&what)))
    }

    #[instrument(level = "debug", skip_all, err(level = "debug"),
        fields(object = %object.reference(), dry_run = dry_run))]
    async fn apply(
        &self,
        resource: &ResourceType,
        object: &DesiredObject,
        dry_run: bool,
    ) -> Result<Value, ClusterError> {
        debug!("server-side apply");
        let what = object.reference();
        let mut params = PatchParams::apply(FIELD_MANAGER).force();
        if dry_run {
            params = params.dry_run();
        }
        self.api(resource, object.namespace.as_deref())
            .patch(&object.name, &params, &Patch::Apply(&object.body))
            .await
            .map(|o| to_value(o, resource))
            .map_err(|e| map_error(e, &format!("applying {what}"), Some(&what)))
    }

    #[instrument(level = "debug", skip_all, err(level = "debug"),
        fields(resource = %resource.qualified_name(), namespace = namespace,
               name = object.pointer("/metadata/name").and_then(serde_json::Value::as_str)))]
    async fn create(
        &self,
        resource: &ResourceType,
        namespace: Option<&str>,
        object: &Value,
    ) -> Result<Value, ClusterError> {
        debug!("POST");
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let what = reference(resource, namespace, name);
        let body: DynamicObject = serde_json::from_value(object.clone())
            .map_err(|e| ClusterError::Input(format!("{what}: not an object: {e}")))?;
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PostParams::default()
        };
        self.api(resource, namespace)
            .create(&params, &body)
            .await
            .map(|o| to_value(o, resource))
            .map_err(|e| map_error(e, &format!("creating {what}"), Some(&what)))
    }

    #[instrument(level = "debug", skip_all, err(level = "debug"),
        fields(resource = %resource.qualified_name(), namespace = namespace, name = name))]
    async fn merge_patch(
        &self,
        resource: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        patch: &Value,
    ) -> Result<Value, ClusterError> {
        debug!("PATCH (merge)");
        let what = reference(resource, namespace, name);
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        self.api(resource, namespace)
            .patch(name, &params, &Patch::Merge(patch))
            .await
            .map(|o| to_value(o, resource))
            .map_err(|e| map_error(e, &format!("changing {what}"), Some(&what)))
    }

    #[instrument(level = "debug", skip_all, err(level = "debug"),
        fields(resource = %resource.qualified_name(), namespace = namespace, name = name, uid = uid, dry_run = dry_run))]
    async fn delete(
        &self,
        resource: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        uid: Option<&str>,
        dry_run: bool,
    ) -> Result<Deletion, ClusterError> {
        debug!("DELETE");
        let what = reference(resource, namespace, name);
        let params = DeleteParams {
            dry_run,
            // Dependents are removed by the garbage collector after the object is gone;
            // waiting for them is the namespace wait's job, not every delete's.
            propagation_policy: Some(PropagationPolicy::Background),
            preconditions: uid.map(|uid| Preconditions {
                uid: Some(uid.to_owned()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match self.api(resource, namespace).delete(name, &params).await {
            Ok(_) => Ok(Deletion::Started),
            Err(e) if is_status(&e, 404) => Ok(Deletion::AlreadyGone),
            Err(e) if is_status(&e, 409) => Ok(Deletion::Replaced),
            Err(e) => Err(map_error(e, &format!("deleting {what}"), Some(&what))),
        }
    }

    #[instrument(level = "debug", skip_all, err(level = "debug"),
        fields(namespace = namespace, service_account = service_account,
               expiration_seconds = expiration_seconds, bound = bound.map(|b| format!("{} {}", b.kind, b.name))))]
    async fn request_token(
        &self,
        namespace: &str,
        service_account: &str,
        expiration_seconds: i64,
        bound: Option<&BoundObject>,
    ) -> Result<IssuedToken, ClusterError> {
        debug!("TokenRequest");
        let doing = format!("requesting a token for ServiceAccount {namespace}/{service_account}");
        let request = TokenRequest {
            spec: Some(TokenRequestSpec {
                // No audiences: the API server's own, so the token works against it and
                // nowhere else that checks audiences.
                audiences: None,
                // Deleting the ServiceAccount revokes every token; deleting the bound
                // object revokes this one.
                bound_object_ref: bound.map(|b| BoundObjectReference {
                    api_version: Some(b.api_version.clone()),
                    kind: Some(b.kind.clone()),
                    name: Some(b.name.clone()),
                    uid: Some(b.uid.clone()),
                }),
                attestations: None,
                expiration_seconds: Some(expiration_seconds),
            }),
            ..TokenRequest::default()
        };
        let answer = Api::<ServiceAccount>::namespaced(self.client.clone(), namespace)
            .create_token_request(service_account, &PostParams::default(), &request)
            .await
            .map_err(|e| map_error(e, &doing, None))?;
        let status = answer.status.unwrap_or_default();
        let token =
            status
                .token
                .filter(|t| !t.is_empty())
                .ok_or_else(|| ClusterError::Transport {
                    doing: doing.clone(),
                    message: "the API server returned no token".to_owned(),
                    source: None,
                })?;
        Ok(IssuedToken {
            token,
            expires_at: status.expiration_timestamp.map(|t| t.0.to_string()),
            expiration_seconds: answer.spec.and_then(|s| s.expiration_seconds),
        })
    }

    #[instrument(level = "debug", skip_all, err(level = "debug"),
        fields(verb = %check.verb, resource = %check.resource, namespace = check.namespace.as_deref()))]
    async fn review_access(&self, check: &AccessCheck) -> Result<bool, ClusterError> {
        debug!("SelfSubjectAccessReview");
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(check.verb.clone()),
                    group: (!check.group.is_empty()).then(|| check.group.clone()),
                    resource: Some(check.resource.clone()),
                    namespace: check.namespace.clone(),
                    ..ResourceAttributes::default()
                }),
                ..SelfSubjectAccessReviewSpec::default()
            },
            ..SelfSubjectAccessReview::default()
        };
        let answer = Api::<SelfSubjectAccessReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| map_error(e, "reviewing the credential's access", None))?;
        Ok(answer.status.is_some_and(|s| s.allowed))
    }

    #[instrument(level = "debug", skip_all, err(level = "debug"),
        fields(user = %review.user, verb = %review.verb, resource = %review.resource,
               subresource = %review.subresource, namespace = review.namespace.as_deref()))]
    async fn review_subject_access(
        &self,
        review: &SubjectAccess,
    ) -> Result<AccessDecision, ClusterError> {
        debug!("SubjectAccessReview");
        let question = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: (!review.user.is_empty()).then(|| review.user.clone()),
                groups: (!review.groups.is_empty()).then(|| review.groups.clone()),
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(review.verb.clone()),
                    group: (!review.group.is_empty()).then(|| review.group.clone()),
                    resource: Some(review.resource.clone()),
                    subresource: (!review.subresource.is_empty())
                        .then(|| review.subresource.clone()),
                    namespace: review.namespace.clone(),
                    ..ResourceAttributes::default()
                }),
                ..SubjectAccessReviewSpec::default()
            },
            ..SubjectAccessReview::default()
        };
        let doing = format!("reviewing the access of {}", review.user);
        let answer = Api::<SubjectAccessReview>::all(self.client.clone())
            .create(&PostParams::default(), &question)
            .await
            .map_err(|e| map_error(e, &doing, None))?;
        let status = answer.status.unwrap_or_default();
        Ok(AccessDecision {
            allowed: status.allowed && status.denied != Some(true),
            reason: status.reason.unwrap_or_default(),
        })
    }

    // The token is never a span field.
    #[instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn review_token(&self, token: &str) -> Result<TokenStatus, ClusterError> {
        debug!("TokenReview");
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: token.to_owned(),
                audiences: None,
            },
            ..TokenReview::default()
        };
        let answer = Api::<TokenReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| map_error(e, "reviewing the issued token", None))?;
        let status = answer.status.unwrap_or_default();
        let authenticated = status.authenticated == Some(true);
        Ok(TokenStatus {
            authenticated,
            username: status
                .user
                .and_then(|u| u.username)
                .filter(|_| authenticated),
            error: status.error.filter(|e| !e.is_empty()),
        })
    }

    #[instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn connect_as(&self, kubeconfig: &str) -> Result<Self, ClusterError> {
        let parsed = Kubeconfig::from_yaml(kubeconfig).map_err(kubeconfig_error)?;
        let config = Config::from_custom_kubeconfig(parsed, &KubeConfigOptions::default())
            .await
            .map_err(kubeconfig_error)?;
        Self::from_config(config)
    }

    fn impersonate(&self, user: &str, groups: &[String]) -> Result<Self, ClusterError> {
        let mut config = self.config.as_deref().cloned().ok_or_else(|| {
            ClusterError::Kubeconfig(format!(
                "cannot act as {user}: this client was not built from a kubeconfig"
            ))
        })?;
        config.auth_info.impersonate = Some(user.to_owned());
        config.auth_info.impersonate_groups = (!groups.is_empty()).then(|| groups.to_vec());
        Self::from_config(config)
    }
}
