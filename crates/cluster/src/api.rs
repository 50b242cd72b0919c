//! The few things Tenantry asks of a Kubernetes API server, as one trait.
//!
//! Everything that decides (order, plan, resume, prune, offboarding, credential checks) is
//! written against [`ClusterApi`], so it runs unchanged against the real client
//! ([`crate::KubeCluster`]) and the in-memory [`crate::fake::FakeCluster`] that tests and
//! benchmarks count requests with. Each method is one API request (discovery and paginated
//! lists aside), which keeps request counts honest.

use std::future::Future;

use serde::Serialize;
use serde_json::Value;
use tenantry_core::DesiredObject;

use crate::{catalog::Catalog, catalog::ResourceType, error::ClusterError};

/// One `SelfSubjectAccessReview` question: may the caller `verb` `resource` (in `namespace`)?
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AccessCheck {
    /// e.g. `list`.
    pub verb: String,
    /// API group of the resource, empty for core.
    pub group: String,
    /// e.g. `pods`.
    pub resource: String,
    /// The namespace, or `None` for the cluster scope.
    pub namespace: Option<String>,
}

/// One `SubjectAccessReview` question, asked by an administrator about someone else: may
/// `user` (a member of `groups`) `verb` `resource` (`subresource`) in `namespace`?
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SubjectAccess {
    /// The user asked about (`system:serviceaccount:<ns>:<name>` for a ServiceAccount); may
    /// be empty when `groups` is not.
    pub user: String,
    /// Its groups, as the authenticator would report them.
    pub groups: Vec<String>,
    /// e.g. `list`, `bind`, `impersonate`.
    pub verb: String,
    /// API group of the resource, empty for core.
    pub group: String,
    /// e.g. `pods`.
    pub resource: String,
    /// e.g. `exec`; empty for the resource itself.
    pub subresource: String,
    /// The namespace, or `None` for the cluster scope (all namespaces, for a namespaced type).
    pub namespace: Option<String>,
}

/// What the authorizer answered to a [`SubjectAccess`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AccessDecision {
    /// True when allowed.
    pub allowed: bool,
    /// The authorizer's reason (RBAC names the binding that allowed), possibly empty.
    pub reason: String,
}

/// A token minted by the TokenRequest API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedToken {
    /// The bearer token. Never logged, never printed.
    pub token: String,
    /// When the API server says it expires (RFC 3339).
    pub expires_at: Option<String>,
    /// The lifetime the server granted, which may be shorter than asked.
    pub expiration_seconds: Option<i64>,
}

/// The object a token is bound to (TokenRequest `boundObjectRef`). The API server checks on
/// every request made with the token that this object still exists with this uid, so
/// deleting it revokes that one token and no other.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoundObject {
    /// `Secret`, `Pod` or `Node` (the kinds the API server accepts).
    pub kind: String,
    /// `v1` for all three.
    pub api_version: String,
    /// Its name, in the ServiceAccount's namespace.
    pub name: String,
    /// Its uid: a new object of the same name does not bring the token back.
    pub uid: String,
}

/// What a `TokenReview` said about a token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TokenStatus {
    /// True when the API server accepts the token.
    pub authenticated: bool,
    /// The user the token authenticates as, when it does.
    pub username: Option<String>,
    /// The authenticator's error, when it does not.
    pub error: Option<String>,
}

/// The result of a DELETE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Deletion {
    /// Deleted, or deletion started (the object may linger while finalizers run; namespaces
    /// report `Terminating`).
    Started,
    /// It was already gone (404).
    AlreadyGone,
    /// An object of that name exists but is not the one observed (uid precondition failed):
    /// a newer object, left alone.
    Replaced,
}

/// The requests Tenantry makes. Implementations add no policy: they translate.
pub trait ClusterApi: Sized + Send + Sync {
    /// Discover every served resource type.
    fn discover(&self) -> impl Future<Output = Result<Catalog, ClusterError>> + Send;

    /// List objects of a type across all namespaces, filtered by a label selector. Items
    /// carry `apiVersion` and `kind`.
    fn list(
        &self,
        resource: &ResourceType,
        label_selector: &str,
    ) -> impl Future<Output = Result<Vec<Value>, ClusterError>> + Send;

    /// Get one object; `None` when it does not exist.
    fn get(
        &self,
        resource: &ResourceType,
        namespace: Option<&str>,
        name: &str,
    ) -> impl Future<Output = Result<Option<Value>, ClusterError>> + Send;

    /// Server-side apply of a rendered object as field manager `tenantry`, taking ownership
    /// of its fields. With `dry_run` the server validates and returns the result without
    /// storing it. Returns the object as the server holds (or would hold) it.
    fn apply(
        &self,
        resource: &ResourceType,
        object: &DesiredObject,
        dry_run: bool,
    ) -> impl Future<Output = Result<Value, ClusterError>> + Send;

    /// Create an object (POST), as field manager `tenantry`. Fails with a 409 `AlreadyExists`
    /// [`ClusterError::Api`] when an object of that name exists: the caller chose the name
    /// and must not take over someone else's object. Returns the object as stored.
    fn create(
        &self,
        resource: &ResourceType,
        namespace: Option<&str>,
        object: &Value,
    ) -> impl Future<Output = Result<Value, ClusterError>> + Send;

    /// Change fields of an existing object with a JSON merge patch, as field manager
    /// `tenantry`. A missing object is a 404 [`ClusterError::Api`], never a creation.
    fn merge_patch(
        &self,
        resource: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        patch: &Value,
    ) -> impl Future<Output = Result<Value, ClusterError>> + Send;

    /// Delete one object, only if its uid is still `uid` (when given).
    fn delete(
        &self,
        resource: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        uid: Option<&str>,
        dry_run: bool,
    ) -> impl Future<Output = Result<Deletion, ClusterError>> + Send;

    /// Mint a token of a ServiceAccount, for the API server's own audience, bound to
    /// `bound` when given (the token then dies with that object as well as with the
    /// ServiceAccount).
    fn request_token(
        &self,
        namespace: &str,
        service_account: &str,
        expiration_seconds: i64,
        bound: Option<&BoundObject>,
    ) -> impl Future<Output = Result<IssuedToken, ClusterError>> + Send;

    /// Ask whether the caller's own identity may do something (`SelfSubjectAccessReview`).
    fn review_access(
        &self,
        check: &AccessCheck,
    ) -> impl Future<Output = Result<bool, ClusterError>> + Send;

    /// Ask whether someone else may do something (`SubjectAccessReview`).
    fn review_subject_access(
        &self,
        review: &SubjectAccess,
    ) -> impl Future<Output = Result<AccessDecision, ClusterError>> + Send;

    /// A client for the same cluster that acts as `user` with `groups` (impersonation: the
    /// caller needs `impersonate` on both), to see what the API server does to that identity's
    /// requests.
    fn impersonate(&self, user: &str, groups: &[String]) -> Result<Self, ClusterError>;

    /// Ask whether a token is valid (`TokenReview`).
    fn review_token(
        &self,
        token: &str,
    ) -> impl Future<Output = Result<TokenStatus, ClusterError>> + Send;

    /// A client for the same cluster that authenticates with the credential in a kubeconfig
    /// document, to prove what that credential can do.
    fn connect_as(
        &self,
        kubeconfig: &str,
    ) -> impl Future<Output = Result<Self, ClusterError>> + Send;
}
