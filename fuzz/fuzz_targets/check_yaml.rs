//! `tenantry check` on arbitrary bytes: the exact path a file or stdin takes (parse under the
//! input budget, expand Lists, judge with every policy on, locate lines) and every report
//! format. Anything but a clean return (a panic, a stack overflow, runaway memory) is a bug.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use tenantry_api::Platform;
use tenantry_policy::{
    Context, Engine, Level, TenantInfo, TextInput, check_text,
    input::Format,
    report::{self, Report},
};

static ENGINE: LazyLock<Engine> = LazyLock::new(|| {
    let mut platform = Platform::default();
    platform.policies.require_digest.enabled = true;
    platform.policies.image_pull_policy_always.enabled = true;
    Engine::new(&platform).with_repo_contract("shop")
});

static TENANT: LazyLock<TenantInfo> = LazyLock::new(|| TenantInfo {
    name: "shop".to_owned(),
    namespaces: vec!["shop".to_owned(), "shop-dev".to_owned()],
    service_account: "shop".to_owned(),
    registries: vec!["ghcr.io/acme".to_owned()],
    pod_security: Level::Baseline,
    proxy_kubeconfig_secret: Some("shop-proxy".to_owned()),
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The first byte picks the context, so both the tenant-less and the tenant path are fuzzed.
    let tenant = data.first().is_some_and(|b| b & 1 == 1).then(|| &*TENANT);
    let ctx = Context::check(tenant);
    for (format, kustomization) in [
        (Format::Yaml, false),
        (Format::Yaml, true),
        (Format::Json, false),
    ] {
        let result = check_text(
            &TextInput {
                label: "fuzz.yaml",
                text,
                format,
                kustomization,
            },
            &ENGINE,
            &ctx,
        );
        let mut report = Report {
            files: 1,
            judged: result.judged,
            findings: result.findings,
            errors: result.error.into_iter().collect(),
            skipped: ENGINE.skipped(&ctx),
            ..Report::default()
        };
        if let Some(scan) = result.scan {
            report
                .findings
                .extend(scan.finish().into_iter().map(|violation| report::Located {
                    file: "fuzz.yaml".to_owned(),
                    document: None,
                    line: None,
                    violation,
                }));
        }
        for format in [
            report::Format::Text,
            report::Format::Json,
            report::Format::Sarif,
            report::Format::Junit,
        ] {
            let rendered = report::render(&report, format, "0.0.0");
            if matches!(format, report::Format::Json | report::Format::Sarif) {
                assert!(serde_json::from_str::<serde_json::Value>(&rendered).is_ok());
            }
        }
    }
});
