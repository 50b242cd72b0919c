//! `tenantry audit`: what a tenant can reach on the live cluster, and what refuses it.
//!
//! Rendering says what Tenantry *meant* to grant; the cluster grants the sum of every
//! binding anyone ever made, including ones to groups every ServiceAccount is in
//! (`system:serviceaccounts`, `system:authenticated`). So the audit asks the authorizer,
//! identity by identity, about every served resource and verb in four places — one of the
//! tenant's namespaces, another tenant's, a platform namespace and the cluster scope — plus
//! the known escalation paths, and names the binding behind every allow outside the tenant.
//!
//! The decisions are here, as plain functions: which questions to ask ([`plan`]), what the
//! answers mean ([`summarise`], with [`rbac`]'s binding walk) and which layer refused a
//! behavioural case ([`mtb::classify`]). The CLI asks the questions (concurrently) and sends
//! the cases; nothing here does I/O, so the tests feed recorded API-server answers.

pub mod mtb;
pub mod rbac;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::Serialize;
use tenantry_api::tenant::OwnerKind;
use tenantry_core::{Rendered, ResolvedTenant};

pub use mtb::{Attempt, MtbCase, Refuser};
pub use rbac::Rbac;

/// The verbs of the access matrix, in the order printed.
pub const VERBS: [&str; 8] = [
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];

/// Someone the tenant is, to the authorizer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Identity {
    /// As printed: `ServiceAccount shop/shop`, `User alice`, `Group shop-devs`.
    pub name: String,
    /// The user name the authorizer sees; empty for a group owner (any member).
    pub user: String,
    /// The groups it is in, `system:authenticated` included.
    pub groups: Vec<String>,
    /// The user impersonated for the behavioural cases: `user`, or for a group owner a
    /// synthetic member of the group ([`group_member`]), since the API server impersonates
    /// no group without a user.
    pub acts_as: String,
}

impl Identity {
    /// Whether the behavioural cases run as a synthetic user (a group owner).
    pub fn synthetic(&self) -> bool {
        self.user.is_empty()
    }
}

/// The synthetic user a group owner's behavioural cases run as: a name no real identity
/// has, in that group (and `system:authenticated`) only, so what it is allowed is what the
/// group is allowed.
pub fn group_member(group: &str) -> String {
    format!("tenantry-audit:member-of:{group}")
}

fn service_account(namespace: &str, name: &str) -> Identity {
    let user = format!("system:serviceaccount:{namespace}:{name}");
    Identity {
        name: format!("ServiceAccount {namespace}/{name}"),
        acts_as: user.clone(),
        user,
        groups: vec![
            "system:serviceaccounts".to_owned(),
            format!("system:serviceaccounts:{namespace}"),
            "system:authenticated".to_owned(),
        ],
    }
}

/// Every identity the tenant holds: the ServiceAccounts Tenantry renders for it, then its
/// owners (a group owner stands for any member of the group, with no user bindings of its
/// own).
pub fn identities(tenant: &ResolvedTenant, rendered: &Rendered) -> Vec<Identity> {
    let mut out: Vec<Identity> = rendered
        .objects
        .iter()
        .filter(|o| o.kind == "ServiceAccount")
        .filter_map(|o| Some(service_account(o.namespace.as_deref()?, &o.name)))
        .collect();
    for owner in &tenant.owners {
        let identity = match owner.kind {
            OwnerKind::User => Identity {
                name: format!("User {}", owner.name),
                user: owner.name.clone(),
                acts_as: owner.name.clone(),
                groups: vec!["system:authenticated".to_owned()],
            },
            OwnerKind::Group => Identity {
                name: format!("Group {}", owner.name),
                user: String::new(),
                acts_as: group_member(&owner.name),
                groups: vec![owner.name.clone(), "system:authenticated".to_owned()],
            },
            OwnerKind::ServiceAccount => service_account(
                owner
                    .namespace
                    .as_deref()
                    .unwrap_or(tenant.primary_namespace()),
                &owner.name,
            ),
        };
        if !out.contains(&identity) {
            out.push(identity);
        }
    }
    out
}

/// Where a question is asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScopeKind {
    /// One of the tenant's own namespaces: allows are expected.
    Own,
    /// Another tenant's namespace.
    OtherTenant,
    /// A namespace of the platform.
    Platform,
    /// The cluster scope: cluster-scoped types, and namespaced types in every namespace.
    Cluster,
}

/// A place questions are asked in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Scope {
    /// Which kind of place.
    pub kind: ScopeKind,
    /// Its namespace, `None` at cluster scope.
    pub namespace: Option<String>,
}

impl Scope {
    /// As printed.
    pub fn label(&self) -> String {
        let ns = self.namespace.as_deref().unwrap_or_default();
        match self.kind {
            ScopeKind::Own => format!("own namespace {ns}"),
            ScopeKind::OtherTenant => format!("other tenant's namespace {ns}"),
            ScopeKind::Platform => format!("platform namespace {ns}"),
            ScopeKind::Cluster => "cluster-wide".to_owned(),
        }
    }
}

/// The places: each of the tenant's namespaces (a binding can be made in any one of them),
/// the first (by name) namespace of another tenant when there is one, the platform
/// namespace, the cluster scope.
pub fn scopes(
    tenant: &ResolvedTenant,
    other_tenant_namespaces: &[String],
    platform_namespace: &str,
) -> Vec<Scope> {
    let scope = |kind, ns: Option<&str>| Scope {
        kind,
        namespace: ns.map(str::to_owned),
    };
    let mut out: Vec<Scope> = tenant
        .namespaces
        .iter()
        .map(|ns| scope(ScopeKind::Own, Some(ns)))
        .collect();
    if let Some(other) = other_tenant_namespaces
        .iter()
        .filter(|n| !tenant.namespaces.contains(n))
        .min()
    {
        out.push(scope(ScopeKind::OtherTenant, Some(other)));
    }
    out.push(scope(ScopeKind::Platform, Some(platform_namespace)));
    out.push(scope(ScopeKind::Cluster, None));
    out
}

/// A resource type the cluster serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServedResource {
    /// API group, empty for core.
    pub group: String,
    /// The plural, e.g. `deployments`.
    pub resource: String,
    /// Whether its objects live in namespaces.
    pub namespaced: bool,
    /// The verbs discovery lists for it.
    pub verbs: Vec<String>,
}

/// An escalation path: an access that lets its holder become more than it is.
struct Escalation {
    verb: &'static str,
    group: &'static str,
    resource: &'static str,
    subresource: &'static str,
    /// Where it is an escalation: `Own` means everywhere.
    from: ScopeKind,
    why: &'static str,
}

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

const ESCALATIONS: [Escalation; 11] = [
    Escalation {
        verb: "bind",
        group: RBAC_GROUP,
        resource: "clusterroles",
        subresource: "",
        from: ScopeKind::Own,
        why: "may bind any ClusterRole (cluster-admin included) where it can write bindings",
    },
    Escalation {
        verb: "escalate",
        group: RBAC_GROUP,
        resource: "clusterroles",
        subresource: "",
        from: ScopeKind::Own,
        why: "may write ClusterRoles granting more than it holds",
    },
    Escalation {
        verb: "bind",
        group: RBAC_GROUP,
        resource: "roles",
        subresource: "",
        from: ScopeKind::Own,
        why: "may bind Roles granting more than it holds",
    },
    Escalation {
        verb: "escalate",
        group: RBAC_GROUP,
        resource: "roles",
        subresource: "",
        from: ScopeKind::Own,
        why: "may write Roles granting more than it holds",
    },
    Escalation {
        verb: "impersonate",
        group: "",
        resource: "users",
        subresource: "",
        from: ScopeKind::Cluster,
        why: "may act as any user",
    },
    Escalation {
        verb: "impersonate",
        group: "",
        resource: "groups",
        subresource: "",
        from: ScopeKind::Cluster,
        why: "may act as any group (system:masters included)",
    },
    Escalation {
        verb: "impersonate",
        group: "",
        resource: "serviceaccounts",
        subresource: "",
        from: ScopeKind::OtherTenant,
        why: "may act as another namespace's ServiceAccounts",
    },
    Escalation {
        verb: "impersonate",
        group: "authentication.k8s.io",
        resource: "uids",
        subresource: "",
        from: ScopeKind::Cluster,
        why: "may act under any user ID",
    },
    Escalation {
        verb: "create",
        group: "",
        resource: "serviceaccounts",
        subresource: "token",
        from: ScopeKind::OtherTenant,
        why: "may mint tokens for another namespace's ServiceAccounts",
    },
    Escalation {
        verb: "create",
        group: "",
        resource: "pods",
        subresource: "exec",
        from: ScopeKind::OtherTenant,
        why: "may run commands in another namespace's pods",
    },
    Escalation {
        verb: "get",
        group: "",
        resource: "pods",
        subresource: "exec",
        from: ScopeKind::OtherTenant,
        why: "may run commands in another namespace's pods (websocket exec is a GET)",
    },
];

/// Why an access is an escalation path, when it is one. Reading Secrets cluster-wide is
/// asked by the matrix itself (`get`/`list`/`watch` of `secrets` at cluster scope).
pub fn escalation(question: &Question, scopes: &[Scope]) -> Option<&'static str> {
    let kind = scopes[question.scope].kind;
    if question.group.is_empty()
        && question.resource == "secrets"
        && question.subresource.is_empty()
        && kind == ScopeKind::Cluster
        && ["get", "list", "watch"].contains(&question.verb.as_str())
    {
        return Some(
            "reads every Secret in the cluster: other tenants' and the platform's credentials",
        );
    }
    ESCALATIONS
        .iter()
        .find(|e| {
            e.verb == question.verb
                && e.group == question.group
                && e.resource == question.resource
                && e.subresource == question.subresource
                && kind >= e.from
        })
        .map(|e| e.why)
}

/// Accesses Kubernetes gives every authenticated identity on purpose (the bootstrap
/// `system:basic-user` role): asking who one is and what one may do.
const EVERYONE: [(&str, &str); 3] = [
    ("authorization.k8s.io", "selfsubjectaccessreviews"),
    ("authorization.k8s.io", "selfsubjectrulesreviews"),
    ("authentication.k8s.io", "selfsubjectreviews"),
];

fn for_everyone(question: &Question) -> bool {
    question.verb == "create"
        && question.subresource.is_empty()
        && EVERYONE.contains(&(question.group.as_str(), question.resource.as_str()))
}

/// One SubjectAccessReview to make.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Question {
    /// Index into the identities.
    pub identity: usize,
    /// Index into the scopes.
    pub scope: usize,
    /// The verb.
    pub verb: String,
    /// API group, empty for core.
    pub group: String,
    /// The plural.
    pub resource: String,
    /// e.g. `exec`, or empty.
    pub subresource: String,
}

impl Question {
    /// `pods`, `deployments.apps`, `pods/exec`.
    pub fn resource_name(&self) -> String {
        let sub = if self.subresource.is_empty() {
            String::new()
        } else {
            format!("/{}", self.subresource)
        };
        if self.group.is_empty() {
            format!("{}{sub}", self.resource)
        } else {
            format!("{}.{}{sub}", self.resource, self.group)
        }
    }
}

/// Every question: each identity × scope × served resource (namespaced types in every
/// scope, cluster-scoped ones at cluster scope only) × each of [`VERBS`] discovery lists for
/// the type, then the escalation paths from where each starts being one. Each question once
/// (a type served in several versions is one type to RBAC), in a fixed order.
pub fn plan(
    identities: &[Identity],
    scopes: &[Scope],
    resources: &[ServedResource],
) -> Vec<Question> {
    let mut out = Vec::new();
    for identity in 0..identities.len() {
        for (s, scope) in scopes.iter().enumerate() {
            let question = |verb: &str, group: &str, resource: &str, subresource: &str| Question {
                identity,
                scope: s,
                verb: verb.to_owned(),
                group: group.to_owned(),
                resource: resource.to_owned(),
                subresource: subresource.to_owned(),
            };
            for r in resources
                .iter()
                .filter(|r| r.namespaced || scope.kind == ScopeKind::Cluster)
            {
                for verb in VERBS.iter().filter(|v| r.verbs.iter().any(|s| s == *v)) {
                    out.push(question(verb, &r.group, &r.resource, ""));
                }
            }
            for e in ESCALATIONS.iter().filter(|e| scope.kind >= e.from) {
                // Cluster-scoped types are asked at cluster scope only, as RBAC sees them.
                let cluster_scoped = matches!(e.resource, "users" | "groups" | "uids");
                if !cluster_scoped || scope.kind == ScopeKind::Cluster {
                    out.push(question(e.verb, e.group, e.resource, e.subresource));
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The authorizer's answer to a question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// Allowed.
    pub allowed: bool,
    /// The authorizer's reason.
    pub reason: String,
}

/// Resources allowed the same verbs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Grant {
    /// The verbs, in [`VERBS`] order (escalation verbs after).
    pub verbs: Vec<String>,
    /// The resources, in name order.
    pub resources: Vec<String>,
}

/// What one identity may do in one scope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ScopeAccess {
    /// Which kind of place.
    pub scope: ScopeKind,
    /// Its namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// How many questions were asked here.
    pub asked: usize,
    /// How many were allowed.
    pub allowed: usize,
    /// The allows, grouped by verb set, widest first.
    pub grants: Vec<Grant>,
    /// Allows every authenticated identity has on purpose (not findings).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub everyone: Vec<String>,
}

/// What one identity may do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IdentityAccess {
    /// The identity, as printed.
    pub identity: String,
    /// Per scope, in scope order.
    pub scopes: Vec<ScopeAccess>,
}

/// An allow the tenant must not have.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AccessFinding {
    /// The identity, as printed.
    pub identity: String,
    /// Where.
    pub scope: ScopeKind,
    /// Its namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The resource, as printed.
    pub resource: String,
    /// The verbs allowed, in [`VERBS`] order.
    pub verbs: Vec<String>,
    /// Why it is an escalation path, when it is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub escalation: Option<&'static str>,
    /// The bindings that grant it (see [`rbac::granting_bindings`]); empty when none does
    /// (another authorizer allowed: `reason` says which).
    pub granted_by: Vec<String>,
    /// The authorizer's own reason.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// The access matrix, summarised.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AccessAudit {
    /// Per identity.
    pub identities: Vec<IdentityAccess>,
    /// Every allow outside the tenant, and every escalation path anywhere.
    pub findings: Vec<AccessFinding>,
}

/// One row of an identity's access, for a reader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopeRow<'a> {
    /// Where: `own namespaces shop, shop-batch` for own namespaces folded together.
    pub label: String,
    /// The access there (the first of the folded namespaces').
    pub access: &'a ScopeAccess,
}

/// An identity's access as rows: the tenant's own namespaces where it may do exactly the
/// same folded into one row naming them (so a tenant of ten namespaces still reads on one
/// screen, and a namespace that differs is a row of its own), every other place a row.
pub fn rows(identity: &IdentityAccess) -> Vec<ScopeRow<'_>> {
    let same = |a: &ScopeAccess, b: &ScopeAccess| {
        (a.asked, a.allowed, &a.grants, &a.everyone) == (b.asked, b.allowed, &b.grants, &b.everyone)
    };
    let mut own: Vec<(&ScopeAccess, Vec<&str>)> = Vec::new();
    let mut out = Vec::new();
    for s in &identity.scopes {
        if s.scope != ScopeKind::Own {
            continue;
        }
        let ns = s.namespace.as_deref().unwrap_or_default();
        match own.iter_mut().find(|(first, _)| same(first, s)) {
            Some((_, names)) => names.push(ns),
            None => own.push((s, vec![ns])),
        }
    }
    for (access, names) in own {
        let label = match names.as_slice() {
            [one] => format!("own namespace {one}"),
            many => format!("own namespaces {}", many.join(", ")),
        };
        out.push(ScopeRow { label, access });
    }
    for s in identity.scopes.iter().filter(|s| s.scope != ScopeKind::Own) {
        out.push(ScopeRow {
            label: Scope {
                kind: s.scope,
                namespace: s.namespace.clone(),
            }
            .label(),
            access: s,
        });
    }
    out
}

/// The identities that may do exactly the same everywhere, together (in first-seen order):
/// a tenant's ServiceAccounts and owners are usually bound to one role, and a reader should
/// see that once, and the one that differs on its own.
pub fn same_access(access: &AccessAudit) -> Vec<(Vec<&str>, &IdentityAccess)> {
    let mut out: Vec<(Vec<&str>, &IdentityAccess)> = Vec::new();
    for identity in &access.identities {
        match out
            .iter_mut()
            .find(|(_, first)| first.scopes == identity.scopes)
        {
            Some((names, _)) => names.push(&identity.identity),
            None => out.push((vec![&identity.identity], identity)),
        }
    }
    out
}

fn verb_rank(verb: &str) -> usize {
    VERBS.iter().position(|v| *v == verb).unwrap_or(VERBS.len())
}

/// Group the answers (one per question, same order) so a person reads one screen: per
/// identity and scope, the resources allowed the same verbs together; and one finding per
/// (identity, scope, resource, bindings) with its verbs merged.
pub fn summarise(
    identities: &[Identity],
    scopes: &[Scope],
    questions: &[Question],
    answers: &[Answer],
    rbac: &Rbac,
) -> AccessAudit {
    // (identity, scope) → resource → allowed verbs; asked counts.
    let mut allowed: BTreeMap<(usize, usize), BTreeMap<String, Vec<String>>> = BTreeMap::new();
    let mut everyone: BTreeMap<(usize, usize), Vec<String>> = BTreeMap::new();
    let mut asked: BTreeMap<(usize, usize), usize> = BTreeMap::new();
    type Key = (usize, usize, String, Vec<String>);
    let mut findings: BTreeMap<Key, AccessFinding> = BTreeMap::new();
    for (q, a) in questions.iter().zip(answers) {
        let key = (q.identity, q.scope);
        *asked.entry(key).or_default() += 1;
        if !a.allowed {
            continue;
        }
        if for_everyone(q) {
            everyone.entry(key).or_default().push(q.resource_name());
            continue;
        }
        allowed
            .entry(key)
            .or_default()
            .entry(q.resource_name())
            .or_default()
            .push(q.verb.clone());
        let scope = &scopes[q.scope];
        let why = escalation(q, scopes);
        if scope.kind == ScopeKind::Own && why.is_none() {
            continue;
        }
        let granted_by = rbac::granting_bindings(
            rbac,
            &identities[q.identity],
            &rbac::Request {
                verb: &q.verb,
                group: &q.group,
                resource: &q.resource,
                subresource: &q.subresource,
                namespace: scope.namespace.as_deref(),
            },
        );
        let finding = findings
            .entry((q.identity, q.scope, q.resource_name(), granted_by.clone()))
            .or_insert_with(|| AccessFinding {
                identity: identities[q.identity].name.clone(),
                scope: scope.kind,
                namespace: scope.namespace.clone(),
                resource: q.resource_name(),
                verbs: Vec::new(),
                escalation: why,
                granted_by,
                reason: a.reason.clone(),
            });
        finding.verbs.push(q.verb.clone());
        finding.escalation = finding.escalation.or(why);
    }
    let mut findings: Vec<AccessFinding> = findings.into_values().collect();
    for f in &mut findings {
        f.verbs.sort_by_key(|v| verb_rank(v));
    }
    let identities = identities
        .iter()
        .enumerate()
        .map(|(i, identity)| IdentityAccess {
            identity: identity.name.clone(),
            scopes: scopes
                .iter()
                .enumerate()
                .map(|(s, scope)| {
                    let mut groups: BTreeMap<Vec<String>, Vec<String>> = BTreeMap::new();
                    for (resource, mut verbs) in allowed.remove(&(i, s)).unwrap_or_default() {
                        verbs.sort_by_key(|v| verb_rank(v));
                        groups.entry(verbs).or_default().push(resource);
                    }
                    let mut grants: Vec<Grant> = groups
                        .into_iter()
                        .map(|(verbs, resources)| Grant { verbs, resources })
                        .collect();
                    grants.sort_by(|a, b| {
                        b.verbs
                            .len()
                            .cmp(&a.verbs.len())
                            .then_with(|| b.resources.len().cmp(&a.resources.len()))
                            .then_with(|| a.verbs.cmp(&b.verbs))
                    });
                    let everyone = everyone.remove(&(i, s)).unwrap_or_default();
                    ScopeAccess {
                        scope: scope.kind,
                        namespace: scope.namespace.clone(),
                        asked: asked.get(&(i, s)).copied().unwrap_or(0),
                        allowed: grants
                            .iter()
                            .map(|g| g.verbs.len() * g.resources.len())
                            .sum::<usize>()
                            + everyone.len(),
                        grants,
                        everyone,
                    }
                })
                .collect(),
        })
        .collect();
    AccessAudit {
        identities,
        findings,
    }
}
