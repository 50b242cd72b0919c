//! Where a request goes: answered from the tenant index, passed through to the API server as
//! the caller, or refused. A pure function of the request line and header names, so it is
//! unit-tested, property-tested and fuzzed (`fuzz/fuzz_targets/proxy_route.rs`) without a
//! socket.
//!
//! Safety never rests on this function: anything passed through is authorised by the API
//! server as the caller (impersonation), so a misrouted request can at worst be answered with
//! the caller's own rights. What routing must guarantee is that the proxy and the API server
//! read a request the same way. Hence the refusals:
//! - paths with `.`/`..` or empty segments, backslashes, control or non-ASCII bytes, and
//!   percent-encoded `/`, `\`, `.`, `%` or control bytes: Go's router and ours could resolve
//!   them differently (`/api/v1/namespaces/x/..` is the namespace list to one, a namespace
//!   named `..` to the other);
//! - a parameter the proxy interprets given twice (`?watch=false&watch=true`): the API server
//!   reads the first, a careless reader the last;
//! - any `Impersonate-*` header from the client: the proxy sets impersonation itself from the
//!   authenticated identity and must never forward one a client chose. The one exception is
//!   `Impersonate-User`, let through here for [`self_impersonation`] to judge once the caller
//!   is known: Flux's kustomize-controller, given a `kubeConfig`, still impersonates the
//!   Kustomization's ServiceAccount, which is the very identity that kubeconfig's token
//!   authenticates (Tenantry's `flux.proxy`). Impersonating oneself adds nothing, so it is
//!   accepted and the header dropped; naming anyone else is refused.

use tenantry_api::platform::ProxyClusterKind;

use crate::{
    cluster::kind_at,
    selector::{FieldSelector, LabelSelector, parse_field_selector, parse_label_selector},
    status::Refusal,
};

/// Longest request target accepted (path and query).
pub const MAX_TARGET_LEN: usize = 16 * 1024;

/// The decision for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// A namespace read answered from the index (for a caller who belongs to a tenant).
    Index(IndexRead),
    /// A read of a cluster-scoped kind the platform may expose (`proxy.clusterScoped`,
    /// [`crate::cluster`]); forwarded as the caller when it does not.
    Cluster(ClusterRead),
    /// Forwarded unchanged to the API server as the caller.
    PassThrough,
    /// Refused with this Status.
    Reject(Refusal),
}

/// The namespace reads the proxy answers itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexRead {
    /// `GET /api/v1/namespaces`.
    List(ListQuery),
    /// `GET /api/v1/namespaces?watch=1`, `/api/v1/watch/namespaces[/{name}]`,
    /// `/api/v1/namespaces/{name}?watch=1`.
    Watch(ListQuery),
    /// `GET /api/v1/namespaces/{name}`.
    Get(String),
}

/// `GET /apis/{group}/v1/{resource}[/{name}]` (or its watch) of one of
/// [`crate::cluster::KINDS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterRead {
    /// The kind.
    pub kind: ProxyClusterKind,
    /// The object, for a get or a single-object watch.
    pub name: Option<String>,
    /// Whether it is a watch.
    pub watch: bool,
}

/// What a Table's rows carry of each object (`includeObject`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IncludeObject {
    /// Nothing.
    None,
    /// `PartialObjectMetadata` (the default).
    #[default]
    Metadata,
    /// The whole object.
    Object,
}

/// The list and watch parameters the proxy honours.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// `labelSelector`.
    pub labels: LabelSelector,
    /// `fieldSelector` (and the name of a single-object watch).
    pub fields: FieldSelector,
    /// `limit` (0: no limit).
    pub limit: u64,
    /// `continue`.
    pub continue_token: Option<String>,
    /// `resourceVersion`.
    pub resource_version: Option<String>,
    /// `timeoutSeconds`.
    pub timeout_seconds: Option<u64>,
    /// `allowWatchBookmarks`.
    pub bookmarks: bool,
    /// `sendInitialEvents`.
    pub send_initial_events: bool,
    /// `includeObject`, for Table answers.
    pub include_object: IncludeObject,
}

const IMPERSONATE_USER: &str = "impersonate-user";

fn impersonation_refused(name: &str) -> Refusal {
    Refusal::forbidden(format!(
        "the {name} header is not allowed through the tenant proxy: it impersonates the \
         identity it authenticated, and no other"
    ))
}

/// Whether the `Impersonate-User` headers of a request, given `values`, name only the
/// authenticated `username`: at most one header, equal to it (what Flux sends through a
/// kubeconfig whose token is the ServiceAccount it impersonates). [`route`] refuses every
/// other `Impersonate-*` header before authentication; the forwarder drops this one and
/// sets impersonation itself.
pub fn self_impersonation<'a>(
    values: impl IntoIterator<Item = &'a [u8]>,
    username: &str,
) -> Result<(), Refusal> {
    let values: Vec<&[u8]> = values.into_iter().collect();
    match values.as_slice() {
        [] => Ok(()),
        [one] if *one == username.as_bytes() => Ok(()),
        _ => Err(impersonation_refused("Impersonate-User")),
    }
}

/// Route one request: `method`, the request target as received (`/path?query`), and the
/// names of its headers.
pub fn route<'a>(
    method: &str,
    target: &str,
    header_names: impl IntoIterator<Item = &'a str>,
) -> Route {
    for name in header_names {
        if name
            .get(..12)
            .is_some_and(|p| p.eq_ignore_ascii_case("impersonate-"))
            && !name.eq_ignore_ascii_case(IMPERSONATE_USER)
        {
            return Route::Reject(impersonation_refused(name));
        }
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let segments = match segments(path, target) {
        Ok(segments) => segments,
        Err(refusal) => return Route::Reject(refusal),
    };
    if method != "GET" {
        return Route::PassThrough;
    }
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    if let Some(read) = cluster_read(&segments) {
        return match Params::parse(query).and_then(|p| p.flag("watch")) {
            Ok(watch) => Route::Cluster(ClusterRead {
                watch: watch || read.watch,
                ..read
            }),
            Err(refusal) => Route::Reject(refusal),
        };
    }
    let (watch_path, name) = match segments.as_slice() {
        ["api", "v1", "namespaces"] => (false, None),
        ["api", "v1", "namespaces", name] => (false, Some(*name)),
        ["api", "v1", "watch", "namespaces"] => (true, None),
        ["api", "v1", "watch", "namespaces", name] => (true, Some(*name)),
        _ => return Route::PassThrough,
    };
    let params = match Params::parse(query) {
        Ok(params) => params,
        Err(refusal) => return Route::Reject(refusal),
    };
    match read(&params, watch_path, name) {
        Ok(read) => Route::Index(read),
        Err(refusal) => Route::Reject(refusal),
    }
}

fn read(params: &Params, watch_path: bool, name: Option<&str>) -> Result<IndexRead, Refusal> {
    let watch = watch_path || params.flag("watch")?;
    if let (false, Some(name)) = (watch, name) {
        return Ok(IndexRead::Get(name.to_owned()));
    }
    let mut query = ListQuery {
        labels: params
            .get("labelSelector")
            .map(parse_label_selector)
            .transpose()
            .map_err(|e| Refusal::bad_request(e.message))?
            .unwrap_or_default(),
        fields: params
            .get("fieldSelector")
            .map(parse_field_selector)
            .transpose()
            .map_err(|e| Refusal::bad_request(e.message))?
            .unwrap_or_default(),
        limit: params.number("limit")?.unwrap_or(0),
        continue_token: params.get("continue").map(str::to_owned),
        resource_version: params.get("resourceVersion").map(str::to_owned),
        timeout_seconds: params.number("timeoutSeconds")?,
        bookmarks: params.flag("allowWatchBookmarks")?,
        send_initial_events: params.flag("sendInitialEvents")?,
        include_object: match params.get("includeObject") {
            None | Some("") | Some("Metadata") => IncludeObject::Metadata,
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            Some(other) => {
                return Err(Refusal::bad_request(format!(
                    "includeObject: unsupported value {other:?}: supported values are \"None\", \"Metadata\", \"Object\""
                )));
            }
        },
    };
    if query.continue_token.is_some()
        && query
            .resource_version
            .as_deref()
            .is_some_and(|v| !v.is_empty())
    {
        return Err(Refusal::bad_request(
            "specifying resource version is not allowed when using continue",
        ));
    }
    if let Some(name) = name {
        query.fields.0.extend(FieldSelector::name(name).0);
    }
    Ok(if watch {
        IndexRead::Watch(query)
    } else {
        IndexRead::List(query)
    })
}

fn cluster_read(segments: &[&str]) -> Option<ClusterRead> {
    let (watch, group, version, resource, name) = match segments {
        ["apis", group, version, "watch", resource] => (true, group, version, resource, None),
        ["apis", group, version, "watch", resource, name] => {
            (true, group, version, resource, Some(*name))
        }
        ["apis", group, version, resource] => (false, group, version, resource, None),
        ["apis", group, version, resource, name] => (false, group, version, resource, Some(*name)),
        _ => return None,
    };
    Some(ClusterRead {
        kind: kind_at(group, version, resource)?,
        name: name.map(str::to_owned),
        watch,
    })
}

/// The path's segments, percent-decoded, or the refusal of an ambiguous path.
fn segments(path: &str, target: &str) -> Result<Vec<String>, Refusal> {
    if target.len() > MAX_TARGET_LEN {
        return Err(Refusal::new(
            414,
            "RequestURITooLong",
            format!("request target longer than {MAX_TARGET_LEN} bytes"),
        ));
    }
    let bad = |why: &str| {
        Refusal::bad_request(format!(
            "refused request path {:?}: {why}",
            path.chars().take(200).collect::<String>()
        ))
    };
    if !target.starts_with('/') {
        return Err(bad("not an absolute path"));
    }
    if let Some(c) = target
        .bytes()
        .find(|b| !b.is_ascii_graphic() || *b == b'\\')
    {
        return Err(bad(&format!("byte 0x{c:02x} is not allowed")));
    }
    if path == "/" {
        return Ok(Vec::new());
    }
    let inner = path.strip_prefix('/').unwrap_or(path);
    let inner = inner.strip_suffix('/').unwrap_or(inner);
    let mut out = Vec::new();
    for raw in inner.split('/') {
        let segment = percent_decode(raw).ok_or_else(|| {
            bad("a percent-encoded '/', '\\', '.', '%' or control byte, or a broken escape")
        })?;
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(bad("empty, '.' or '..' segment"));
        }
        out.push(segment);
    }
    Ok(out)
}

/// Decode `%XX` escapes, refusing those that could change how a path is split or resolved.
fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            let b = u8::from_str_radix(hex, 16).ok()?;
            if !b.is_ascii_graphic() || matches!(b, b'/' | b'\\' | b'.' | b'%') {
                return None;
            }
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The query parameters the proxy reads, each at most once.
struct Params(Vec<(String, String)>);

const INTERPRETED: [&str; 10] = [
    "watch",
    "labelSelector",
    "fieldSelector",
    "limit",
    "continue",
    "resourceVersion",
    "timeoutSeconds",
    "allowWatchBookmarks",
    "sendInitialEvents",
    "includeObject",
];

impl Params {
    fn parse(query: &str) -> Result<Self, Refusal> {
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        for key in INTERPRETED {
            if pairs.iter().filter(|(k, _)| k == key).count() > 1 {
                return Err(Refusal::bad_request(format!(
                    "query parameter {key} given more than once"
                )));
            }
        }
        Ok(Self(pairs))
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean as Go's `strconv.ParseBool` reads it; absent or empty is false.
    fn flag(&self, key: &str) -> Result<bool, Refusal> {
        match self.get(key) {
            None | Some("") => Ok(false),
            Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
            Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
            Some(other) => Err(Refusal::bad_request(format!(
                "{key}: invalid boolean {other:?}"
            ))),
        }
    }

    fn number(&self, key: &str) -> Result<Option<u64>, Refusal> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(text) => text.parse().map(Some).map_err(|_| {
                Refusal::bad_request(format!("{key}: {text:?} is not a whole number ≥ 0"))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn get(target: &str) -> Route {
        route("GET", target, [])
    }

    fn rejected(route: &Route) -> u16 {
        match route {
            Route::Reject(r) => r.code,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn reads_of_the_four_class_kinds_are_told_apart_from_everything_else() {
        let read = |kind, name: Option<&str>, watch| {
            Route::Cluster(ClusterRead {
                kind,
                name: name.map(str::to_owned),
                watch,
            })
        };
        use ProxyClusterKind::*;
        assert_eq!(
            get("/apis/storage.k8s.io/v1/storageclasses?limit=500"),
            read(StorageClass, None, false)
        );
        assert_eq!(
            get("/apis/scheduling.k8s.io/v1/priorityclasses/high"),
            read(PriorityClass, Some("high"), false)
        );
        assert_eq!(
            get("/apis/networking.k8s.io/v1/ingressclasses?watch=true"),
            read(IngressClass, None, true)
        );
        assert_eq!(
            get("/apis/node.k8s.io/v1/watch/runtimeclasses/gvisor"),
            read(RuntimeClass, Some("gvisor"), true)
        );
        // Writes, other versions, other resources of the group, subresources: as the caller.
        for (method, target) in [
            ("DELETE", "/apis/storage.k8s.io/v1/storageclasses/fast"),
            ("GET", "/apis/storage.k8s.io/v1beta1/storageclasses"),
            ("GET", "/apis/storage.k8s.io/v1/csidrivers"),
            ("GET", "/apis/storage.k8s.io/v1/storageclasses/fast/status"),
        ] {
            assert_eq!(
                route(method, target, []),
                Route::PassThrough,
                "{method} {target}"
            );
        }
        assert_eq!(
            rejected(&get(
                "/apis/storage.k8s.io/v1/storageclasses?watch=0&watch=1"
            )),
            400
        );
    }

    #[test]
    fn namespace_reads_are_answered_from_the_index() {
        assert!(matches!(
            get("/api/v1/namespaces"),
            Route::Index(IndexRead::List(_))
        ));
        assert_eq!(
            get("/api/v1/namespaces/shop"),
            Route::Index(IndexRead::Get("shop".to_owned()))
        );
        for watch in [
            "/api/v1/namespaces?watch=true",
            "/api/v1/namespaces?watch=1&resourceVersion=5",
            "/api/v1/watch/namespaces",
        ] {
            assert!(
                matches!(get(watch), Route::Index(IndexRead::Watch(_))),
                "{watch}"
            );
        }
        let Route::Index(IndexRead::Watch(q)) = get("/api/v1/watch/namespaces/shop") else {
            panic!()
        };
        assert!(q.fields.matches("shop", "Active"));
        assert!(!q.fields.matches("blog", "Active"));
        let Route::Index(IndexRead::List(q)) =
            get("/api/v1/namespaces?labelSelector=env%3Ddev&limit=2&continue=abc")
        else {
            panic!()
        };
        assert_eq!((q.limit, q.continue_token.as_deref()), (2, Some("abc")));
    }

    #[test]
    fn everything_else_passes_through() {
        for (method, target) in [
            ("GET", "/api/v1/namespaces/shop/pods"),
            (
                "GET",
                "/apis/apps/v1/namespaces/shop/deployments?watch=true",
            ),
            ("POST", "/api/v1/namespaces"),
            ("DELETE", "/api/v1/namespaces/shop"),
            ("PATCH", "/api/v1/namespaces/shop"),
            ("GET", "/api/v1/namespaces/shop/status"),
            (
                "POST",
                "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
            ),
            ("GET", "/api"),
            ("GET", "/"),
            ("GET", "/api/v1/pods"),
        ] {
            assert_eq!(
                route(method, target, []),
                Route::PassThrough,
                "{method} {target}"
            );
        }
    }

    #[test]
    fn traversal_and_ambiguous_paths_are_refused() {
        for target in [
            "/api/v1/namespaces/../..",
            "/api/v1/namespaces/x/..",
            "/api/v1/namespaces/%2e%2e",
            "/api/v1/namespaces/%2E%2E/secrets",
            "/api/v1/namespaces/a%2fb",
            "/api/v1/namespaces/a%5cb",
            "/api/v1/namespaces/a%252e",
            "/api/v1/namespaces/./x",
            "/api//v1/namespaces",
            "/api/v1/namespaces/a\\b",
            "/api/v1/namespaces/%",
            "/api/v1/namespaces/%zz",
            "/api/v1/namespaces/%00",
            "api/v1/namespaces",
            "http://evil/api/v1/namespaces",
        ] {
            assert_eq!(rejected(&get(target)), 400, "{target}");
            // Whatever the method: a write must not reach the API server either.
            assert_eq!(rejected(&route("DELETE", target, [])), 400, "{target}");
        }
        assert_eq!(
            rejected(&get(&format!("/api/{}", "a".repeat(MAX_TARGET_LEN)))),
            414
        );
    }

    #[test]
    fn only_impersonating_oneself_is_accepted() {
        let me = "system:serviceaccount:shop:shop";
        assert!(self_impersonation([], me).is_ok());
        assert!(self_impersonation([me.as_bytes()], me).is_ok());
        for values in [
            vec!["system:admin".as_bytes()],
            vec![b"system:serviceaccount:shop:shop ".as_slice()],
            vec!["SYSTEM:SERVICEACCOUNT:SHOP:SHOP".as_bytes()],
            vec![me.as_bytes(), me.as_bytes()],
            vec![me.as_bytes(), b"system:admin".as_slice()],
        ] {
            let refused = self_impersonation(values.clone(), me).unwrap_err();
            assert_eq!(refused.code, 403, "{values:?}");
        }
        // Routing leaves Impersonate-User to that judgement (it needs the caller).
        let r = route("GET", "/api/v1/namespaces/shop/pods", ["Impersonate-User"]);
        assert_eq!(r, Route::PassThrough);
    }

    #[test]
    fn client_impersonation_headers_are_refused() {
        for header in [
            "impersonate-group",
            "IMPERSONATE-EXTRA-scopes",
            "Impersonate-Uid",
        ] {
            let r = route("GET", "/api/v1/namespaces/shop/pods", ["accept", header]);
            assert_eq!(rejected(&r), 403, "{header}");
        }
    }

    #[test]
    fn interpreted_parameters_are_read_once_and_strictly() {
        for target in [
            "/api/v1/namespaces?watch=false&watch=true",
            "/api/v1/namespaces?labelSelector=a&labelSelector=b",
            "/api/v1/namespaces?watch=yes",
            "/api/v1/namespaces?limit=-1",
            "/api/v1/namespaces?fieldSelector=spec.x%3Dy",
            "/api/v1/namespaces?labelSelector=a%20in%20b",
            "/api/v1/namespaces?includeObject=All",
            "/api/v1/namespaces?continue=x&resourceVersion=5",
        ] {
            assert_eq!(rejected(&get(target)), 400, "{target}");
        }
    }

    proptest! {
        /// No request line makes routing panic, and no path holding a `..` segment (raw or
        /// encoded in any case) is ever passed through or answered.
        #[test]
        fn dot_dot_never_gets_through(
            prefix in "(/[a-z0-9]{1,8}){0,4}",
            dots in prop::sample::select(vec!["..", "%2e%2e", "%2E%2e", ".%2e", "%2e.", "."]),
            suffix in "(/[a-z0-9]{1,8}){0,3}",
            method in prop::sample::select(vec!["GET", "POST", "DELETE", "PUT"]),
        ) {
            let target = format!("{prefix}/{dots}{suffix}");
            prop_assert!(matches!(route(method, &target, []), Route::Reject(_)), "{}", target);
        }

        #[test]
        fn arbitrary_targets_never_panic(target in ".{0,64}", method in "[A-Z]{0,7}") {
            let _ = route(&method, &target, ["x"]);
        }
    }
}
