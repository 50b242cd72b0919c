//! A Tenant's status, as a pure function of what one reconcile saw and did.
//!
//! `kubectl get tenants` and every alert built on the conditions read this, so it must say
//! the same thing for the same facts, whatever the order reconciles ran in: no clock is read
//! here (the caller passes `now`), and a condition keeps its `lastTransitionTime` while its
//! status does not change, so a steady tenant's status is byte-identical from one reconcile
//! to the next and the operator sends no write for it. A pass that finds nothing to do
//! keeps what the last writing pass recorded (`keep_last_write`), so the status changes
//! when the tenant does, not with every pass.
//!
//! The three conditions answer three questions:
//! - `Applied`: is every object the tenant declares in place (as far as the cluster serves
//!   its kinds)? False when the spec or the platform config is invalid or a write failed.
//! - `Degraded`: is anything of the tenant missing or broken? True when a layer was skipped
//!   because its CRD is not installed (the CRD is named), when a tenant with
//!   `secrets.openbao` has no OpenBao policy and role (its ExternalSecrets cannot log in),
//!   or whenever `Applied` is false.
//! - `Ready`: `Applied` and not `Degraded`; the one to wait on (`kubectl wait
//!   --for=condition=Ready tenant/shop`).
//!
//! A tenant Flux reconciles through the tenant proxy (`flux.proxy`) has a fourth,
//! `FluxProxyKubeconfig`: is the kubeconfig Secret Flux reads in place with a live token? A
//! failure to keep it also makes the tenant `Degraded`, since its delivery stops once the
//! token in place expires.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use tenantry_api::tenant::{LayerState, StatusError, TenantStatus};
use tenantry_cluster::{
    ClusterError,
    ops::{Action, LayerStatus, TenantApply},
};
use tenantry_core::{Invalid, Layer, Rendered, plan::TenantPlan};

/// What one reconcile of a tenant found.
#[derive(Debug)]
pub enum Observed<'a> {
    /// The platform config (the ConfigMap holding `tenantry.yaml`) is missing or invalid;
    /// the message names the ConfigMap and the field.
    Platform(&'a str),
    /// The tenant's spec does not resolve against the platform.
    Spec(&'a Invalid),
    /// The cluster could not be observed.
    Cluster(&'a ClusterError),
    /// The tenant was planned and, unless its plan was converged, applied.
    Converged {
        /// What the tenant renders.
        rendered: &'a Rendered,
        /// The plan.
        plan: &'a TenantPlan,
        /// What applying did; `None` when nothing had to be sent.
        applied: Option<&'a TenantApply>,
        /// Why the tenant's OpenBao access is not in place (condition reason, message);
        /// `None` when it is, or the tenant has none.
        openbao: Option<(&'static str, String)>,
        /// The Flux proxy kubeconfig (`flux.proxy`): whether it is in place, reason and
        /// message; `None` when the tenant has none.
        flux_proxy: Option<Verdict>,
    },
}

/// Everything the status is computed from.
#[derive(Debug)]
pub struct Input<'a> {
    /// The tenant's name.
    pub tenant: &'a str,
    /// `metadata.generation` of the Tenant reconciled.
    pub generation: Option<i64>,
    /// The tenant's namespaces (empty when its spec did not resolve).
    pub namespaces: &'a [String],
    /// What the reconcile found.
    pub observed: Observed<'a>,
    /// The status the Tenant had, whose transition times are kept.
    pub previous: Option<&'a TenantStatus>,
    /// The time a changed condition gets as its `lastTransitionTime`.
    pub now: &'a Time,
}

/// Condition types.
pub const READY: &str = "Ready";
/// See the module documentation.
pub const APPLIED: &str = "Applied";
/// See the module documentation.
pub const DEGRADED: &str = "Degraded";

/// The status for `input`.
pub fn compute(input: &Input<'_>) -> TenantStatus {
    let (applied, degraded) = verdicts(input);
    let ready = match (&applied, &degraded) {
        ((true, _, _), (false, _, _)) => (
            true,
            "Ready",
            "every layer the tenant declares is in place".to_owned(),
        ),
        (_, (true, reason, message)) => (false, *reason, message.clone()),
        ((false, reason, message), _) => (false, *reason, message.clone()),
    };
    let flux_proxy = match &input.observed {
        Observed::Converged {
            flux_proxy: Some(v),
            ..
        } => Some((crate::flux_proxy::CONDITION, v.clone())),
        _ => None,
    };
    let conditions = [(READY, ready), (APPLIED, applied), (DEGRADED, degraded)]
        .into_iter()
        .chain(flux_proxy)
        .map(|(kind, (status, reason, message))| condition(input, kind, status, reason, message))
        .collect();
    let mut status = TenantStatus {
        observed_generation: input.generation,
        namespaces: (!input.namespaces.is_empty()).then(|| input.namespaces.join(",")),
        conditions,
        layers: layers(&input.observed),
        last_error: last_error(input),
    };
    keep_last_write(&mut status, input);
    status
}

/// A pass that finds nothing to do leaves `Applied` and the layer states as the last pass
/// that wrote set them (same generation, everything in place): "applied" and "unchanged"
/// both mean in place, and the message of the last write ("3 created, ...") stays readable.
/// Otherwise the pass right after every write would rewrite the status only to say
/// "UpToDate", and a restarted operator would rewrite every tenant that last wrote
/// something: the operator's own writes are not echoed back into a second pass (`echo`).
fn keep_last_write(status: &mut TenantStatus, input: &Input<'_>) {
    let Observed::Converged { applied: None, .. } = input.observed else {
        return;
    };
    let Some(previous) = input.previous else {
        return;
    };
    let last_write = previous
        .conditions
        .iter()
        .find(|c| c.type_ == APPLIED && c.status == "True" && c.reason == "Applied");
    let in_place = |state: &str| {
        state == LayerStatus::Applied.as_str() || state == LayerStatus::Unchanged.as_str()
    };
    let same_layers = previous.layers.len() == status.layers.len()
        && previous.layers.iter().zip(&status.layers).all(|(p, n)| {
            p.name == n.name
                && p.objects == n.objects
                && p.missing_crds == n.missing_crds
                && in_place(&p.state)
        });
    let (Some(last_write), true, true) = (
        last_write,
        same_layers,
        previous.observed_generation == input.generation,
    ) else {
        return;
    };
    if let Some(applied) = status.conditions.iter_mut().find(|c| c.type_ == APPLIED) {
        *applied = last_write.clone();
    }
    status.layers.clone_from(&previous.layers);
}

/// A condition's status, reason and message.
pub type Verdict = (bool, &'static str, String);

/// `(Applied, Degraded)`.
fn verdicts(input: &Input<'_>) -> (Verdict, Verdict) {
    let failed = |reason: &'static str, message: String| {
        ((false, reason, message.clone()), (true, reason, message))
    };
    match &input.observed {
        Observed::Platform(message) => failed("InvalidPlatform", (*message).to_owned()),
        Observed::Spec(invalid) => failed("InvalidSpec", invalid.to_string()),
        Observed::Cluster(error) => failed("ClusterUnavailable", error.to_string()),
        Observed::Converged {
            applied,
            plan,
            openbao,
            flux_proxy,
            ..
        } => {
            if let Some(error) = applied.and_then(|a| a.error.as_ref()) {
                return failed("ApplyFailed", error.to_string());
            }
            let (reason, message) = match applied {
                None => ("UpToDate", "every object is as declared".to_owned()),
                Some(a) => ("Applied", {
                    let counts = plan.counts();
                    format!(
                        "{} created, {} changed, {} pruned ({} write(s))",
                        counts.create, counts.change, counts.prune, a.writes
                    )
                }),
            };
            let missing: Vec<String> = applied
                .map(|a| a.missing.iter().map(ToString::to_string).collect())
                .unwrap_or_default();
            let proxy_failed = flux_proxy
                .as_ref()
                .filter(|(ok, reason, _)| !ok && *reason != "NotAttempted")
                .map(|(_, _, message)| ("FluxProxyKubeconfigFailed", message.clone()));
            let degraded = match (
                missing.is_empty(),
                openbao.as_ref().or(proxy_failed.as_ref()),
            ) {
                (true, None) => (false, "AsDeclared", "no layer is missing".to_owned()),
                (false, _) => (true, "MissingCRD", missing.join("; ")),
                (true, Some((reason, message))) => (true, *reason, message.clone()),
            };
            ((true, reason, message), degraded)
        }
    }
}

fn condition(
    input: &Input<'_>,
    kind: &str,
    status: bool,
    reason: &str,
    message: String,
) -> Condition {
    let status = if status { "True" } else { "False" };
    let kept = input
        .previous
        .and_then(|p| p.conditions.iter().find(|c| c.type_ == kind))
        .filter(|c| c.status == status)
        .map(|c| c.last_transition_time.clone());
    Condition {
        type_: kind.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        // The API server caps a condition message at 32768 bytes.
        message: truncate(message, 4096),
        observed_generation: input.generation,
        last_transition_time: kept.unwrap_or_else(|| input.now.clone()),
    }
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

fn layers(observed: &Observed<'_>) -> Vec<LayerState> {
    let Observed::Converged {
        rendered, applied, ..
    } = observed
    else {
        return Vec::new();
    };
    Layer::ALL
        .into_iter()
        .filter_map(|layer| {
            let objects = rendered.objects.iter().filter(|o| o.layer == layer).count();
            if objects == 0 {
                return None;
            }
            let state = applied
                .and_then(|a| a.layers.iter().find(|l| l.layer == layer))
                .map_or(LayerStatus::Unchanged, |l| l.status);
            let missing_crds = applied
                .map(|a| {
                    a.missing
                        .iter()
                        .filter(|m| m.layer == layer)
                        .map(|m| m.crd.clone())
                        .collect()
                })
                .unwrap_or_default();
            Some(LayerState {
                name: layer.as_str().to_owned(),
                state: state.as_str().to_owned(),
                objects: u32::try_from(objects).unwrap_or(u32::MAX),
                missing_crds,
            })
        })
        .collect()
}

fn last_error(input: &Input<'_>) -> Option<StatusError> {
    match &input.observed {
        Observed::Platform(message) => Some(StatusError {
            object: None,
            field: None,
            message: (*message).to_owned(),
        }),
        Observed::Spec(invalid) => Some(StatusError {
            object: Some(format!("Tenant {}", input.tenant)),
            field: invalid.errors.first().map(|e| e.path.clone()),
            message: invalid.to_string(),
        }),
        Observed::Cluster(error) => Some(cluster_error(error, None)),
        Observed::Converged {
            applied,
            openbao,
            flux_proxy,
            ..
        } => {
            let error = applied.and_then(|a| a.error.as_ref().map(|e| (a, e)));
            let Some((applied, error)) = error else {
                let openbao = openbao.as_ref().map(|(_, message)| StatusError {
                    object: Some(format!("OpenBao access of tenant {}", input.tenant)),
                    field: None,
                    message: message.clone(),
                });
                let proxy = flux_proxy
                    .as_ref()
                    .filter(|(ok, reason, _)| !ok && *reason != "NotAttempted")
                    .map(|(_, _, message)| StatusError {
                        object: Some(format!(
                            "Secret {}",
                            tenantry_api::platform::FLUX_PROXY_KUBECONFIG_SECRET
                        )),
                        field: None,
                        message: message.clone(),
                    });
                return openbao.or(proxy);
            };
            let failed = applied
                .layers
                .iter()
                .flat_map(|l| &l.objects)
                .find(|o| o.action == Action::Failed)
                .map(|o| o.object.as_str());
            Some(cluster_error(error, failed))
        }
    }
}

/// The object and field an API error names, else the object that failed.
pub fn cluster_error(error: &ClusterError, failed_object: Option<&str>) -> StatusError {
    let (object, field) = match error {
        ClusterError::Invalid { object, causes, .. } => (
            Some(object.clone()),
            causes.first().map(|c| c.field.clone()),
        ),
        ClusterError::Conflict { object, fields, .. } => (
            Some(object.clone()),
            (!fields.is_empty()).then(|| fields.join(", ")),
        ),
        _ => (failed_object.map(str::to_owned), None),
    };
    StatusError {
        object: object.or_else(|| failed_object.map(str::to_owned)),
        field,
        message: error.to_string(),
    }
}

/// The status of a condition type, when the status has it.
pub fn condition_status<'a>(status: Option<&'a TenantStatus>, kind: &str) -> Option<&'a str> {
    status?
        .conditions
        .iter()
        .find(|c| c.type_ == kind)
        .map(|c| c.status.as_str())
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;
    use tenantry_api::{Platform, TenantSpec, tenant::TenantFile};
    use tenantry_cluster::{
        MissingKind,
        error::Cause,
        ops::{LayerReport, ObjectReport},
    };
    use tenantry_core::{FieldError, PlatformContext, plan::Change};

    use super::*;

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).unwrap())
    }

    fn rendered() -> Rendered {
        let ctx = PlatformContext::new(Platform::default()).unwrap();
        tenantry_core::render_tenant(&ctx, &TenantFile::new("shop", TenantSpec::default())).unwrap()
    }

    fn plan(rendered: &Rendered, change: Change) -> TenantPlan {
        TenantPlan {
            tenant: rendered.tenant.clone(),
            objects: rendered
                .objects
                .iter()
                .map(|o| tenantry_core::plan::ObjectPlan {
                    key: tenantry_core::plan::ObjectKey::of_desired(o),
                    layer: o.layer,
                    change: change.clone(),
                    live_resource_version: None,
                })
                .collect(),
            prune: Vec::new(),
        }
    }

    fn apply(error: Option<ClusterError>, missing: Vec<MissingKind>) -> TenantApply {
        let failed = error.is_some();
        TenantApply {
            tenant: "shop".into(),
            layers: vec![LayerReport {
                layer: Layer::Network,
                status: if failed {
                    LayerStatus::Failed
                } else {
                    LayerStatus::Applied
                },
                objects: vec![ObjectReport {
                    object: "NetworkPolicy shop/default-deny".into(),
                    action: if failed {
                        Action::Failed
                    } else {
                        Action::Created
                    },
                    details: Vec::new(),
                }],
            }],
            missing,
            pruned: Vec::new(),
            writes: 3,
            error,
        }
    }

    fn status_of(
        observed: Observed<'_>,
        previous: Option<&TenantStatus>,
        now: &Time,
    ) -> TenantStatus {
        compute(&Input {
            tenant: "shop",
            generation: Some(4),
            namespaces: &["shop".to_owned(), "shop-dev".to_owned()],
            observed,
            previous,
            now,
        })
    }

    /// A converged pass that wrote nothing, with no OpenBao and no Flux proxy to judge.
    fn nothing_applied<'a>(r: &'a Rendered, p: &'a TenantPlan) -> Observed<'a> {
        Observed::Converged {
            rendered: r,
            plan: p,
            applied: None,
            openbao: None,
            flux_proxy: None,
        }
    }

    fn get<'a>(s: &'a TenantStatus, kind: &str) -> &'a Condition {
        s.conditions.iter().find(|c| c.type_ == kind).unwrap()
    }

    #[test]
    fn a_converged_tenant_is_ready_with_every_layer_counted() {
        let r = rendered();
        let p = plan(&r, Change::Unchanged);
        let s = status_of(nothing_applied(&r, &p), None, &at(10));
        assert_eq!(s.observed_generation, Some(4));
        assert_eq!(s.namespaces.as_deref(), Some("shop,shop-dev"));
        assert_eq!(get(&s, READY).status, "True");
        assert_eq!(get(&s, APPLIED).reason, "UpToDate");
        assert_eq!(get(&s, DEGRADED).status, "False");
        assert_eq!(get(&s, READY).observed_generation, Some(4));
        let total: u32 = s.layers.iter().map(|l| l.objects).sum();
        assert_eq!(total as usize, r.objects.len());
        assert!(
            s.layers.iter().all(|l| l.state == "unchanged"),
            "{:?}",
            s.layers
        );
        assert_eq!(s.last_error, None);
    }

    #[test]
    fn a_pass_with_nothing_to_do_after_a_write_leaves_the_status_as_it_was() {
        let r = rendered();
        let written = applied_once(&r, &plan(&r, Change::Create), &apply(None, Vec::new()));
        assert_eq!(get(&written, APPLIED).reason, "Applied");
        let unchanged = plan(&r, Change::Unchanged);
        let no_op = nothing_applied(&r, &unchanged);
        // A restarted operator's first pass finds nothing to do: no status write.
        assert_eq!(status_of(no_op, Some(&written), &at(20)), written);
        // A new generation with nothing to do says so.
        let after = compute(&Input {
            tenant: "shop",
            generation: Some(5),
            namespaces: &["shop".to_owned(), "shop-dev".to_owned()],
            observed: nothing_applied(&r, &unchanged),
            previous: Some(&written),
            now: &at(20),
        });
        assert_eq!(get(&after, APPLIED).reason, "UpToDate");
        assert!(after.layers.iter().all(|l| l.state == "unchanged"));
    }

    /// The status after one apply (`a`) of `p`, with no OpenBao and no earlier status.
    fn applied_once(r: &Rendered, p: &TenantPlan, a: &TenantApply) -> TenantStatus {
        status_of(
            Observed::Converged {
                rendered: r,
                plan: p,
                applied: Some(a),
                openbao: None,
                flux_proxy: None,
            },
            None,
            &at(10),
        )
    }

    #[test]
    fn a_missing_crd_degrades_the_tenant_and_names_the_crd() {
        let r = rendered();
        let p = plan(&r, Change::Create);
        let missing = MissingKind {
            layer: Layer::Delivery,
            api_version: "source.toolkit.fluxcd.io/v1".into(),
            kind: "OCIRepository".into(),
            crd: "ocirepositories.source.toolkit.fluxcd.io".into(),
            served_versions: Vec::new(),
        };
        let a = apply(None, vec![missing]);
        let s = applied_once(&r, &p, &a);
        assert_eq!(get(&s, APPLIED).status, "True");
        assert_eq!(get(&s, DEGRADED).status, "True");
        assert_eq!(get(&s, DEGRADED).reason, "MissingCRD");
        assert!(
            get(&s, DEGRADED)
                .message
                .contains("ocirepositories.source.toolkit.fluxcd.io")
        );
        assert_eq!(get(&s, READY).status, "False");
        assert_eq!(get(&s, READY).reason, "MissingCRD");
    }

    #[test]
    fn a_rejected_object_is_named_with_its_field() {
        let r = rendered();
        let p = plan(&r, Change::Create);
        let error = ClusterError::Invalid {
            object: "ResourceQuota shop/tenant-quota".into(),
            message: String::new(),
            causes: vec![Cause {
                field: "spec.hard[pods]".into(),
                message: "must be a quantity".into(),
            }],
        };
        let a = apply(Some(error), Vec::new());
        let s = applied_once(&r, &p, &a);
        assert_eq!(get(&s, APPLIED).status, "False");
        assert_eq!(get(&s, APPLIED).reason, "ApplyFailed");
        assert_eq!(get(&s, DEGRADED).status, "True");
        assert_eq!(get(&s, READY).status, "False");
        let e = s.last_error.unwrap();
        assert_eq!(e.object.as_deref(), Some("ResourceQuota shop/tenant-quota"));
        assert_eq!(e.field.as_deref(), Some("spec.hard[pods]"));
    }

    #[test]
    fn an_invalid_spec_names_the_tenant_and_the_field() {
        let invalid = Invalid {
            errors: vec![FieldError::new(
                "spec.quota.pods",
                "must be a whole number ≥ 0",
            )],
        };
        let s = status_of(Observed::Spec(&invalid), None, &at(10));
        assert_eq!(get(&s, APPLIED).reason, "InvalidSpec");
        assert_eq!(get(&s, READY).status, "False");
        let e = s.last_error.unwrap();
        assert_eq!(e.object.as_deref(), Some("Tenant shop"));
        assert_eq!(e.field.as_deref(), Some("spec.quota.pods"));
        assert!(s.layers.is_empty());
    }

    #[test]
    fn transition_times_change_only_when_a_condition_does() {
        let r = rendered();
        let p = plan(&r, Change::Unchanged);
        let converged = || nothing_applied(&r, &p);
        let first = status_of(converged(), None, &at(10));
        let again = status_of(converged(), Some(&first), &at(20));
        assert_eq!(first, again, "a steady tenant's status does not change");
        let invalid = Invalid {
            errors: vec![FieldError::new("spec.namespaces[0]", "bad")],
        };
        let broken = status_of(Observed::Spec(&invalid), Some(&again), &at(30));
        assert_eq!(get(&broken, READY).last_transition_time, at(30));
        assert_eq!(get(&broken, APPLIED).last_transition_time, at(30));
        assert_eq!(get(&broken, DEGRADED).last_transition_time, at(30));
    }

    #[test]
    fn the_flux_proxy_kubeconfig_has_its_condition_and_a_failure_degrades() {
        let r = rendered();
        let p = plan(&r, Change::Unchanged);
        let observed = |verdict: Verdict| Observed::Converged {
            rendered: &r,
            plan: &p,
            applied: None,
            openbao: None,
            flux_proxy: Some(verdict),
        };
        let kept = status_of(
            observed((true, "Kept", "Secret shop/x holds a kubeconfig".into())),
            None,
            &at(10),
        );
        let condition = get(&kept, crate::flux_proxy::CONDITION);
        assert_eq!(
            (condition.status.as_str(), condition.reason.as_str()),
            ("True", "Kept")
        );
        assert_eq!(get(&kept, READY).status, "True");
        // The same facts later: the same status, so no write.
        let again = status_of(
            observed((true, "Kept", "Secret shop/x holds a kubeconfig".into())),
            Some(&kept),
            &at(20),
        );
        assert_eq!(again, kept);
        let failed = status_of(
            observed((
                false,
                "KubeconfigFailed",
                "keeping Secret shop/x: forbidden".into(),
            )),
            Some(&kept),
            &at(30),
        );
        assert_eq!(get(&failed, crate::flux_proxy::CONDITION).status, "False");
        assert_eq!(get(&failed, DEGRADED).reason, "FluxProxyKubeconfigFailed");
        assert_eq!(get(&failed, READY).status, "False");
        assert!(failed.last_error.unwrap().message.contains("forbidden"));
        // A tenant without one has no such condition.
        let none = status_of(nothing_applied(&r, &p), None, &at(10));
        assert!(
            none.conditions
                .iter()
                .all(|c| c.type_ != crate::flux_proxy::CONDITION)
        );
    }

    #[test]
    fn missing_openbao_access_degrades_a_tenant_whose_objects_are_in_place() {
        let r = rendered();
        let p = plan(&r, Change::Unchanged);
        let s = status_of(
            Observed::Converged {
                rendered: &r,
                plan: &p,
                applied: None,
                openbao: Some((
                    "OpenBaoUnavailable",
                    "OpenBao at http://bao:8200 is sealed".into(),
                )),
                flux_proxy: None,
            },
            None,
            &at(10),
        );
        assert_eq!(get(&s, APPLIED).status, "True");
        assert_eq!(get(&s, DEGRADED).status, "True");
        assert_eq!(get(&s, DEGRADED).reason, "OpenBaoUnavailable");
        assert_eq!(get(&s, READY).status, "False");
        let e = s.last_error.unwrap();
        assert_eq!(e.object.as_deref(), Some("OpenBao access of tenant shop"));
        assert!(e.message.contains("sealed"), "{}", e.message);
    }

    #[test]
    fn the_platform_config_error_is_the_last_error() {
        let s = status_of(
            Observed::Platform("ConfigMap tenantry-system/tenantry-config: not found"),
            None,
            &at(1),
        );
        assert_eq!(get(&s, APPLIED).reason, "InvalidPlatform");
        assert!(s.last_error.unwrap().message.contains("tenantry-config"));
    }
}
