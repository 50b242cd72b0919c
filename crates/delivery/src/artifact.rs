//! The bytes Flux's source-controller pulls, packed as `flux push artifact` packs them: one
//! tar+gzip layer (`application/vnd.cncf.flux.content.v1.tar+gzip`), an image config typed
//! `application/vnd.cncf.flux.config.v1+json`, and the `org.opencontainers.image.source` /
//! `.revision` annotations on the OCI manifest.
//!
//! Everything here is a function of its inputs: tar entries carry no owner, time or mode
//! beyond `0644`, gzip writes no name or time, and the `created` annotation newer Flux CLIs
//! add is left out. So the same tree at the same revision is the same digest, which is what
//! lets `publish` re-run safely and refuse a tag that already names *different* content.
//! The same descriptor/manifest writer builds cosign's signature manifest.

use std::{collections::BTreeMap, io::Write as _};

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// The Flux content layer.
pub const CONTENT_MEDIA_TYPE: &str = "application/vnd.cncf.flux.content.v1.tar+gzip";
/// The Flux config blob.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.cncf.flux.config.v1+json";
/// An OCI image manifest.
pub const OCI_MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// Where the artifact's sources live (a Git URL).
pub const SOURCE_ANNOTATION: &str = "org.opencontainers.image.source";
/// Which revision of the sources it was built from.
pub const REVISION_ANNOTATION: &str = "org.opencontainers.image.revision";

/// One blob and how a manifest refers to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    /// Its media type.
    pub media_type: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Annotations on its descriptor.
    pub annotations: BTreeMap<String, String>,
}

impl Blob {
    /// A blob without annotations.
    pub fn new(media_type: &str, bytes: Vec<u8>) -> Self {
        Self {
            media_type: media_type.to_owned(),
            bytes,
            annotations: BTreeMap::new(),
        }
    }

    /// `sha256:<hex>` of the bytes.
    pub fn digest(&self) -> String {
        sha256_digest(&self.bytes)
    }

    fn descriptor(&self) -> Value {
        let mut d = json!({
            "mediaType": self.media_type,
            "size": self.bytes.len(),
            "digest": self.digest(),
        });
        if !self.annotations.is_empty() {
            d["annotations"] = json!(self.annotations);
        }
        d
    }
}

/// A manifest with its config and layers, ready to push.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// The config blob.
    pub config: Blob,
    /// The layers, in order.
    pub layers: Vec<Blob>,
    /// The manifest's bytes (what its digest is taken over).
    pub manifest: Vec<u8>,
}

impl Image {
    /// Assemble the manifest: the field order and shape go-containerregistry writes.
    pub fn new(config: Blob, layers: Vec<Blob>, annotations: &BTreeMap<String, String>) -> Self {
        let mut manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST_MEDIA_TYPE,
            "config": config.descriptor(),
            "layers": layers.iter().map(Blob::descriptor).collect::<Vec<_>>(),
        });
        if !annotations.is_empty() {
            manifest["annotations"] = json!(annotations);
        }
        let manifest = serde_json::to_vec(&manifest).unwrap_or_default();
        Self {
            config,
            layers,
            manifest,
        }
    }

    /// The manifest digest: what a tag points at and what a signature names.
    pub fn digest(&self) -> String {
        sha256_digest(&self.manifest)
    }

    /// Bytes of every blob and the manifest.
    pub fn total_bytes(&self) -> usize {
        self.manifest.len()
            + self.config.bytes.len()
            + self.layers.iter().map(|l| l.bytes.len()).sum::<usize>()
    }
}

/// `sha256:<hex>`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut s = String::with_capacity(71);
    s.push_str("sha256:");
    for b in hash {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The image config go-containerregistry writes for `empty.Image` plus layers whose
/// uncompressed digests are `diff_ids`: Flux pushes it (retyped) and cosign's signature
/// manifests carry it (as an OCI image config).
pub fn image_config(diff_ids: &[String]) -> Vec<u8> {
    let history: Vec<Value> = diff_ids
        .iter()
        .map(|_| json!({ "created": "0001-01-01T00:00:00Z" }))
        .collect();
    let config = json!({
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": history,
        "os": "",
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
        "config": {},
    });
    serde_json::to_vec(&config).unwrap_or_default()
}

/// A deterministic tar of `(path, bytes)` files, in the order given: mode 0644, owner 0:0,
/// time 0, no user or group names (what Flux's build strips).
pub fn tar(files: &[(String, Vec<u8>)]) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, bytes) in files {
        let mut header = tar::Header::new_ustar();
        header.set_path(path)?;
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        builder.append(&header, bytes.as_slice())?;
    }
    builder.into_inner()
}

/// Gzip with no file name and time 0.
pub fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes)?;
    encoder.finish()
}

/// The Flux artifact for `files` (paths inside the artifact and their bytes).
pub fn flux_artifact(
    files: &[(String, Vec<u8>)],
    source: &str,
    revision: &str,
) -> std::io::Result<Image> {
    let tar = tar(files)?;
    let diff_id = sha256_digest(&tar);
    let layer = Blob::new(CONTENT_MEDIA_TYPE, gzip(&tar)?);
    let config = Blob::new(CONFIG_MEDIA_TYPE, image_config(&[diff_id]));
    let annotations = BTreeMap::from([
        (SOURCE_ANNOTATION.to_owned(), source.to_owned()),
        (REVISION_ANNOTATION.to_owned(), revision.to_owned()),
    ]);
    Ok(Image::new(config, vec![layer], &annotations))
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    fn files() -> Vec<(String, Vec<u8>)> {
        vec![("deploy.yaml".into(), b"kind: ConfigMap\n".to_vec())]
    }

    #[test]
    fn same_tree_and_revision_is_the_same_digest() {
        let a = flux_artifact(&files(), "https://git.example/shop", "main@sha1:abc").unwrap();
        let b = flux_artifact(&files(), "https://git.example/shop", "main@sha1:abc").unwrap();
        assert_eq!(a, b);
        let c = flux_artifact(&files(), "https://git.example/shop", "main@sha1:abd").unwrap();
        assert_ne!(a.digest(), c.digest());
    }

    #[test]
    fn manifest_has_flux_media_types_and_annotations() {
        let a = flux_artifact(&files(), "https://git.example/shop", "v1").unwrap();
        let m: Value = serde_json::from_slice(&a.manifest).unwrap();
        assert_eq!(m["mediaType"], OCI_MANIFEST_MEDIA_TYPE);
        assert_eq!(m["config"]["mediaType"], CONFIG_MEDIA_TYPE);
        assert_eq!(m["config"]["digest"], a.config.digest());
        assert_eq!(m["layers"][0]["mediaType"], CONTENT_MEDIA_TYPE);
        assert_eq!(m["layers"][0]["size"], a.layers[0].bytes.len());
        assert_eq!(
            m["annotations"][SOURCE_ANNOTATION],
            "https://git.example/shop"
        );
        assert_eq!(m["annotations"][REVISION_ANNOTATION], "v1");
    }

    #[test]
    fn layer_unpacks_to_the_files_with_environment_data_stripped() {
        let a = flux_artifact(&files(), "s", "r").unwrap();
        let mut tar_bytes = Vec::new();
        flate2::read::GzDecoder::new(a.layers[0].bytes.as_slice())
            .read_to_end(&mut tar_bytes)
            .unwrap();
        let config: Value = serde_json::from_slice(&a.config.bytes).unwrap();
        assert_eq!(config["rootfs"]["diff_ids"][0], sha256_digest(&tar_bytes));
        let mut archive = tar::Archive::new(tar_bytes.as_slice());
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let h = entry.header().clone();
            assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
            assert_eq!(h.mtime().unwrap(), 0);
            assert_eq!(h.mode().unwrap(), 0o644);
            let mut body = String::new();
            entry.read_to_string(&mut body).unwrap();
            seen.push((h.path().unwrap().display().to_string(), body));
        }
        assert_eq!(
            seen,
            [("deploy.yaml".to_owned(), "kind: ConfigMap\n".to_owned())]
        );
    }
}
