//! One Tenant's reconcile and its offboarding, written against [`ClusterApi`].
//!
//! There is no operator-specific way of converging a tenant: the spec is turned into a
//! tenant file and resolved, rendered, planned, applied and pruned by the functions
//! `tenantry apply` calls ([`tenantry_core::render`], [`ops::converge_tenants`]), and a
//! deleted Tenant is offboarded by the functions `tenantry offboard` calls
//! ([`ops::offboard_cluster`], [`ops::scan_tenant`]). So the operator and the CLI render the
//! same objects, with the same field manager, and running one after the other sends no
//! write. Because everything here goes through [`ClusterApi`], the whole reconcile runs
//! against `FakeCluster` in tests; the kube-runtime wiring around it (`controller`) only
//! chooses when to call it and writes the status it returns.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use tenantry_api::{
    Tenant,
    tenant::{FileMetadata, TenantFile, TenantStatus},
};
use tenantry_cluster::{
    Catalog, ClusterApi, ClusterError,
    ops::{self, ApplyOptions, Converged, OffboardCluster, Prune, Silent, Waits},
};
use tenantry_core::{FieldError, Invalid, PlatformContext, Rendered, ResolvedTenant, render};

use crate::status::{self, Observed};

/// The tenant file a Tenant object stands for: same name, labels, annotations and spec, so
/// it resolves exactly as `tenants/<name>/tenant.yaml` would.
pub fn tenant_file(tenant: &Tenant) -> TenantFile {
    TenantFile {
        api_version: tenantry_api::API_VERSION.to_owned(),
        kind: "Tenant".to_owned(),
        metadata: FileMetadata {
            name: tenant.name_any(),
            labels: tenant.labels().clone(),
            annotations: tenant
                .annotations()
                .iter()
                // The API server's own bookkeeping is not part of the declaration.
                .filter(|(k, _)| k.as_str() != "kubectl.kubernetes.io/last-applied-configuration")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        },
        spec: tenant.spec.clone(),
    }
}

/// Resolve a Tenant against the platform, refusing namespaces another, older Tenant already
/// claims. In a repository `render` refuses both tenants; in a cluster the older one is
/// already running in the namespace, so only the newcomer is refused (at
/// `spec.namespaces`), and creating a Tenant can never take an existing one's isolation away.
pub fn resolve(
    ctx: &PlatformContext,
    tenant: &Tenant,
    others: &[&Tenant],
) -> Result<ResolvedTenant, Invalid> {
    let resolved = ctx.resolve(&tenant_file(tenant))?;
    let mine = (tenant.creation_timestamp(), tenant.name_any());
    let mut errors = Vec::new();
    for other in others {
        let theirs = (other.creation_timestamp(), other.name_any());
        if theirs.1 == mine.1 || theirs >= mine {
            continue;
        }
        // Another tenant can only claim `n` if `n` is its name or starts with `<name>-`.
        let claims = |ns: &str| ns == theirs.1 || ns.starts_with(&format!("{}-", theirs.1));
        if !resolved.namespaces.iter().any(|ns| claims(ns)) {
            continue;
        }
        let Ok(their) = ctx.resolve(&tenant_file(other)) else {
            continue;
        };
        for ns in resolved
            .namespaces
            .iter()
            .filter(|ns| their.namespaces.contains(ns))
        {
            errors.push(FieldError::new(
                "spec.namespaces",
                format!("namespace {ns:?} already belongs to tenant {:?}", theirs.1),
            ));
        }
    }
    if errors.is_empty() {
        Ok(resolved)
    } else {
        Err(Invalid { errors })
    }
}

/// What reconciling one tenant found and did.
#[derive(Debug)]
pub enum Outcome {
    /// The platform configuration is unusable (message names the ConfigMap).
    Platform(String),
    /// The spec does not resolve.
    Spec(Invalid),
    /// The cluster could not be observed.
    Cluster(ClusterError),
    /// Planned, and applied unless converged.
    Converged {
        /// What the tenant renders.
        rendered: Box<Rendered>,
        /// Plan and apply.
        converged: Converged,
    },
}

/// One reconcile's result.
#[derive(Debug)]
pub struct Reconciled {
    /// The tenant's namespaces, when its spec resolved.
    pub namespaces: Vec<String>,
    /// What happened.
    pub outcome: Outcome,
}

impl Reconciled {
    /// The error to back off on, if the reconcile failed.
    pub fn failed(&self) -> bool {
        match &self.outcome {
            Outcome::Converged { converged, .. } => converged
                .applied
                .as_ref()
                .is_some_and(|a| a.error.is_some()),
            _ => true,
        }
    }

    /// Writes sent to converge the tenant.
    pub fn writes(&self) -> usize {
        match &self.outcome {
            Outcome::Converged { converged, .. } => {
                converged.applied.as_ref().map_or(0, |a| a.writes)
            }
            _ => 0,
        }
    }

    /// The objects that were created or changed (`Kind namespace/name`), for events.
    pub fn written(&self) -> Vec<String> {
        let Outcome::Converged { converged, .. } = &self.outcome else {
            return Vec::new();
        };
        converged
            .applied
            .iter()
            .flat_map(|a| &a.layers)
            .flat_map(|l| &l.objects)
            .filter(|o| matches!(o.action, ops::Action::Created | ops::Action::Changed))
            .map(|o| o.object.clone())
            .collect()
    }

    /// The status this reconcile leaves on the Tenant.
    pub fn status(&self, tenant: &Tenant, now: &Time) -> TenantStatus {
        let observed = match &self.outcome {
            Outcome::Platform(message) => Observed::Platform(message),
            Outcome::Spec(invalid) => Observed::Spec(invalid),
            Outcome::Cluster(error) => Observed::Cluster(error),
            Outcome::Converged {
                rendered,
                converged,
            } => Observed::Converged {
                rendered,
                plan: &converged.plan,
                applied: converged.applied.as_ref(),
            },
        };
        let name = tenant.name_any();
        status::compute(&status::Input {
            tenant: &name,
            generation: tenant.metadata.generation,
            namespaces: &self.namespaces,
            observed,
            previous: tenant.status.as_ref(),
            now,
        })
    }
}

/// Converge one Tenant: resolve, render, and run the CLI's loop on it. Layers whose CRDs are
/// not installed are skipped (and reported as Degraded) rather than stopping the tenant.
pub async fn converge<A: ClusterApi>(
    api: &A,
    catalog: &Catalog,
    platform: Result<&PlatformContext, &str>,
    tenant: &Tenant,
    others: &[&Tenant],
    prune: bool,
    waits: Waits,
) -> Reconciled {
    let ctx = match platform {
        Ok(ctx) => ctx,
        Err(message) => {
            return Reconciled {
                namespaces: Vec::new(),
                outcome: Outcome::Platform(message.to_owned()),
            };
        }
    };
    let resolved = match resolve(ctx, tenant, others) {
        Ok(resolved) => resolved,
        Err(invalid) => {
            return Reconciled {
                namespaces: Vec::new(),
                outcome: Outcome::Spec(invalid),
            };
        }
    };
    let rendered = render::render(ctx, &resolved);
    let options = ApplyOptions {
        dry_run: false,
        skip_missing_crds: true,
        waits,
    };
    let prune = if prune {
        Prune::RenderedKinds
    } else {
        Prune::Off
    };
    let outcome = match ops::converge_tenants(
        api,
        catalog,
        std::slice::from_ref(&rendered),
        ctx.tenant_label(),
        prune,
        &options,
        &Silent,
    )
    .await
    {
        Ok(mut converged) => match converged.pop() {
            Some(converged) => Outcome::Converged {
                rendered: Box::new(rendered),
                converged,
            },
            None => Outcome::Cluster(ClusterError::Input("the tenant was not planned".to_owned())),
        },
        Err(error) => Outcome::Cluster(error),
    };
    Reconciled {
        namespaces: resolved.namespaces,
        outcome,
    }
}

/// How far an offboarding got.
#[derive(Debug)]
pub struct Offboarded {
    /// The deletions, as `tenantry offboard` reports them.
    pub removed: OffboardCluster,
    /// Objects still labelled for the tenant (namespaces still terminating, typically).
    pub left: Vec<String>,
    /// Types that could not be listed while looking (the operator may not list every type).
    pub unreadable: Vec<String>,
}

impl Offboarded {
    /// True when nothing of the tenant is left and every deletion succeeded: the finalizer
    /// may go.
    pub fn complete(&self) -> bool {
        self.left.is_empty() && self.removed.first_error().is_none()
    }
}

/// How long one offboarding call waits for the tenant's namespaces to go.
const NAMESPACE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Offboard one tenant as `tenantry offboard` does (delivery and ServiceAccounts first, then
/// grants and other objects outside its namespaces, then the namespaces), then look for
/// what is left. Namespaces take a while to go; the caller calls again until
/// [`Offboarded::complete`], and deleting what is already being deleted is harmless.
pub async fn offboard<A: ClusterApi>(
    api: &A,
    catalog: &Catalog,
    tenant_label: &str,
    tenant: &str,
    waits: &Waits,
) -> Result<Offboarded, ClusterError> {
    let removed =
        ops::offboard_cluster(api, catalog, tenant_label, tenant, None, waits, &Silent).await?;
    if removed.first_error().is_none() {
        // As `tenantry offboard` does, but briefly: a namespace still going is looked at
        // again on the next call rather than holding a reconcile worker for minutes.
        let brief = Waits {
            timeout: waits.timeout.min(NAMESPACE_WAIT),
            ..*waits
        };
        match ops::wait_namespaces_gone(api, catalog, &removed.namespaces, &brief, &Silent).await {
            Ok(()) | Err(ClusterError::Timeout { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let (found, unreadable) = ops::scan_tenant(api, catalog, tenant_label, tenant, &Silent).await?;
    let left = ops::leftovers(&found);
    Ok(Offboarded {
        removed,
        left,
        unreadable,
    })
}
