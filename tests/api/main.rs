//! The integration tests, as one binary: one link step and one `helpers` instead of a copy
//! per file.

mod authorization;
mod big_accounts;
mod browser;
mod cases;
// The benchmark's throwaway cluster, for the test that crashes a database of its own.
#[path = "../../src/cluster.rs"]
mod cluster;
mod database_crash;
mod email_ownership;
mod ended_sessions;
mod conformance;
mod connections;
mod documents;
mod errors;
mod event_log;
mod gate;
mod group_commit;
mod helpers;
mod hygiene;
mod invite_journey;
mod limits;
mod live_feed;
mod mail;
mod mail_limits;
mod membership;
mod metrics;
mod operations;
mod operator;
mod projection_batches;
mod races;
mod replicas;
mod schema;
mod signals;
mod splices;
mod subscriptions;
mod try_it;
mod walkthrough;
