//! Registry credentials found where docker, skopeo, oras and `flux push` users already keep
//! them, so `tenantry publish` needs no login of its own: the Docker config file
//! (`--registry-config`, else `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`),
//! whose `auths.<host>` holds `auth` (base64 `user:pass`) or `username`/`password`, and whose
//! `credHelpers.<host>` or `credsStore` names a `docker-credential-<helper>` program that
//! holds the secret instead (run as Docker runs it: `get`, the host on stdin, JSON out).
//!
//! Every set of credentials carries where it came from, so an auth failure can say which
//! file or helper to fix. A config file that exists but is wrong, or a helper that is named
//! but not installed, is an error: falling back to anonymous would hide the real problem
//! behind a later "unauthorized".

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use base64::{Engine as _, engine::general_purpose::STANDARD as B64};
use serde_json::Value;
use tenantry_core::registry::credential_host;

use crate::{DeliveryError, registry::Credentials};

/// Where to look for the Docker config file.
#[derive(Clone, Debug, Default)]
pub struct ConfigSource {
    /// `--registry-config FILE`: must exist.
    pub explicit: Option<PathBuf>,
    /// `$DOCKER_CONFIG` (a directory holding `config.json`).
    pub docker_config_dir: Option<PathBuf>,
    /// `$HOME`, for `~/.docker/config.json`.
    pub home: Option<PathBuf>,
}

impl ConfigSource {
    /// From the process environment, with an optional explicit file.
    pub fn from_env(explicit: Option<PathBuf>) -> Self {
        Self {
            explicit,
            docker_config_dir: std::env::var_os("DOCKER_CONFIG").map(PathBuf::from),
            home: std::env::var_os("HOME").map(PathBuf::from),
        }
    }

    /// The file to read, and whether it must exist.
    fn path(&self) -> Option<(PathBuf, bool)> {
        if let Some(p) = &self.explicit {
            return Some((p.clone(), true));
        }
        if let Some(d) = &self.docker_config_dir {
            return Some((d.join("config.json"), false));
        }
        self.home
            .as_ref()
            .map(|h| (h.join(".docker").join("config.json"), false))
    }
}

/// Credentials for `registry` (`host[:port]`) from the Docker config `source` names;
/// anonymous when there is no file or it has nothing for this registry.
pub fn lookup(registry: &str, source: &ConfigSource) -> Result<Credentials, DeliveryError> {
    let Some((path, required)) = source.path() else {
        return Ok(Credentials::default());
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Credentials::default());
        }
        Err(source) => return Err(DeliveryError::Read { path, source }),
    };
    let config: Value = serde_json::from_str(&text).map_err(|e| DeliveryError::Parse {
        file: path.clone(),
        line: Some(e.line() as u64),
        message: e.to_string(),
    })?;
    from_config(registry, &config, &path, &run_helper)
}

/// What a credential helper answered: `None` when it holds nothing for the registry.
type Helper<'a> = dyn Fn(&str, &str) -> Result<Option<(String, String)>, String> + 'a;

/// The lookup on a parsed config; `helper(name, registry)` runs `docker-credential-<name>`.
pub fn from_config(
    registry: &str,
    config: &Value,
    path: &Path,
    helper: &Helper<'_>,
) -> Result<Credentials, DeliveryError> {
    let bad = |field: String, message: &str| DeliveryError::RegistryConfig {
        path: path.to_path_buf(),
        field,
        message: message.to_owned(),
    };
    // A helper for this host wins over the default store, which wins over `auths` (as in
    // Docker, where `auths` then only records that a login happened).
    let per_host = config["credHelpers"]
        .as_object()
        .and_then(|m| m.iter().find(|(k, _)| same_registry(k, registry)));
    let chosen = match per_host {
        Some((key, v)) => Some((
            v.as_str()
                .ok_or_else(|| bad(format!("credHelpers.{key}"), "must be a helper name"))?,
            format!("credHelpers.{key}"),
        )),
        None => match &config["credsStore"] {
            Value::Null => None,
            Value::String(s) if s.is_empty() => None,
            Value::String(s) => Some((s.as_str(), "credsStore".to_owned())),
            _ => return Err(bad("credsStore".into(), "must be a helper name")),
        },
    };
    if let Some((name, field)) = chosen {
        let program = format!("docker-credential-{name}");
        return match helper(name, registry) {
            Ok(Some(basic)) => Ok(Credentials {
                basic: Some(basic),
                source: format!("{program} (from {} {field})", path.display()),
            }),
            Ok(None) => Ok(Credentials::default()),
            Err(message) => Err(DeliveryError::CredentialHelper {
                helper: format!("{program} (named by {} {field})", path.display()),
                registry: registry.to_owned(),
                message,
            }),
        };
    }
    let Some((key, entry)) = config["auths"]
        .as_object()
        .and_then(|m| m.iter().find(|(k, _)| same_registry(k, registry)))
    else {
        return Ok(Credentials::default());
    };
    let field = format!("auths.{key}");
    let basic = if let Some(auth) = entry["auth"].as_str().filter(|a| !a.is_empty()) {
        let decoded = B64
            .decode(auth.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| bad(format!("{field}.auth"), "is not base64 of user:password"))?;
        let (user, pass) = decoded
            .split_once(':')
            .ok_or_else(|| bad(format!("{field}.auth"), "is not base64 of user:password"))?;
        (user.to_owned(), pass.to_owned())
    } else {
        match (entry["username"].as_str(), entry["password"].as_str()) {
            (Some(u), Some(p)) => (u.to_owned(), p.to_owned()),
            _ if entry["identitytoken"].is_string() => {
                return Err(bad(
                    format!("{field}.identitytoken"),
                    "identity tokens are not supported; use auth or username/password",
                ));
            }
            _ => return Ok(Credentials::default()),
        }
    };
    Ok(Credentials {
        basic: Some(basic),
        source: format!("{} {field}", path.display()),
    })
}

/// Does a config key (`host`, `https://host/v1/`, …) name `registry`?
fn same_registry(key: &str, registry: &str) -> bool {
    credential_host(key) == credential_host(registry)
}

/// `docker-credential-<name> get`, the registry on stdin, `{"Username","Secret"}` out.
fn run_helper(name: &str, registry: &str) -> Result<Option<(String, String)>, String> {
    let program = format!("docker-credential-{name}");
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(&program))
            .find(|p| p.is_file())
    });
    let Some(bin) = found else {
        return Err(format!("not installed ({program} is not on PATH)"));
    };
    let mut child = Command::new(&bin)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running {}: {e}", bin.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(registry.as_bytes())
            .map_err(|e| format!("writing to {program}: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("running {program}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // The protocol's "nothing stored for this server": anonymous, as Docker does.
        if stdout.contains("credentials not found") {
            return Ok(None);
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "{program} get failed ({}): {}",
            out.status,
            format!("{stdout} {stderr}").trim()
        ));
    }
    let v: Value = serde_json::from_str(&stdout)
        .map_err(|e| format!("{program} get did not answer JSON: {e}"))?;
    match (v["Username"].as_str(), v["Secret"].as_str()) {
        (Some("<token>"), _) => Err(format!(
            "{program} holds an identity token for {registry}; only a username and password are supported"
        )),
        (Some(u), Some(s)) => Ok(Some((u.to_owned(), s.to_owned()))),
        _ => Err(format!(
            "{program} get answered without Username and Secret"
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn no_helper(_: &str, _: &str) -> Result<Option<(String, String)>, String> {
        panic!("no helper expected")
    }

    fn lookup_in(config: &Value, registry: &str) -> Result<Credentials, DeliveryError> {
        from_config(registry, config, Path::new("/c/config.json"), &no_helper)
    }

    #[test]
    fn auth_field_is_base64_user_colon_password() {
        let c = json!({ "auths": { "127.0.0.1:5000": { "auth": B64.encode("ci:pa:ss") } } });
        let got = lookup_in(&c, "127.0.0.1:5000").unwrap();
        assert_eq!(got.basic, Some(("ci".into(), "pa:ss".into())));
        assert_eq!(got.source, "/c/config.json auths.127.0.0.1:5000");
        // Another registry: anonymous.
        assert!(lookup_in(&c, "ghcr.io").unwrap().basic.is_none());
    }

    #[test]
    fn username_password_and_url_shaped_keys() {
        let c = json!({ "auths": { "https://ghcr.io/v1/": { "username": "u", "password": "p" } } });
        assert_eq!(
            lookup_in(&c, "ghcr.io").unwrap().basic,
            Some(("u".into(), "p".into()))
        );
        let hub =
            json!({ "auths": { "https://index.docker.io/v1/": { "auth": B64.encode("a:b") } } });
        assert!(lookup_in(&hub, "docker.io").unwrap().basic.is_some());
    }

    #[test]
    fn bad_auth_is_named_by_file_and_field() {
        let c = json!({ "auths": { "r.io": { "auth": "!!notbase64" } } });
        let e = lookup_in(&c, "r.io").unwrap_err().to_string();
        assert!(
            e.contains("/c/config.json") && e.contains("auths.r.io.auth"),
            "{e}"
        );
    }

    #[test]
    fn helpers_win_and_are_named_when_they_fail() {
        let c = json!({
            "auths": { "r.io": { "auth": B64.encode("file:pw") } },
            "credsStore": "desktop",
            "credHelpers": { "r.io": "pass" },
        });
        let ok = |name: &str, reg: &str| -> Result<Option<(String, String)>, String> {
            assert_eq!((name, reg), ("pass", "r.io"));
            Ok(Some(("h".into(), "s".into())))
        };
        let got = from_config("r.io", &c, Path::new("/c/config.json"), &ok).unwrap();
        assert_eq!(got.basic, Some(("h".into(), "s".into())));
        assert!(
            got.source.starts_with("docker-credential-pass"),
            "{}",
            got.source
        );
        // Another host falls to the default store.
        let missing = |_: &str, _: &str| -> Result<Option<(String, String)>, String> {
            Err("not installed (docker-credential-desktop is not on PATH)".into())
        };
        let e = from_config("other.io", &c, Path::new("/c/config.json"), &missing)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("docker-credential-desktop")
                && e.contains("other.io")
                && e.contains("credsStore"),
            "{e}"
        );
    }

    #[test]
    fn real_helper_not_on_path_is_a_clear_error() {
        let e = run_helper("tenantry-test-absent", "r.io").unwrap_err();
        assert!(
            e.contains("not installed (docker-credential-tenantry-test-absent is not on PATH)"),
            "{e}"
        );
    }

    #[test]
    fn explicit_file_must_exist_default_may_not() {
        let d = tempfile::tempdir().unwrap();
        let absent = ConfigSource {
            docker_config_dir: Some(d.path().to_path_buf()),
            ..ConfigSource::default()
        };
        assert!(lookup("r.io", &absent).unwrap().basic.is_none());
        let explicit = ConfigSource {
            explicit: Some(d.path().join("nope.json")),
            ..ConfigSource::default()
        };
        assert!(matches!(
            lookup("r.io", &explicit),
            Err(DeliveryError::Read { .. })
        ));
        std::fs::write(d.path().join("config.json"), "{not json").unwrap();
        let e = lookup("r.io", &absent).unwrap_err().to_string();
        assert!(e.contains("config.json:1"), "{e}");
    }
}
