//! The namespace watch, driven by the recorded list and watch events of a v1.36 API server
//! served from an in-process fake (no cluster, no sockets).
//!
//! The platform here uses `labelPrefix: tenantry.io`, the label the capture put on its
//! namespaces, so the recorded `tenantry-fx-watch` namespace is tenant `watch-demo`'s.

use std::{
    convert::Infallible,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::body::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, StreamBody, combinators::BoxBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use tenantry_admission::{NamespaceCache, NamespaceScope, watch::watch_namespaces};
use tenantry_api::Platform;
use tenantry_core::PlatformContext;
use tokio::sync::mpsc;

fn wire(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/k8s-wire")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (testdata/k8s-wire in the repository)",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap()
}

type Body = BoxBody<Bytes, Infallible>;

fn full(bytes: Vec<u8>) -> Body {
    http_body_util::Full::new(Bytes::from(bytes)).boxed()
}

/// A fake API server: LIST answers with the recorded namespaces, the first WATCH streams
/// whatever the test sends, later WATCHes never answer.
struct FakeApiServer {
    requests: Arc<Mutex<Vec<(String, String)>>>,
    events: Arc<Mutex<Option<mpsc::UnboundedReceiver<String>>>>,
}

async fn wait_for(what: &str, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{what}: not within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn recorded_list_and_watch_events_drive_the_cache() {
    let mut list = wire("list-namespaces-paginated-200.json")["response"]["body"].clone();
    // One page, at the resourceVersion the recorded watch started from.
    list["metadata"] = json!({"resourceVersion": "1106"});
    let list = serde_json::to_vec(&list).unwrap();
    let recorded = wire("watch-namespaces-events.json")["response"]["body"]
        .as_str()
        .unwrap()
        .to_owned();
    let events: Vec<String> = recorded.lines().map(|l| format!("{l}\n")).collect();
    assert_eq!(events.len(), 5, "ADDED, 3 × MODIFIED, DELETED");

    let (send, receive) = mpsc::unbounded_channel::<String>();
    let fake = FakeApiServer {
        requests: Arc::default(),
        events: Arc::new(Mutex::new(Some(receive))),
    };
    let requests = fake.requests.clone();
    let service = tower::service_fn(move |request: hyper::Request<kube::client::Body>| {
        let requests = fake.requests.clone();
        let events = fake.events.clone();
        let list = list.clone();
        async move {
            let uri = request.uri().to_string();
            let accept = request
                .headers()
                .get("accept")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            requests.lock().unwrap().push((uri.clone(), accept));
            let body: Body = if !uri.contains("watch=") {
                full(list)
            } else if let Some(mut receive) = events.lock().unwrap().take() {
                let stream = futures::stream::poll_fn(move |cx| receive.poll_recv(cx))
                    .map(|line| Ok::<_, Infallible>(Frame::data(Bytes::from(line))));
                BodyExt::boxed(StreamBody::new(stream))
            } else {
                BodyExt::boxed(StreamBody::new(futures::stream::pending::<
                    Result<Frame<Bytes>, Infallible>,
                >()))
            };
            Ok::<_, Infallible>(
                hyper::Response::builder()
                    .header("content-type", "application/json")
                    .body(body)
                    .unwrap(),
            )
        }
    });
    let client = kube::Client::new(service, "default");
    let platform = Platform {
        label_prefix: "tenantry.io".to_owned(),
        ..Platform::default()
    };
    let cache = NamespaceCache::new(&PlatformContext::new(platform).unwrap());
    let watcher = tokio::spawn(watch_namespaces(client, cache.clone()));

    wait_for("initial list", || cache.is_synced()).await;
    assert_eq!(cache.len(), 2);
    assert!(matches!(
        cache.scope("default"),
        NamespaceScope::Platform { .. }
    ));
    let (uri, accept) = requests.lock().unwrap()[0].clone();
    assert!(uri.starts_with("/api/v1/namespaces?"), "{uri}");
    assert!(
        accept.contains("as=PartialObjectMetadataList"),
        "the list asks for metadata only: {accept}"
    );

    let ns = "tenantry-fx-watch";
    send.send(events[0].clone()).unwrap();
    wait_for("ADDED", || cache.get(ns).is_some()).await;
    assert_eq!(cache.get(ns).unwrap().tenant.as_deref(), Some("watch-demo"));
    assert_eq!(cache.tenant("watch-demo").unwrap().namespaces, [ns]);

    send.send(events[1].clone()).unwrap();
    wait_for("label change", || {
        cache
            .get(ns)
            .is_some_and(|e| e.info.labels.contains_key("tenantry.io/phase"))
    })
    .await;

    for event in &events[2..] {
        send.send(event.clone()).unwrap();
    }
    wait_for("DELETED", || cache.get(ns).is_none()).await;
    assert!(cache.tenant("watch-demo").is_none());
    assert_eq!(cache.len(), 2);
    let watch_uri = requests.lock().unwrap()[1].0.clone();
    assert!(watch_uri.contains("watch=true"), "{watch_uri}");
    assert!(
        watch_uri.contains("resourceVersion=1106"),
        "resumes from the list: {watch_uri}"
    );
    watcher.abort();
}
