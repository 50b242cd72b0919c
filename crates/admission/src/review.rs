//! The `admission.k8s.io/v1` AdmissionReview wire format, decoded strictly and answered
//! compactly.
//!
//! The API server sends the object under review as plain JSON, and the guardrails read plain
//! JSON, so `object` and `oldObject` are kept as [`serde_json::Value`]: decoding them into typed
//! Kubernetes structs would reject shapes the policies are written to tolerate and would cost a
//! second conversion on the request path. Everything around the objects (uid, kind, operation,
//! user) is decoded into small owned types with the field path of the first problem, because a
//! review that cannot be read must be answered with HTTP 400 and a message a person can act
//! on, never with a guess: answering "allowed" to a review we could not read would be a bypass,
//! answering "denied" would hide the bug in whoever sent it.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `apiVersion` of the only AdmissionReview version this webhook speaks.
pub const ADMISSION_API_VERSION: &str = "admission.k8s.io/v1";
/// `kind` of an AdmissionReview.
pub const ADMISSION_KIND: &str = "AdmissionReview";

pub use tenantry_policy::Operation;

/// A group, version and kind (`group` is empty for the core group).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct GroupVersionKind {
    /// API group, `""` for core.
    #[serde(default)]
    pub group: String,
    /// API version within the group.
    #[serde(default)]
    pub version: String,
    /// Kind.
    #[serde(default)]
    pub kind: String,
}

impl GroupVersionKind {
    /// `apiVersion` as it appears in an object: `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// A group, version and resource (`group` is empty for the core group).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct GroupVersionResource {
    /// API group, `""` for core.
    #[serde(default)]
    pub group: String,
    /// API version within the group.
    #[serde(default)]
    pub version: String,
    /// Plural resource name, e.g. `pods`.
    #[serde(default)]
    pub resource: String,
}

/// Who sent the request, as the API server authenticated them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct UserInfo {
    /// User name, e.g. `system:serviceaccount:kube-system:replicaset-controller`.
    #[serde(default)]
    pub username: String,
    /// Groups, e.g. `system:masters`.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// One decoded admission request: everything a validator needs, owned.
#[derive(Debug, Clone, PartialEq)]
pub struct AdmissionRequestView {
    /// Identifies this review; echoed in the response.
    pub uid: String,
    /// Kind of the object as the webhook registration asked for it.
    pub kind: GroupVersionKind,
    /// Resource being requested.
    pub resource: GroupVersionResource,
    /// Subresource, e.g. `ephemeralcontainers`, `status`.
    pub sub_resource: Option<String>,
    /// Object name; empty for a collection DELETE and for CREATE with `generateName`.
    pub name: String,
    /// Namespace of the object; for a Namespace, its own name.
    pub namespace: Option<String>,
    /// What is done.
    pub operation: Operation,
    /// Who does it.
    pub user: UserInfo,
    /// The new object (CREATE, UPDATE, CONNECT options); `None` for DELETE.
    pub object: Option<Value>,
    /// The existing object (UPDATE, DELETE); `None` for CREATE.
    pub old_object: Option<Value>,
    /// Whether nothing will be persisted. Answers never depend on it: the webhook has no side
    /// effects, and a dry run must predict the real verdict.
    pub dry_run: bool,
}

impl AdmissionRequestView {
    /// The object the request is about: `oldObject` for DELETE (the API server sends no
    /// `object` then), `object` otherwise.
    pub fn subject(&self) -> Option<&Value> {
        match self.operation {
            Operation::Delete => self.old_object.as_ref().or(self.object.as_ref()),
            _ => self.object.as_ref().or(self.old_object.as_ref()),
        }
    }

    /// `Kind namespace/name` for log lines and messages.
    pub fn describe(&self) -> String {
        let name = if self.name.is_empty() {
            "(unnamed)"
        } else {
            &self.name
        };
        match &self.namespace {
            Some(ns) if self.kind.kind != "Namespace" => format!("{} {ns}/{name}", self.kind.kind),
            _ => format!("{} {name}", self.kind.kind),
        }
    }
}

/// Why a request body is not an AdmissionReview this webhook can answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON, or JSON of the wrong shape; `path` names the offending field.
    #[error("malformed AdmissionReview at {path}: {message}")]
    Malformed {
        /// Field path (`.` for the document itself).
        path: String,
        /// What serde reported.
        message: String,
    },
    /// JSON of the right shape, but not an `admission.k8s.io/v1` review.
    #[error(
        "unsupported review {api_version:?}/{kind:?}: this webhook speaks admission.k8s.io/v1 AdmissionReview"
    )]
    WrongType {
        /// The `apiVersion` sent.
        api_version: String,
        /// The `kind` sent.
        kind: String,
    },
    /// A required field is absent or empty.
    #[error("malformed AdmissionReview: {0} is required")]
    Missing(&'static str),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireReview {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    request: Option<WireRequest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireRequest {
    #[serde(default)]
    uid: String,
    kind: Option<GroupVersionKind>,
    #[serde(default)]
    resource: GroupVersionResource,
    #[serde(default)]
    sub_resource: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    operation: Option<Operation>,
    #[serde(default)]
    user_info: UserInfo,
    #[serde(default)]
    object: Option<LeanObject>,
    #[serde(default)]
    old_object: Option<LeanObject>,
    #[serde(default)]
    dry_run: Option<bool>,
}

/// Decode an AdmissionReview request body.
///
/// Unknown fields are ignored (the API server adds fields over time: `requestKind`,
/// `options`, ...); the fields a verdict depends on must be present and well-typed.
pub fn decode(body: &[u8]) -> Result<AdmissionRequestView, DecodeError> {
    // Fast path first: tracking the field path costs an allocation per key, so it is only
    // paid again for a body that failed, to say where.
    let review: WireReview = match serde_json::from_slice(body) {
        Ok(review) => review,
        Err(plain) => return Err(locate(body, plain)),
    };
    if review.api_version != ADMISSION_API_VERSION || review.kind != ADMISSION_KIND {
        return Err(DecodeError::WrongType {
            api_version: review.api_version,
            kind: review.kind,
        });
    }
    let request = review.request.ok_or(DecodeError::Missing("request"))?;
    if request.uid.is_empty() {
        return Err(DecodeError::Missing("request.uid"));
    }
    let kind = request.kind.ok_or(DecodeError::Missing("request.kind"))?;
    let operation = request
        .operation
        .ok_or(DecodeError::Missing("request.operation"))?;
    let not_null = |v: Option<LeanObject>| v.map(|v| v.0).filter(|v| !v.is_null());
    Ok(AdmissionRequestView {
        uid: request.uid,
        kind,
        resource: request.resource,
        sub_resource: request.sub_resource.filter(|s| !s.is_empty()),
        name: request.name.unwrap_or_default(),
        namespace: request.namespace.filter(|s| !s.is_empty()),
        operation,
        user: request.user_info,
        object: not_null(request.object),
        old_object: not_null(request.old_object),
        dry_run: request.dry_run.unwrap_or(false),
    })
}

/// Re-read a body that failed to decode, tracking the path to the offending field.
fn locate(body: &[u8], plain: serde_json::Error) -> DecodeError {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let tracked: Result<WireReview, _> = serde_path_to_error::deserialize(&mut deserializer);
    match tracked {
        Err(e) => DecodeError::Malformed {
            path: e.path().to_string(),
            message: e.inner().to_string(),
        },
        // A whole review was read, so what failed was trailing bytes.
        Ok(_) => DecodeError::Malformed {
            path: ".".to_owned(),
            message: plain.to_string(),
        },
    }
}

/// An object under review, read as JSON without `metadata.managedFields`.
///
/// Server-side apply bookkeeping is a third to a half of a typical object's bytes, no policy
/// reads it, and building it into a `Value` (an allocation per key) is the largest single
/// cost of answering a review. It is still parsed for well-formedness, just not kept.
struct LeanObject(Value);

impl<'de> Deserialize<'de> for LeanObject {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::DeserializeSeed;
        Lean::Object.deserialize(deserializer).map(LeanObject)
    }
}

/// Where in the object the lean reader is: the top level, or inside `metadata`.
#[derive(Clone, Copy)]
enum Lean {
    Object,
    Metadata,
}

impl<'de> serde::de::DeserializeSeed<'de> for Lean {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Lean {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            match (self, key.as_str()) {
                (Lean::Object, "metadata") => {
                    let value = map.next_value_seed(Lean::Metadata)?;
                    out.insert(key, value);
                }
                (Lean::Metadata, "managedFields") => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
                _ => {
                    let value = map.next_value::<Value>()?;
                    out.insert(key, value);
                }
            }
        }
        Ok(Value::Object(out))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Value, A::Error> {
        Value::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

/// The `status` of a denied response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResponseStatus {
    /// HTTP-style code shown to the client (403 for a policy denial).
    pub code: u16,
    /// Machine-readable reason, `Forbidden` for a policy denial.
    pub reason: &'static str,
    /// What the user sees after `admission webhook "..." denied the request: `.
    pub message: String,
}

/// An AdmissionReview response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionResponse {
    /// The request's uid, echoed.
    pub uid: String,
    /// The verdict.
    pub allowed: bool,
    /// Why not, when denied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<ResponseStatus>,
    /// Shown to the client as `Warning:` headers whatever the verdict.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReviewEnvelope<'a> {
    api_version: &'static str,
    kind: &'static str,
    response: &'a AdmissionResponse,
}

impl AdmissionResponse {
    /// The full `AdmissionReview` document to send back.
    pub fn to_review_json(&self) -> Vec<u8> {
        let envelope = ReviewEnvelope {
            api_version: ADMISSION_API_VERSION,
            kind: ADMISSION_KIND,
            response: self,
        };
        // Serializing strings, bools and integers into a Vec cannot fail.
        serde_json::to_vec(&envelope).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",
        "request":{"uid":"u1","kind":{"group":"","version":"v1","kind":"ConfigMap"},
        "resource":{"group":"","version":"v1","resource":"configmaps"},
        "namespace":"shop","operation":"CREATE","userInfo":{"username":"alice"},
        "object":{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}},"oldObject":null}}"#;

    #[test]
    fn decodes_a_minimal_review() {
        let req = decode(MINIMAL.as_bytes()).unwrap();
        assert_eq!(req.uid, "u1");
        assert_eq!(req.operation, Operation::Create);
        assert_eq!(req.namespace.as_deref(), Some("shop"));
        assert!(req.old_object.is_none(), "null oldObject is absent");
        assert_eq!(req.subject().unwrap()["kind"], "ConfigMap");
        assert_eq!(req.describe(), "ConfigMap shop/(unnamed)");
    }

    #[test]
    fn wrong_types_name_the_field() {
        let body = MINIMAL.replace(r#""operation":"CREATE""#, r#""operation":"MOVE""#);
        let err = decode(body.as_bytes()).unwrap_err();
        match &err {
            DecodeError::Malformed { path, .. } => assert_eq!(path, "request.operation"),
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("MOVE"), "{err}");
    }

    #[test]
    fn other_review_versions_are_refused() {
        let body = MINIMAL.replace("admission.k8s.io/v1", "admission.k8s.io/v1beta1");
        assert!(matches!(
            decode(body.as_bytes()),
            Err(DecodeError::WrongType { .. })
        ));
    }

    #[test]
    fn missing_uid_request_or_operation_are_errors() {
        for (from, to, missing) in [
            (r#""uid":"u1""#, r#""uid":"""#, "request.uid"),
            (r#""operation":"CREATE","#, "", "request.operation"),
        ] {
            let body = MINIMAL.replace(from, to);
            assert_eq!(
                decode(body.as_bytes()),
                Err(DecodeError::Missing(missing)),
                "{body}"
            );
        }
        let err = decode(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#);
        assert_eq!(err, Err(DecodeError::Missing("request")));
    }

    #[test]
    fn garbage_and_trailing_bytes_are_malformed() {
        for body in [&b""[..], b"{", b"null", b"\xff", b"{}{}", b"\"x\""] {
            assert!(
                matches!(decode(body), Err(DecodeError::Malformed { .. })),
                "{body:?}"
            );
        }
        // Shapes serde accepts for a struct but that are no review are still refused.
        for body in [&b"[]"[..], b"{}"] {
            assert!(decode(body).is_err(), "{body:?}");
        }
    }

    #[test]
    fn objects_are_kept_whole_except_managed_fields() {
        let body = MINIMAL.replace(
            r#""metadata":{"name":"c"}"#,
            r#""metadata":{"name":"c","managedFields":[{"manager":"kubectl"}],"labels":{"a":"b"}},
               "data":{"managedFields":"kept","n":[1,-2,3.5,true,null]}"#,
        );
        let object = decode(body.as_bytes()).unwrap().object.unwrap();
        assert_eq!(
            object,
            serde_json::json!({"apiVersion":"v1","kind":"ConfigMap",
                "metadata":{"name":"c","labels":{"a":"b"}},
                "data":{"managedFields":"kept","n":[1,-2,3.5,true,null]}})
        );
        // Malformed managedFields is still malformed JSON.
        let broken = MINIMAL.replace(
            r#""metadata":{"name":"c"}"#,
            r#""metadata":{"managedFields":[}"#,
        );
        assert!(decode(broken.as_bytes()).is_err());
        // An object that is not a JSON object is kept as it is (the policies ignore it).
        let scalar = MINIMAL.replace(
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}"#,
            r#"[1,{"metadata":{"managedFields":1}}]"#,
        );
        assert_eq!(
            decode(scalar.as_bytes()).unwrap().object.unwrap(),
            serde_json::json!([1, {"metadata": {"managedFields": 1}}])
        );
    }

    #[test]
    fn response_shape() {
        let response = AdmissionResponse {
            uid: "u1".into(),
            allowed: false,
            status: Some(ResponseStatus {
                code: 403,
                reason: "Forbidden",
                message: "no".into(),
            }),
            warnings: vec![],
        };
        let v: Value = serde_json::from_slice(&response.to_review_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",
                "response":{"uid":"u1","allowed":false,
                "status":{"code":403,"reason":"Forbidden","message":"no"}}})
        );
    }
}
