//! Loopback load generator for the webhook (ignored: a measurement, not a check).
//!
//! Starts the real HTTPS server on 127.0.0.1 in its own runtime, opens
//! `TENANTRY_LOAD_CONNECTIONS` keep-alive HTTP/1.1 connections from a second runtime, and has
//! each send the same AdmissionReview in a closed loop for `TENANTRY_LOAD_SECONDS` (after one
//! second of warm-up), timing every request from write to fully read response. Prints
//! p50/p90/p99/p99.9/max latency and reviews per second. `TENANTRY_LOAD_REVIEW` picks the
//! review: `allowed` (a hardened Deployment CREATE, the common case) or `denied` (the recorded
//! Deployment CREATE, denied by seven findings).
//!
//! ```sh
//! cargo test --release -p tenantry-admission \
//!     --test load -- --ignored --nocapture
//! TENANTRY_LOAD_CONNECTIONS=1 ... # latency without queueing
//! ```
//!
//! Client and server share the machine's cores, so the numbers are a lower bound on what the
//! server alone could do.

mod common;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::body::Bytes;
use common::tls::{Client, Pki, Server};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not valid")),
        Err(_) => default,
    }
}

#[test]
#[ignore = "load measurement; run with --release --ignored --nocapture"]
fn loopback_latency_and_throughput() {
    let connections: usize = env_or("TENANTRY_LOAD_CONNECTIONS", 16);
    let seconds: u64 = env_or("TENANTRY_LOAD_SECONDS", 10);
    let which: String = env_or("TENANTRY_LOAD_REVIEW", "allowed".to_owned());
    let (review, allowed) = match which.as_str() {
        "allowed" => (common::hardened_deployment_review(), true),
        "denied" => (common::fixture_json("deployment-create.json"), false),
        other => panic!("TENANTRY_LOAD_REVIEW={other:?}: expected allowed or denied"),
    };
    let body = Bytes::from(serde_json::to_vec(&review).unwrap());
    let expect = format!("\"allowed\":{allowed}");

    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    pki.leaf().write(dir.path());
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()
        .unwrap();
    let server = server_rt.block_on(Server::start(common::state("restricted"), dir.path()));
    let addr = server.addr;
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()
        .unwrap();
    let ca = Arc::new(pki.ca_der());
    let (latencies, elapsed) = client_rt.block_on(async move {
        let mut clients = Vec::new();
        for _ in 0..connections {
            clients.push(Client::connect(addr, &ca).await);
        }
        let warmup_end = Instant::now() + Duration::from_secs(1);
        let end = warmup_end + Duration::from_secs(seconds);
        let tasks: Vec<_> = clients
            .into_iter()
            .map(|mut client| {
                let body = body.clone();
                let expect = expect.clone();
                tokio::spawn(async move {
                    let mut latencies = Vec::with_capacity(100_000);
                    loop {
                        let start = Instant::now();
                        if start >= end {
                            break;
                        }
                        let (status, response) = client
                            .request("POST", "/validate?timeout=5s", body.clone())
                            .await;
                        let took = start.elapsed();
                        assert_eq!(status, 200);
                        assert!(
                            std::str::from_utf8(&response).unwrap().contains(&expect),
                            "unexpected verdict"
                        );
                        if start >= warmup_end {
                            latencies.push(took.as_nanos() as u64);
                        }
                    }
                    latencies
                })
            })
            .collect();
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        (all, Duration::from_secs(seconds))
    });
    server_rt.block_on(server.shutdown());

    let mut sorted = latencies;
    sorted.sort_unstable();
    assert!(!sorted.is_empty(), "no request completed");
    let pct = |p: f64| {
        let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
        sorted[i] as f64 / 1000.0
    };
    let rate = sorted.len() as f64 / elapsed.as_secs_f64();
    println!(
        "webhook loopback: review={which} bytes={} connections={connections} duration={seconds}s \
         requests={} throughput={rate:.0}/s p50={:.0}µs p90={:.0}µs p99={:.0}µs p99.9={:.0}µs max={:.0}µs",
        serde_json::to_vec(&review).unwrap().len(),
        sorted.len(),
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(0.999),
        sorted[sorted.len() - 1] as f64 / 1000.0,
    );
}
