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
//!
//! OpenBao goes the same way: a tenant with `secrets.openbao` gets its policy and role from
//! `tenantry_secrets::provision::provision` once its objects are in place (the role binds
//! its ServiceAccount), as `onboard` and `apply` do, and loses them, with every token they
//! issued, through `tenantry_secrets::revoke::revoke` when it is offboarded, as
//! `offboard` does. Both take any [`SecretsApi`], so tests run them on a real dev server.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use tenantry_api::{
    Tenant,
    platform::OpenBaoConfig,
    tenant::{FileMetadata, TenantFile, TenantStatus},
};
use tenantry_cluster::{
    Catalog, ClusterApi, ClusterError,
    ops::{self, ApplyOptions, Converged, OffboardCluster, Prune, Silent, Waits},
};
use tenantry_core::{FieldError, Invalid, PlatformContext, Rendered, ResolvedTenant, render};
use tenantry_secrets::{
    DesiredAccess, Layout, SecretsApi, SecretsError, TenantNames,
    provision::{self, Plan},
    revoke::{self, Revocation},
};

use crate::{
    flux_proxy,
    status::{self, Observed},
};
use k8s_openapi::jiff::Timestamp;

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
    /// What became of its OpenBao access ([`Reconciled::provision_openbao`]).
    pub openbao: Access,
    /// The Flux proxy kubeconfig the tenant needs (`flux.proxy`), when it needs one.
    pub flux_proxy_wanted: Option<flux_proxy::Wanted>,
    /// What became of it ([`Reconciled::keep_flux_proxy`]).
    pub flux_proxy: ProxyKubeconfig,
}

/// What became of a tenant's Flux proxy kubeconfig in one reconcile.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ProxyKubeconfig {
    /// The tenant needs none (or it was not looked at yet).
    #[default]
    Unused,
    /// Its objects are not in place (the ServiceAccount may not exist), so nothing was sent.
    NotAttempted,
    /// In place; a new token was minted when `kept.minted` says why.
    Kept(flux_proxy::Kept),
    /// It could not be kept (the message names the Secret).
    Failed(String),
}

/// What became of a tenant's OpenBao policy and role in one reconcile.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Access {
    /// The tenant has no `secrets.openbao` (or was not provisioned yet).
    #[default]
    Unused,
    /// Its objects are not in place, so nothing was sent: the role would bind a
    /// ServiceAccount that may not exist.
    NotAttempted,
    /// In place; `writes` policies and roles were written for it.
    Provisioned {
        /// Writes sent (0 when OpenBao already matched).
        writes: usize,
    },
    /// The tenant needs OpenBao and the operator was given none to reach.
    NotConfigured,
    /// A policy or role of the tenant's name was not written by Tenantry and was left alone.
    Refused(String),
    /// OpenBao could not be used (unreachable, sealed, denied, ...).
    Failed(String),
}

impl Access {
    /// Why the tenant's OpenBao access is not in place, as a condition reason and message;
    /// `None` when nothing is wrong.
    pub fn problem(&self) -> Option<(&'static str, String)> {
        match self {
            Access::Unused | Access::NotAttempted | Access::Provisioned { .. } => None,
            Access::NotConfigured => Some((
                "OpenBaoNotConfigured",
                "the tenant has secrets.openbao but the operator has no OpenBao to provision its policy and role on: start it with --bao-addr and --openbao-k8s-role (or BAO_ADDR and BAO_K8S_ROLE)".to_owned(),
            )),
            Access::Refused(message) => Some(("OpenBaoRefused", message.clone())),
            Access::Failed(message) => Some(("OpenBaoUnavailable", message.clone())),
        }
    }
}

impl Reconciled {
    /// The error to back off on, if the reconcile failed. OpenBao being unusable is a
    /// failure (retried with backoff); OpenBao not configured or a foreign policy is not, as
    /// retrying cannot change it (the status says Degraded).
    pub fn failed(&self) -> bool {
        if matches!(self.openbao, Access::Failed(_))
            || matches!(self.flux_proxy, ProxyKubeconfig::Failed(_))
        {
            return true;
        }
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
        converged.applied.iter().flat_map(written).collect()
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
                openbao: self.openbao.problem(),
                flux_proxy: self.flux_proxy_verdict(),
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

/// The objects an apply created or changed (`Kind namespace/name`).
fn written(applied: &ops::TenantApply) -> impl Iterator<Item = String> + '_ {
    applied
        .layers
        .iter()
        .flat_map(|l| &l.objects)
        .filter(|o| matches!(o.action, ops::Action::Created | ops::Action::Changed))
        .map(|o| o.object.clone())
}

/// Converge one Tenant: resolve, render, and run the CLI's loop on it. Layers whose CRDs are
/// not installed are skipped (and reported as Degraded) rather than stopping the tenant.
///
/// `known` is what the operator's watch caches hold for the tenant: its objects are read one
/// by one ([`ops::get_known`]) instead of listing every kind; `None` observes by listing, as
/// the CLI does.
#[allow(clippy::too_many_arguments)]
pub async fn converge<A: ClusterApi>(
    api: &A,
    catalog: &Catalog,
    platform: Result<&PlatformContext, &str>,
    tenant: &Tenant,
    others: &[&Tenant],
    prune: bool,
    waits: Waits,
    known: Option<&[ops::Known<'_>]>,
) -> Reconciled {
    let ctx = match platform {
        Ok(ctx) => ctx,
        Err(message) => {
            return Reconciled {
                namespaces: Vec::new(),
                outcome: Outcome::Platform(message.to_owned()),
                openbao: Access::Unused,
                flux_proxy_wanted: None,
                flux_proxy: ProxyKubeconfig::Unused,
            };
        }
    };
    let resolved = match resolve(ctx, tenant, others) {
        Ok(resolved) => resolved,
        Err(invalid) => {
            return Reconciled {
                namespaces: Vec::new(),
                outcome: Outcome::Spec(invalid),
                openbao: Access::Unused,
                flux_proxy_wanted: None,
                flux_proxy: ProxyKubeconfig::Unused,
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
    let label = ctx.tenant_label();
    let one = std::slice::from_ref(&rendered);
    let converged = match known {
        Some(known) => match ops::get_known(api, known, label).await {
            Ok(live) => Ok(ops::converge_observed(
                api, catalog, one, live, label, prune, &options, &Silent,
            )
            .await),
            Err(e) => Err(e),
        },
        None => ops::converge_tenants(api, catalog, one, label, prune, &options, &Silent).await,
    };
    let outcome = match converged {
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
        flux_proxy_wanted: flux_proxy::wanted(ctx, &resolved),
        namespaces: resolved.namespaces,
        outcome,
        openbao: Access::Unused,
        flux_proxy: ProxyKubeconfig::Unused,
    }
}

impl Reconciled {
    /// Keep the tenant's Flux proxy kubeconfig Secret, when it needs one, once its objects
    /// (its ServiceAccount among them) are in place. A failure is retried with backoff; the
    /// token in place, if any, stays valid until its expiry.
    pub async fn keep_flux_proxy<A: ClusterApi>(&mut self, api: &A, now: Timestamp) {
        let Some(wanted) = &self.flux_proxy_wanted else {
            return;
        };
        let applied = matches!(&self.outcome, Outcome::Converged { converged, .. }
            if converged.applied.as_ref().is_none_or(|a| a.error.is_none()));
        if !applied {
            self.flux_proxy = ProxyKubeconfig::NotAttempted;
            return;
        }
        self.flux_proxy = match flux_proxy::ensure(api, wanted, now).await {
            Ok(kept) => ProxyKubeconfig::Kept(kept),
            Err(e) => ProxyKubeconfig::Failed(format!(
                "keeping Secret {}/{} (Flux's proxy kubeconfig): {e}",
                wanted.namespace,
                tenantry_api::platform::FLUX_PROXY_KUBECONFIG_SECRET
            )),
        };
    }

    /// Delete the tenant's Flux proxy kubeconfig once it no longer needs one (its delivery
    /// changed, or it named its own Secret) but had one: `previous` (the Tenant's status)
    /// still carries the `FluxProxyKubeconfig` condition, which this reconcile's status
    /// drops, so the DELETE is sent once. Its token dies with it.
    pub async fn drop_stale_flux_proxy<A: ClusterApi>(
        &self,
        api: &A,
        previous: Option<&TenantStatus>,
    ) -> Result<(), ClusterError> {
        let had = previous.is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == flux_proxy::CONDITION)
        });
        if !had || self.flux_proxy_wanted.is_some() || self.namespaces.is_empty() {
            return Ok(());
        }
        flux_proxy::remove(api, &self.namespaces[0]).await?;
        Ok(())
    }

    /// When the reconcile must run again for the proxy kubeconfig's renewal, if sooner
    /// than `max`.
    pub fn requeue_after(&self, now: Timestamp, max: std::time::Duration) -> std::time::Duration {
        match &self.flux_proxy {
            ProxyKubeconfig::Kept(kept) => flux_proxy::requeue_after(kept.refresh_at, now, max),
            _ => max,
        }
    }

    /// The `FluxProxyKubeconfig` condition; `None` when the tenant has no such Secret. The
    /// message does not change with each renewal, so a renewal writes no status.
    fn flux_proxy_verdict(&self) -> Option<status::Verdict> {
        let wanted = self.flux_proxy_wanted.as_ref()?;
        let secret = format!(
            "{}/{}",
            wanted.namespace,
            tenantry_api::platform::FLUX_PROXY_KUBECONFIG_SECRET
        );
        Some(match &self.flux_proxy {
            ProxyKubeconfig::Unused | ProxyKubeconfig::NotAttempted => (
                false,
                "NotAttempted",
                format!("Secret {secret} is written once the tenant's objects are in place"),
            ),
            ProxyKubeconfig::Kept(_) => (
                true,
                "Kept",
                format!(
                    "Secret {secret} holds a kubeconfig for the tenant proxy at {} with a {} token of ServiceAccount {}/{}, bound to the Secret and renewed at two thirds of its life",
                    wanted.server,
                    tenantry_cluster::credential::format_duration(std::time::Duration::from_secs(
                        wanted.seconds
                    )),
                    wanted.namespace,
                    wanted.service_account,
                ),
            ),
            ProxyKubeconfig::Failed(message) => (false, "KubeconfigFailed", message.clone()),
        })
    }

    /// Provision the tenant's OpenBao policy and role, when it has `secrets.openbao`, with
    /// the function `onboard` and `apply` use, after its objects are in place. `api` is
    /// `None` when the operator has no OpenBao configured. A policy or role Tenantry did not
    /// write is never replaced (there is no `--force` here: taking over another team's
    /// policy is a person's decision).
    pub async fn provision_openbao<S: SecretsApi>(
        &mut self,
        config: &OpenBaoConfig,
        api: Option<Result<&S, &str>>,
    ) {
        let Outcome::Converged { rendered, .. } = &self.outcome else {
            return;
        };
        let desired = match DesiredAccess::from_rendered(config, rendered) {
            Ok(Some(desired)) => desired,
            Ok(None) => return,
            Err(e) => {
                self.openbao = Access::Failed(e.to_string());
                return;
            }
        };
        if self.failed() {
            self.openbao = Access::NotAttempted;
            return;
        }
        self.openbao = match api {
            None => Access::NotConfigured,
            Some(Err(message)) => Access::Failed(message.to_owned()),
            Some(Ok(api)) => provision_access(api, config, &desired).await,
        };
    }
}

async fn provision_access<S: SecretsApi>(
    api: &S,
    config: &OpenBaoConfig,
    desired: &DesiredAccess,
) -> Access {
    let mut plan = Plan::default();
    let result = provision::provision(
        api,
        &Layout::from(config),
        std::slice::from_ref(desired),
        provision::Options { force: false },
        false,
        &mut plan,
    )
    .await;
    if let Err(e) = result {
        return Access::Failed(e.to_string());
    }
    let foreign: Vec<String> = plan
        .foreign()
        .map(|s| format!("{:?} {}: {}", s.target, s.name, s.detail.join(", ")))
        .collect();
    if !foreign.is_empty() {
        return Access::Refused(format!(
            "OpenBao at {} holds a policy or role of this tenant's name that Tenantry did not write; it was left alone and the tenant's access was not provisioned ({}); `tenantry secrets provision --force` replaces it",
            api.address(),
            foreign.join("; ")
        ));
    }
    Access::Provisioned {
        writes: plan.steps.iter().filter(|s| s.done).count(),
    }
}

/// A deleted Tenant's primary namespace, where its Flux proxy kubeconfig would be: what its
/// spec resolves to, or its name (the default) when it no longer resolves.
pub fn primary_namespace(platform: Option<&PlatformContext>, tenant: &Tenant) -> String {
    platform
        .and_then(|ctx| ctx.resolve(&tenant_file(tenant)).ok())
        .map_or_else(|| tenant.name_any(), |r| r.primary_namespace().to_owned())
}

/// Whether a deleted Tenant may hold OpenBao access to revoke: what its spec resolves to
/// against the platform, or, when it no longer resolves (or the platform configuration is
/// unusable), yes: revoking what is not there costs reads only, a live token left behind
/// costs more.
pub fn had_openbao(platform: Option<&PlatformContext>, tenant: &Tenant) -> bool {
    platform
        .and_then(|ctx| ctx.resolve(&tenant_file(tenant)).ok())
        .is_none_or(|resolved| resolved.openbao)
}

/// Revoke the tenant's OpenBao role, policy and every token they issued, with the function
/// `tenantry offboard` uses. Its secrets are kept (data, not access), as `offboard` keeps
/// them without `--purge-secrets`; a policy or role Tenantry did not write is kept too.
pub async fn revoke_openbao<S: SecretsApi>(
    api: &S,
    config: &OpenBaoConfig,
    tenant: &str,
) -> Result<Revocation, SecretsError> {
    revoke::revoke(
        api,
        &Layout::from(config),
        &TenantNames::new(config, tenant),
        revoke::Options::default(),
    )
    .await
}

/// What converging the platform-wide components did.
#[derive(Debug, Default)]
pub struct PlatformConverged {
    /// Writes sent (0 when every component was as rendered).
    pub writes: usize,
    /// The objects created or changed (`Kind name`), for the log.
    pub written: Vec<String>,
    /// The first failure, naming the component and the object.
    pub error: Option<String>,
}

/// Converge the platform-wide components (the tenant-rbac ClusterRoles aggregated into
/// `edit`/`admin`, the fanned-out pull secret) exactly as `tenantry apply` does before its
/// tenants: `render_platform` then `ops::apply_platform`. Pruned always, within the
/// component kinds and label only, so a component the platform turns off goes with the
/// ConfigMap edit; a kind whose CRD is missing (ClusterExternalSecret without External
/// Secrets) is skipped rather than failing the rest.
pub async fn converge_platform<A: ClusterApi>(
    api: &A,
    catalog: &Catalog,
    ctx: &PlatformContext,
    waits: Waits,
) -> Result<PlatformConverged, ClusterError> {
    let components = render::platform::render_platform(ctx);
    let label = render::platform::component_label(&ctx.platform);
    let options = ApplyOptions {
        dry_run: false,
        skip_missing_crds: true,
        waits,
    };
    let applied =
        ops::apply_platform(api, catalog, &components, &label, true, &options, &Silent).await?;
    let mut out = PlatformConverged::default();
    for (plan, applied) in applied {
        out.writes += applied.writes;
        out.written.extend(written(&applied));
        if let Some(e) = &applied.error {
            out.error
                .get_or_insert_with(|| format!("platform component {}: {e}", plan.tenant));
        }
    }
    Ok(out)
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

/// Offboard one tenant as `tenantry offboard` does (delivery and ServiceAccounts first, then
/// grants and other objects outside its namespaces, then the namespaces), then look for
/// what is left. Namespaces take a while to go: rather than hold a reconcile worker while
/// they do, the caller looks again with [`namespaces_gone`] (one GET each) and calls this
/// again once they are gone, for the final scan (deleting what is already being deleted
/// is harmless).
pub async fn offboard<A: ClusterApi>(
    api: &A,
    catalog: &Catalog,
    tenant_label: &str,
    tenant: &str,
) -> Result<Offboarded, ClusterError> {
    let removed = ops::offboard_cluster(
        api,
        catalog,
        tenant_label,
        tenant,
        None,
        &Waits::default(),
        &Silent,
    )
    .await?;
    let (found, unreadable) = ops::scan_tenant(api, catalog, tenant_label, tenant, &Silent).await?;
    let left = ops::leftovers(&found);
    Ok(Offboarded {
        removed,
        left,
        unreadable,
    })
}

/// Whether every one of `namespaces` is gone: one GET each, no waiting.
pub async fn namespaces_gone<A: ClusterApi>(
    api: &A,
    catalog: &Catalog,
    namespaces: &[String],
) -> Result<bool, ClusterError> {
    let now = Waits {
        timeout: std::time::Duration::ZERO,
        ..Waits::default()
    };
    match ops::wait_namespaces_gone(api, catalog, namespaces, &now, &Silent).await {
        Ok(()) => Ok(true),
        Err(ClusterError::Timeout { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}
