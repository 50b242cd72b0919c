//! The upstream checks, one function per check ID, each dispatching on the policy minor version
//! the way upstream's versioned revisions do.
//!
//! Every function reports one finding per offending field and allocates nothing when the pod is
//! compliant.

use std::fmt::Write as _;

use serde_json::Value;

use super::view::{Container, Pod, Profile, SecurityContext, str_field};
use super::{CheckInfo, Finding, Level};

/// One registered check: its public description plus how it is evaluated.
pub(super) struct Check {
    pub(super) info: CheckInfo,
    /// For a baseline check, the minor version from which a restricted check replaces it at the
    /// restricted level (kept in step with [`CheckInfo::overrides`]; a unit test asserts it).
    pub(super) replaced_from: Option<u32>,
    run: fn(&mut Eval<'_, '_>, u32),
}

const fn baseline(
    id: &'static str,
    revisions: &'static [u32],
    replaced_from: Option<u32>,
    run: fn(&mut Eval<'_, '_>, u32),
) -> Check {
    Check {
        info: CheckInfo {
            id,
            level: Level::Baseline,
            revisions,
            overrides: None,
        },
        replaced_from,
        run,
    }
}

const fn restricted(
    id: &'static str,
    revisions: &'static [u32],
    overrides: Option<&'static str>,
    run: fn(&mut Eval<'_, '_>, u32),
) -> Check {
    Check {
        info: CheckInfo {
            id,
            level: Level::Restricted,
            revisions,
            overrides,
        },
        replaced_from: None,
        run,
    }
}

/// Baseline checks sorted by ID, then restricted checks sorted by ID (byte order, as upstream
/// sorts them), which is also the order findings are reported in.
pub(super) static REGISTRY: [Check; 19] = [
    baseline("appArmorProfile", &[0], None, app_armor_profile),
    baseline(
        "capabilities_baseline",
        &[0],
        Some(22),
        capabilities_baseline,
    ),
    baseline("hostNamespaces", &[0], None, host_namespaces),
    baseline("hostPathVolumes", &[0], Some(0), host_path_volumes),
    baseline("hostPorts", &[0], None, host_ports),
    baseline(
        "hostProbesAndHostLifecycle",
        &[34],
        None,
        host_probes_and_host_lifecycle,
    ),
    baseline("privileged", &[0], None, privileged),
    baseline("procMount", &[0, 35], Some(35), proc_mount),
    baseline("seLinuxOptions", &[0, 31], None, se_linux_options),
    baseline(
        "seccompProfile_baseline",
        &[0, 19],
        Some(19),
        seccomp_profile_baseline,
    ),
    baseline("sysctls", &[0, 27, 29, 32, 37], None, sysctls),
    baseline("windowsHostProcess", &[0], None, windows_host_process),
    restricted(
        "allowPrivilegeEscalation",
        &[8, 25],
        None,
        allow_privilege_escalation,
    ),
    restricted(
        "capabilities_restricted",
        &[22, 25],
        Some("capabilities_baseline"),
        capabilities_restricted,
    ),
    restricted(
        "procMount_restricted",
        &[35],
        Some("procMount"),
        proc_mount_restricted,
    ),
    restricted(
        "restrictedVolumes",
        &[0],
        Some("hostPathVolumes"),
        restricted_volumes,
    ),
    restricted("runAsNonRoot", &[0, 35], None, run_as_non_root),
    restricted("runAsUser", &[23, 35], None, run_as_user),
    restricted(
        "seccompProfile_restricted",
        &[19, 25],
        Some("seccompProfile_baseline"),
        seccomp_profile_restricted,
    ),
];

/// Run every check that applies at `level` and `minor` (already capped) against `pod`.
pub(super) fn evaluate(level: Level, minor: u32, pod: &Pod<'_>, prefix: &str) -> Vec<Finding> {
    let mut eval = Eval {
        pod,
        prefix,
        check: &REGISTRY[0].info,
        findings: Vec::new(),
    };
    for check in &REGISTRY {
        let introduced = check.info.revisions.first().copied().unwrap_or(u32::MAX);
        if minor < introduced {
            continue;
        }
        let skip = match check.info.level {
            Level::Restricted => level != Level::Restricted,
            Level::Baseline => {
                level == Level::Restricted && check.replaced_from.is_some_and(|from| minor >= from)
            }
            Level::Privileged => true,
        };
        if skip {
            continue;
        }
        eval.check = &check.info;
        (check.run)(&mut eval, minor);
    }
    eval.findings
}

/// Evaluation state: the pod, where it sits in the input, the check being run and the findings
/// so far.
struct Eval<'a, 'p> {
    pod: &'p Pod<'a>,
    prefix: &'p str,
    check: &'static CheckInfo,
    findings: Vec<Finding>,
}

/// Whose security context a field belongs to.
#[derive(Clone, Copy)]
enum Owner<'c, 'a> {
    Pod,
    Container(&'c Container<'a>),
}

impl Owner<'_, '_> {
    /// `pod` or `container "name"`, as upstream words it.
    fn describe(self) -> String {
        match self {
            Owner::Pod => "pod".to_owned(),
            Owner::Container(c) => format!("container {:?}", c.name),
        }
    }
}

impl Eval<'_, '_> {
    fn report(&mut self, path: String, message: String, remediation: String) {
        self.findings.push(Finding {
            check: self.check.id,
            level: self.check.level,
            path,
            message,
            remediation,
        });
    }

    /// `<prefix>.<section>` (no leading dot for an empty prefix), ready for more segments.
    fn root(&self, section: &str) -> String {
        let mut path = String::with_capacity(self.prefix.len() + 64);
        if !self.prefix.is_empty() {
            path.push_str(self.prefix);
            path.push('.');
        }
        path.push_str(section);
        path
    }

    /// Path of a pod spec field, e.g. `spec.hostNetwork`.
    fn spec_path(&self, rest: &str) -> String {
        let mut path = self.root("spec.");
        path.push_str(rest);
        path
    }

    /// Path of a field of a container, e.g. `spec.initContainers[0].ports[1].hostPort`.
    fn container_path(&self, container: &Container<'_>, rest: &str) -> String {
        let mut path = self.root("spec.");
        let _ = write!(
            path,
            "{}[{}].{rest}",
            container.kind.field(),
            container.index
        );
        path
    }

    /// Path of a field inside the owner's securityContext.
    fn security_context_path(&self, owner: Owner<'_, '_>, rest: &str) -> String {
        let mut path = match owner {
            Owner::Pod => self.spec_path("securityContext."),
            Owner::Container(c) => self.container_path(c, "securityContext."),
        };
        path.push_str(rest);
        path
    }

    /// Path of a pod annotation, in Kubernetes field-path syntax: `metadata.annotations[key]`.
    fn annotation_path(&self, key: &str) -> String {
        let mut path = self.root("metadata.annotations[");
        path.push_str(key);
        path.push(']');
        path
    }
}

/// The pod-level security context followed by every container's, in visiting order.
fn contexts<'p, 'a>(
    pod: &'p Pod<'a>,
) -> impl Iterator<Item = (Owner<'p, 'a>, &'p SecurityContext<'a>)> {
    std::iter::once((Owner::Pod, &pod.security_context)).chain(
        pod.containers
            .iter()
            .map(|c| (Owner::Container(c), &c.security_context)),
    )
}

fn quote_list(items: &[&str]) -> String {
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{item:?}");
    }
    out
}

/// Go's `strconv.Quote`-like rendering used in upstream messages.
fn quoted(value: &str) -> String {
    format!("{value:?}")
}

/// The string elements of a JSON list with their indices (other elements would not decode).
fn strings(list: Option<&[Value]>) -> impl Iterator<Item = (usize, &str)> {
    list.unwrap_or(&[])
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.as_str().map(|s| (i, s)))
}

/// The string-valued annotations selected by `offending`, sorted by key as upstream reports them
/// (so the order does not depend on how the input map happens to be ordered). Allocates only
/// when something offends.
fn sorted_annotations<'a>(
    pod: &Pod<'a>,
    mut offending: impl FnMut(&str, &str) -> bool,
) -> Vec<(&'a str, &'a str)> {
    let mut found: Vec<(&str, &str)> = pod
        .annotations
        .into_iter()
        .flatten()
        .filter_map(|(key, value)| Some((key.as_str(), value.as_str()?)))
        .filter(|&(key, value)| offending(key, value))
        .collect();
    found.sort_unstable();
    found
}

// ---------------------------------------------------------------------------------------------
// Baseline checks
// ---------------------------------------------------------------------------------------------

pub(crate) const APPARMOR_ANNOTATION_PREFIX: &str =
    "container.apparmor.security.beta.kubernetes.io/";

/// `appArmorProfile`, 1.0+: the field (pod and containers) must be RuntimeDefault or Localhost;
/// the deprecated per-container annotation must be empty, `runtime/default` or `localhost/*`.
fn app_armor_profile(eval: &mut Eval<'_, '_>, _minor: u32) {
    for (owner, sc) in contexts(eval.pod) {
        let Some(profile) = sc.app_armor else {
            continue;
        };
        if matches!(profile.kind, "RuntimeDefault" | "Localhost") {
            continue;
        }
        let path = eval.security_context_path(owner, "appArmorProfile.type");
        eval.report(
            path,
            format!(
                "forbidden AppArmor profile: {} must not set AppArmor profile type to {}",
                owner.describe(),
                quoted(profile.kind)
            ),
            "Set appArmorProfile.type to \"RuntimeDefault\" or \"Localhost\", or remove it."
                .to_owned(),
        );
    }

    let bad_annotations = sorted_annotations(eval.pod, |key, value| {
        key.starts_with(APPARMOR_ANNOTATION_PREFIX)
            && !(value.is_empty() || value == "runtime/default" || value.starts_with("localhost/"))
    });
    for (key, value) in bad_annotations {
        let path = eval.annotation_path(key);
        eval.report(
            path,
            format!("forbidden AppArmor profile: annotation {key}={value:?}"),
            format!(
                "Set annotation {key} to \"runtime/default\" or \"localhost/<profile>\" \
                 (or use securityContext.appArmorProfile instead)."
            ),
        );
    }
}

pub(crate) const BASELINE_CAPABILITIES: [&str; 13] = [
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// `capabilities_baseline`, 1.0+: only the container runtime's default capabilities may be added
/// (exact, case-sensitive names).
fn capabilities_baseline(eval: &mut Eval<'_, '_>, _minor: u32) {
    let pod = eval.pod;
    for container in &pod.containers {
        for (j, cap) in strings(container.security_context.capabilities_add) {
            if BASELINE_CAPABILITIES.contains(&cap) {
                continue;
            }
            let path =
                eval.container_path(container, &format!("securityContext.capabilities.add[{j}]"));
            eval.report(
                path,
                format!(
                    "non-default capabilities: container {:?} must not include {cap:?} in \
                     securityContext.capabilities.add",
                    container.name
                ),
                format!(
                    "Remove {cap:?} from securityContext.capabilities.add; baseline allows only {}.",
                    BASELINE_CAPABILITIES.join(", ")
                ),
            );
        }
    }
}

/// `hostNamespaces`, 1.0+: hostNetwork, hostPID and hostIPC must not be true.
fn host_namespaces(eval: &mut Eval<'_, '_>, _minor: u32) {
    let pod = eval.pod;
    for (set, field) in [
        (pod.host_network, "hostNetwork"),
        (pod.host_pid, "hostPID"),
        (pod.host_ipc, "hostIPC"),
    ] {
        if set {
            let path = eval.spec_path(field);
            eval.report(
                path,
                format!("host namespaces: {field}=true"),
                format!("Remove spec.{field} or set it to false."),
            );
        }
    }
}

/// `hostPathVolumes`, 1.0+: no hostPath volumes.
fn host_path_volumes(eval: &mut Eval<'_, '_>, _minor: u32) {
    let pod = eval.pod;
    for (i, volume) in pod.volumes.iter().enumerate() {
        let Some(volume) = volume.as_object() else {
            continue;
        };
        if volume.get("hostPath").is_some_and(Value::is_object) {
            let name = str_field(volume, "name");
            let path = eval.spec_path(&format!("volumes[{i}].hostPath"));
            eval.report(
                path,
                format!("hostPath volumes: volume {name:?} must not use hostPath"),
                format!(
                    "Replace hostPath volume {name:?} with a persistentVolumeClaim, emptyDir, \
                     configMap, secret or other non-host volume."
                ),
            );
        }
    }
}

/// `hostPorts`, 1.0+: no container port may set a non-zero hostPort.
fn host_ports(eval: &mut Eval<'_, '_>, _minor: u32) {
    let pod = eval.pod;
    for container in &pod.containers {
        for (j, port) in container.ports.unwrap_or(&[]).iter().enumerate() {
            let host_port = port
                .get("hostPort")
                .and_then(Value::as_i64)
                .and_then(|p| i32::try_from(p).ok())
                .unwrap_or(0);
            if host_port == 0 {
                continue;
            }
            let path = eval.container_path(container, &format!("ports[{j}].hostPort"));
            eval.report(
                path,
                format!(
                    "hostPort: container {:?} uses hostPort {host_port}",
                    container.name
                ),
                "Remove hostPort (or set it to 0) and expose the port through a Service instead."
                    .to_owned(),
            );
        }
    }
}

/// `hostProbesAndHostLifecycle`, 1.34+: probes and lifecycle handlers must not name a host, so
/// the kubelet cannot be used to reach arbitrary addresses.
fn host_probes_and_host_lifecycle(eval: &mut Eval<'_, '_>, _minor: u32) {
    let pod = eval.pod;
    for container in &pod.containers {
        let lifecycle = container.lifecycle;
        let handlers = [
            ("livenessProbe", container.liveness_probe),
            ("readinessProbe", container.readiness_probe),
            ("startupProbe", container.startup_probe),
            (
                "lifecycle.postStart",
                lifecycle
                    .and_then(|l| l.get("postStart"))
                    .and_then(Value::as_object),
            ),
            (
                "lifecycle.preStop",
                lifecycle
                    .and_then(|l| l.get("preStop"))
                    .and_then(Value::as_object),
            ),
        ];
        for (field, handler) in handlers {
            let Some(handler) = handler else { continue };
            for action in ["httpGet", "tcpSocket"] {
                let host = handler
                    .get(action)
                    .and_then(Value::as_object)
                    .map_or("", |a| str_field(a, "host"));
                if host.is_empty() {
                    continue;
                }
                let rest = format!("{field}.{action}.host");
                let path = eval.container_path(container, &rest);
                eval.report(
                    path,
                    format!(
                        "probe or lifecycle host: container {:?} uses probe or lifecycle host {host:?}",
                        container.name
                    ),
                    format!("Remove {rest} so the kubelet targets the pod's own IP."),
                );
            }
        }
    }
}

/// `privileged`, 1.0+: no privileged containers.
fn privileged(eval: &mut Eval<'_, '_>, _minor: u32) {
    let pod = eval.pod;
    for container in &pod.containers {
        if container.security_context.privileged == Some(true) {
            let path = eval.container_path(container, "securityContext.privileged");
            eval.report(
                path,
                format!(
                    "privileged: container {:?} must not set securityContext.privileged=true",
                    container.name
                ),
                "Set securityContext.privileged to false or remove it.".to_owned(),
            );
        }
    }
}

/// Shared by `procMount` and `procMount_restricted`: only the default /proc masking.
fn forbid_unmasked_proc_mount(eval: &mut Eval<'_, '_>, user_namespace_hint: bool) {
    let pod = eval.pod;
    for container in &pod.containers {
        let Some(proc_mount) = container.security_context.proc_mount else {
            continue;
        };
        if proc_mount == "Default" {
            continue;
        }
        let path = eval.container_path(container, "securityContext.procMount");
        let remediation = if user_namespace_hint {
            "Remove securityContext.procMount or set it to \"Default\" \
             (or run the pod in a user namespace with spec.hostUsers: false)."
        } else {
            "Remove securityContext.procMount or set it to \"Default\"."
        };
        eval.report(
            path,
            format!(
                "procMount: container {:?} must not set securityContext.procMount to {proc_mount:?}",
                container.name
            ),
            remediation.to_owned(),
        );
    }
}

/// `procMount`, 1.0+; from 1.35 pods in a user namespace (`hostUsers: false`) are exempt.
fn proc_mount(eval: &mut Eval<'_, '_>, minor: u32) {
    let relaxable = minor >= 35;
    if relaxable && eval.pod.in_user_namespace() {
        return;
    }
    forbid_unmasked_proc_mount(eval, relaxable);
}

pub(crate) const SELINUX_TYPES: [(&str, u32); 5] = [
    ("", 0),
    ("container_t", 0),
    ("container_init_t", 0),
    ("container_kvm_t", 0),
    ("container_engine_t", 31),
];

/// `seLinuxOptions`, 1.0+ (1.31 adds `container_engine_t`): only container types, and no
/// custom user or role.
fn se_linux_options(eval: &mut Eval<'_, '_>, minor: u32) {
    let allowed = |kind: &str| {
        SELINUX_TYPES
            .iter()
            .any(|&(t, since)| t == kind && minor >= since)
    };
    for (owner, sc) in contexts(eval.pod) {
        let Some(options) = sc.se_linux else {
            continue;
        };
        if !allowed(options.kind) {
            let allowed_list: Vec<&str> = SELINUX_TYPES
                .iter()
                .filter(|&&(t, since)| !t.is_empty() && minor >= since)
                .map(|&(t, _)| t)
                .collect();
            let path = eval.security_context_path(owner, "seLinuxOptions.type");
            eval.report(
                path,
                format!(
                    "seLinuxOptions: {} set forbidden securityContext.seLinuxOptions: type {}",
                    owner.describe(),
                    quoted(options.kind)
                ),
                format!(
                    "Set seLinuxOptions.type to one of {} or remove it.",
                    quote_list(&allowed_list)
                ),
            );
        }
        for (field, value) in [("user", options.user), ("role", options.role)] {
            if value.is_empty() {
                continue;
            }
            let path = eval.security_context_path(owner, &format!("seLinuxOptions.{field}"));
            eval.report(
                path,
                format!(
                    "seLinuxOptions: {} set forbidden securityContext.seLinuxOptions: {field} may not be set",
                    owner.describe()
                ),
                format!("Remove seLinuxOptions.{field}."),
            );
        }
    }
}

pub(crate) const SECCOMP_POD_ANNOTATION: &str = "seccomp.security.alpha.kubernetes.io/pod";
pub(crate) const SECCOMP_CONTAINER_ANNOTATION_PREFIX: &str =
    "container.seccomp.security.alpha.kubernetes.io/";

fn valid_seccomp_type(profile: Profile<'_>) -> bool {
    matches!(profile.kind, "RuntimeDefault" | "Localhost")
}

/// Reports every explicitly set, forbidden `seccompProfile.type` (pod level, then containers).
/// Returns whether the pod-level profile is valid and whether it was explicitly forbidden.
fn report_bad_seccomp_types(eval: &mut Eval<'_, '_>) -> (bool, bool) {
    let pod_profile = eval.pod.security_context.seccomp;
    let pod_valid = pod_profile.is_some_and(valid_seccomp_type);
    let pod_bad = pod_profile.is_some() && !pod_valid;
    for (owner, sc) in contexts(eval.pod) {
        let Some(profile) = sc.seccomp.filter(|&p| !valid_seccomp_type(p)) else {
            continue;
        };
        let path = eval.security_context_path(owner, "seccompProfile.type");
        eval.report(
            path,
            format!(
                "seccompProfile: {} must not set securityContext.seccompProfile.type to {}",
                owner.describe(),
                quoted(profile.kind)
            ),
            "Set seccompProfile.type to \"RuntimeDefault\" or \"Localhost\".".to_owned(),
        );
    }
    (pod_valid, pod_bad)
}

/// `seccompProfile_baseline`: before 1.19 the alpha annotations must not name an unconfined
/// profile; from 1.19 the `seccompProfile` fields must not be `Unconfined` (or anything else
/// but RuntimeDefault/Localhost) where set.
fn seccomp_profile_baseline(eval: &mut Eval<'_, '_>, minor: u32) {
    if minor >= 19 {
        report_bad_seccomp_types(eval);
        return;
    }
    let pod = eval.pod;
    // A set of names, built only when there are annotations to match against them.
    let mut names: Option<std::collections::HashSet<&str>> = None;
    let bad_annotations = sorted_annotations(pod, |key, value| {
        let applies = key == SECCOMP_POD_ANNOTATION
            || key
                .strip_prefix(SECCOMP_CONTAINER_ANNOTATION_PREFIX)
                .is_some_and(|name| {
                    names
                        .get_or_insert_with(|| pod.containers.iter().map(|c| c.name).collect())
                        .contains(name)
                });
        let valid = value == "runtime/default"
            || value == "docker/default"
            || value.starts_with("localhost/");
        applies && !valid
    });
    for (key, value) in bad_annotations {
        let path = eval.annotation_path(key);
        eval.report(
            path,
            format!("seccompProfile: forbidden annotation {key}={value:?}"),
            format!(
                "Set annotation {key} to \"runtime/default\" or \"localhost/<profile>\", \
                 or remove it."
            ),
        );
    }
}

/// Sysctls considered safe (namespaced and isolated), with the policy minor that allowed them.
pub(crate) const SAFE_SYSCTLS: [(&str, u32); 14] = [
    ("kernel.shm_rmid_forced", 0),
    ("net.ipv4.ip_local_port_range", 0),
    ("net.ipv4.tcp_syncookies", 0),
    ("net.ipv4.ping_group_range", 0),
    ("net.ipv4.ip_unprivileged_port_start", 0),
    ("net.ipv4.ip_local_reserved_ports", 27),
    ("net.ipv4.tcp_keepalive_time", 29),
    ("net.ipv4.tcp_fin_timeout", 29),
    ("net.ipv4.tcp_keepalive_intvl", 29),
    ("net.ipv4.tcp_keepalive_probes", 29),
    ("net.ipv4.tcp_rmem", 32),
    ("net.ipv4.tcp_wmem", 32),
    ("net.ipv4.tcp_slow_start_after_idle", 37),
    ("net.ipv4.tcp_notsent_lowat", 37),
];

/// `sysctls`, 1.0+ (safe set grows in 1.27, 1.29, 1.32 and 1.37): only safe pod sysctls.
fn sysctls(eval: &mut Eval<'_, '_>, minor: u32) {
    let pod = eval.pod;
    for (i, sysctl) in pod
        .security_context
        .sysctls
        .unwrap_or(&[])
        .iter()
        .enumerate()
    {
        // A non-object element decodes to the zero value, i.e. an empty name.
        let name = sysctl.as_object().map_or("", |s| str_field(s, "name"));
        let safe = SAFE_SYSCTLS
            .iter()
            .any(|&(n, since)| n == name && minor >= since);
        if safe {
            continue;
        }
        let path = eval.spec_path(&format!("securityContext.sysctls[{i}].name"));
        eval.report(
            path,
            format!("forbidden sysctls: {name}"),
            format!(
                "Remove sysctl {name:?} from spec.securityContext.sysctls; it is not in the \
                 safe set of policy version v1.{minor}."
            ),
        );
    }
}

/// `windowsHostProcess`, 1.0+: no Windows HostProcess pods or containers.
fn windows_host_process(eval: &mut Eval<'_, '_>, _minor: u32) {
    for (owner, sc) in contexts(eval.pod) {
        if sc.host_process != Some(true) {
            continue;
        }
        let path = eval.security_context_path(owner, "windowsOptions.hostProcess");
        eval.report(
            path,
            format!(
                "hostProcess: {} must not set securityContext.windowsOptions.hostProcess=true",
                owner.describe()
            ),
            "Set securityContext.windowsOptions.hostProcess to false or remove it.".to_owned(),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Restricted checks
// ---------------------------------------------------------------------------------------------

/// From 1.25, Windows pods (`spec.os.name: windows`) are exempt from the Linux-only restricted
/// checks; the API server rejects those fields on Windows pods anyway.
fn windows_exempt(eval: &Eval<'_, '_>, minor: u32) -> bool {
    minor >= 25 && eval.pod.windows
}

/// `allowPrivilegeEscalation`, 1.8+ (Windows pods exempt from 1.25): every container must set
/// it to false explicitly.
fn allow_privilege_escalation(eval: &mut Eval<'_, '_>, minor: u32) {
    if windows_exempt(eval, minor) {
        return;
    }
    let pod = eval.pod;
    for container in &pod.containers {
        if container.security_context.allow_privilege_escalation == Some(false) {
            continue;
        }
        let path = eval.container_path(container, "securityContext.allowPrivilegeEscalation");
        eval.report(
            path,
            format!(
                "allowPrivilegeEscalation != false: container {:?} must set \
                 securityContext.allowPrivilegeEscalation=false",
                container.name
            ),
            "Set securityContext.allowPrivilegeEscalation: false.".to_owned(),
        );
    }
}

/// `capabilities_restricted`, 1.22+ (Windows pods exempt from 1.25): drop ALL, add at most
/// NET_BIND_SERVICE.
fn capabilities_restricted(eval: &mut Eval<'_, '_>, minor: u32) {
    if windows_exempt(eval, minor) {
        return;
    }
    let pod = eval.pod;
    for container in &pod.containers {
        let sc = &container.security_context;
        let drops_all = strings(sc.capabilities_drop).any(|(_, cap)| cap == "ALL");
        if !sc.has_capabilities || !drops_all {
            let path = eval.container_path(container, "securityContext.capabilities.drop");
            eval.report(
                path,
                format!(
                    "unrestricted capabilities: container {:?} must set \
                     securityContext.capabilities.drop=[\"ALL\"]",
                    container.name
                ),
                "Add \"ALL\" to securityContext.capabilities.drop.".to_owned(),
            );
        }
        for (j, cap) in strings(sc.capabilities_add) {
            if cap == "NET_BIND_SERVICE" {
                continue;
            }
            let path =
                eval.container_path(container, &format!("securityContext.capabilities.add[{j}]"));
            eval.report(
                path,
                format!(
                    "unrestricted capabilities: container {:?} must not include {cap:?} in \
                     securityContext.capabilities.add",
                    container.name
                ),
                format!(
                    "Remove {cap:?} from securityContext.capabilities.add; restricted allows \
                     adding only NET_BIND_SERVICE."
                ),
            );
        }
    }
}

/// `procMount_restricted`, 1.35+: the unconditional form of `procMount`, which it replaces at
/// restricted, so user-namespace pods still get default /proc masking.
fn proc_mount_restricted(eval: &mut Eval<'_, '_>, _minor: u32) {
    forbid_unmasked_proc_mount(eval, false);
}

/// Upstream's volume sources (`restrictedVolumes`), in upstream's order: the ones allowed at
/// restricted, and the ones named in its message. The VAP compiler reads the same lists.
pub(crate) const ALLOWED_VOLUME_SOURCES: [&str; 9] = [
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

pub(crate) const RESTRICTED_VOLUME_SOURCES: [&str; 21] = [
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "nfs",
    "iscsi",
    "glusterfs",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "fc",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "storageos",
];

/// `restrictedVolumes`, 1.0+: only volume types that cannot reach the node or bypass
/// PersistentVolume admission. A volume with no recognised source is defaulted to emptyDir by
/// the API server before admission, so it is allowed.
fn restricted_volumes(eval: &mut Eval<'_, '_>, _minor: u32) {
    let pod = eval.pod;
    for (i, volume) in pod.volumes.iter().enumerate() {
        let Some(volume) = volume.as_object() else {
            continue;
        };
        let has_allowed_source = volume.iter().any(|(key, value)| {
            value.is_object() && ALLOWED_VOLUME_SOURCES.contains(&key.as_str())
        });
        if has_allowed_source {
            continue;
        }
        // Report the first restricted source in a fixed order (an API-valid volume has one).
        let Some(kind) = RESTRICTED_VOLUME_SOURCES
            .iter()
            .copied()
            .find(|&kind| volume.get(kind).is_some_and(Value::is_object))
        else {
            continue;
        };
        let name = str_field(volume, "name");
        let path = eval.spec_path(&format!("volumes[{i}].{kind}"));
        eval.report(
            path,
            format!(
                "restricted volume types: volume {name:?} uses restricted volume type {kind:?}"
            ),
            format!(
                "Replace volume {name:?} ({kind}) with one of {}.",
                ALLOWED_VOLUME_SOURCES.join(", ")
            ),
        );
    }
}

/// From 1.35, pods in their own user namespace (`hostUsers: false`) are exempt from the
/// run-as-root checks: root in the pod is not root on the node.
fn user_namespace_exempt(eval: &Eval<'_, '_>, minor: u32) -> bool {
    minor >= 35 && eval.pod.in_user_namespace()
}

/// `runAsNonRoot`, 1.0+ (user-namespace pods exempt from 1.35): runAsNonRoot must be true at pod
/// level or on every container, and never explicitly false.
fn run_as_non_root(eval: &mut Eval<'_, '_>, minor: u32) {
    if user_namespace_exempt(eval, minor) {
        return;
    }
    let pod = eval.pod;
    let pod_value = pod.security_context.run_as_non_root;
    if pod_value == Some(false) {
        let path = eval.spec_path("securityContext.runAsNonRoot");
        eval.report(
            path,
            "runAsNonRoot != true: pod must not set securityContext.runAsNonRoot=false".to_owned(),
            "Set spec.securityContext.runAsNonRoot: true.".to_owned(),
        );
    }
    for container in &pod.containers {
        match container.security_context.run_as_non_root {
            Some(true) => {}
            Some(false) => {
                let path = eval.container_path(container, "securityContext.runAsNonRoot");
                eval.report(
                    path,
                    format!(
                        "runAsNonRoot != true: container {:?} must not set \
                         securityContext.runAsNonRoot=false",
                        container.name
                    ),
                    "Set securityContext.runAsNonRoot: true (or remove it and set it on the pod)."
                        .to_owned(),
                );
            }
            // Inherits the pod's value; a pod-level false was reported above.
            None if pod_value.is_some() => {}
            None => {
                let path = eval.container_path(container, "securityContext.runAsNonRoot");
                eval.report(
                    path,
                    format!(
                        "runAsNonRoot != true: pod or container {:?} must set \
                         securityContext.runAsNonRoot=true",
                        container.name
                    ),
                    format!(
                        "Set spec.securityContext.runAsNonRoot: true on the pod, or \
                         securityContext.runAsNonRoot: true on container {:?}.",
                        container.name
                    ),
                );
            }
        }
    }
}

/// `runAsUser`, 1.23+ (user-namespace pods exempt from 1.35): runAsUser must not be 0.
fn run_as_user(eval: &mut Eval<'_, '_>, minor: u32) {
    if user_namespace_exempt(eval, minor) {
        return;
    }
    for (owner, sc) in contexts(eval.pod) {
        if sc.run_as_user != Some(0) {
            continue;
        }
        let path = eval.security_context_path(owner, "runAsUser");
        eval.report(
            path,
            format!("runAsUser=0: {} must not set runAsUser=0", owner.describe()),
            "Set runAsUser to a non-zero UID, or remove it.".to_owned(),
        );
    }
}

/// `seccompProfile_restricted`, 1.19+ (Windows pods exempt from 1.25): a RuntimeDefault or
/// Localhost profile at pod level or on every container, and nothing else anywhere.
fn seccomp_profile_restricted(eval: &mut Eval<'_, '_>, minor: u32) {
    if windows_exempt(eval, minor) {
        return;
    }
    let (pod_valid, pod_bad) = report_bad_seccomp_types(eval);
    if pod_valid || pod_bad {
        // Either every container inherits a valid profile, or the pod-level value was reported.
        return;
    }
    let pod = eval.pod;
    for container in &pod.containers {
        if container.security_context.seccomp.is_some() {
            continue;
        }
        let path = eval.container_path(container, "securityContext.seccompProfile.type");
        eval.report(
            path,
            format!(
                "seccompProfile: pod or container {:?} must set \
                 securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
                container.name
            ),
            format!(
                "Set spec.securityContext.seccompProfile.type: RuntimeDefault on the pod, or \
                 securityContext.seccompProfile.type on container {:?}.",
                container.name
            ),
        );
    }
}
