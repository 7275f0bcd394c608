//! The websocket lane: a runtime of its own, its threads at a lower CPU priority, that runs
//! every upgraded websocket (its protocol loop, its subscriptions' reading, resolving and
//! sending).
//!
//! Why: each committed event is sent once per subscriber (resolved and serialised once per
//! selection: `graphql::renders`, `graphql::splices`), so with many subscriptions a burst of
//! commits becomes a burst of work that, on the request workers, queues requests behind it
//! (measured on 2 cores: `members(first: 50)` p50 1.6-1.8× its figure without subscriptions, with
//! 50 subscriptions open and 16 writers; 1.3-1.4× on the lane; docs/benchmarks.md). On threads with
//! a higher nice value the operating system runs requests first whenever both want a core, and
//! subscriptions still get the cycles requests leave. Under overload it is delivery that lags (in
//! the same runs: append-to-subscriber p50 5 ms → 26-40 ms, p99 12-21 ms → 0.19-0.33 s; events wait
//! in the shared feed, or are read again from the table: nothing is skipped or repeated), not the
//! requests. Queries and mutations sent over a websocket share the lane. `ROSTER_WEBSOCKET_NICE=0`
//! keeps the lane at the requests' priority.
//!
//! The lane's runtime ends when the last [`Lane`] clone is dropped (the server's, and each
//! open websocket's), so a stopped server leaves no thread behind.

use std::future::Future;
use tokio::runtime::Handle;
use tokio::sync::mpsc;

/// The lane's default nice value (Linux: higher is lower priority; 0 is the default, 19 the
/// lowest): with CFS weights about a tenth of a request worker's share while both are busy.
pub const DEFAULT_NICE: u8 = 10;

/// A handle to the websocket lane; clones share one runtime.
#[derive(Clone, Debug)]
pub struct Lane {
    handle: Handle,
    _alive: mpsc::Sender<()>,
}

impl Lane {
    /// Starts the lane: a multi-threaded runtime with a worker for every two cores (at least
    /// one), its threads named `roster-websockets` and given nice value `nice` (0..=19; 0
    /// leaves them as they are). Half the cores: a nice value only weighs the threads that
    /// share a core, so fewer lane threads than cores leaves requests cores of their own
    /// (measured on 2 cores: one lane worker kept the queries' p99 lower than two did).
    ///
    /// Errors: the runtime or its holding thread could not be created. Failing to lower the
    /// threads' priority is no error (it is logged): the lane then competes with requests.
    pub fn start(nice: u8) -> std::io::Result<Lane> {
        let workers = (std::thread::available_parallelism().map_or(1, usize::from) / 2).max(1);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("roster-websockets")
            .on_thread_start(move || lower_priority(nice))
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (alive, mut ended) = mpsc::channel::<()>(1);
        // The runtime is dropped on a thread of its own (not inside another runtime, where
        // dropping one panics) once every handle is gone; `None` then, nothing is ever sent.
        std::thread::Builder::new().name("roster-websockets".into()).spawn(move || {
            runtime.block_on(ended.recv());
        })?;
        Ok(Lane { handle, _alive: alive })
    }

    /// Runs `task` on the lane and waits for it; `None` if the lane stopped first.
    pub async fn run<F>(&self, task: F) -> Option<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(task).await.ok()
    }
}

/// Gives the calling thread the nice value `nice` (Linux keeps one per thread). The crate maps
/// its cross-platform values 0..=99 onto nice 19..=-20 for the normal policy; the lane's test
/// reads the value back.
fn lower_priority(nice: u8) {
    use thread_priority::unix::{set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy, ThreadSchedulePolicy};
    use thread_priority::{ThreadPriority, ThreadPriorityValue};
    if nice == 0 {
        return;
    }
    let value = (19 - i32::from(nice.min(19))) * 99 / 39;
    let policy = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other);
    let result = ThreadPriorityValue::try_from(value as u8)
        .map_err(|e| format!("{e:?}"))
        .and_then(|value| set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Crossplatform(value), policy).map_err(|e| format!("{e:?}")));
    if let Err(error) = result {
        tracing::warn!(%error, nice, "could not lower the websocket lane's priority; websockets compete with requests");
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// The calling thread's id, name and nice value, from `/proc/thread-self`.
    fn this_thread() -> (String, String, i32) {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        // Fields after the parenthesised name: state is field 3, nice field 19.
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        let nice = after_name.split(' ').nth(16).unwrap().parse().unwrap();
        let tid = stat.split(' ').next().unwrap().to_string();
        (tid, std::fs::read_to_string("/proc/thread-self/comm").unwrap().trim().to_string(), nice)
    }

    /// Waits until the thread `tid` of this process has ended.
    async fn ended(tid: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::path::Path::new(&format!("/proc/self/task/{tid}")).exists() {
            assert!(Instant::now() < deadline, "the lane's thread {tid} did not end");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn tasks_run_on_threads_of_their_own_at_the_lanes_nice_value_which_end_with_the_last_handle() {
        let (here, _, _) = this_thread();
        for nice in [DEFAULT_NICE, 1, 19, 0] {
            let lane = Lane::start(nice).unwrap();
            let (tid, name, got) = lane.run(async { this_thread() }).await.unwrap();
            assert_ne!(tid, here, "not the caller's thread");
            assert_eq!(name, "roster-websocke", "the thread's name (15 bytes of roster-websockets)");
            assert_eq!(got, i32::from(nice), "nice value asked for");
            let clone = lane.clone();
            drop(lane);
            assert!(clone.run(async {}).await.is_some(), "a clone keeps the lane");
            drop(clone);
            ended(&tid).await;
        }
    }
}
