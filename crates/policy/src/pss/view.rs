//! A borrowed, typed view of the parts of a pod the checks read.
//!
//! Every JSON object is walked once, matching keys as the API server's case-sensitive decoder
//! does, so the checks never hash a key or clone a value. A value of the wrong JSON type would
//! be a decode error in the API server; here it is simply left unset.

use serde_json::{Map, Value};

type Object = Map<String, Value>;

/// Which list of the pod spec a container comes from, in upstream visiting order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContainerKind {
    Init,
    Regular,
    Ephemeral,
}

impl ContainerKind {
    pub(crate) const fn field(self) -> &'static str {
        match self {
            ContainerKind::Init => "initContainers",
            ContainerKind::Regular => "containers",
            ContainerKind::Ephemeral => "ephemeralContainers",
        }
    }
}

/// `seccompProfile` / `appArmorProfile`: only the type matters to the checks.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Profile<'a> {
    /// `type`; the empty string when the profile object is present without a (string) type.
    pub(crate) kind: &'a str,
}

impl<'a> Profile<'a> {
    fn parse(value: &'a Value) -> Option<Self> {
        let object = value.as_object()?;
        Some(Profile {
            kind: str_field(object, "type"),
        })
    }
}

/// `seLinuxOptions`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SeLinux<'a> {
    pub(crate) kind: &'a str,
    pub(crate) user: &'a str,
    pub(crate) role: &'a str,
}

impl<'a> SeLinux<'a> {
    fn parse(value: &'a Value) -> Option<Self> {
        let object = value.as_object()?;
        let mut options = SeLinux::default();
        for (key, value) in object {
            let text = value.as_str().unwrap_or("");
            match key.as_str() {
                "type" => options.kind = text,
                "user" => options.user = text,
                "role" => options.role = text,
                _ => {}
            }
        }
        Some(options)
    }
}

/// The fields of a (pod or container) security context the checks read. Fields that exist only
/// on one of the two are simply never read for the other.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SecurityContext<'a> {
    pub(crate) privileged: Option<bool>,
    pub(crate) allow_privilege_escalation: Option<bool>,
    /// `capabilities` is present (an object), even if empty.
    pub(crate) has_capabilities: bool,
    pub(crate) capabilities_add: Option<&'a [Value]>,
    pub(crate) capabilities_drop: Option<&'a [Value]>,
    pub(crate) proc_mount: Option<&'a str>,
    pub(crate) run_as_non_root: Option<bool>,
    pub(crate) run_as_user: Option<i64>,
    pub(crate) se_linux: Option<SeLinux<'a>>,
    pub(crate) seccomp: Option<Profile<'a>>,
    pub(crate) app_armor: Option<Profile<'a>>,
    pub(crate) host_process: Option<bool>,
    pub(crate) sysctls: Option<&'a [Value]>,
}

impl<'a> SecurityContext<'a> {
    fn parse(value: &'a Value) -> Self {
        let mut sc = SecurityContext::default();
        let Some(object) = value.as_object() else {
            return sc;
        };
        for (key, value) in object {
            match key.as_str() {
                "privileged" => sc.privileged = value.as_bool(),
                "allowPrivilegeEscalation" => sc.allow_privilege_escalation = value.as_bool(),
                "capabilities" => {
                    if let Some(caps) = value.as_object() {
                        sc.has_capabilities = true;
                        sc.capabilities_add = array_field(caps, "add");
                        sc.capabilities_drop = array_field(caps, "drop");
                    }
                }
                "procMount" => sc.proc_mount = value.as_str(),
                "runAsNonRoot" => sc.run_as_non_root = value.as_bool(),
                "runAsUser" => sc.run_as_user = value.as_i64(),
                "seLinuxOptions" => sc.se_linux = SeLinux::parse(value),
                "seccompProfile" => sc.seccomp = Profile::parse(value),
                "appArmorProfile" => sc.app_armor = Profile::parse(value),
                "windowsOptions" => {
                    sc.host_process = value
                        .as_object()
                        .and_then(|options| options.get("hostProcess"))
                        .and_then(Value::as_bool);
                }
                "sysctls" => sc.sysctls = value.as_array().map(Vec::as_slice),
                _ => {}
            }
        }
        sc
    }
}

/// One container (init, regular or ephemeral).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Container<'a> {
    pub(crate) kind: ContainerKind,
    /// Index within its list.
    pub(crate) index: usize,
    pub(crate) name: &'a str,
    pub(crate) security_context: SecurityContext<'a>,
    pub(crate) ports: Option<&'a [Value]>,
    pub(crate) liveness_probe: Option<&'a Object>,
    pub(crate) readiness_probe: Option<&'a Object>,
    pub(crate) startup_probe: Option<&'a Object>,
    pub(crate) lifecycle: Option<&'a Object>,
}

impl<'a> Container<'a> {
    /// A list element that is not an object decodes to the zero-value container (that is what
    /// `null` does upstream), so it is still visited.
    fn parse(kind: ContainerKind, index: usize, value: &'a Value) -> Self {
        let mut container = Container {
            kind,
            index,
            name: "",
            security_context: SecurityContext::default(),
            ports: None,
            liveness_probe: None,
            readiness_probe: None,
            startup_probe: None,
            lifecycle: None,
        };
        let Some(object) = value.as_object() else {
            return container;
        };
        for (key, value) in object {
            match key.as_str() {
                "name" => container.name = value.as_str().unwrap_or(""),
                "securityContext" => container.security_context = SecurityContext::parse(value),
                "ports" => container.ports = value.as_array().map(Vec::as_slice),
                "livenessProbe" => container.liveness_probe = value.as_object(),
                "readinessProbe" => container.readiness_probe = value.as_object(),
                "startupProbe" => container.startup_probe = value.as_object(),
                "lifecycle" => container.lifecycle = value.as_object(),
                _ => {}
            }
        }
        container
    }
}

/// The pod: metadata annotations plus the spec fields the checks read.
#[derive(Debug)]
pub(crate) struct Pod<'a> {
    pub(crate) annotations: Option<&'a Object>,
    pub(crate) host_network: bool,
    pub(crate) host_pid: bool,
    pub(crate) host_ipc: bool,
    /// `spec.hostUsers`.
    pub(crate) host_users: Option<bool>,
    /// `spec.os.name == "windows"`.
    pub(crate) windows: bool,
    pub(crate) security_context: SecurityContext<'a>,
    pub(crate) volumes: &'a [Value],
    /// Init containers, then containers, then ephemeral containers.
    pub(crate) containers: Vec<Container<'a>>,
}

impl<'a> Pod<'a> {
    pub(crate) fn new(metadata: &'a Value, spec: &'a Value) -> Self {
        let annotations = metadata
            .as_object()
            .and_then(|meta| meta.get("annotations"))
            .and_then(Value::as_object);
        let mut pod = Pod {
            annotations,
            host_network: false,
            host_pid: false,
            host_ipc: false,
            host_users: None,
            windows: false,
            security_context: SecurityContext::default(),
            volumes: &[],
            containers: Vec::new(),
        };
        let Some(spec) = spec.as_object() else {
            return pod;
        };
        let (mut init, mut regular, mut ephemeral): (&[Value], &[Value], &[Value]) =
            (&[], &[], &[]);
        for (key, value) in spec {
            match key.as_str() {
                "hostNetwork" => pod.host_network = value.as_bool() == Some(true),
                "hostPID" => pod.host_pid = value.as_bool() == Some(true),
                "hostIPC" => pod.host_ipc = value.as_bool() == Some(true),
                "hostUsers" => pod.host_users = value.as_bool(),
                "os" => {
                    pod.windows = value
                        .as_object()
                        .is_some_and(|os| str_field(os, "name") == "windows");
                }
                "securityContext" => pod.security_context = SecurityContext::parse(value),
                "volumes" => pod.volumes = array(value),
                "initContainers" => init = array(value),
                "containers" => regular = array(value),
                "ephemeralContainers" => ephemeral = array(value),
                _ => {}
            }
        }
        pod.containers
            .reserve_exact(init.len() + regular.len() + ephemeral.len());
        for (kind, list) in [
            (ContainerKind::Init, init),
            (ContainerKind::Regular, regular),
            (ContainerKind::Ephemeral, ephemeral),
        ] {
            pod.containers.extend(
                list.iter()
                    .enumerate()
                    .map(|(index, value)| Container::parse(kind, index, value)),
            );
        }
        pod
    }

    /// `spec.hostUsers: false`: the pod runs in its own user namespace.
    pub(crate) fn in_user_namespace(&self) -> bool {
        self.host_users == Some(false)
    }
}

fn array(value: &Value) -> &[Value] {
    value.as_array().map(Vec::as_slice).unwrap_or(&[])
}

fn array_field<'a>(object: &'a Object, key: &str) -> Option<&'a [Value]> {
    object.get(key).and_then(Value::as_array).map(Vec::as_slice)
}

/// A string field that decodes to `""` when absent (Go's zero value).
pub(crate) fn str_field<'a>(object: &'a Object, key: &str) -> &'a str {
    object.get(key).and_then(Value::as_str).unwrap_or("")
}
