//! Property tests: the engine never panics on arbitrary JSON shaped like a pod (any type at any
//! known field, nested arbitrarily), is deterministic, and reports the same findings for a pod
//! and for the same pod wrapped in a controller, only under the controller's path prefix.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use tenantry_policy::pss::{Level, Version, check_object, check_pod};

/// Field names the checks read (plus a few they must ignore), so random documents actually reach
/// the interesting code paths.
const KEYS: &[&str] = &[
    "annotations",
    "hostNetwork",
    "hostPID",
    "hostIPC",
    "hostUsers",
    "os",
    "name",
    "securityContext",
    "volumes",
    "initContainers",
    "containers",
    "ephemeralContainers",
    "privileged",
    "allowPrivilegeEscalation",
    "capabilities",
    "add",
    "drop",
    "procMount",
    "runAsNonRoot",
    "runAsUser",
    "seLinuxOptions",
    "type",
    "user",
    "role",
    "seccompProfile",
    "appArmorProfile",
    "windowsOptions",
    "hostProcess",
    "sysctls",
    "ports",
    "hostPort",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
    "postStart",
    "preStop",
    "httpGet",
    "tcpSocket",
    "host",
    "hostPath",
    "emptyDir",
    "nfs",
    "image",
    "csi",
    "unknownField",
    "seccomp.security.alpha.kubernetes.io/pod",
    "container.seccomp.security.alpha.kubernetes.io/c",
    "container.apparmor.security.beta.kubernetes.io/c",
];

/// Strings with meaning to some check, plus arbitrary ones.
const WORDS: &[&str] = &[
    "",
    "c",
    "ALL",
    "NET_BIND_SERVICE",
    "NET_RAW",
    "Default",
    "Unmasked",
    "windows",
    "RuntimeDefault",
    "Localhost",
    "Unconfined",
    "runtime/default",
    "localhost/p",
    "unconfined",
    "container_t",
    "spc_t",
    "kernel.shm_rmid_forced",
    "net.ipv4.tcp_wmem",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        prop_oneof![Just(0_i64), Just(1), Just(-1), any::<i64>()].prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(WORDS).prop_map(Value::from),
        "[a-zA-Z0-9_./-]{0,12}".prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(7, 96, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..7).prop_map(|entries| {
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect::<Map<String, Value>>(),
                )
            }),
        ]
    })
}

type Field = BoxedStrategy<Option<(String, Value)>>;

/// A field that is present about half of the time.
fn field(key: &'static str, value: impl Strategy<Value = Value> + 'static) -> Field {
    prop::option::weighted(0.5, value.prop_map(move |v| (key.to_owned(), v))).boxed()
}

fn object(fields: Vec<Field>) -> BoxedStrategy<Value> {
    fields
        .prop_map(|entries| Value::Object(entries.into_iter().flatten().collect()))
        .boxed()
}

/// Mostly a plausible value, sometimes anything at all.
fn plausible<S: Strategy<Value = Value> + 'static>(value: S) -> BoxedStrategy<Value> {
    prop_oneof![4 => value, 1 => json_value()].boxed()
}

fn word() -> BoxedStrategy<Value> {
    prop::sample::select(WORDS).prop_map(Value::from).boxed()
}

fn boolean() -> BoxedStrategy<Value> {
    plausible(any::<bool>().prop_map(Value::Bool))
}

fn typed() -> BoxedStrategy<Value> {
    plausible(object(vec![field("type", word())]))
}

fn handler() -> BoxedStrategy<Value> {
    let endpoint = || object(vec![field("host", word()), field("port", Just(json!(80)))]);
    plausible(object(vec![
        field("httpGet", endpoint()),
        field("tcpSocket", endpoint()),
    ]))
}

fn security_context() -> BoxedStrategy<Value> {
    object(vec![
        field("privileged", boolean()),
        field("allowPrivilegeEscalation", boolean()),
        field(
            "capabilities",
            plausible(object(vec![
                field(
                    "add",
                    plausible(prop::collection::vec(word(), 0..3).prop_map(Value::Array)),
                ),
                field(
                    "drop",
                    plausible(prop::collection::vec(word(), 0..3).prop_map(Value::Array)),
                ),
            ])),
        ),
        field("procMount", plausible(word())),
        field("runAsNonRoot", boolean()),
        field(
            "runAsUser",
            plausible(prop_oneof![Just(0_i64), Just(1000)].prop_map(Value::from)),
        ),
        field(
            "seLinuxOptions",
            plausible(object(vec![
                field("type", word()),
                field("user", word()),
                field("role", word()),
            ])),
        ),
        field("seccompProfile", typed()),
        field("appArmorProfile", typed()),
        field(
            "windowsOptions",
            plausible(object(vec![field("hostProcess", boolean())])),
        ),
        field(
            "sysctls",
            plausible(
                prop::collection::vec(object(vec![field("name", word())]), 0..3)
                    .prop_map(Value::Array),
            ),
        ),
    ])
}

fn container() -> BoxedStrategy<Value> {
    plausible(object(vec![
        field(
            "name",
            plausible(prop::sample::select(vec!["a", "b", "c"]).prop_map(Value::from)),
        ),
        field("securityContext", plausible(security_context())),
        field(
            "ports",
            plausible(
                prop::collection::vec(
                    object(vec![field(
                        "hostPort",
                        plausible(prop_oneof![Just(0_i64), Just(8080)].prop_map(Value::from)),
                    )]),
                    0..3,
                )
                .prop_map(Value::Array),
            ),
        ),
        field("livenessProbe", handler()),
        field("readinessProbe", handler()),
        field("startupProbe", handler()),
        field(
            "lifecycle",
            plausible(object(vec![
                field("postStart", handler()),
                field("preStop", handler()),
            ])),
        ),
    ]))
}

fn containers() -> BoxedStrategy<Value> {
    plausible(prop::collection::vec(container(), 0..3).prop_map(Value::Array))
}

fn volume() -> BoxedStrategy<Value> {
    let source = prop::sample::select(vec![
        "hostPath",
        "emptyDir",
        "nfs",
        "image",
        "csi",
        "configMap",
        "gitRepo",
        "unknownSource",
    ]);
    plausible(
        (source, json_value(), prop::sample::select(vec!["v", "w"])).prop_map(|(kind, value, name)| {
            json!({"name": name, kind: if value.is_object() { value } else { json!({}) }})
        }),
    )
}

/// A pod whose every known field is present about half of the time, mostly with a plausible
/// value, so each check is reached with both good and bad inputs.
fn shaped_pod() -> impl Strategy<Value = (Value, Value)> {
    let annotations = plausible(object(vec![
        field("seccomp.security.alpha.kubernetes.io/pod", word()),
        field("container.seccomp.security.alpha.kubernetes.io/a", word()),
        field("container.apparmor.security.beta.kubernetes.io/b", word()),
    ]));
    let metadata = object(vec![field("annotations", annotations)]);
    let spec = object(vec![
        field("hostNetwork", boolean()),
        field("hostPID", boolean()),
        field("hostIPC", boolean()),
        field("hostUsers", boolean()),
        field("os", plausible(object(vec![field("name", word())]))),
        field("securityContext", plausible(security_context())),
        field(
            "volumes",
            plausible(prop::collection::vec(volume(), 0..3).prop_map(Value::Array)),
        ),
        field("initContainers", containers()),
        field("containers", containers()),
        field("ephemeralContainers", containers()),
    ]);
    (metadata, spec)
}

fn levels() -> impl Strategy<Value = Level> {
    prop::sample::select(vec![Level::Privileged, Level::Baseline, Level::Restricted])
}

fn versions() -> impl Strategy<Value = Version> {
    prop_oneof![Just(Version::Latest), (0_u32..45).prop_map(Version::V1)]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn never_panics_and_is_deterministic(
        metadata in json_value(),
        spec in json_value(),
        level in levels(),
        version in versions(),
    ) {
        let first = check_pod(level, version, &metadata, &spec, "");
        let second = check_pod(level, version, &metadata.clone(), &spec.clone(), "");
        prop_assert_eq!(&first, &second);

        let deployment = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "spec": {"template": {"metadata": metadata, "spec": spec}}
        });
        let wrapped = check_object(level, version, &deployment);
        prop_assert_eq!(wrapped.len(), first.len());
        for (outer, inner) in wrapped.iter().zip(&first) {
            prop_assert_eq!(outer.check, inner.check);
            prop_assert_eq!(&outer.path, &format!("spec.template.{}", inner.path));
        }
    }

    #[test]
    fn shaped_pods_are_deterministic_and_prefix_independent(
        (metadata, spec) in shaped_pod(),
        level in levels(),
        version in versions(),
    ) {
        let bare = check_pod(level, version, &metadata, &spec, "");
        prop_assert_eq!(&bare, &check_pod(level, version, &metadata.clone(), &spec.clone(), ""));
        let nested = check_pod(level, version, &metadata, &spec, "spec.jobTemplate.spec.template");
        prop_assert_eq!(nested.len(), bare.len());
        for (outer, inner) in nested.iter().zip(&bare) {
            prop_assert_eq!(
                &outer.path,
                &format!("spec.jobTemplate.spec.template.{}", inner.path)
            );
            prop_assert_eq!(&outer.message, &inner.message);
        }
        if level == Level::Privileged {
            prop_assert!(bare.is_empty());
        }
    }

    #[test]
    fn never_panics_on_random_pod_shaped_documents(
        containers in prop::collection::vec(json_value(), 0..4),
        security_context in json_value(),
        volumes in json_value(),
        annotations in json_value(),
        level in levels(),
        version in versions(),
    ) {
        let metadata = json!({"annotations": annotations});
        let spec = json!({
            "securityContext": security_context,
            "initContainers": containers.clone(),
            "containers": containers,
            "volumes": volumes,
        });
        let first = check_pod(level, version, &metadata, &spec, "spec.template");
        prop_assert_eq!(&first, &check_pod(level, version, &metadata, &spec, "spec.template"));
        for finding in &first {
            prop_assert!(finding.path.starts_with("spec.template."));
            prop_assert!(level != Level::Privileged);
        }
    }
}
