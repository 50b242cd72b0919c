//! Publishing and verifying, in the order that keeps a half-finished run harmless.
//!
//! Publish builds, judges, packs and signs in memory first; then pushes the artifact by
//! digest (untagged: nothing pulls it yet), then its signature, and only then moves the tag.
//! Interrupted anywhere, the tag either still names the old, signed artifact or the new,
//! signed one. A tag that already names *different* content is refused without `force`;
//! the same content (same tree, same revision: the pack is deterministic) is re-signed and
//! reported unchanged.
//!
//! Verify does what Flux's source-controller does with `verify.provider: cosign` and a
//! `secretRef`: resolve the tag to a digest, read `sha256-<hex>.sig` in the same repository
//! and accept the artifact when one simple-signing layer is signed by one of the keys over a
//! payload naming that digest. It also checks the payload's `docker-reference` names this
//! repository, as a `sigstoreSigned` policy with `matchRepository` does (cosign signs the
//! repository without the tag), so the signature of one repository's artifact cannot be
//! replayed onto another's.

use p256::ecdsa::{SigningKey, VerifyingKey};
use serde_json::Value;
use std::path::Path;
use tenantry_policy::{
    Context, Engine, Severity, TextInput, check_text, input::Format, report::Located,
};

use crate::{
    DeliveryError,
    artifact::{self, Image},
    cosign::{self, FoundSignature, Verdict},
    kustomize,
    reference::{OciRef, Target},
    registry::{Credentials, Registry},
};

/// The file the built tree is packed as: Flux's Kustomization (`path: ./`) finds it and
/// applies it as it would `kustomize build`'s output.
pub const ARTIFACT_FILE: &str = "deploy.yaml";

/// A built tree the guardrails passed: the only thing [`publish`] accepts.
#[derive(Debug)]
pub struct Prepared {
    yaml: String,
    objects: usize,
    /// Findings that warn but do not deny.
    pub warnings: Vec<Located>,
}

impl Prepared {
    /// The built YAML that will be packed.
    pub fn yaml(&self) -> &str {
        &self.yaml
    }

    /// How many objects it holds.
    pub fn objects(&self) -> usize {
        self.objects
    }
}

/// Build `dir` and judge every built object with `engine` (as `tenantry check` does). On a
/// denial the findings are returned with the error and nothing else happens.
pub fn prepare(
    dir: &Path,
    engine: &Engine,
    ctx: &Context<'_>,
) -> Result<Prepared, (DeliveryError, Vec<Located>)> {
    let objects = kustomize::build(dir).map_err(|e| (e, Vec::new()))?;
    let yaml = to_yaml(&objects);
    let label = format!("{} (built)", dir.display());
    let result = check_text(
        &TextInput {
            label: &label,
            text: &yaml,
            format: Format::Yaml,
            kustomization: false,
        },
        engine,
        ctx,
    );
    if let Some(e) = result.error {
        return Err((
            DeliveryError::Parse {
                file: dir.to_path_buf(),
                line: e.line,
                message: e.message,
            },
            Vec::new(),
        ));
    }
    let (deny, warnings): (Vec<_>, Vec<_>) = result
        .findings
        .into_iter()
        .partition(|f| f.violation.severity == Severity::Deny);
    if !deny.is_empty() {
        return Err((DeliveryError::Guardrails { count: deny.len() }, deny));
    }
    Ok(Prepared {
        yaml,
        objects: objects.len(),
        warnings,
    })
}

fn to_yaml(objects: &[Value]) -> String {
    let mut out = String::new();
    for (i, o) in objects.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&tenantry_core::yaml::to_yaml(o));
    }
    out
}

/// Where and how to publish.
#[derive(Clone, Debug)]
pub struct PublishOptions {
    /// `oci://REGISTRY/REPO:TAG`.
    pub target: OciRef,
    /// `org.opencontainers.image.source`.
    pub source: String,
    /// `org.opencontainers.image.revision`.
    pub revision: String,
    /// Move a tag that names other content.
    pub force: bool,
    /// Speak HTTP to the registry (a local one).
    pub plain_http: bool,
    /// Registry credentials.
    pub credentials: Credentials,
}

/// What was published.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Published {
    /// `oci://REGISTRY/REPO:TAG`.
    pub reference: String,
    /// The artifact's manifest digest.
    pub digest: String,
    /// The tag its signature is stored under.
    pub signature_tag: String,
    /// What the tag named before, when it named something else (`--force`).
    pub replaced: Option<String>,
    /// The tag already named this exact artifact.
    pub unchanged: bool,
    /// Bytes of the artifact (manifest, config, layer).
    pub artifact_bytes: usize,
    /// Bytes of the signature image.
    pub signature_bytes: usize,
}

/// Pack, sign and push a prepared tree.
pub async fn publish(
    prepared: &Prepared,
    key: &SigningKey,
    opts: &PublishOptions,
) -> Result<Published, DeliveryError> {
    let Some(Target::Tag(_)) = &opts.target.target else {
        return Err(DeliveryError::Reference {
            url: opts.target.to_string(),
            why: "publish needs a tag (oci://REGISTRY/REPO:TAG)".to_owned(),
        });
    };
    let files = vec![(ARTIFACT_FILE.to_owned(), prepared.yaml.as_bytes().to_vec())];
    let image = artifact::flux_artifact(&files, &opts.source, &opts.revision)
        .map_err(DeliveryError::Pack)?;
    let digest = image.digest();
    let signature = cosign::signature_image(
        key,
        cosign::payload(&opts.target.repository_name(), &digest),
    );
    let registry = Registry::new(&opts.target.registry, opts.plain_http, &opts.credentials);
    let existing = registry.manifest(&opts.target).await?.map(|(_, d)| d);
    let replaced = match &existing {
        Some(d) if *d != digest && !opts.force => {
            return Err(DeliveryError::TagExists {
                reference: opts.target.to_string(),
                existing: d.clone(),
                new: digest,
            });
        }
        Some(d) if *d != digest => Some(d.clone()),
        _ => None,
    };
    let signature_tag = OciRef::signature_tag(&digest);
    push_image(&registry, &opts.target.with_digest(&digest), &image).await?;
    push_image(&registry, &opts.target.with_tag(&signature_tag), &signature).await?;
    push_image(&registry, &opts.target, &image).await?;
    Ok(Published {
        reference: opts.target.to_string(),
        digest,
        signature_tag,
        replaced,
        unchanged: existing.is_some_and(|d| d == image.digest()),
        artifact_bytes: image.total_bytes(),
        signature_bytes: signature.total_bytes(),
    })
}

async fn push_image(registry: &Registry, at: &OciRef, image: &Image) -> Result<(), DeliveryError> {
    registry.push(at, image).await.map(drop)
}

/// What verification found.
#[derive(Clone, Debug)]
pub struct Verified {
    /// The reference checked.
    pub reference: String,
    /// The digest it resolved to.
    pub digest: String,
    /// The verdict.
    pub verdict: Verdict,
}

/// Verify the artifact at `target` against `keys`, as Flux does.
pub async fn verify(
    target: &OciRef,
    keys: &[VerifyingKey],
    plain_http: bool,
    credentials: &Credentials,
) -> Result<Verified, DeliveryError> {
    let registry = Registry::new(&target.registry, plain_http, credentials);
    let Some((_, digest)) = registry.manifest(target).await? else {
        return Err(DeliveryError::Registry {
            doing: format!("reading {target}"),
            message: "no such tag or digest".to_owned(),
        });
    };
    let signature_ref = target.with_tag(&OciRef::signature_tag(&digest));
    let found = match registry.manifest(&signature_ref).await? {
        None => Vec::new(),
        Some((bytes, _)) => signature_layers(&registry, &signature_ref, &bytes).await?,
    };
    let verdict = cosign::judge(&found, keys, &target.repository_name(), &digest);
    Ok(Verified {
        reference: target.to_string(),
        digest,
        verdict,
    })
}

/// The simple-signing layers of a signature manifest with their payloads. A payload the
/// registry serves with the wrong digest is kept (empty) so [`cosign::judge`] names it
/// tampered.
async fn signature_layers(
    registry: &Registry,
    at: &OciRef,
    manifest: &[u8],
) -> Result<Vec<FoundSignature>, DeliveryError> {
    let manifest: Value =
        serde_json::from_slice(manifest).map_err(|e| DeliveryError::Registry {
            doing: format!("reading {at}"),
            message: format!("the signature manifest is not JSON: {e}"),
        })?;
    let mut found = Vec::new();
    for layer in manifest["layers"].as_array().into_iter().flatten() {
        if layer["mediaType"] != cosign::SIMPLE_SIGNING_MEDIA_TYPE {
            continue;
        }
        let Some(digest) = layer["digest"].as_str() else {
            continue;
        };
        let payload = match registry.blob(at, digest).await {
            Ok(p) => p,
            Err(DeliveryError::Registry { .. }) => Vec::new(),
            Err(e) => return Err(e),
        };
        found.push(FoundSignature {
            digest: digest.to_owned(),
            signature: layer["annotations"][cosign::SIGNATURE_ANNOTATION]
                .as_str()
                .map(str::to_owned),
            payload,
        });
    }
    Ok(found)
}
