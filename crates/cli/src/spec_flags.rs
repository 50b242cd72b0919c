//! Command-line flags that edit a tenant's declaration.
//!
//! Each flag sets the field it names and nothing else, and list flags add to their list, so
//! `onboard` can be re-run with the same flags forever without drift, and a field someone
//! edited by hand in `tenant.yaml` survives a later `onboard` that does not mention it.

use anyhow::bail;
use clap::{Args, ValueEnum};
use tenantry_api::tenant::{
    ArgoCd, Delivery, FluxGit, FluxOci, Network, NetworkProvider, NoDelivery, Owner, OwnerKind,
    PodSecurityLevel, Rbac, Secrets, TenantSpec,
};

/// Delivery kinds as flags spell them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DeliveryKind {
    /// Flux OCIRepository + Kustomization (signed OCI artifact).
    FluxOci,
    /// Flux GitRepository + Kustomization.
    FluxGit,
    /// Argo CD AppProject + Application.
    Argocd,
    /// No delivery objects.
    None,
}

/// Network policy APIs as flags spell them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum NetworkKind {
    /// networking.k8s.io NetworkPolicy.
    Kubernetes,
    /// cilium.io CiliumNetworkPolicy.
    Cilium,
}

/// Flags that change the tenant's spec.
#[derive(Args, Debug, Default)]
pub struct SpecFlags {
    /// Join the platform's service mesh.
    #[arg(long, overrides_with = "no_mesh")]
    pub mesh: bool,
    /// Leave the service mesh.
    #[arg(long, overrides_with = "mesh")]
    pub no_mesh: bool,
    /// Enforce Pod Security `baseline` instead of `restricted` (workloads may run as root).
    #[arg(long, overrides_with = "restricted")]
    pub allow_root: bool,
    /// Enforce Pod Security `restricted` (the default).
    #[arg(long, overrides_with = "allow_root")]
    pub restricted: bool,
    /// Add an owner: user:NAME, group:NAME or serviceaccount:NAMESPACE/NAME. Repeatable.
    #[arg(long = "owner", value_name = "KIND:NAME", value_parser = parse_owner)]
    pub owners: Vec<Owner>,
    /// Add an extra namespace, <tenant>-<suffix>. Repeatable.
    #[arg(long = "namespace", value_name = "NAME")]
    pub namespaces: Vec<String>,
    /// How the tenant's manifests are delivered.
    #[arg(long, value_enum)]
    pub delivery: Option<DeliveryKind>,
    /// Source of the tenant's manifests: oci://… (flux-oci), https://… or ssh://… (flux-git, argocd).
    #[arg(long, value_name = "URL")]
    pub source_url: Option<String>,
    /// Path of the manifests inside the source repository (flux-git, argocd).
    #[arg(long, value_name = "PATH")]
    pub source_path: Option<String>,
    /// Branch (flux-git) or revision (argocd) to deploy.
    #[arg(long, value_name = "REF")]
    pub revision: Option<String>,
    /// Semver range of artifact tags to deploy (flux-oci), e.g. ">=1.0.0".
    #[arg(long, value_name = "RANGE")]
    pub semver: Option<String>,
    /// Provision an OpenBao role, policy and SecretStore for the tenant's own secrets.
    #[arg(long, overrides_with = "no_openbao")]
    pub openbao: bool,
    /// Do not provision OpenBao app secrets.
    #[arg(long, overrides_with = "openbao")]
    pub no_openbao: bool,
    /// Add an opt-in grant defined in tenantry.yaml (e.g. external-dns). Repeatable.
    #[arg(long = "grant", value_name = "NAME")]
    pub grants: Vec<String>,
    /// ClusterRole bound in each tenant namespace (default edit).
    #[arg(long, value_name = "NAME")]
    pub cluster_role: Option<String>,
    /// Network policy API to render.
    #[arg(long, value_enum)]
    pub network: Option<NetworkKind>,
    /// Deny egress by default (DNS and the tenant's own namespaces stay reachable).
    #[arg(long, overrides_with = "allow_egress")]
    pub deny_egress: bool,
    /// Allow all egress (the default).
    #[arg(long, overrides_with = "deny_egress")]
    pub allow_egress: bool,
    /// Add a namespace whose pods may connect to the tenant's. Repeatable.
    #[arg(long = "allow-from", value_name = "NAMESPACE")]
    pub allow_from: Vec<String>,
    /// Add an allowed image registry (host[/path]). Repeatable.
    #[arg(long = "registry", value_name = "REGISTRY")]
    pub registries: Vec<String>,
}

fn parse_owner(text: &str) -> Result<Owner, String> {
    let (kind, rest) = text.split_once(':').ok_or_else(|| {
        format!("{text:?} must be user:NAME, group:NAME or serviceaccount:NAMESPACE/NAME")
    })?;
    match kind {
        "user" | "User" => Ok(Owner {
            kind: OwnerKind::User,
            name: rest.to_owned(),
            namespace: None,
        }),
        "group" | "Group" => Ok(Owner {
            kind: OwnerKind::Group,
            name: rest.to_owned(),
            namespace: None,
        }),
        "serviceaccount" | "ServiceAccount" | "sa" => {
            let (ns, name) = rest.split_once('/').ok_or_else(|| {
                format!("{text:?}: a ServiceAccount owner is serviceaccount:NAMESPACE/NAME")
            })?;
            Ok(Owner {
                kind: OwnerKind::ServiceAccount,
                name: name.to_owned(),
                namespace: Some(ns.to_owned()),
            })
        }
        other => Err(format!(
            "owner kind {other:?} is not user, group or serviceaccount"
        )),
    }
}

fn add_all<T: PartialEq + Clone>(list: &mut Vec<T>, items: &[T]) {
    for item in items {
        if !list.contains(item) {
            list.push(item.clone());
        }
    }
}

impl SpecFlags {
    /// Apply the flags to `spec`. `platform_default` is the platform's default delivery, used
    /// when a source flag is given without `--delivery` and the tenant has chosen none.
    pub fn apply(
        &self,
        spec: &mut TenantSpec,
        platform_default: Option<&Delivery>,
    ) -> anyhow::Result<()> {
        if self.mesh {
            spec.mesh = Some(true);
        } else if self.no_mesh {
            spec.mesh = Some(false);
        }
        if self.allow_root {
            spec.pod_security = Some(PodSecurityLevel::Baseline);
        } else if self.restricted {
            spec.pod_security = Some(PodSecurityLevel::Restricted);
        }
        add_all(&mut spec.owners, &self.owners);
        add_all(&mut spec.namespaces, &self.namespaces);
        if self.openbao || self.no_openbao {
            spec.secrets.get_or_insert_with(Secrets::default).openbao = Some(self.openbao);
        }
        if !self.grants.is_empty() || self.cluster_role.is_some() {
            let rbac = spec.rbac.get_or_insert_with(Rbac::default);
            if let Some(role) = &self.cluster_role {
                rbac.cluster_role = Some(role.clone());
            }
            if !self.grants.is_empty() {
                add_all(rbac.grants.get_or_insert_with(Vec::new), &self.grants);
            }
        }
        if self.network.is_some()
            || self.deny_egress
            || self.allow_egress
            || !self.allow_from.is_empty()
        {
            let network = spec.network.get_or_insert_with(Network::default);
            if let Some(kind) = self.network {
                network.provider = Some(match kind {
                    NetworkKind::Kubernetes => NetworkProvider::Kubernetes,
                    NetworkKind::Cilium => NetworkProvider::Cilium,
                });
            }
            if self.deny_egress {
                network.default_deny_egress = Some(true);
            } else if self.allow_egress {
                network.default_deny_egress = Some(false);
            }
            if !self.allow_from.is_empty() {
                add_all(
                    network.allow_from.get_or_insert_with(Vec::new),
                    &self.allow_from,
                );
            }
        }
        if !self.registries.is_empty() {
            add_all(
                spec.registries.get_or_insert_with(Vec::new),
                &self.registries,
            );
        }
        self.apply_delivery(spec, platform_default)
    }

    fn apply_delivery(
        &self,
        spec: &mut TenantSpec,
        platform_default: Option<&Delivery>,
    ) -> anyhow::Result<()> {
        let source_given = self.source_url.is_some()
            || self.source_path.is_some()
            || self.revision.is_some()
            || self.semver.is_some();
        if self.delivery.is_none() && !source_given {
            return Ok(());
        }
        let kind = match self.delivery {
            Some(k) => k,
            None => match spec.delivery.as_ref().or(platform_default) {
                Some(Delivery::FluxOci(_)) => DeliveryKind::FluxOci,
                Some(Delivery::FluxGit(_)) => DeliveryKind::FluxGit,
                Some(Delivery::ArgoCd(_)) => DeliveryKind::Argocd,
                Some(Delivery::None(_)) | None => {
                    bail!(
                        "--source-url/--source-path/--revision/--semver need a delivery; add --delivery flux-oci, flux-git or argocd"
                    )
                }
            },
        };
        // Keep the fields of an existing delivery of the same kind.
        let mut delivery = match (kind, spec.delivery.take()) {
            (DeliveryKind::FluxOci, Some(Delivery::FluxOci(d))) => Delivery::FluxOci(d),
            (DeliveryKind::FluxGit, Some(Delivery::FluxGit(d))) => Delivery::FluxGit(d),
            (DeliveryKind::Argocd, Some(Delivery::ArgoCd(d))) => Delivery::ArgoCd(d),
            (DeliveryKind::FluxOci, _) => Delivery::FluxOci(FluxOci::default()),
            (DeliveryKind::FluxGit, _) => Delivery::FluxGit(FluxGit::default()),
            (DeliveryKind::Argocd, _) => Delivery::ArgoCd(ArgoCd::default()),
            (DeliveryKind::None, _) => Delivery::None(NoDelivery {}),
        };
        let not_for = |flag: &str, kind: &str| format!("{flag} does not apply to delivery {kind}");
        match &mut delivery {
            Delivery::FluxOci(d) => {
                if self.source_path.is_some() || self.revision.is_some() {
                    bail!(not_for(
                        "--source-path/--revision",
                        "flux-oci (the artifact is the path; --semver picks the version)"
                    ));
                }
                if let Some(u) = &self.source_url {
                    d.url = Some(u.clone());
                }
                if let Some(s) = &self.semver {
                    d.semver = Some(s.clone());
                }
            }
            Delivery::FluxGit(d) => {
                if self.semver.is_some() {
                    bail!(not_for("--semver", "flux-git"));
                }
                if let Some(u) = &self.source_url {
                    d.url = Some(u.clone());
                }
                if let Some(p) = &self.source_path {
                    d.path = Some(p.clone());
                }
                if let Some(r) = &self.revision {
                    d.branch = Some(r.clone());
                }
            }
            Delivery::ArgoCd(d) => {
                if self.semver.is_some() {
                    bail!(not_for("--semver", "argocd"));
                }
                if let Some(u) = &self.source_url {
                    d.repo_url = Some(u.clone());
                }
                if let Some(p) = &self.source_path {
                    d.path = Some(p.clone());
                }
                if let Some(r) = &self.revision {
                    d.revision = Some(r.clone());
                }
            }
            Delivery::None(_) => {
                if source_given {
                    bail!(not_for(
                        "--source-url/--source-path/--revision/--semver",
                        "none"
                    ));
                }
            }
        }
        spec.delivery = Some(delivery);
        Ok(())
    }
}

/// Parse the flags of a test invocation.
#[cfg(test)]
fn flags(args: &[&str]) -> SpecFlags {
    use clap::Parser;
    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        f: SpecFlags,
    }
    T::try_parse_from(std::iter::once("t").chain(args.iter().copied()))
        .expect("test flags parse")
        .f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_set_only_what_they_name() {
        let mut spec = TenantSpec {
            quota: Some(Default::default()),
            ..TenantSpec::default()
        };
        flags(&["--mesh", "--owner", "group:team", "--owner", "group:team"])
            .apply(&mut spec, None)
            .unwrap();
        assert_eq!(spec.mesh, Some(true));
        assert_eq!(spec.owners.len(), 1, "repeated owner added once");
        assert!(spec.quota.is_some(), "untouched field kept");
        assert_eq!(spec.pod_security, None);
    }

    #[test]
    fn reapplying_the_same_flags_changes_nothing() {
        let args = [
            "--allow-root",
            "--namespace",
            "x-dev",
            "--grant",
            "external-dns",
            "--delivery",
            "argocd",
            "--source-url",
            "https://g/x.git",
        ];
        let mut once = TenantSpec::default();
        flags(&args).apply(&mut once, None).unwrap();
        let mut twice = once.clone();
        flags(&args).apply(&mut twice, None).unwrap();
        assert_eq!(once, twice);
    }

    #[test]
    fn source_without_delivery_uses_the_platform_kind() {
        let mut spec = TenantSpec::default();
        let default = Delivery::FluxGit(FluxGit::default());
        flags(&["--source-url", "https://g/x.git"])
            .apply(&mut spec, Some(&default))
            .unwrap();
        assert!(matches!(
            spec.delivery,
            Some(Delivery::FluxGit(FluxGit { url: Some(_), .. }))
        ));
    }

    #[test]
    fn misplaced_source_flags_are_errors() {
        let mut spec = TenantSpec::default();
        assert!(
            flags(&["--delivery", "none", "--source-url", "x"])
                .apply(&mut spec, None)
                .is_err()
        );
        assert!(
            flags(&["--delivery", "flux-oci", "--revision", "main"])
                .apply(&mut spec, None)
                .is_err()
        );
    }

    #[test]
    fn owners_parse() {
        assert!(parse_owner("serviceaccount:ci/bot").is_ok());
        assert!(parse_owner("serviceaccount:bot").is_err());
        assert!(parse_owner("robot:x").is_err());
        assert!(parse_owner("alice").is_err());
    }
}
