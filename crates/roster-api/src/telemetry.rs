//! What `GET /metrics` shows, in Prometheus text: one recorder per server (never the process's
//! global one, so several servers in one process, as in the tests, keep their own counts).
//!
//! Series (all prefixed `roster_`):
//! - `graphql_requests_total{operation, outcome}`: one per root field of each GraphQL
//!   operation (`operation` is the schema's field name, never a client-chosen alias or
//!   operation name, so the label stays bounded); `outcome` is `ok` or the error's
//!   `extensions.code`. A document refused before it runs (unknown fields, too complex, …)
//!   counts once, as operation `(none)`, whatever fields it names.
//! - `command_duration_seconds{command, outcome}`: a histogram of mutation latency, seconds.
//! - `projection_lag_events{projection}` and `projection_checkpoint{projection}`: read at
//!   scrape time.
//! - `db_pool_connections{state="open"|"idle"}` and `db_pool_max_connections`: the pool, at
//!   scrape time.
//! - `subscriptions_open`: the subscriptions streaming now (the application's own count, read
//!   at scrape time).
//! - `subscription_delivery_seconds`: a histogram of how long each event recorded after its
//!   subscription started took from its append's transaction (`recordedAt`, the database's
//!   clock) to its subscriber's stream, seconds: what the websocket lane's lower priority
//!   costs subscribers when the machine is saturated (`crate::lane`). Catch-up events are not
//!   counted (they are as old as the history asked for).

use metrics::{counter, gauge, histogram, with_local_recorder};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use roster_projections::ProjectionStatus;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Histogram buckets for command latency, in seconds: 1 ms to 10 s.
const LATENCY_BUCKETS: [f64; 13] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Histogram samples between upkeeps: without a scrape they would pile up unbounded.
const UPKEEP_EVERY: u64 = 4096;

/// One server's metrics. Cheap to clone.
#[derive(Clone)]
pub struct Telemetry(Arc<Inner>);

struct Inner {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    samples: AtomicU64,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    /// A fresh recorder with the series described (names, units and help text).
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full("roster_command_duration_seconds".into()), &LATENCY_BUCKETS)
            .expect("the buckets are not empty")
            .set_buckets_for_metric(Matcher::Full("roster_subscription_delivery_seconds".into()), &LATENCY_BUCKETS)
            .expect("the buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        with_local_recorder(&recorder, || {
            metrics::describe_counter!("roster_graphql_requests_total", "GraphQL root fields run, by operation (field name) and outcome (ok or the error code)");
            metrics::describe_histogram!("roster_command_duration_seconds", metrics::Unit::Seconds, "Mutation latency, by command and outcome");
            metrics::describe_gauge!("roster_projection_lag_events", "Events committed after the projection's checkpoint");
            metrics::describe_gauge!("roster_projection_checkpoint", "The last global position a projection applied");
            metrics::describe_gauge!("roster_db_pool_connections", "Database pool connections, open and idle");
            metrics::describe_gauge!("roster_db_pool_max_connections", "The pool's largest size");
            metrics::describe_gauge!("roster_subscriptions_open", "GraphQL subscriptions currently streaming");
            metrics::describe_histogram!("roster_subscription_delivery_seconds", metrics::Unit::Seconds, "From a live event's append to its subscriber's stream");
        });
        Self(Arc::new(Inner { recorder, handle, samples: AtomicU64::new(0) }))
    }

    /// Counts one root field of a GraphQL operation: `operation` a schema field name,
    /// `outcome` `ok` or an `extensions.code`.
    pub fn count_request(&self, operation: &str, outcome: &str) {
        let labels = [("operation", operation.to_string()), ("outcome", outcome.to_string())];
        with_local_recorder(&self.0.recorder, || counter!("roster_graphql_requests_total", &labels).increment(1));
    }

    /// Records how long mutation `command` took, in seconds, and how it ended.
    pub fn observe_command(&self, command: &str, outcome: &str, seconds: f64) {
        let labels = [("command", command.to_string()), ("outcome", outcome.to_string())];
        with_local_recorder(&self.0.recorder, || histogram!("roster_command_duration_seconds", &labels).record(seconds));
        self.sampled();
    }

    /// The histogram of how long live events take from their append to a subscriber's
    /// stream, for one subscription to record into: looked up once, not per event (every
    /// event is recorded once per subscriber).
    pub fn deliveries(&self) -> Deliveries {
        let histogram = with_local_recorder(&self.0.recorder, || histogram!("roster_subscription_delivery_seconds"));
        Deliveries { histogram, telemetry: self.clone() }
    }

    /// Counts a histogram sample, and every [`UPKEEP_EVERY`] folds the samples into the
    /// histograms (without a scrape they would pile up unbounded).
    fn sampled(&self) {
        if self.0.samples.fetch_add(1, Ordering::Relaxed) % UPKEEP_EVERY == UPKEEP_EVERY - 1 {
            self.0.handle.run_upkeep();
        }
    }

    /// The Prometheus text, with the scrape-time gauges set first from `pool` (open and idle
    /// connections, and its largest size), `projections` (checkpoint and lag each) and the
    /// number of `subscriptions` streaming.
    pub fn render(&self, pool: &sqlx::PgPool, projections: &[ProjectionStatus], subscriptions: usize) -> String {
        with_local_recorder(&self.0.recorder, || {
            gauge!("roster_subscriptions_open").set(subscriptions as f64);
            gauge!("roster_db_pool_connections", "state" => "open").set(f64::from(pool.size()));
            gauge!("roster_db_pool_connections", "state" => "idle").set(pool.num_idle() as f64);
            gauge!("roster_db_pool_max_connections").set(f64::from(pool.options().get_max_connections()));
            for p in projections {
                gauge!("roster_projection_lag_events", "projection" => p.name).set(p.lag as f64);
                gauge!("roster_projection_checkpoint", "projection" => p.name).set(p.checkpoint as f64);
            }
        });
        self.0.handle.render()
    }
}

/// One subscription's handle on `roster_subscription_delivery_seconds` ([`Telemetry::deliveries`]).
pub struct Deliveries {
    histogram: metrics::Histogram,
    telemetry: Telemetry,
}

impl Deliveries {
    /// Records how long a live event took from its append to the subscriber's stream, seconds.
    pub fn observe(&self, seconds: f64) {
        self.histogram.record(seconds);
        self.telemetry.sampled();
    }
}
