//! Prometheus metrics at `/metrics`: requests by method, route and status, their
//! latency by route, bytes in and out, and what storage holds (counted at most once a
//! minute: it walks the blobs).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::routes::Route;
use crate::storage::Storage;

/// Latency bucket bounds, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
];

#[derive(Default)]
struct Latency {
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default)]
struct Counts {
    requests: BTreeMap<(String, &'static str, u16), u64>,
    latency: BTreeMap<&'static str, Latency>,
    received: u64,
    sent: u64,
}

/// Request and byte counters for `/metrics` (Prometheus text), shared by the handlers.
#[derive(Default)]
pub struct Metrics {
    counts: Mutex<Counts>,
    /// (when, blob count, blob bytes)
    storage: tokio::sync::Mutex<Option<(Instant, u64, u64)>>,
}

/// The route label of a request path.
pub fn route_label(path: &str) -> &'static str {
    let Some(rest) = path.strip_prefix("/v2") else {
        return match path {
            "/token" => "token",
            "/healthz" => "healthz",
            "/metrics" => "metrics",
            _ => "other",
        };
    };
    match crate::routes::parse(rest.trim_start_matches('/')) {
        Ok(Some(Route::Base)) => "base",
        Ok(Some(Route::Catalog)) => "catalog",
        Ok(Some(Route::Tags { .. })) => "tags",
        Ok(Some(Route::Manifest { .. })) => "manifest",
        Ok(Some(Route::Blob { .. })) => "blob",
        Ok(Some(Route::Uploads { .. } | Route::Upload { .. })) => "upload",
        Ok(Some(Route::Referrers { .. })) => "referrers",
        Ok(None) | Err(_) => "other",
    }
}

impl Metrics {
    /// Counts one answered request: its method, route kind, status, time taken and the
    /// bytes it received and sent.
    pub fn record(
        &self,
        method: &str,
        route: &'static str,
        status: u16,
        elapsed: Duration,
        received: u64,
        sent: u64,
    ) {
        let mut c = self.counts.lock().expect("metrics lock");
        *c.requests
            .entry((method.to_string(), route, status))
            .or_default() += 1;
        let l = c.latency.entry(route).or_default();
        let secs = elapsed.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                l.buckets[i] += 1;
            }
        }
        l.sum += secs;
        l.count += 1;
        c.received += received;
        c.sent += sent;
    }

    /// The text exposition format.
    pub async fn render(&self, storage: &dyn Storage) -> String {
        let (blobs, bytes) = self.storage_usage(storage).await;
        let mut out = String::new();
        {
            let c = self.counts.lock().expect("metrics lock");
            out.push_str("# HELP kiln_registry_requests_total Requests answered, by method, route and status.\n# TYPE kiln_registry_requests_total counter\n");
            for ((method, route, status), n) in &c.requests {
                let _ = writeln!(out, "kiln_registry_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}");
            }
            out.push_str("# HELP kiln_registry_request_duration_seconds Time to answer, by route.\n# TYPE kiln_registry_request_duration_seconds histogram\n");
            for (route, l) in &c.latency {
                for (i, bound) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(out, "kiln_registry_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {}", l.buckets[i]);
                }
                let _ = writeln!(out, "kiln_registry_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}", l.count);
                let _ = writeln!(
                    out,
                    "kiln_registry_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                    l.sum
                );
                let _ = writeln!(
                    out,
                    "kiln_registry_request_duration_seconds_count{{route=\"{route}\"}} {}",
                    l.count
                );
            }
            let _ = writeln!(out, "# HELP kiln_registry_received_bytes_total Request body bytes (by Content-Length).\n# TYPE kiln_registry_received_bytes_total counter\nkiln_registry_received_bytes_total {}", c.received);
            let _ = writeln!(out, "# HELP kiln_registry_sent_bytes_total Response body bytes (by Content-Length).\n# TYPE kiln_registry_sent_bytes_total counter\nkiln_registry_sent_bytes_total {}", c.sent);
        }
        let _ = writeln!(out, "# HELP kiln_registry_storage_blobs Blobs in storage.\n# TYPE kiln_registry_storage_blobs gauge\nkiln_registry_storage_blobs {blobs}");
        let _ = writeln!(out, "# HELP kiln_registry_storage_bytes Bytes of blobs in storage.\n# TYPE kiln_registry_storage_bytes gauge\nkiln_registry_storage_bytes {bytes}");
        out
    }

    async fn storage_usage(&self, storage: &dyn Storage) -> (u64, u64) {
        let mut cached = self.storage.lock().await;
        if let Some((when, n, b)) = *cached {
            if when.elapsed() < Duration::from_secs(60) {
                return (n, b);
            }
        }
        let (mut n, mut b) = (0, 0);
        for alg in storage.list("blobs").await.unwrap_or_default() {
            for hex in storage
                .list(&format!("blobs/{alg}"))
                .await
                .unwrap_or_default()
            {
                if let Ok(Some(meta)) = storage.stat(&format!("blobs/{alg}/{hex}")).await {
                    n += 1;
                    b += meta.size;
                }
            }
        }
        *cached = Some((Instant::now(), n, b));
        (n, b)
    }
}
