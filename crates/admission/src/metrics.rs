//! Prometheus metrics for `/metrics`.
//!
//! A webhook with `failurePolicy: Fail` is part of the cluster's write path, so its operators
//! need three questions answered at a glance: is it being called (requests by operation and
//! verdict), is it fast enough to stay well inside the API server's timeout (latency
//! histogram, with buckets down to 100 µs because a verdict normally takes well under a
//! millisecond), and what is it refusing (denials by check). Label values come from closed
//! sets (operations, `true`/`false`, check IDs, HTTP outcome), so the series count stays
//! bounded whatever clients send.

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: &'static str,
    allowed: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckLabels {
    check: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    reason: &'static str,
}

/// The webhook's metrics and their registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Histogram,
    denials: Family<CheckLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    namespaces: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Register every metric under the `tenantry_webhook_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tenantry_webhook");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "AdmissionReviews answered, by operation and verdict",
            requests.clone(),
        );
        // 100 µs .. ~3.3 s: sub-millisecond verdicts up to the API server's timeout.
        let duration = Histogram::new(latency_buckets());
        registry.register_with_unit(
            "request_duration",
            "Time from receiving an AdmissionReview to having its answer encoded",
            prometheus_client::registry::Unit::Seconds,
            duration.clone(),
        );
        let denials = Family::<CheckLabels, Counter>::default();
        registry.register(
            "denials",
            "Findings that denied a request, by check ID",
            denials.clone(),
        );
        let errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "bad_requests",
            "Requests answered with an HTTP error instead of a verdict, by reason",
            errors.clone(),
        );
        let namespaces = Gauge::default();
        registry.register(
            "cached_namespaces",
            "Namespaces in the watch cache",
            namespaces.clone(),
        );
        Self {
            registry,
            requests,
            duration,
            denials,
            errors,
            namespaces,
        }
    }

    /// Count one answered review.
    pub fn observe(
        &self,
        operation: &'static str,
        allowed: bool,
        seconds: f64,
        denied_checks: &[&str],
    ) {
        self.requests
            .get_or_create(&RequestLabels {
                operation,
                allowed: if allowed { "true" } else { "false" },
            })
            .inc();
        self.duration.observe(seconds);
        for check in denied_checks {
            self.denials
                .get_or_create(&CheckLabels {
                    check: (*check).to_owned(),
                })
                .inc();
        }
    }

    /// Count one request refused before judging (`malformed`, `too_large`, ...).
    pub fn bad_request(&self, reason: &'static str) {
        self.errors.get_or_create(&ErrorLabels { reason }).inc();
    }

    /// Record the cache size.
    pub fn set_cached_namespaces(&self, n: usize) {
        set_count(&self.namespaces, n);
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        exposition(&self.registry)
    }
}

/// Latency buckets from 100 µs to ~3.3 s (16 doublings): a verdict or a proxy's own answer
/// takes well under a millisecond, and the API server gives up after seconds. Shared with
/// the proxy (`tenantry_proxy::metrics`) so both histograms can be read side by side.
pub fn latency_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(0.0001, 2.0, 16)
}

/// Set a gauge to a count, saturating at `i64::MAX` (a gauge is signed).
pub fn set_count(gauge: &Gauge, n: usize) {
    gauge.set(i64::try_from(n).unwrap_or(i64::MAX));
}

/// The OpenMetrics text exposition of `registry`.
pub fn exposition(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut out, registry);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_the_documented_names() {
        let m = Metrics::new();
        m.observe("CREATE", false, 0.0003, &["runAsNonRoot", "runAsNonRoot"]);
        m.observe("CREATE", true, 0.0002, &[]);
        let text = m.encode();
        for line in [
            r#"tenantry_webhook_requests_total{operation="CREATE",allowed="false"} 1"#,
            r#"tenantry_webhook_requests_total{operation="CREATE",allowed="true"} 1"#,
            r#"tenantry_webhook_denials_total{check="runAsNonRoot"} 2"#,
            "tenantry_webhook_request_duration_seconds_count 2",
            r#"tenantry_webhook_request_duration_seconds_bucket{le="0.0004"} 2"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }
}
