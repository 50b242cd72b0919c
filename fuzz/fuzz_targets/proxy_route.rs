//! The tenant proxy's routing on arbitrary request lines: the first line of the input is the
//! method, the second the request target, the rest header names, one per line. Every input
//! must end in a route (index read, pass-through or a refusal with a Status); anything else
//! (a panic, runaway memory) is a bug. And the invariants the proxy's safety argument rests
//! on must hold: a client's `Impersonate-*` header is always refused, and no path with a
//! `..` segment is ever answered or passed through.
//!
//! `cargo fuzz run proxy_route corpus/proxy_route seeds/proxy_route`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tenantry_proxy::{Route, route};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let method = lines.next().unwrap_or("");
    let target = lines.next().unwrap_or("");
    let headers: Vec<&str> = lines.collect();
    let routed = route(method, target, headers.iter().copied());
    if headers
        .iter()
        .any(|h| h.len() >= 12 && h[..12].eq_ignore_ascii_case("impersonate-"))
    {
        assert!(
            matches!(routed, Route::Reject(ref r) if r.code == 403),
            "{routed:?}"
        );
    }
    let path = target.split('?').next().unwrap_or("");
    if path.split('/').any(|s| s == ".." || s == ".") {
        assert!(matches!(routed, Route::Reject(_)), "{target}: {routed:?}");
    }
    if let Route::Reject(refusal) = &routed {
        assert!((400..600).contains(&refusal.code));
        assert!(refusal.message.len() < 1024, "refusal message unbounded");
    }
});
