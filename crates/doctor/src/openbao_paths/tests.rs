//! The keys a tenant's ExternalSecrets read, judged against its rendered scope and policy and
//! the KV metadata OpenBao returned, with the fix a person would type asserted.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;
use crate::{
    BaoStep, ClusterView, KvMetadata, Verdict,
    checks::tests::{Fixture, fixture},
};

const OPENBAO: &str = "{ secrets: { openbao: true } }";

fn external_secret(name: &str, store: Value, data: Value, data_from: Value) -> Value {
    json!({
        "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
        "metadata": { "name": name, "namespace": "shop" },
        "spec": { "secretStoreRef": store, "target": { "name": name }, "data": data, "dataFrom": data_from },
    })
}

fn tenant_store() -> Value {
    json!({ "kind": "SecretStore", "name": "openbao" })
}

fn reads(name: &str, key: &str) -> Value {
    external_secret(
        name,
        tenant_store(),
        json!([{ "secretKey": "password", "remoteRef": { "key": key, "property": "password" } }]),
        json!([]),
    )
}

fn view(secret_sync: Vec<Value>) -> ClusterView {
    ClusterView {
        missing_kinds: Vec::new(),
        live: Vec::new(),
        service_accounts: Ok(Vec::new()),
        workloads: Ok(Vec::new()),
        events: Ok(Vec::new()),
        pull_secrets: Ok(Vec::new()),
        secret_sync: Ok(secret_sync),
        network_policies: Ok(Vec::new()),
        other_tenant_namespaces: Ok(Vec::new()),
    }
}

fn stored(version: u64, deleted: bool) -> Option<KvMetadata> {
    let state = if deleted {
        KvVersion::Deleted
    } else {
        KvVersion::Live
    };
    Some(KvMetadata {
        current_version: version,
        current_deleted: deleted,
        versions: BTreeMap::from([(version, state)]),
    })
}

/// Run the check as the CLI would: read exactly the paths `kv_paths` names, from `store`.
fn run(
    f: &Fixture,
    objects: Vec<Value>,
    store: Result<BTreeMap<&str, Option<KvMetadata>>, &str>,
) -> Check {
    let reads = kv_paths(&f.ctx, &f.tenant, &f.rendered, &objects).unwrap_or_default();
    let kv = store
        .map(|s| KvView {
            secrets: reads
                .secrets
                .iter()
                .map(|p| (p.clone(), s.get(p.as_str()).cloned().flatten()))
                .collect(),
            // A recursive LIST of each folder: every stored key below it.
            folders: reads
                .folders
                .iter()
                .map(|folder| {
                    let below = format!("{folder}/");
                    let keys = s
                        .iter()
                        .filter(|(k, m)| k.starts_with(&below) && m.is_some())
                        .map(|(k, _)| (*k).to_owned())
                        .collect();
                    (folder.clone(), keys)
                })
                .collect(),
        })
        .map_err(str::to_owned);
    check(&Observed {
        ctx: &f.ctx,
        tenant: &f.tenant,
        rendered: &f.rendered,
        tenant_dir: "tenants/shop".to_owned(),
        stale: Vec::new(),
        tree: Ok(Vec::new()),
        cluster: Ok(view(objects)),
        openbao: Some(Ok(Vec::new())),
        openbao_kv: Some(kv),
    })
}

#[test]
fn the_rendered_policy_grants_read_inside_the_tenant_path_only() {
    let f = fixture(OPENBAO);
    let p = Policy::rendered(&f.rendered).unwrap();
    assert!(p.grants("secret/data/apps/shop/db", "read"));
    assert!(p.grants("secret/data/apps/shop/team/db", "read"));
    assert!(p.grants("secret/metadata/apps/shop/db", "read"));
    assert!(!p.grants("secret/metadata/apps/shop/db", "update"));
    assert!(
        !p.grants("secret/data/apps/shop", "read"),
        "the folder itself"
    );
    assert!(!p.grants("secret/data/apps/shopping/db", "read"));
    assert!(!p.grants("secret/data/apps/blog/db", "read"));
    assert!(!p.grants("secret/data/infrastructure/ghcr/auth", "read"));
}

#[test]
fn policy_rules_follow_openbao_precedence_and_other_forms_are_refused() {
    let p = Policy::parse(
        "# c\npath \"kv/data/a/*\" {\n  capabilities = [\"read\"]\n}\n\
         path \"kv/data/a/secret/*\" {\n  capabilities = [\"deny\", \"read\"]\n}\n\
         path \"kv/data/a/secret/open\" {\n  capabilities = [\"read\"]\n}\n",
    )
    .unwrap();
    assert!(p.grants("kv/data/a/x", "read"));
    assert!(
        !p.grants("kv/data/a/secret/x", "read"),
        "longest glob, deny wins"
    );
    assert!(
        p.grants("kv/data/a/secret/open", "read"),
        "exact beats glob"
    );
    for bad in [
        "path \"kv/+/a/*\" {\n capabilities = [\"read\"]\n}\n",
        "path \"kv/*/a\" {\n capabilities = [\"read\"]\n}\n",
        "path \"kv/a\" {\n allowed_parameters = {}\n}\n",
        "path \"kv/a\" {\n capabilities = [\"read\"]\n",
    ] {
        assert!(Policy::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn keys_resolve_as_external_secrets_reads_them() {
    assert_eq!(kv_path("secret", "apps/shop/db"), "apps/shop/db");
    assert_eq!(kv_path("secret", "secret/apps/shop/db"), "apps/shop/db");
    assert_eq!(
        kv_path("secret", "secret/data/apps/shop/db"),
        "apps/shop/db"
    );
    assert_eq!(
        kv_path("secret", "secrets/apps/shop/db"),
        "secrets/apps/shop/db"
    );
    assert!(inside("apps/shop/", "apps/shop/db"));
    assert!(!inside("apps/shop/", "apps/shop/"));
    assert!(!inside("apps/shop/", "apps/shop/../blog/db"));
}

#[test]
fn a_stored_key_passes_and_says_what_was_looked_at() {
    let f = fixture(OPENBAO);
    let c = run(
        &f,
        vec![reads("db", "apps/shop/db")],
        Ok(BTreeMap::from([("apps/shop/db", stored(2, false))])),
    );
    assert_eq!(c.verdict, Verdict::Ok, "{c:#?}");
    assert_eq!(
        c.objects,
        [
            "ExternalSecret shop/db",
            "OpenBao secret secret/apps/shop/db"
        ]
    );
}

#[test]
fn a_missing_key_fails_naming_it_and_the_fix() {
    let f = fixture(OPENBAO);
    let es = external_secret(
        "app",
        tenant_store(),
        json!([{ "secretKey": "a", "remoteRef": { "key": "apps/shop/db" } }]),
        json!([{ "extract": { "key": "secret/apps/shop/team/api" } }]),
    );
    let c = run(
        &f,
        vec![es],
        Ok(BTreeMap::from([("apps/shop/db", stored(1, false))])),
    );
    assert_eq!(c.verdict, Verdict::Fail);
    assert_eq!(c.findings.len(), 1, "{c:#?}");
    let finding = &c.findings[0];
    assert_eq!(finding.object, "ExternalSecret shop/app");
    assert_eq!(
        finding.message,
        "key secret/apps/shop/team/api (spec.dataFrom[0].extract.key): nothing is stored at secret/apps/shop/team/api, so the ExternalSecret cannot sync (an empty OpenBao path)"
    );
    assert_eq!(
        finding.fix,
        "write it: `bao kv put -mount=secret apps/shop/team/api <field>=<value>`"
    );

    let c = run(&f, vec![reads("db", "apps/shop/db")], Ok(BTreeMap::new()));
    assert_eq!(
        c.findings[0].fix,
        "write it: `bao kv put -mount=secret apps/shop/db <field>=<value>`, or, for a generated password, `tenantry secrets scaffold shop db` (pushes one there from the cluster)"
    );
}

#[test]
fn a_deleted_latest_version_fails_with_undelete() {
    let f = fixture(OPENBAO);
    let c = run(
        &f,
        vec![reads("db", "apps/shop/db")],
        Ok(BTreeMap::from([("apps/shop/db", stored(3, true))])),
    );
    assert_eq!(c.verdict, Verdict::Fail);
    assert!(
        c.findings[0]
            .fix
            .starts_with("restore it (`bao kv undelete -mount=secret -versions=3 apps/shop/db`)"),
        "{c:#?}"
    );
}

#[test]
fn a_key_outside_the_tenant_path_fails_naming_the_field_and_policy_and_is_never_read() {
    let f = fixture(OPENBAO);
    let objects = vec![reads("stolen", "apps/blog/db")];
    assert_eq!(
        kv_paths(&f.ctx, &f.tenant, &f.rendered, &objects).unwrap(),
        KvReads::default()
    );
    let c = run(&f, objects, Ok(BTreeMap::new()));
    assert_eq!(c.verdict, Verdict::Fail);
    assert_eq!(c.findings.len(), 1, "{c:#?}");
    let finding = &c.findings[0];
    assert_eq!(finding.object, "ExternalSecret shop/stolen");
    assert_eq!(
        finding.message,
        "key apps/blog/db (spec.data[0].remoteRef.key) is outside the tenant's OpenBao path apps/shop/: policy app-shop denies reading secret/data/apps/blog/db, so External Secrets reports permission denied"
    );
    assert_eq!(
        finding.fix,
        "store the secret under apps/shop/ (`bao kv put -mount=secret apps/shop/<name> <field>=<value>`) and set spec.data[0].remoteRef.key to apps/shop/<name>"
    );
}

#[test]
fn only_keys_read_through_the_tenant_store_are_judged() {
    let f = fixture(OPENBAO);
    let pull = external_secret(
        "ghcr-auth",
        json!({ "kind": "ClusterSecretStore", "name": "openbao" }),
        json!([{ "secretKey": "d", "remoteRef": { "key": "infrastructure/ghcr/auth" } }]),
        json!([]),
    );
    let other_store = external_secret(
        "aws",
        json!({ "kind": "SecretStore", "name": "aws" }),
        json!([{ "secretKey": "d", "remoteRef": { "key": "prod/db" } }]),
        json!([{ "sourceRef": { "generatorRef": { "kind": "Password", "name": "p" } } }]),
    );
    let c = run(&f, vec![pull, other_store], Ok(BTreeMap::new()));
    assert_eq!(c.verdict, Verdict::Ok, "{c:#?}");
}

#[test]
fn without_openbao_the_scope_is_still_judged_and_existence_is_said_unchecked() {
    let f = fixture(OPENBAO);
    let reason = "OpenBao is not configured: set BAO_ADDR";
    let c = run(&f, vec![reads("db", "apps/shop/db")], Err(reason));
    assert_eq!(c.verdict, Verdict::Skipped);
    assert_eq!(
        c.reason.as_deref(),
        Some("whether the keys exist was not checked: OpenBao is not configured: set BAO_ADDR")
    );
    let c = run(
        &f,
        vec![reads("db", "apps/shop/db"), reads("x", "apps/blog/db")],
        Err(reason),
    );
    assert_eq!(c.verdict, Verdict::Fail);
    assert_eq!(c.findings.len(), 1);
    assert_eq!(
        c.notes,
        ["whether the keys exist was not checked: OpenBao is not configured: set BAO_ADDR"]
    );
}

#[test]
fn a_tenant_without_openbao_or_a_cluster_is_skipped() {
    let f = fixture("{}");
    let c = run(&f, Vec::new(), Ok(BTreeMap::new()));
    assert_eq!(c.verdict, Verdict::Skipped);
    assert_eq!(
        c.reason.as_deref(),
        Some("the tenant has no secrets.openbao")
    );
}

#[test]
fn a_policy_openbao_holds_differently_is_said_to_be_judged_as_rendered() {
    let f = fixture(OPENBAO);
    let objects = vec![reads("db", "apps/shop/db")];
    let kv = KvView {
        secrets: BTreeMap::from([("apps/shop/db".to_owned(), stored(1, false))]),
        folders: BTreeMap::new(),
    };
    let c = check(&Observed {
        ctx: &f.ctx,
        tenant: &f.tenant,
        rendered: &f.rendered,
        tenant_dir: "tenants/shop".to_owned(),
        stale: Vec::new(),
        tree: Ok(Vec::new()),
        cluster: Ok(view(objects)),
        openbao: Some(Ok(vec![BaoStep {
            target: "policy".to_owned(),
            name: "app-shop".to_owned(),
            change: "update".to_owned(),
            detail: Vec::new(),
        }])),
        openbao_kv: Some(Ok(kv)),
    });
    assert_eq!(c.verdict, Verdict::Ok);
    assert_eq!(
        c.notes,
        [
            "read access judged on the rendered policy app-shop; OpenBao holds a different one or none (see the openbao check)"
        ]
    );
}

/// `GET secret/metadata/apps/shop/db` as a real `bao server -dev` (OpenBao 2.x) answered it
/// after four writes, `bao kv delete -versions=2` and `bao kv destroy -versions=1`.
const RECORDED_METADATA: &str = r#"{
    "cas_required": false,
    "created_time": "2026-12-01T03:39:23.456176532Z",
    "current_metadata_version": 0,
    "current_version": 4,
    "custom_metadata": null,
    "delete_version_after": "0s",
    "max_versions": 0,
    "metadata_cas_required": false,
    "oldest_version": 0,
    "updated_time": "2026-12-01T03:39:24.256310216Z",
    "versions": {
        "1": { "created_time": "2026-12-01T03:39:23.456176532Z", "deletion_time": "", "destroyed": true },
        "2": { "created_time": "2026-12-01T03:39:23.736015413Z", "deletion_time": "2026-12-01T03:39:24.467548624Z", "destroyed": false },
        "3": { "created_time": "2026-12-01T03:39:24.003665527Z", "deletion_time": "", "destroyed": false },
        "4": { "created_time": "2026-12-01T03:39:24.256310216Z", "deletion_time": "", "destroyed": false }
    }
}"#;

fn recorded() -> Option<KvMetadata> {
    Some(KvMetadata::from_metadata(
        &serde_json::from_str(RECORDED_METADATA).unwrap(),
    ))
}

fn reads_version(name: &str, key: &str, version: &str) -> Value {
    external_secret(
        name,
        tenant_store(),
        json!([{ "secretKey": "password", "remoteRef": { "key": key, "property": "password", "version": version } }]),
        json!([]),
    )
}

#[test]
fn kv_metadata_is_read_from_a_recorded_answer() {
    let meta = recorded().unwrap();
    assert_eq!((meta.current_version, meta.current_deleted), (4, false));
    assert_eq!(
        meta.versions,
        BTreeMap::from([
            (1, KvVersion::Destroyed),
            (2, KvVersion::Deleted),
            (3, KvVersion::Live),
            (4, KvVersion::Live),
        ])
    );
}

#[test]
fn a_pinned_version_must_be_one_openbao_keeps_and_live() {
    let f = fixture(OPENBAO);
    let judged = |version: &str| {
        let c = run(
            &f,
            vec![reads_version("db", "apps/shop/db", version)],
            Ok(BTreeMap::from([("apps/shop/db", recorded())])),
        );
        (
            c.verdict,
            c.findings
                .first()
                .map(|f| (f.message.clone(), f.fix.clone())),
        )
    };
    assert_eq!(judged("3"), (Verdict::Ok, None));
    let (verdict, finding) = judged("2");
    assert_eq!(verdict, Verdict::Fail);
    assert_eq!(
        finding.unwrap(),
        (
            "key apps/shop/db (spec.data[0].remoteRef.key): spec.data[0].remoteRef.version pins version 2 of secret/apps/shop/db, which is deleted, so a read finds nothing".to_owned(),
            "restore it (`bao kv undelete -mount=secret -versions=2 apps/shop/db`) or set spec.data[0].remoteRef.version to a live version".to_owned()
        )
    );
    let (_, finding) = judged("1");
    assert_eq!(
        finding.unwrap().0,
        "key apps/shop/db (spec.data[0].remoteRef.key): spec.data[0].remoteRef.version pins version 1 of secret/apps/shop/db, which is destroyed for good"
    );
    let (_, finding) = judged("9");
    assert_eq!(
        finding.unwrap(),
        (
            "key apps/shop/db (spec.data[0].remoteRef.key): spec.data[0].remoteRef.version pins version 9 of secret/apps/shop/db, which OpenBao does not hold (it keeps versions 1, 2, 3, 4)".to_owned(),
            "set spec.data[0].remoteRef.version to one of 1, 2, 3, 4, or remove it to read the latest (version 4)".to_owned()
        )
    );
    let (_, finding) = judged("latest");
    assert!(
        finding
            .unwrap()
            .0
            .ends_with("spec.data[0].remoteRef.version \"latest\" is not a KV v2 version number")
    );
}

fn finds(name: &str, find: Value) -> Value {
    external_secret(name, tenant_store(), json!([]), json!([{ "find": find }]))
}

#[test]
fn a_find_needs_a_readable_key_matching_its_pattern_under_a_folder_of_the_tenant() {
    let f = fixture(OPENBAO);
    let store = || {
        Ok(BTreeMap::from([
            ("apps/shop/db", stored(1, false)),
            ("apps/shop/team/api-token", stored(2, false)),
            ("apps/blog/db", stored(1, false)),
        ]))
    };
    // Only the tenant's folders are listed.
    let objects = vec![
        finds(
            "ok",
            json!({ "path": "apps/shop", "name": { "regexp": "team/.*token$" } }),
        ),
        finds("outside", json!({ "path": "apps/blog" })),
    ];
    let reads = kv_paths(&f.ctx, &f.tenant, &f.rendered, &objects).unwrap();
    assert_eq!(reads.folders, ["apps/shop"]);
    let c = run(&f, objects, store());
    let fails: Vec<(&str, &str, &str)> = c
        .findings
        .iter()
        .map(|f| (f.object.as_str(), f.message.as_str(), f.fix.as_str()))
        .collect();
    assert_eq!(
        fails,
        [(
            "ExternalSecret shop/outside",
            "spec.dataFrom[0].find.path apps/blog is outside the tenant's OpenBao path apps/shop/: policy app-shop denies listing secret/metadata/apps/blog/, so External Secrets reports permission denied",
            "set spec.dataFrom[0].find.path to apps/shop (or a folder under it)"
        )]
    );
    assert!(
        c.objects
            .contains(&"OpenBao folder secret/apps/shop/".to_owned()),
        "{:?}",
        c.objects
    );

    let judged = |find: Value| {
        let c = run(&f, vec![finds("db", find)], store());
        assert_eq!(c.verdict, Verdict::Fail, "{c:#?}");
        (c.findings[0].message.clone(), c.findings[0].fix.clone())
    };
    assert_eq!(
        judged(json!({ "path": "apps/shop", "name": { "regexp": "^prod-" } })),
        (
            "spec.dataFrom[0].find: no key under secret/apps/shop/ matches name.regexp \"^prod-\" and is readable with policy app-shop (it holds apps/shop/db, apps/shop/team/api-token), so the ExternalSecret finds nothing to sync".to_owned(),
            "store one there (`bao kv put -mount=secret apps/shop/<name> <field>=<value>`, <name> matching the pattern), or change spec.dataFrom[0].find.name.regexp to match a key there".to_owned()
        )
    );
    assert_eq!(
        judged(json!({ "name": { "regexp": ".*" } })).0,
        "spec.dataFrom[0].find.path is not set, so External Secrets lists the whole mount secret/: policy app-shop allows listing only under apps/shop/, so it reports permission denied"
    );
    assert!(
        judged(json!({ "path": "apps/shop", "name": { "regexp": "(" } }))
            .0
            .starts_with("spec.dataFrom[0].find.name.regexp \"(\" is not a regular expression")
    );
    // An empty folder of the tenant: nothing to sync.
    let c = run(
        &f,
        vec![finds("db", json!({ "path": "apps/shop/empty" }))],
        store(),
    );
    assert!(
        c.findings[0].message.contains("(the folder is empty)"),
        "{c:#?}"
    );
}
