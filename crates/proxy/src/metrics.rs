//! Prometheus metrics for `/tenantry-proxy/metrics`.
//!
//! The proxy sits on every tenant's path to the API server, so its operators need to see how
//! much of that traffic it answers itself (index, class reads) and how much it forwards, what
//! it adds in time, and whether the token-review cache is doing its job (a low hit rate means
//! a TokenReview per request against the API server). Labels come from closed sets (the route
//! kinds, HTTP status classes, `hit`/`miss`), so the series count stays bounded whatever
//! clients send. Durations are to the response head: a watch or `logs -f` streams on after it.
//! The proxy's own share of a forwarded request (`overhead`: time to the response head less
//! the time the API server took to its head) is a histogram apart, since the API server's
//! tail would otherwise hide the proxy's in `request_duration`. Same shape as the webhook's (`tenantry_admission::metrics`), under `tenantry_proxy_`, with
//! its latency buckets, gauge counting and exposition.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::{Registry, Unit},
};
use std::time::Duration;

use tenantry_admission::metrics::{exposition, latency_buckets, set_count};

/// Where a request went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Answered from the namespace index.
    Index,
    /// A cluster-scoped class read answered as the proxy.
    Cluster,
    /// Forwarded as the caller.
    PassThrough,
    /// Refused before authentication (routing) or at it (401).
    Refused,
}

impl Handled {
    fn as_str(self) -> &'static str {
        match self {
            Self::Index => "index",
            Self::Cluster => "cluster",
            Self::PassThrough => "pass_through",
            Self::Refused => "refused",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReviewLabels {
    result: &'static str,
}

/// The proxy's metrics and their registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Family<RouteLabels, Histogram>,
    overhead: Family<RouteLabels, Histogram>,
    reviews: Family<ReviewLabels, Counter>,
    namespaces: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Register every metric under the `tenantry_proxy_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tenantry_proxy");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests answered, by route (index, cluster, pass_through, refused) and status class",
            requests.clone(),
        );
        // 100 µs .. ~3.3 s: the proxy's own answers take well under a millisecond.
        let duration = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(latency_buckets())
        });
        registry.register_with_unit(
            "request_duration",
            "Time from receiving a request to its response head, by route",
            Unit::Seconds,
            duration.clone(),
        );
        let overhead = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(OVERHEAD_BUCKETS)
        });
        registry.register_with_unit(
            "overhead",
            "The proxy's own time for a request it forwarded (pass_through, cluster): time to \
             the response head less the API server's time to its response head",
            Unit::Seconds,
            overhead.clone(),
        );
        let reviews = Family::<ReviewLabels, Counter>::default();
        registry.register(
            "token_reviews",
            "Bearer tokens authenticated, by whether the review cache answered (hit) or a \
             TokenReview was made (miss)",
            reviews.clone(),
        );
        let namespaces = Gauge::default();
        registry.register(
            "indexed_namespaces",
            "Tenant namespaces in the index",
            namespaces.clone(),
        );
        Self {
            registry,
            requests,
            duration,
            overhead,
            reviews,
            namespaces,
        }
    }

    /// Count one answered request, which took `took` to its response head, `upstream` of it
    /// waiting for the API server (`None`: not forwarded).
    pub fn observe(
        &self,
        handled: Handled,
        status: u16,
        took: Duration,
        upstream: Option<Duration>,
    ) {
        let code = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        let route = handled.as_str();
        self.requests
            .get_or_create(&RequestLabels { route, code })
            .inc();
        self.duration
            .get_or_create(&RouteLabels { route })
            .observe(took.as_secs_f64());
        if let Some(upstream) = upstream {
            self.overhead
                .get_or_create(&RouteLabels { route })
                .observe(took.saturating_sub(upstream).as_secs_f64());
        }
    }

    /// Count one token authentication.
    pub fn review(&self, cache_hit: bool) {
        let result = if cache_hit { "hit" } else { "miss" };
        self.reviews.get_or_create(&ReviewLabels { result }).inc();
    }

    /// Record the index size.
    pub fn set_indexed_namespaces(&self, n: usize) {
        set_count(&self.namespaces, n);
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        exposition(&self.registry)
    }
}

/// The overhead histogram's bucket bounds, in seconds: 10 µs to 100 ms in round steps, fine
/// enough to read a p99 of tens of microseconds, wide enough for a stall.
pub const OVERHEAD_BUCKETS: [f64; 24] = [
    0.000_01, 0.000_015, 0.000_02, 0.000_03, 0.000_05, 0.000_075, 0.000_1, 0.000_15, 0.000_2,
    0.000_3, 0.000_5, 0.000_75, 0.001, 0.001_5, 0.002, 0.003, 0.005, 0.007_5, 0.01, 0.015, 0.02,
    0.03, 0.05, 0.1,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_latency_and_review_cache_hits_are_exposed_by_route() {
        let metrics = Metrics::new();
        let ms = Duration::from_micros;
        metrics.observe(Handled::Index, 200, ms(200), None);
        metrics.observe(Handled::PassThrough, 403, ms(3000), Some(ms(2960)));
        metrics.review(true);
        metrics.review(true);
        metrics.review(false);
        metrics.set_indexed_namespaces(12);
        let text = metrics.encode();
        assert!(!text.contains("overhead_seconds_count{route=\"index\"}"));
        for line in [
            "tenantry_proxy_requests_total{route=\"index\",code=\"2xx\"} 1",
            "tenantry_proxy_requests_total{route=\"pass_through\",code=\"4xx\"} 1",
            "tenantry_proxy_request_duration_seconds_count{route=\"index\"} 1",
            // 40 µs of the 3 ms were the proxy's: in the (30, 50] µs bucket.
            "tenantry_proxy_overhead_seconds_bucket{le=\"0.00003\",route=\"pass_through\"} 0",
            "tenantry_proxy_overhead_seconds_bucket{le=\"0.00005\",route=\"pass_through\"} 1",
            "tenantry_proxy_token_reviews_total{result=\"hit\"} 2",
            "tenantry_proxy_token_reviews_total{result=\"miss\"} 1",
            "tenantry_proxy_indexed_namespaces 12",
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
    }
}
