//! A tenant's own repository (`tenantry tenant init`): what the platform's template puts
//! there, who owns each path afterwards, and how a later `--update` touches only the
//! platform's part.
//!
//! The onboarding guide's split is kept: `.templatesyncignore` lists every path the team
//! owns (template sync never overwrites them), and every other file the template ships is
//! the platform's and kept current. The team owns what it must change to ship its
//! application (`deploy/`, the README, the ownership file itself); the platform owns the CI
//! plumbing that checks and publishes it, so a fix to that plumbing reaches every tenant by
//! one `--update`. A path is the team's when the scaffold says so *or* the repository's
//! `.templatesyncignore` lists it: a team can take a platform file over by listing it, but the
//! platform can never take back a team file, because the file on disk may be edited.
//!
//! The files are shaped so the scaffold passes the platform's checks as it stands
//! (`tenantry check --tenant NAME` and `--repo-name NAME`): no namespaces (the delivery places
//! objects), resources and a restricted security context on the one container, which is named
//! after the repository (the publish pipeline pins image digests into it), and the HTTPRoute
//! attached to the platform Gateway. What the platform repository knows (registries, gateway,
//! the OCI URL the platform pulls, whether tenants may create HTTPRoutes) is used when given;
//! otherwise placeholders stand in, in team-owned files only, and the README lists them.
//!
//! Planning reads the files and decides; nothing is written until every file is planned, so
//! a refusal leaves the repository as it was, and a file whose bytes would not change is not
//! touched (a re-run is a no-op Git cannot see).

use std::{
    fmt, io,
    path::{Path, PathBuf},
};

use serde::Serialize;
use serde_json::{Value, json};
use tenantry_api::platform::GatewayRef;
use tenantry_core::{
    PlatformContext, ResolvedTenant, render::platform::granted_resources,
    resolve::ResolvedDelivery, yaml,
};

use crate::{GitopsError, fsutil};

/// The ownership file: the paths the team owns, one pattern a line.
pub const OWNERSHIP_FILE: &str = ".templatesyncignore";
/// The CI workflow the platform owns.
pub const WORKFLOW_FILE: &str = ".github/workflows/tenantry.yaml";
/// The container port the example application listens on.
const PORT: u16 = 8080;

/// Who keeps a path current.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Owner {
    /// The team: written once, never overwritten.
    Team,
    /// The platform: `--update` refreshes it.
    Platform,
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Owner::Team => "team",
            Owner::Platform => "platform",
        })
    }
}

/// One file of the scaffold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoFile {
    /// Path relative to the repository root, `/`-separated.
    pub path: &'static str,
    /// Who owns it according to the scaffold.
    pub owner: Owner,
    /// Its text.
    pub content: String,
}

/// What the platform repository says about the tenant, when it was given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantFacts {
    /// Every namespace of the tenant, primary first.
    pub namespaces: Vec<String>,
    /// Registry prefixes its images may come from (empty: any).
    pub registries: Vec<String>,
    /// The Gateway tenant routes attach to, if the platform has one.
    pub gateway: Option<GatewayRef>,
    /// The `oci://` URL the platform's Flux pulls the tenant's manifests from.
    pub oci_url: Option<String>,
    /// Whether the tenant's delivery may create HTTPRoutes.
    pub routes_granted: bool,
}

impl TenantFacts {
    /// The facts of a resolved tenant on its platform.
    pub fn of(ctx: &PlatformContext, tenant: &ResolvedTenant) -> Self {
        Self {
            namespaces: tenant.namespaces.clone(),
            registries: tenant.registries.clone(),
            gateway: ctx.platform.gateway.clone(),
            oci_url: match &tenant.delivery {
                ResolvedDelivery::FluxOci { url, .. } => Some(url.clone()),
                _ => None,
            },
            routes_granted: granted_resources(&ctx.platform)
                .contains(&("gateway.networking.k8s.io", "httproutes")),
        }
    }
}

/// The scaffold's inputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScaffoldSpec {
    /// The tenant, also the repository's and the container's name (a DNS label; checked by
    /// the caller).
    pub tenant: String,
    /// What the platform repository says, when one was given.
    pub facts: Option<TenantFacts>,
}

impl ScaffoldSpec {
    fn image(&self) -> (String, bool) {
        let registry = self
            .facts
            .as_ref()
            .and_then(|f| f.registries.first())
            .map(|r| r.trim_end_matches('/'));
        match registry {
            Some(r) => (format!("{r}/{}:0.1.0", self.tenant), false),
            None => (format!("registry.example.com/{}:0.1.0", self.tenant), true),
        }
    }

    fn gateway(&self) -> GatewayRef {
        self.facts
            .as_ref()
            .and_then(|f| f.gateway.clone())
            .unwrap_or_default()
    }

    fn with_route(&self) -> bool {
        self.facts.as_ref().is_none_or(|f| f.routes_granted)
    }
}

/// Every file of the scaffold, in a fixed order.
pub fn scaffold_files(spec: &ScaffoldSpec) -> Vec<RepoFile> {
    let mut files = vec![
        RepoFile {
            path: OWNERSHIP_FILE,
            owner: Owner::Team,
            content: ownership_file(),
        },
        RepoFile {
            path: "README.md",
            owner: Owner::Team,
            content: readme(spec),
        },
        RepoFile {
            path: WORKFLOW_FILE,
            owner: Owner::Platform,
            content: workflow(spec),
        },
        RepoFile {
            path: "deploy/kustomization.yaml",
            owner: Owner::Team,
            content: kustomization(spec),
        },
        RepoFile {
            path: "deploy/deployment.yaml",
            owner: Owner::Team,
            content: manifest(
                "The example application. Keep the container named after the repository: the\n\
                 # publish pipeline pins each new image digest into that container. Resources and\n\
                 # the security context are what the platform's guardrails require (restricted Pod\n\
                 # Security); `tenantry check` says what to fix when they change.",
                &deployment(spec),
            ),
        },
        RepoFile {
            path: "deploy/service.yaml",
            owner: Owner::Team,
            content: manifest(
                "In-cluster address of the application (ClusterIP: NodePort and LoadBalancer\n\
                 # Services are refused; traffic comes in through the platform Gateway).",
                &service(spec),
            ),
        },
    ];
    if spec.with_route() {
        files.push(RepoFile {
            path: "deploy/httproute.yaml",
            owner: Owner::Team,
            content: manifest(
                "Routes traffic from the platform Gateway to the Service. Routes may attach only\n\
                 # to that Gateway and listener; change the hostname to your own.",
                &http_route(spec),
            ),
        });
    }
    files
}

fn manifest(comment: &str, object: &Value) -> String {
    format!(
        "# Scaffolded by `tenantry tenant init`; yours to edit (listed in {OWNERSHIP_FILE}).\n\
         # {comment}\n{}",
        yaml::to_yaml(object)
    )
}

fn labels(spec: &ScaffoldSpec) -> Value {
    json!({ "app.kubernetes.io/name": spec.tenant })
}

fn deployment(spec: &ScaffoldSpec) -> Value {
    let (image, _) = spec.image();
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": spec.tenant, "labels": labels(spec) },
        "spec": {
            "replicas": 2,
            "selector": { "matchLabels": labels(spec) },
            "template": {
                "metadata": { "labels": labels(spec) },
                "spec": {
                    // The tenant's ServiceAccount carries the registry pull secret; no
                    // token is mounted unless the application needs the API.
                    "serviceAccountName": spec.tenant,
                    "automountServiceAccountToken": false,
                    "securityContext": {
                        "runAsNonRoot": true,
                        "runAsUser": 65532,
                        "runAsGroup": 65532,
                        "seccompProfile": { "type": "RuntimeDefault" },
                    },
                    "containers": [{
                        "name": spec.tenant,
                        "image": image,
                        "imagePullPolicy": "Always",
                        "ports": [{ "name": "http", "containerPort": PORT }],
                        "readinessProbe": { "httpGet": { "path": "/", "port": "http" } },
                        "resources": {
                            "requests": { "cpu": "100m", "memory": "128Mi" },
                            "limits": { "cpu": "500m", "memory": "256Mi" },
                        },
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "readOnlyRootFilesystem": true,
                            "capabilities": { "drop": ["ALL"] },
                        },
                    }],
                },
            },
        },
    })
}

fn service(spec: &ScaffoldSpec) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": { "name": spec.tenant, "labels": labels(spec) },
        "spec": {
            "selector": labels(spec),
            "ports": [{ "name": "http", "port": 80, "targetPort": "http" }],
        },
    })
}

fn http_route(spec: &ScaffoldSpec) -> Value {
    let gateway = spec.gateway();
    let mut parent = json!({ "name": gateway.name, "namespace": gateway.namespace });
    if let Some(section) = &gateway.section_name {
        parent["sectionName"] = json!(section);
    }
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": { "name": spec.tenant, "labels": labels(spec) },
        "spec": {
            "parentRefs": [parent],
            "hostnames": [format!("{}.example.com", spec.tenant)],
            "rules": [{ "backendRefs": [{ "name": spec.tenant, "port": 80 }] }],
        },
    })
}

fn kustomization(spec: &ScaffoldSpec) -> String {
    let mut resources = vec!["deployment.yaml", "service.yaml"];
    if spec.with_route() {
        resources.push("httproute.yaml");
    }
    let mut object = json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
    });
    // One namespace: the platform's delivery pins every object into it. Several: the
    // manifests must say which, so the primary one is the default here.
    if let Some(facts) = spec.facts.as_ref().filter(|f| f.namespaces.len() > 1) {
        object["namespace"] = json!(facts.namespaces[0]);
    }
    object["resources"] = json!(resources);
    format!(
        "# Scaffolded by `tenantry tenant init`; yours to edit (listed in {OWNERSHIP_FILE}).\n\
         # The platform publishes what `kustomize build deploy` makes of this file: list every\n\
         # manifest here. Local files only (remote bases are refused).\n{}",
        yaml::to_yaml(&object)
    )
}

fn ownership_file() -> String {
    format!(
        "# Paths the team owns, one a line (directories end with /). Template sync and\n\
         # `tenantry tenant init --update` never overwrite them. Every other file the\n\
         # platform's template ships is kept current by the platform:\n\
         #   {WORKFLOW_FILE}\n\
         # To own one of those, add its path here.\n\
         {OWNERSHIP_FILE}\n\
         README.md\n\
         deploy/\n"
    )
}

fn workflow(spec: &ScaffoldSpec) -> String {
    let oci = match spec.facts.as_ref().and_then(|f| f.oci_url.as_deref()) {
        Some(url) => url.to_owned(),
        None => "${{ vars.TENANTRY_OCI_URL }}".to_owned(),
    };
    WORKFLOW
        .replace("@INSTALL_TENANTRY@", INSTALL_TENANTRY)
        .replace("@TENANT@", &spec.tenant)
        .replace("@OCI_URL@", &oci)
}

/// The step both jobs of [`WORKFLOW`] start with: each job runs on a fresh runner, so each
/// fetches the platform's binary.
const INSTALL_TENANTRY: &str = r#"name: Install tenantry
        run: |
          test -n "$TENANTRY_URL" || { echo "::error::set the repository variable TENANTRY_URL to the platform's tenantry binary"; exit 1; }
          mkdir -p "$RUNNER_TEMP/bin"
          curl -fsSL "$TENANTRY_URL" -o "$RUNNER_TEMP/bin/tenantry"
          chmod +x "$RUNNER_TEMP/bin/tenantry"
          echo "$RUNNER_TEMP/bin" >> "$GITHUB_PATH""#;

/// The platform's CI: check on every change (findings to code scanning), publish on `v*`
/// tags. `@INSTALL_TENANTRY@`, `@TENANT@` and `@OCI_URL@` are filled in; `${{ }}` is
/// GitHub's.
const WORKFLOW: &str = r#"# Platform-owned (not in .templatesyncignore): `tenantry tenant init --update` keeps it
# current. Checks deploy/ against the platform's guardrails on every change, and publishes it
# as a signed OCI artifact, which the platform's Flux verifies, on every v* tag.
name: tenantry
on:
  push:
    branches: [main]
    tags: ["v*"]
  pull_request:
permissions:
  contents: read
env:
  TENANTRY_URL: ${{ vars.TENANTRY_URL }}
  OCI_URL: @OCI_URL@
jobs:
  check:
    runs-on: ubuntu-latest
    permissions:
      contents: read
      security-events: write
    steps:
      - uses: actions/checkout@v4
      - @INSTALL_TENANTRY@
      - name: Check deploy/ against the platform's guardrails
        run: tenantry check --repo-name @TENANT@ --format sarif deploy/ > tenantry.sarif
      - name: Upload the findings to code scanning
        if: always()
        uses: github/codeql-action/upload-sarif@v3
        with:
          sarif_file: tenantry.sarif
          category: tenantry
  publish:
    if: startsWith(github.ref, 'refs/tags/v')
    needs: check
    runs-on: ubuntu-latest
    permissions:
      contents: read
      packages: write
      id-token: write
    steps:
      - uses: actions/checkout@v4
      - @INSTALL_TENANTRY@
      - name: Publish deploy/ as a signed OCI artifact
        env:
          TENANTRY_REGISTRY_USERNAME: ${{ github.actor }}
          TENANTRY_REGISTRY_PASSWORD: ${{ secrets.GITHUB_TOKEN }}
          TENANTRY_SIGNING_KEY: env://COSIGN_PRIVATE_KEY
          COSIGN_PRIVATE_KEY: ${{ secrets.COSIGN_PRIVATE_KEY }}
          COSIGN_PASSWORD: ${{ secrets.COSIGN_PASSWORD }}
        run: >-
          tenantry publish deploy "$OCI_URL:${GITHUB_REF_NAME#v}"
          --source "$GITHUB_SERVER_URL/$GITHUB_REPOSITORY"
          --revision "$GITHUB_REF_NAME@sha1:$GITHUB_SHA"
"#;

fn readme(spec: &ScaffoldSpec) -> String {
    let t = &spec.tenant;
    let (image, placeholder_image) = spec.image();
    let mut todo = Vec::new();
    if placeholder_image {
        todo.push(format!(
            "- `deploy/deployment.yaml`: the image `{image}` is a placeholder; use your \
             application's image, from a registry the platform allows for `{t}`."
        ));
    }
    if spec.with_route() {
        todo.push(format!(
            "- `deploy/httproute.yaml`: the hostname `{t}.example.com` is a placeholder; use \
             yours."
        ));
    } else {
        todo.push(
            "- The platform does not let tenants create HTTPRoutes, so none was scaffolded; ask \
             the platform team how traffic reaches your Service."
                .to_owned(),
        );
    }
    todo.push(format!(
        "- The application must listen on port {PORT} as a non-root user (UID 65532 here) \
         with a read-only root filesystem; adjust `deploy/deployment.yaml` if it differs."
    ));
    todo.push(
        "- Repository variable `TENANTRY_URL`: where CI downloads the `tenantry` binary \
         (ask the platform team)."
            .to_owned(),
    );
    if spec
        .facts
        .as_ref()
        .and_then(|f| f.oci_url.as_ref())
        .is_none()
    {
        todo.push(format!(
            "- Repository variable `TENANTRY_OCI_URL`: the `oci://` URL the platform pulls your \
             manifests from (e.g. `oci://ghcr.io/<org>/{t}/manifests`)."
        ));
    }
    todo.push(
        "- Secrets `COSIGN_PRIVATE_KEY` and `COSIGN_PASSWORD`: the signing key the platform \
         trusts (`tenantry keys generate`; the platform holds the public key)."
            .to_owned(),
    );
    format!(
        "# {t}\n\
         \n\
         Tenant `{t}` of the platform. This repository builds the application and ships its\n\
         Kubernetes manifests (`deploy/`): CI checks them against the platform's guardrails on\n\
         every change and, on every `v*` tag, publishes them as a signed OCI artifact that the\n\
         platform's Flux verifies and applies in the tenant's namespace.\n\
         \n\
         ## Before the first release\n\
         \n\
         {}\n\
         \n\
         ## Who owns what\n\
         \n\
         `{OWNERSHIP_FILE}` lists the paths the team owns: `deploy/`, this README and the list\n\
         itself. Edit them freely; nothing overwrites them. Everything else the platform's\n\
         template ships (`{WORKFLOW_FILE}`) is the platform's, and local edits there are\n\
         replaced when it is refreshed (the diff is shown first):\n\
         \n\
         ```sh\n\
         tenantry tenant init . --tenant {t}{platform} --update --dry-run   # what would change\n\
         tenantry tenant init . --tenant {t}{platform} --update\n\
         ```\n\
         \n\
         To own such a file, add its path to `{OWNERSHIP_FILE}`.\n\
         \n\
         ## Checking locally\n\
         \n\
         ```sh\n\
         tenantry check --repo-name {t} deploy/\n\
         tenantry check --repo-name {t} --tenant {t} --repo ../platform deploy/   # with the platform repository\n\
         ```\n\
         \n\
         Objects carry no namespace (the platform places them) and nothing cluster-scoped: the\n\
         platform applies `deploy/` as the tenant's ServiceAccount. Secrets come from OpenBao\n\
         through External Secrets (`tenantry secrets scaffold`), never from Git.\n",
        todo.join("\n"),
        platform = if spec.facts.is_some() {
            " --platform-repo ../platform"
        } else {
            ""
        },
    )
}

/// Which paths the team owns: the scaffold's choice, widened by the patterns of the
/// repository's `.templatesyncignore`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ownership {
    patterns: Vec<String>,
}

impl Ownership {
    /// The patterns of a `.templatesyncignore`: one a line, `#` comments, a trailing `/` for
    /// a directory, `*` and `?` within a path segment. A negation (`!`, `:!`) is ignored:
    /// reading it as "not the team's" could hand a team's file to `--update`, while ignoring
    /// it only keeps a platform file as it is.
    pub fn parse(text: &str) -> Self {
        let patterns = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
            .filter(|l| !l.starts_with(":!"))
            .map(|l| {
                l.trim_start_matches("./")
                    .trim_start_matches('/')
                    .to_owned()
            })
            .collect();
        Self { patterns }
    }

    /// Who owns `path` (relative, `/`-separated), given who the scaffold says owns it.
    pub fn owner(&self, path: &str, scaffold: Owner) -> Owner {
        if scaffold == Owner::Team || self.patterns.iter().any(|p| pattern_matches(p, path)) {
            Owner::Team
        } else {
            Owner::Platform
        }
    }
}

/// Whether an ignore pattern covers `path`: the pattern names the path or a directory above
/// it; without a `/` inside, it matches a name at any depth (as in `.gitignore`).
fn pattern_matches(pattern: &str, path: &str) -> bool {
    let pattern = pattern.trim_end_matches('/');
    let segments: Vec<&str> = path.split('/').collect();
    let wanted: Vec<&str> = pattern.split('/').collect();
    if wanted.len() == 1 {
        return segments.iter().any(|s| glob(wanted[0], s));
    }
    wanted.len() <= segments.len() && wanted.iter().zip(&segments).all(|(p, s)| glob(p, s))
}

/// `*` (any run of characters) and `?` (one) within one path segment.
fn glob(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Iterative matching with one backtrack point: linear in practice, no recursion.
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < n.len() {
        if i < p.len() && (p[i] == '?' || p[i] == n[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

/// Whether this run may change files the scaffold already wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// First scaffold: create what is missing, refuse any file that differs.
    Init,
    /// Refresh platform-owned files; leave the team's alone.
    Update,
}

/// What happens to one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Absent: written.
    Create,
    /// Already these bytes.
    Unchanged,
    /// Platform-owned with other bytes: replaced (`--update`).
    Update,
    /// Team-owned and edited (or removed): left as it is.
    Keep,
    /// Present with other bytes where this mode may not replace it.
    Conflict,
}

/// One file's plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planned {
    /// Path relative to the repository root.
    pub path: &'static str,
    /// Who owns it (the scaffold's choice widened by `.templatesyncignore`).
    pub owner: Owner,
    /// What happens to it.
    pub action: Action,
    /// What is on disk now (`None`: absent).
    pub current: Option<String>,
    /// What the scaffold would write.
    pub content: String,
}

impl Planned {
    /// A unified diff from the file on disk to the scaffold's version (empty when nothing
    /// would be written).
    pub fn diff(&self) -> String {
        if !matches!(self.action, Action::Create | Action::Update) {
            return String::new();
        }
        let old = self.current.as_deref().unwrap_or("");
        let from = match self.current {
            Some(_) => format!("a/{}", self.path),
            None => "/dev/null".to_owned(),
        };
        similar::TextDiff::from_lines(old, self.content.as_str())
            .unified_diff()
            .context_radius(3)
            .header(&from, &format!("b/{}", self.path))
            .to_string()
    }
}

/// Decide what to do with every file, reading the repository at `root` and nothing else.
pub fn plan(root: &Path, files: Vec<RepoFile>, mode: Mode) -> Result<Vec<Planned>, GitopsError> {
    let ownership_path = root.join(OWNERSHIP_FILE);
    let ownership = match read_text(&ownership_path)? {
        Some(text) => Ownership::parse(&text),
        None => Ownership::default(),
    };
    let mut planned = Vec::with_capacity(files.len());
    for file in files {
        let owner = ownership.owner(file.path, file.owner);
        let current = read_text(&root.join(file.path))?;
        let action = match (&current, mode, owner) {
            (Some(text), _, _) if *text == file.content => Action::Unchanged,
            (None, Mode::Init, _) | (None, Mode::Update, Owner::Platform) => Action::Create,
            (Some(_), Mode::Init, _) => Action::Conflict,
            (_, Mode::Update, Owner::Team) => Action::Keep,
            (Some(_), Mode::Update, Owner::Platform) => Action::Update,
        };
        planned.push(Planned {
            path: file.path,
            owner,
            action,
            current,
            content: file.content,
        });
    }
    Ok(planned)
}

/// Write what `plan` decided, refusing before the first write when any file conflicts or a
/// path leads out of the repository through a symlink. Returns the files written.
pub fn apply(root: &Path, planned: &[Planned]) -> Result<Vec<PathBuf>, GitopsError> {
    refuse_conflicts(root, planned)?;
    let writes: Vec<&Planned> = planned
        .iter()
        .filter(|p| matches!(p.action, Action::Create | Action::Update))
        .collect();
    if writes.is_empty() {
        return Ok(Vec::new());
    }
    std::fs::create_dir_all(root).map_err(|e| GitopsError::io(root, e))?;
    let canonical = root.canonicalize().map_err(|e| GitopsError::io(root, e))?;
    for p in &writes {
        fsutil::check_inside(root, &canonical, &root.join(p.path))
            .map_err(GitopsError::OutsideRepository)?;
    }
    let mut written = Vec::with_capacity(writes.len());
    for p in writes {
        let path = root.join(p.path);
        fsutil::write_atomic(&path, p.content.as_bytes()).map_err(|e| GitopsError::io(&path, e))?;
        written.push(PathBuf::from(p.path));
    }
    Ok(written)
}

/// The error for a plan with conflicts, naming each file, its owner and the way out.
pub fn refuse_conflicts(root: &Path, planned: &[Planned]) -> Result<(), GitopsError> {
    let paths: Vec<String> = planned
        .iter()
        .filter(|p| p.action == Action::Conflict)
        .map(describe_conflict)
        .collect();
    if paths.is_empty() {
        Ok(())
    } else {
        Err(GitopsError::TenantRepoConflict {
            root: root.to_path_buf(),
            paths,
        })
    }
}

fn describe_conflict(p: &Planned) -> String {
    match p.owner {
        Owner::Team => format!(
            "{} (team-owned and edited: never overwritten; move it away to scaffold it again)",
            p.path
        ),
        Owner::Platform => format!(
            "{} (platform-owned and different: --update shows the diff and refreshes it)",
            p.path
        ),
    }
}

fn read_text(path: &Path) -> Result<Option<String>, GitopsError> {
    match fsutil::read_optional(path).map_err(|e| GitopsError::io(path, e))? {
        None => Ok(None),
        Some(bytes) => String::from_utf8(bytes).map(Some).map_err(|_| {
            GitopsError::io(
                path,
                io::Error::new(io::ErrorKind::InvalidData, "is not UTF-8 text"),
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ownership_patterns_cover_directories_names_and_globs_but_never_negate() {
        let o = Ownership::parse(
            "# comment\ndeploy/\n*.md\n.github/workflows/ci.y?ml\n!README.md\n:!x\n",
        );
        assert_eq!(o.owner("deploy/a/b.yaml", Owner::Platform), Owner::Team);
        assert_eq!(o.owner("docs/README.md", Owner::Platform), Owner::Team);
        assert_eq!(
            o.owner(".github/workflows/ci.yaml", Owner::Platform),
            Owner::Team
        );
        assert_eq!(o.owner(WORKFLOW_FILE, Owner::Platform), Owner::Platform);
        assert_eq!(o.owner("deployx/a", Owner::Platform), Owner::Platform);
        // The scaffold's team files stay the team's whatever the file says.
        assert_eq!(
            Ownership::default().owner("README.md", Owner::Team),
            Owner::Team
        );
    }

    #[test]
    fn glob_matches_stars_and_question_marks_within_a_segment() {
        assert!(glob("*", "anything"));
        assert!(glob("a*c", "abbbc"));
        assert!(glob("a*c*", "acx"));
        assert!(!glob("a*c", "ab"));
        assert!(glob("?b", "ab"));
        assert!(!glob("?b", "b"));
    }
}
