//! Semantics the upstream fixture corpus does not pin down on its own: precedence between pod and
//! container security contexts, version capping and revisions, the Windows and user-namespace
//! exemptions, ephemeral containers, overrides, and the paths reported for controllers.

use serde_json::{Value, json};

use super::checks::REGISTRY;
use super::*;

fn restricted_container(name: &str) -> Value {
    json!({
        "name": name,
        "image": "registry.k8s.io/pause",
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"]}
        }
    })
}

/// A pod spec that passes `restricted` at every version.
fn restricted_spec() -> Value {
    json!({
        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
        "initContainers": [restricted_container("init")],
        "containers": [restricted_container("app")]
    })
}

fn run(level: Level, version: Version, spec: &Value) -> Vec<Finding> {
    check_pod(level, version, &Value::Null, spec, "")
}

fn run_meta(level: Level, version: Version, metadata: &Value, spec: &Value) -> Vec<Finding> {
    check_pod(level, version, metadata, spec, "")
}

fn ids(findings: &[Finding]) -> Vec<&'static str> {
    findings.iter().map(|f| f.check).collect()
}

fn paths(findings: &[Finding]) -> Vec<&str> {
    findings.iter().map(|f| f.path.as_str()).collect()
}

fn v(minor: u32) -> Version {
    Version::V1(minor)
}

// --- levels, versions and the registry ---------------------------------------------------------

#[test]
fn levels_parse_and_display_like_the_namespace_label() {
    for level in [Level::Privileged, Level::Baseline, Level::Restricted] {
        assert_eq!(level.to_string().parse::<Level>(), Ok(level));
    }
    for bad in ["", "Restricted", "BASELINE", "restricted ", "unknown"] {
        assert!(bad.parse::<Level>().is_err(), "{bad:?}");
    }
}

#[test]
fn versions_parse_and_display_like_the_version_label() {
    assert_eq!("latest".parse(), Ok(Version::Latest));
    assert_eq!("v1.0".parse(), Ok(v(0)));
    assert_eq!("v1.37".parse(), Ok(v(37)));
    assert_eq!("v1.123".parse(), Ok(v(123)));
    assert_eq!(v(25).to_string(), "v1.25");
    assert_eq!(Version::Latest.to_string(), "latest");
    for bad in [
        "",
        "v1",
        "v1.",
        "v1.01",
        "1.25",
        "v2.0",
        "V1.25",
        "v1.25.0",
        "v1.-1",
        "v1.+1",
        "Latest",
        "v1.99999999999",
    ] {
        assert!(bad.parse::<Version>().is_err(), "{bad:?}");
    }
}

#[test]
fn versions_newer_than_the_newest_revision_are_capped() {
    assert_eq!(Version::Latest.effective_minor(), LATEST_MINOR);
    assert_eq!(v(LATEST_MINOR + 1).effective_minor(), LATEST_MINOR);
    assert_eq!(v(u32::MAX).effective_minor(), LATEST_MINOR);
    assert_eq!(v(3).effective_minor(), 3);
    assert!(Version::Latest > v(u32::MAX));
    assert!(v(2) < v(10));

    // The newest revision registered by any check defines LATEST_MINOR.
    let newest = checks()
        .flat_map(|c| c.revisions.iter().copied())
        .max()
        .unwrap();
    assert_eq!(newest, LATEST_MINOR);

    let spec = json!({
        "securityContext": {"sysctls": [{"name": "net.ipv4.tcp_notsent_lowat", "value": "1"}]},
        "containers": [{"name": "c"}]
    });
    assert_eq!(ids(&run(Level::Baseline, v(36), &spec)), ["sysctls"]);
    for version in [v(37), v(38), v(1000), Version::Latest] {
        assert!(run(Level::Baseline, version, &spec).is_empty(), "{version}");
    }
}

#[test]
fn registry_is_sorted_unique_and_overrides_are_consistent() {
    let infos: Vec<&CheckInfo> = checks().collect();
    let (baseline, restricted): (Vec<&CheckInfo>, Vec<&CheckInfo>) = infos
        .iter()
        .copied()
        .partition(|c| c.level == Level::Baseline);
    assert_eq!(baseline.len() + restricted.len(), infos.len());
    assert!(
        infos[..baseline.len()]
            .iter()
            .all(|c| c.level == Level::Baseline)
    );
    for group in [&baseline, &restricted] {
        assert!(
            group.windows(2).all(|w: &[&CheckInfo]| w[0].id < w[1].id),
            "sorted by ID"
        );
    }
    for check in &infos {
        assert!(
            check.revisions.windows(2).all(|w| w[0] < w[1]),
            "{}",
            check.id
        );
        assert!(!check.revisions.is_empty());
    }
    for check in &REGISTRY {
        if check.info.level == Level::Restricted {
            assert_eq!(check.replaced_from, None);
            continue;
        }
        assert!(check.info.overrides.is_none());
        let replacer = REGISTRY
            .iter()
            .find(|r| r.info.overrides == Some(check.info.id));
        assert_eq!(
            check.replaced_from,
            replacer.map(|r| r.info.revisions[0]),
            "{}",
            check.info.id
        );
    }
}

#[test]
fn check_info_applies_mirrors_evaluation() {
    let find = |id| checks().find(|c| c.id == id).unwrap();
    let caps = find("capabilities_baseline");
    assert!(caps.applies(Level::Baseline, Version::Latest));
    assert!(caps.applies(Level::Restricted, v(21)));
    assert!(!caps.applies(Level::Restricted, v(22)));
    assert!(!caps.applies(Level::Privileged, v(0)));
    let ape = find("allowPrivilegeEscalation");
    assert!(!ape.applies(Level::Restricted, v(7)));
    assert!(ape.applies(Level::Restricted, v(8)));
    assert!(!ape.applies(Level::Baseline, v(8)));
    assert!(!find("hostPathVolumes").applies(Level::Restricted, v(0)));
}

#[test]
fn privileged_level_checks_nothing() {
    let spec = json!({"hostNetwork": true, "containers": [{"name": "c", "securityContext": {"privileged": true}}]});
    assert!(run(Level::Privileged, Version::Latest, &spec).is_empty());
    assert!(!run(Level::Baseline, Version::Latest, &spec).is_empty());
}

#[test]
fn compliant_pod_passes_restricted_at_every_version() {
    let spec = restricted_spec();
    for minor in 0..=LATEST_MINOR + 2 {
        assert_eq!(run(Level::Restricted, v(minor), &spec), [], "v1.{minor}");
    }
}

// --- pod vs container precedence ---------------------------------------------------------------

#[test]
fn run_as_non_root_pod_level_true_covers_unset_containers() {
    let spec = json!({
        "securityContext": {"runAsNonRoot": true},
        "containers": [{"name": "a"}, {"name": "b", "securityContext": {}}]
    });
    assert!(!ids(&run(Level::Restricted, v(7), &spec)).contains(&"runAsNonRoot"));
}

#[test]
fn run_as_non_root_container_false_overrides_pod_true() {
    let spec = json!({
        "securityContext": {"runAsNonRoot": true},
        "containers": [{"name": "a", "securityContext": {"runAsNonRoot": false}}]
    });
    let findings = run(Level::Restricted, v(7), &spec);
    assert_eq!(ids(&findings), ["runAsNonRoot"]);
    assert_eq!(
        findings[0].path,
        "spec.containers[0].securityContext.runAsNonRoot"
    );
    assert_eq!(
        findings[0].message,
        "runAsNonRoot != true: container \"a\" must not set securityContext.runAsNonRoot=false"
    );
    assert_eq!(findings[0].level, Level::Restricted);
}

#[test]
fn run_as_non_root_pod_false_is_forbidden_even_if_every_container_sets_true() {
    let spec = json!({
        "securityContext": {"runAsNonRoot": false},
        "containers": [{"name": "a", "securityContext": {"runAsNonRoot": true}}]
    });
    let findings = run(Level::Restricted, v(7), &spec);
    assert_eq!(paths(&findings), ["spec.securityContext.runAsNonRoot"]);
}

#[test]
fn run_as_non_root_pod_false_is_reported_once_not_per_inheriting_container() {
    let spec = json!({
        "securityContext": {"runAsNonRoot": false},
        "containers": [{"name": "a"}, {"name": "b"}]
    });
    let findings = run(Level::Restricted, v(7), &spec);
    assert_eq!(paths(&findings), ["spec.securityContext.runAsNonRoot"]);
}

#[test]
fn run_as_non_root_unset_everywhere_blames_each_container() {
    let spec = json!({"containers": [{"name": "a"}], "initContainers": [{"name": "i"}]});
    let findings: Vec<_> = run(Level::Restricted, v(7), &spec)
        .into_iter()
        .filter(|f| f.check == "runAsNonRoot")
        .collect();
    assert_eq!(
        paths(&findings),
        [
            "spec.initContainers[0].securityContext.runAsNonRoot",
            "spec.containers[0].securityContext.runAsNonRoot",
        ]
    );
    assert_eq!(
        findings[1].message,
        "runAsNonRoot != true: pod or container \"a\" must set securityContext.runAsNonRoot=true"
    );
}

#[test]
fn seccomp_restricted_precedence() {
    let with = |pod: Value, container: Value| {
        let spec = json!({
            "securityContext": {"runAsNonRoot": true, "seccompProfile": pod},
            "containers": [{
                "name": "a",
                "securityContext": {
                    "allowPrivilegeEscalation": false,
                    "capabilities": {"drop": ["ALL"]},
                    "seccompProfile": container
                }
            }]
        });
        run(Level::Restricted, Version::Latest, &spec)
    };
    // Pod-level RuntimeDefault covers a container without a profile.
    assert!(with(json!({"type": "RuntimeDefault"}), Value::Null).is_empty());
    // Containers may all opt in without a pod-level profile.
    assert!(
        with(
            Value::Null,
            json!({"type": "Localhost", "localhostProfile": "p"})
        )
        .is_empty()
    );
    // A container-level Unconfined is forbidden despite a valid pod-level profile.
    let findings = with(
        json!({"type": "RuntimeDefault"}),
        json!({"type": "Unconfined"}),
    );
    assert_eq!(ids(&findings), ["seccompProfile_restricted"]);
    assert_eq!(
        findings[0].path,
        "spec.containers[0].securityContext.seccompProfile.type"
    );
    // Neither level set: the container must set it (or the pod).
    let findings = with(Value::Null, Value::Null);
    assert_eq!(ids(&findings), ["seccompProfile_restricted"]);
    assert!(
        findings[0]
            .message
            .contains("pod or container \"a\" must set")
    );
    // A pod-level Unconfined is reported at the pod, not again per inheriting container.
    let findings = with(json!({"type": "Unconfined"}), Value::Null);
    assert_eq!(
        paths(&findings),
        ["spec.securityContext.seccompProfile.type"]
    );
    // A profile object without a type is an explicit, invalid (empty) type.
    let findings = with(json!({}), Value::Null);
    assert!(findings[0].message.ends_with("to \"\""));
}

#[test]
fn seccomp_baseline_only_forbids_explicit_bad_types() {
    let spec = json!({
        "securityContext": {"seccompProfile": {"type": "Unconfined"}},
        "containers": [{"name": "a", "securityContext": {"seccompProfile": {"type": "Unconfined"}}}, {"name": "b"}]
    });
    let findings = run(Level::Baseline, v(19), &spec);
    assert_eq!(
        paths(&findings),
        [
            "spec.securityContext.seccompProfile.type",
            "spec.containers[0].securityContext.seccompProfile.type",
        ]
    );
    assert!(
        run(
            Level::Baseline,
            v(19),
            &json!({"containers": [{"name": "b"}]})
        )
        .is_empty()
    );
}

#[test]
fn selinux_checks_pod_and_each_field_separately() {
    let spec = json!({
        "securityContext": {"seLinuxOptions": {"type": "spc_t", "user": "system_u", "level": "s0"}},
        "containers": [{"name": "a", "securityContext": {"seLinuxOptions": {"role": "r"}}}]
    });
    let findings = run(Level::Baseline, Version::Latest, &spec);
    assert_eq!(
        paths(&findings),
        [
            "spec.securityContext.seLinuxOptions.type",
            "spec.securityContext.seLinuxOptions.user",
            "spec.containers[0].securityContext.seLinuxOptions.role",
        ]
    );
    assert!(ids(&findings).iter().all(|id| *id == "seLinuxOptions"));
}

#[test]
fn selinux_container_engine_t_is_allowed_from_1_31() {
    let spec = json!({"containers": [{"name": "a", "securityContext": {"seLinuxOptions": {"type": "container_engine_t"}}}]});
    assert_eq!(ids(&run(Level::Baseline, v(30), &spec)), ["seLinuxOptions"]);
    assert!(run(Level::Baseline, v(31), &spec).is_empty());
}

#[test]
fn windows_host_process_at_pod_and_container_level() {
    let spec = json!({
        "securityContext": {"windowsOptions": {"hostProcess": true}},
        "containers": [{"name": "a", "securityContext": {"windowsOptions": {"hostProcess": false}}},
                       {"name": "b", "securityContext": {"windowsOptions": {"hostProcess": true}}}]
    });
    let findings = run(Level::Baseline, v(0), &spec);
    assert_eq!(
        paths(&findings),
        [
            "spec.securityContext.windowsOptions.hostProcess",
            "spec.containers[1].securityContext.windowsOptions.hostProcess",
        ]
    );
}

// --- versioned revisions -----------------------------------------------------------------------

#[test]
fn checks_only_exist_from_their_first_version() {
    let spec = json!({
        "securityContext": {"runAsNonRoot": true, "runAsUser": 0},
        "containers": [{"name": "a", "livenessProbe": {"httpGet": {"host": "10.0.0.1", "port": 80}}}]
    });
    let at = |level, minor| ids(&run(level, v(minor), &spec));
    assert_eq!(at(Level::Baseline, 33), Vec::<&str>::new());
    assert_eq!(at(Level::Baseline, 34), ["hostProbesAndHostLifecycle"]);
    assert_eq!(at(Level::Restricted, 7), Vec::<&str>::new());
    assert_eq!(at(Level::Restricted, 8), ["allowPrivilegeEscalation"]);
    assert_eq!(
        at(Level::Restricted, 19),
        ["allowPrivilegeEscalation", "seccompProfile_restricted"]
    );
    assert_eq!(
        at(Level::Restricted, 22),
        [
            "allowPrivilegeEscalation",
            "capabilities_restricted",
            "seccompProfile_restricted"
        ]
    );
    assert_eq!(
        at(Level::Restricted, 23),
        [
            "allowPrivilegeEscalation",
            "capabilities_restricted",
            "runAsUser",
            "seccompProfile_restricted"
        ]
    );
    assert_eq!(
        at(Level::Restricted, 34),
        [
            "hostProbesAndHostLifecycle",
            "allowPrivilegeEscalation",
            "capabilities_restricted",
            "runAsUser",
            "seccompProfile_restricted"
        ]
    );
}

#[test]
fn seccomp_annotations_before_1_19_fields_after() {
    let metadata = json!({"annotations": {
        "seccomp.security.alpha.kubernetes.io/pod": "unconfined",
        "container.seccomp.security.alpha.kubernetes.io/a": "localhost/profile",
        "container.seccomp.security.alpha.kubernetes.io/b": "unconfined",
        "container.seccomp.security.alpha.kubernetes.io/missing": "unconfined",
        "container.seccomp.security.alpha.kubernetes.io/c": "docker/default"
    }});
    let spec = json!({
        "securityContext": {"seccompProfile": {"type": "Unconfined"}},
        "containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}]
    });
    let findings = run_meta(Level::Baseline, v(18), &metadata, &spec);
    assert_eq!(
        paths(&findings),
        [
            "metadata.annotations[container.seccomp.security.alpha.kubernetes.io/b]",
            "metadata.annotations[seccomp.security.alpha.kubernetes.io/pod]",
        ]
    );
    let findings = run_meta(Level::Baseline, v(19), &metadata, &spec);
    assert_eq!(
        paths(&findings),
        ["spec.securityContext.seccompProfile.type"]
    );
    // An empty annotation value is not an allowed seccomp profile.
    let empty = json!({"annotations": {"seccomp.security.alpha.kubernetes.io/pod": ""}});
    assert_eq!(
        ids(&run_meta(Level::Baseline, v(0), &empty, &spec)),
        ["seccompProfile_baseline"]
    );
}

#[test]
fn seccomp_baseline_runs_at_restricted_until_the_restricted_check_replaces_it() {
    let metadata =
        json!({"annotations": {"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}});
    let mut spec = restricted_spec();
    spec["securityContext"]["seccompProfile"] = Value::Null;
    let findings = run_meta(Level::Restricted, v(18), &metadata, &spec);
    assert_eq!(ids(&findings), ["seccompProfile_baseline"]);
    let findings = run_meta(Level::Restricted, v(19), &metadata, &spec);
    assert_eq!(
        ids(&findings),
        ["seccompProfile_restricted", "seccompProfile_restricted"]
    );
}

#[test]
fn capabilities_baseline_is_replaced_at_restricted_from_1_22() {
    let mut spec = restricted_spec();
    spec["containers"][0]["securityContext"]["capabilities"]["add"] = json!(["NET_RAW"]);
    assert_eq!(
        ids(&run(Level::Restricted, v(21), &spec)),
        ["capabilities_baseline"]
    );
    let findings = run(Level::Restricted, v(22), &spec);
    assert_eq!(ids(&findings), ["capabilities_restricted"]);
    assert_eq!(
        findings[0].path,
        "spec.containers[0].securityContext.capabilities.add[0]"
    );
    assert_eq!(
        ids(&run(Level::Baseline, v(22), &spec)),
        ["capabilities_baseline"]
    );
}

#[test]
fn capabilities_restricted_requires_exact_drop_all_and_only_net_bind_service() {
    let spec = json!({"containers": [
        {"name": "a", "securityContext": {"capabilities": {"drop": ["all"], "add": ["NET_BIND_SERVICE", "CHOWN"]}}},
        {"name": "b"},
    ]});
    let findings: Vec<_> = run(Level::Restricted, Version::Latest, &spec)
        .into_iter()
        .filter(|f| f.check == "capabilities_restricted")
        .collect();
    assert_eq!(
        paths(&findings),
        [
            "spec.containers[0].securityContext.capabilities.drop",
            "spec.containers[0].securityContext.capabilities.add[1]",
            "spec.containers[1].securityContext.capabilities.drop",
        ]
    );
}

#[test]
fn host_path_volumes_are_reported_by_restricted_volumes_at_restricted() {
    let mut spec = restricted_spec();
    spec["volumes"] = json!([
        {"name": "ok", "emptyDir": {}},
        {"name": "host", "hostPath": {"path": "/"}}
    ]);
    let findings = run(Level::Baseline, Version::Latest, &spec);
    assert_eq!(paths(&findings), ["spec.volumes[1].hostPath"]);
    assert_eq!(findings[0].check, "hostPathVolumes");
    let findings = run(Level::Restricted, Version::Latest, &spec);
    assert_eq!(ids(&findings), ["restrictedVolumes"]);
    assert_eq!(findings[0].path, "spec.volumes[1].hostPath");
}

#[test]
fn restricted_volume_sources_follow_api_server_decoding() {
    let mut spec = restricted_spec();
    spec["volumes"] = json!([
        {"name": "defaulted-to-empty-dir"},
        {"name": "null-source", "nfs": null},
        {"name": "unknown-source", "fancyVolume": {}},
        {"name": "image", "image": {"reference": "registry.k8s.io/pause"}},
        {"name": "csi", "csi": {"driver": "x"}},
        {"name": "ephemeral", "ephemeral": {}},
        null,
        {"name": "nfs", "nfs": {"server": "s", "path": "/"}}
    ]);
    for version in [v(0), v(25), Version::Latest] {
        let findings = run(Level::Restricted, version, &spec);
        assert_eq!(paths(&findings), ["spec.volumes[7].nfs"], "{version}");
        assert_eq!(
            findings[0].message,
            "restricted volume types: volume \"nfs\" uses restricted volume type \"nfs\""
        );
    }
}

// --- Windows -----------------------------------------------------------------------------------

#[test]
fn windows_pods_are_exempt_from_linux_only_restricted_checks_from_1_25() {
    let spec = json!({
        "os": {"name": "windows"},
        "securityContext": {"runAsNonRoot": true},
        "containers": [{"name": "a"}]
    });
    assert_eq!(
        ids(&run(Level::Restricted, v(24), &spec)),
        [
            "allowPrivilegeEscalation",
            "capabilities_restricted",
            "seccompProfile_restricted"
        ]
    );
    assert!(run(Level::Restricted, v(25), &spec).is_empty());
    assert!(run(Level::Restricted, Version::Latest, &spec).is_empty());

    // Only exactly "windows" counts, and runAsNonRoot still applies to Windows pods.
    let mut linux = spec.clone();
    linux["os"]["name"] = json!("Windows");
    assert_eq!(run(Level::Restricted, Version::Latest, &linux).len(), 3);
    let mut root = spec;
    root["securityContext"] = json!({});
    assert_eq!(
        ids(&run(Level::Restricted, Version::Latest, &root)),
        ["runAsNonRoot"]
    );
}

#[test]
fn windows_exemption_does_not_touch_baseline_checks() {
    let spec = json!({
        "os": {"name": "windows"},
        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "Unconfined"}},
        "containers": [{"name": "a", "securityContext": {"windowsOptions": {"hostProcess": true}}}]
    });
    assert_eq!(
        ids(&run(Level::Baseline, Version::Latest, &spec)),
        ["seccompProfile_baseline", "windowsHostProcess"]
    );
    // At restricted the baseline seccomp check is replaced by the (exempted) restricted one.
    assert_eq!(
        ids(&run(Level::Restricted, Version::Latest, &spec)),
        ["windowsHostProcess"]
    );
}

// --- user namespaces (hostUsers: false) --------------------------------------------------------

#[test]
fn user_namespace_relaxes_baseline_proc_mount_from_1_35_only() {
    let spec = |host_users: Value| {
        json!({
            "hostUsers": host_users,
            "containers": [{"name": "a", "securityContext": {"procMount": "Unmasked"}}]
        })
    };
    assert_eq!(
        ids(&run(Level::Baseline, v(34), &spec(json!(false)))),
        ["procMount"]
    );
    assert!(run(Level::Baseline, v(35), &spec(json!(false))).is_empty());
    assert!(run(Level::Baseline, Version::Latest, &spec(json!(false))).is_empty());
    for other in [json!(true), Value::Null, json!("false")] {
        assert_eq!(
            ids(&run(Level::Baseline, Version::Latest, &spec(other))),
            ["procMount"]
        );
    }
}

#[test]
fn restricted_keeps_proc_mount_strict_through_proc_mount_restricted() {
    let with = |host_users: bool| {
        let mut spec = restricted_spec();
        spec["hostUsers"] = json!(host_users);
        spec["containers"][0]["securityContext"]["procMount"] = json!("Unmasked");
        spec
    };
    assert_eq!(
        ids(&run(Level::Restricted, v(34), &with(false))),
        ["procMount"]
    );
    for host_users in [false, true] {
        let findings = run(Level::Restricted, v(35), &with(host_users));
        assert_eq!(ids(&findings), ["procMount_restricted"], "{host_users}");
        assert_eq!(findings[0].level, Level::Restricted);
    }
}

#[test]
fn user_namespace_relaxes_run_as_root_checks_from_1_35() {
    let spec = |host_users: bool| {
        json!({
            "hostUsers": host_users,
            "securityContext": {"runAsUser": 0, "runAsNonRoot": false, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "a",
                "securityContext": {
                    "runAsUser": 0,
                    "allowPrivilegeEscalation": false,
                    "capabilities": {"drop": ["ALL"]}
                }
            }]
        })
    };
    assert_eq!(
        ids(&run(Level::Restricted, v(34), &spec(false))),
        ["runAsNonRoot", "runAsUser", "runAsUser"]
    );
    assert!(run(Level::Restricted, v(35), &spec(false)).is_empty());
    assert_eq!(
        ids(&run(Level::Restricted, v(35), &spec(true))),
        ["runAsNonRoot", "runAsUser", "runAsUser"]
    );
}

#[test]
fn user_namespace_relaxes_nothing_else() {
    let spec = json!({
        "hostUsers": false,
        "containers": [{"name": "a", "securityContext": {"privileged": true, "capabilities": {"add": ["SYS_ADMIN"]}}}]
    });
    assert_eq!(
        ids(&run(Level::Baseline, Version::Latest, &spec)),
        ["capabilities_baseline", "privileged"]
    );
}

// --- containers --------------------------------------------------------------------------------

#[test]
fn ephemeral_containers_are_checked_after_init_and_regular_containers() {
    let bad = json!({"privileged": true});
    let spec = json!({
        "ephemeralContainers": [{"name": "debug", "securityContext": bad}],
        "containers": [{"name": "app", "securityContext": bad}],
        "initContainers": [{"name": "init", "securityContext": bad}]
    });
    let findings = run(Level::Baseline, Version::Latest, &spec);
    assert_eq!(
        paths(&findings),
        [
            "spec.initContainers[0].securityContext.privileged",
            "spec.containers[0].securityContext.privileged",
            "spec.ephemeralContainers[0].securityContext.privileged",
        ]
    );
    assert_eq!(
        findings[2].message,
        "privileged: container \"debug\" must not set securityContext.privileged=true"
    );
}

#[test]
fn host_ports_and_probe_hosts_are_reported_per_field() {
    let spec = json!({"containers": [{
        "name": "a",
        "ports": [{"containerPort": 80}, {"containerPort": 81, "hostPort": 8081}, {"hostPort": 0}],
        "readinessProbe": {"tcpSocket": {"host": "10.0.0.1", "port": 1}},
        "lifecycle": {"preStop": {"httpGet": {"host": "example.com", "port": 1}}, "postStart": {"httpGet": {"host": ""}}}
    }]});
    let findings = run(Level::Baseline, Version::Latest, &spec);
    assert_eq!(
        paths(&findings),
        [
            "spec.containers[0].ports[1].hostPort",
            "spec.containers[0].readinessProbe.tcpSocket.host",
            "spec.containers[0].lifecycle.preStop.httpGet.host",
        ]
    );
    assert_eq!(
        findings[0].message,
        "hostPort: container \"a\" uses hostPort 8081"
    );
}

#[test]
fn app_armor_fields_and_annotations() {
    let metadata = json!({"annotations": {
        "container.apparmor.security.beta.kubernetes.io/a": "unconfined",
        "container.apparmor.security.beta.kubernetes.io/b": "runtime/default",
        "container.apparmor.security.beta.kubernetes.io/c": "localhost/p",
        "container.apparmor.security.beta.kubernetes.io/d": "",
        "other": "unconfined"
    }});
    let spec = json!({
        "securityContext": {"appArmorProfile": {"type": "Unconfined"}},
        "containers": [{"name": "a", "securityContext": {"appArmorProfile": {"type": "Localhost", "localhostProfile": "p"}}}]
    });
    // The field check has a single 1.0 revision: it applies at every version.
    let findings = run_meta(Level::Baseline, v(0), &metadata, &spec);
    assert_eq!(
        paths(&findings),
        [
            "spec.securityContext.appArmorProfile.type",
            "metadata.annotations[container.apparmor.security.beta.kubernetes.io/a]",
        ]
    );
    assert_eq!(
        findings[0].message,
        "forbidden AppArmor profile: pod must not set AppArmor profile type to \"Unconfined\""
    );
}

#[test]
fn annotation_findings_do_not_depend_on_map_order() {
    let keys = [
        "container.apparmor.security.beta.kubernetes.io/z",
        "container.apparmor.security.beta.kubernetes.io/a",
        "seccomp.security.alpha.kubernetes.io/pod",
    ];
    let metadata = |keys: &mut dyn Iterator<Item = &&str>| {
        let annotations: serde_json::Map<String, Value> = keys
            .map(|k| ((*k).to_owned(), json!("unconfined")))
            .collect();
        json!({ "annotations": annotations })
    };
    let spec = json!({"containers": [{"name": "a"}]});
    let forward = run_meta(Level::Baseline, v(0), &metadata(&mut keys.iter()), &spec);
    let backward = run_meta(
        Level::Baseline,
        v(0),
        &metadata(&mut keys.iter().rev()),
        &spec,
    );
    assert_eq!(forward, backward);
    assert_eq!(
        paths(&forward),
        [
            "metadata.annotations[container.apparmor.security.beta.kubernetes.io/a]",
            "metadata.annotations[container.apparmor.security.beta.kubernetes.io/z]",
            "metadata.annotations[seccomp.security.alpha.kubernetes.io/pod]",
        ]
    );
}

#[test]
fn sysctls_safe_set_grows_by_version() {
    let spec = |name: &str| json!({"securityContext": {"sysctls": [{"name": name, "value": "1"}]}});
    let allowed_from = [
        ("kernel.shm_rmid_forced", 0),
        ("net.ipv4.ip_local_reserved_ports", 27),
        ("net.ipv4.tcp_keepalive_probes", 29),
        ("net.ipv4.tcp_wmem", 32),
        ("net.ipv4.tcp_slow_start_after_idle", 37),
    ];
    for (name, from) in allowed_from {
        if from > 0 {
            let findings = run(Level::Baseline, v(from - 1), &spec(name));
            assert_eq!(
                paths(&findings),
                ["spec.securityContext.sysctls[0].name"],
                "{name}"
            );
        }
        assert!(
            run(Level::Baseline, v(from), &spec(name)).is_empty(),
            "{name}"
        );
    }
    // Names are compared exactly: no slash-form normalisation, no case folding.
    assert!(!run(Level::Baseline, Version::Latest, &spec("net/ipv4/tcp_wmem")).is_empty());
}

// --- controllers and path prefixes -------------------------------------------------------------

fn privileged_template() -> Value {
    json!({
        "metadata": {"annotations": {"container.apparmor.security.beta.kubernetes.io/c": "unconfined"}},
        "spec": {"containers": [{"name": "c", "securityContext": {"privileged": true}}]}
    })
}

#[test]
fn controller_templates_are_found_and_paths_are_prefixed() {
    let template = privileged_template();
    let cases = [
        (
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": template["metadata"], "spec": template["spec"]}),
            "",
        ),
        (
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": template}}),
            "spec.template.",
        ),
        (
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "spec": {"template": template}}),
            "spec.template.",
        ),
        (
            json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "spec": {"template": template}}),
            "spec.template.",
        ),
        (
            json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "spec": {"template": template}}),
            "spec.template.",
        ),
        (
            json!({"apiVersion": "v1", "kind": "ReplicationController", "spec": {"template": template}}),
            "spec.template.",
        ),
        (
            json!({"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": template}}),
            "spec.template.",
        ),
        (
            json!({"apiVersion": "batch/v1", "kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": template}}}}),
            "spec.jobTemplate.spec.template.",
        ),
        (
            json!({"apiVersion": "v1", "kind": "PodTemplate", "template": template}),
            "template.",
        ),
    ];
    for (object, prefix) in cases {
        let findings = check_object(Level::Baseline, Version::Latest, &object);
        assert_eq!(
            paths(&findings),
            [
                format!(
                    "{prefix}metadata.annotations[container.apparmor.security.beta.kubernetes.io/c]"
                ),
                format!("{prefix}spec.containers[0].securityContext.privileged"),
            ],
            "{}",
            object["kind"]
        );
        let found = pod_template(&object).unwrap();
        assert_eq!(found.path_prefix, prefix.trim_end_matches('.'));
    }
}

#[test]
fn other_kinds_and_groups_have_no_pod_template() {
    let template = privileged_template();
    for object in [
        json!({"apiVersion": "extensions/v1beta1", "kind": "Deployment", "spec": {"template": template}}),
        json!({"apiVersion": "apps/v1", "kind": "Job", "spec": {"template": template}}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {}}),
        json!({"apiVersion": "example.com/v1", "kind": "Pod", "spec": template["spec"]}),
        json!({"kind": "Pod", "spec": template["spec"]}),
        json!({"apiVersion": 1, "kind": "Pod"}),
        json!(["not", "an", "object"]),
        Value::Null,
    ] {
        assert!(pod_template(&object).is_none(), "{object}");
        assert!(check_object(Level::Restricted, Version::Latest, &object).is_empty());
    }
}

#[test]
fn known_kinds_without_a_template_evaluate_an_empty_pod() {
    let object = json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": 1}});
    let found = pod_template(&object).unwrap();
    assert!(found.spec.is_null() && found.metadata.is_null());
    assert_eq!(found.path_prefix, "spec.template");
    assert!(check_object(Level::Restricted, Version::Latest, &object).is_empty());
}

// --- malformed input ---------------------------------------------------------------------------

#[test]
fn wrongly_typed_values_are_treated_as_unset() {
    let spec = json!({
        "hostNetwork": "true",
        "hostPID": 1,
        "securityContext": {"runAsNonRoot": "true", "runAsUser": 0.0, "sysctls": "kernel.x"},
        "volumes": {"name": "v", "hostPath": {}},
        "containers": [{
            "name": 42,
            "securityContext": {"privileged": "yes", "capabilities": {"add": [1, null, "NET_RAW"]}, "procMount": 7},
            "ports": [{"hostPort": "80"}, {"hostPort": 80.5}, {"hostPort": 4_294_967_296_i64}]
        }]
    });
    let findings = run(Level::Baseline, Version::Latest, &spec);
    assert_eq!(
        paths(&findings),
        ["spec.containers[0].securityContext.capabilities.add[2]"]
    );
    assert!(findings[0].message.contains("container \"\""));
}

#[test]
fn null_list_elements_are_zero_value_containers() {
    let spec = json!({"securityContext": {"runAsNonRoot": true}, "containers": [null, 3]});
    let findings = run(Level::Restricted, v(8), &spec);
    assert_eq!(
        paths(&findings),
        [
            "spec.containers[0].securityContext.allowPrivilegeEscalation",
            "spec.containers[1].securityContext.allowPrivilegeEscalation",
        ]
    );
}

#[test]
fn non_object_documents_do_not_panic() {
    for value in [
        Value::Null,
        json!(true),
        json!(1),
        json!("spec"),
        json!([]),
        json!({"containers": "x", "initContainers": {}, "securityContext": []}),
    ] {
        for level in [Level::Baseline, Level::Restricted] {
            let _ = check_pod(level, Version::Latest, &value, &value, "x");
        }
    }
}

#[test]
fn every_finding_is_complete_and_tagged_with_its_checks_level() {
    let metadata = json!({"annotations": {
        "container.apparmor.security.beta.kubernetes.io/a": "unconfined",
        "seccomp.security.alpha.kubernetes.io/pod": "unconfined"
    }});
    let spec = json!({
        "hostNetwork": true, "hostPID": true, "hostIPC": true,
        "securityContext": {"runAsUser": 0, "sysctls": [{"name": "kernel.msgmax"}],
                            "seLinuxOptions": {"type": "spc_t"}},
        "volumes": [{"name": "h", "hostPath": {"path": "/"}}, {"name": "n", "nfs": {}}],
        "containers": [{"name": "a", "ports": [{"hostPort": 1}],
            "livenessProbe": {"httpGet": {"host": "h"}},
            "securityContext": {"privileged": true, "procMount": "Unmasked",
                "capabilities": {"add": ["SYS_ADMIN"]}, "windowsOptions": {"hostProcess": true},
                "seccompProfile": {"type": "Unconfined"}, "appArmorProfile": {"type": "Unconfined"}}}]
    });
    for minor in [0, 18, 19, 22, 25, 34, 35, LATEST_MINOR] {
        for level in [Level::Baseline, Level::Restricted] {
            let findings = run_meta(level, v(minor), &metadata, &spec);
            assert!(!findings.is_empty());
            for finding in &findings {
                let info = checks().find(|c| c.id == finding.check).unwrap();
                assert_eq!(finding.level, info.level);
                assert!(
                    info.applies(level, v(minor)),
                    "{} at {level} v1.{minor}",
                    info.id
                );
                assert!(finding.path.starts_with("spec.") || finding.path.starts_with("metadata."));
                assert!(!finding.message.is_empty() && finding.remediation.ends_with('.'));
            }
            // Grouped by check, in registry order.
            let order: Vec<usize> = findings
                .iter()
                .map(|f| checks().position(|c| c.id == f.check).unwrap())
                .collect();
            assert!(order.windows(2).all(|w| w[0] <= w[1]));
        }
    }
}
