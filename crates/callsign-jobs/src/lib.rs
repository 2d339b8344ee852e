//! Durable background work, generic over where jobs are kept ([`Queue`]) and what doing one means ([`Handler`]).
//!
//! A [`Runner`] claims due jobs with a lease, renews the lease every third of it while a batch runs (so only a dead
//! worker's jobs are taken over, after at most one lease), asks the handler to run each job, applies the retry
//! policy (a retryable failure is tried again after an exponential backoff until `max_attempts`; a job claimed more
//! often than that — its workers kept dying — is given up), records the outcome in the queue, and tells the handler
//! about every outcome the queue accepted (once per terminal state: that is where it logs). Between batches a
//! worker waits for the queue's wake-up or one second.
//!
//! Delivery of SMS and voice messages is the first user (`callsign_core::delivery`); log streams and alerts can
//! bring their own queue and handler.
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use callsign_domain::{Clock, Timestamp};
use serde_json::Value;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A claimed job, with what the runner needs to know about it.
#[derive(Debug, Clone)]
pub struct Claimed<J> {
    pub id: String,
    /// Claims so far, this one included.
    pub attempts: i32,
    pub max_attempts: i32,
    pub job: J,
}

/// How one run of a job went, as the handler sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    /// Done; `details` are kept with the job.
    Done(Value),
    /// Failed, and worth trying again later (a timeout, a rate limit, a 5xx).
    Retryable { error: String, details: Value },
    /// Failed for good.
    Final { error: String, details: Value },
    /// No longer wanted (what it was for happened another way); `details` are kept with the job. Terminal, and not
    /// a failure: a delivery handler logs no send event for it.
    Cancelled(Value),
}

/// What the runner records: the retry policy applied to an [`Attempt`].
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Done(Value),
    /// Due again at `run_at`.
    Retry {
        error: String,
        run_at: Timestamp,
    },
    Failed {
        error: String,
        details: Value,
    },
    /// Terminal: no longer wanted ([`Attempt::Cancelled`]).
    Cancelled(Value),
}

impl Outcome {
    pub fn is_terminal(&self) -> bool {
        !matches!(self, Outcome::Retry { .. })
    }
}

/// Where jobs are kept. Claims must be exclusive across processes (a claim is a lease: an expired one may be taken
/// over), and `finish` must apply only while `worker` still holds the claim.
#[async_trait]
pub trait Queue: Send + Sync {
    type Job: Send + Sync;
    /// Claim up to `limit` due jobs (or expired claims) for `worker` until `now + lease_ms`.
    async fn claim(
        &self,
        worker: &str,
        now: Timestamp,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<Claimed<Self::Job>>, BoxError>;
    /// Extend every claim `worker` holds to `now + lease_ms`.
    async fn renew(&self, worker: &str, now: Timestamp, lease_ms: i64) -> Result<u64, BoxError>;
    /// Record an outcome; false when the claim was lost (another worker has the job now).
    async fn finish(
        &self,
        job: &Claimed<Self::Job>,
        worker: &str,
        outcome: &Outcome,
        at: Timestamp,
    ) -> Result<bool, BoxError>;
    /// Wait until a job may be ready, or `max_ms` passes (spurious wake-ups are fine).
    async fn wait(&self, max_ms: u64);
    /// The lane of a claimed job: a batch's jobs of one lane run one after another in claim order, and lanes run at
    /// the same time. `None` (the default) puts a job in the one lane of all such jobs, so a queue that names no
    /// lanes runs its batches one job at a time.
    fn lane(&self, _job: &Claimed<Self::Job>) -> Option<String> {
        None
    }
}

/// The work a job stands for.
#[async_trait]
pub trait Handler<J>: Send + Sync {
    async fn run(&self, job: &Claimed<J>) -> Attempt;
    /// An outcome the queue recorded (a retry, or the terminal state, which happens once per job).
    async fn finished(&self, job: &Claimed<J>, outcome: &Outcome);
}

/// A lane of a batch ([`Queue::lane`]) and its jobs, in claim order.
type Lane<'a, J> = (Option<String>, Vec<&'a Claimed<J>>);

/// Exponential backoff: 2 s, 4 s, 8 s… capped at 5 minutes.
pub fn backoff(attempts: i32) -> Duration {
    let exp = attempts.clamp(1, 16) as u32;
    Duration::from_secs(2u64.saturating_pow(exp).min(300))
}

/// How often a worker renews its claims while it works: a third of the lease, so that two renewals can be late (a
/// slow database, a busy node) before another worker may take a job over.
pub fn heartbeat_every(lease_ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(lease_ms / 3).unwrap_or(0).max(1))
}

/// The retry policy: what to record for `attempt` of a job claimed `attempts` times out of `max`.
pub fn outcome_of(attempt: Attempt, attempts: i32, max: i32, now: Timestamp) -> Outcome {
    match attempt {
        Attempt::Done(d) => Outcome::Done(d),
        Attempt::Cancelled(d) => Outcome::Cancelled(d),
        Attempt::Retryable { error, .. } if attempts < max => {
            Outcome::Retry { error, run_at: now.plus(backoff(attempts)) }
        }
        Attempt::Retryable { error, details } | Attempt::Final { error, details } => Outcome::Failed { error, details },
    }
}

/// Runs one queue's jobs with one handler.
pub struct Runner<Q: Queue, H: Handler<Q::Job>> {
    pub queue: Q,
    pub handler: H,
    pub clock: Arc<dyn Clock>,
    /// How long a claim holds without renewal.
    pub lease_ms: i64,
    /// Jobs claimed at once.
    pub batch: u32,
    /// For logs (`delivery`, …).
    pub name: &'static str,
}

impl<Q: Queue, H: Handler<Q::Job>> Runner<Q, H> {
    /// Run one claimed job: the handler (unless the job was claimed too often), the policy, the record, the report.
    pub async fn process(&self, worker: &str, job: &Claimed<Q::Job>) -> Outcome {
        let outcome = if job.attempts > job.max_attempts {
            // Claimed more often than allowed: earlier workers died holding it. Give up rather than loop forever.
            Outcome::Failed {
                error: format!("gave up after {} attempts (workers stopped while sending)", job.max_attempts),
                details: serde_json::json!({"attempts": job.attempts}),
            }
        } else {
            let attempt = self.handler.run(job).await;
            outcome_of(attempt, job.attempts, job.max_attempts, self.clock.now())
        };
        match self.queue.finish(job, worker, &outcome, self.clock.now()).await {
            Ok(true) => self.handler.finished(job, &outcome).await,
            Ok(false) => {
                tracing::warn!(queue = self.name, job = %job.id, "lost the claim on a job before finishing it; another worker has it")
            }
            Err(e) => tracing::error!(
                queue = self.name,
                job = %job.id,
                error = %e,
                "could not record a job's outcome; it will be run again after its lease"
            ),
        }
        outcome
    }

    /// Renew `worker`'s claims every [`heartbeat_every`] in real time, with the lease counted from the runner's
    /// clock (the clock claims are made with). Never returns; dropped when the batch it guards is done.
    async fn heartbeat(&self, worker: &str) -> std::convert::Infallible {
        let every = heartbeat_every(self.lease_ms);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match self.queue.renew(worker, self.clock.now(), self.lease_ms).await {
                Ok(n) => tracing::trace!(queue = self.name, %worker, jobs = n, "claims renewed"),
                Err(e) => {
                    tracing::warn!(queue = self.name, %worker, error = %e, "could not renew claims; they may be taken over")
                }
            }
        }
    }

    /// Claim and run every job that is due now, until none is left. Returns how many were processed.
    pub async fn run_pending(&self, worker: &str) -> Result<usize, BoxError> {
        let mut n = 0;
        loop {
            let jobs = self.queue.claim(worker, self.clock.now(), self.lease_ms, self.batch).await?;
            if jobs.is_empty() {
                return Ok(n);
            }
            // Lanes in the order of their first job; each lane's jobs in claim order.
            let mut lanes: Vec<Lane<'_, Q::Job>> = Vec::new();
            for job in &jobs {
                let lane = self.queue.lane(job);
                match lanes.iter_mut().find(|(l, _)| *l == lane) {
                    Some((_, list)) => list.push(job),
                    None => lanes.push((lane, vec![job])),
                }
            }
            let batch = futures_util::future::join_all(lanes.iter().map(|(_, list)| async move {
                for job in list {
                    self.process(worker, job).await;
                }
            }));
            tokio::select! {
                _ = batch => {}
                never = self.heartbeat(worker) => match never {},
            }
            n += jobs.len();
        }
    }

    /// A worker: run due jobs; between batches wait for a wake-up (a new job) or at most one second (retries and
    /// other nodes' stale claims become due by time alone). Stops when `stop` flips to true.
    pub async fn run_worker(self: Arc<Self>, worker: String, mut stop: tokio::sync::watch::Receiver<bool>) {
        tracing::debug!(queue = self.name, %worker, "worker started");
        loop {
            if *stop.borrow() {
                break;
            }
            if let Err(e) = self.run_pending(&worker).await {
                tracing::error!(queue = self.name, %worker, error = %e, "worker could not claim jobs");
            }
            tokio::select! {
                () = self.queue.wait(1_000) => {}
                _ = stop.changed() => {}
            }
        }
        tracing::debug!(queue = self.name, %worker, "worker stopped");
    }
}

impl<Q: Queue + 'static, H: Handler<Q::Job> + 'static> Runner<Q, H> {
    /// Start `n` workers named `<node>-<i>`; they stop when `stop` flips.
    pub fn spawn(
        self: &Arc<Self>,
        n: u32,
        node: &str,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        (0..n).map(|i| tokio::spawn(self.clone().run_worker(format!("{node}-{i}"), stop.clone()))).collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use callsign_domain::ManualClock;
    use serde_json::json;
    use std::sync::Mutex;

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(1).as_secs(), 2);
        assert_eq!(backoff(3).as_secs(), 8);
        assert_eq!(backoff(20).as_secs(), 300);
    }

    #[test]
    fn heartbeat_is_a_third_of_the_lease() {
        assert_eq!(heartbeat_every(15_000).as_millis(), 5_000);
        assert_eq!(heartbeat_every(2_000).as_millis(), 666);
        assert_eq!(heartbeat_every(0).as_millis(), 1, "never a zero period (tokio would panic)");
    }

    #[test]
    fn the_retry_policy() {
        let now = Timestamp::from_millis(1_000);
        let retry = || Attempt::Retryable { error: "timeout".into(), details: json!({"x": 1}) };
        assert_eq!(
            outcome_of(retry(), 1, 5, now),
            Outcome::Retry { error: "timeout".into(), run_at: now.plus(backoff(1)) }
        );
        assert_eq!(
            outcome_of(retry(), 5, 5, now),
            Outcome::Failed { error: "timeout".into(), details: json!({"x": 1}) }
        );
        let fin = Attempt::Final { error: "bad number".into(), details: Value::Null };
        assert!(matches!(outcome_of(fin, 1, 5, now), Outcome::Failed { .. }));
        assert_eq!(outcome_of(Attempt::Done(json!(1)), 1, 5, now), Outcome::Done(json!(1)));
        let cancelled = outcome_of(Attempt::Cancelled(json!({"why": "used"})), 5, 5, now);
        assert_eq!(cancelled, Outcome::Cancelled(json!({"why": "used"})));
        assert!(cancelled.is_terminal());
    }

    type J = Claimed<()>;
    fn job(id: &str, attempts: i32) -> J {
        Claimed { id: id.into(), attempts, max_attempts: 3, job: () }
    }

    /// An in-memory queue for the runner's own tests.
    #[derive(Default)]
    struct Mem {
        due: Mutex<Vec<J>>,
        finished: Mutex<Vec<(String, Outcome)>>,
    }

    #[async_trait]
    impl Queue for Mem {
        type Job = ();
        async fn claim(&self, _: &str, _: Timestamp, _: i64, limit: u32) -> Result<Vec<J>, BoxError> {
            let mut due = self.due.lock().unwrap();
            let n = due.len().min(limit as usize);
            Ok(due
                .drain(..n)
                .map(|mut j| {
                    j.attempts += 1;
                    j
                })
                .collect())
        }
        async fn renew(&self, _: &str, _: Timestamp, _: i64) -> Result<u64, BoxError> {
            Ok(0)
        }
        async fn finish(&self, job: &J, _: &str, outcome: &Outcome, _: Timestamp) -> Result<bool, BoxError> {
            self.finished.lock().unwrap().push((job.id.clone(), outcome.clone()));
            if !outcome.is_terminal() {
                self.due.lock().unwrap().push(job.clone());
            }
            Ok(true)
        }
        async fn wait(&self, _: u64) {}
    }

    struct Flaky {
        reported: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl Handler<()> for Flaky {
        async fn run(&self, job: &J) -> Attempt {
            match job.id.as_str() {
                "ok" => Attempt::Done(json!({"sent": true})),
                "bad" => Attempt::Final { error: "refused".into(), details: Value::Null },
                _ => Attempt::Retryable { error: "timeout".into(), details: Value::Null },
            }
        }
        async fn finished(&self, job: &J, outcome: &Outcome) {
            self.reported.lock().unwrap().push(format!("{}:{}", job.id, outcome.is_terminal()));
        }
    }

    #[tokio::test]
    async fn jobs_end_in_one_terminal_state_each_and_retries_stop_at_the_limit() {
        let clock = ManualClock::new(Timestamp::from_millis(0));
        let queue = Mem::default();
        for (id, attempts) in [("ok", 0), ("bad", 0), ("slow", 0), ("dead", 3)] {
            queue.due.lock().unwrap().push(job(id, attempts));
        }
        let runner = Runner {
            queue,
            handler: Flaky { reported: Mutex::new(Vec::new()) },
            clock: Arc::new(clock),
            lease_ms: 15_000,
            batch: 2,
            name: "test",
        };
        // "slow" is retried until its third claim, then fails; "dead" was claimed 4 times (> 3): given up unrun.
        assert_eq!(runner.run_pending("w").await.unwrap(), 6);
        let finished = runner.queue.finished.lock().unwrap().clone();
        let terminal: Vec<&str> = finished.iter().filter(|(_, o)| o.is_terminal()).map(|(id, _)| id.as_str()).collect();
        assert_eq!(terminal.len(), 4, "{finished:?}");
        assert!(
            finished
                .iter()
                .any(|(id, o)| id == "dead" && matches!(o, Outcome::Failed { error, .. } if error.contains("gave up")))
        );
        assert_eq!(finished.iter().filter(|(id, _)| id == "slow").count(), 3);
        let reported = runner.handler.reported.lock().unwrap().clone();
        assert_eq!(reported.iter().filter(|r| r.ends_with(":true")).count(), 4, "{reported:?}");
    }

    /// A queue whose jobs name their lane (the job is the lane's name).
    #[derive(Default)]
    struct Laned {
        due: Mutex<Vec<Claimed<String>>>,
    }

    #[async_trait]
    impl Queue for Laned {
        type Job = String;
        async fn claim(&self, _: &str, _: Timestamp, _: i64, limit: u32) -> Result<Vec<Claimed<String>>, BoxError> {
            let mut due = self.due.lock().unwrap();
            let n = due.len().min(limit as usize);
            Ok(due.drain(..n).collect())
        }
        async fn renew(&self, _: &str, _: Timestamp, _: i64) -> Result<u64, BoxError> {
            Ok(0)
        }
        async fn finish(&self, _: &Claimed<String>, _: &str, _: &Outcome, _: Timestamp) -> Result<bool, BoxError> {
            Ok(true)
        }
        async fn wait(&self, _: u64) {}
        fn lane(&self, job: &Claimed<String>) -> Option<String> {
            Some(job.job.clone())
        }
    }

    /// Counts the jobs running at once and the order each lane's jobs ran in.
    #[derive(Default)]
    struct Slow {
        running: std::sync::atomic::AtomicUsize,
        most: std::sync::atomic::AtomicUsize,
        ran: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl Handler<String> for Slow {
        async fn run(&self, job: &Claimed<String>) -> Attempt {
            use std::sync::atomic::Ordering::SeqCst;
            let now = self.running.fetch_add(1, SeqCst) + 1;
            self.most.fetch_max(now, SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.ran.lock().unwrap().push(job.id.clone());
            self.running.fetch_sub(1, SeqCst);
            Attempt::Done(Value::Null)
        }
        async fn finished(&self, _: &Claimed<String>, _: &Outcome) {}
    }

    #[tokio::test]
    async fn a_batch_runs_its_lanes_at_once_and_each_lane_in_order() {
        let queue = Laned::default();
        for (id, lane) in [("a1", "a"), ("b1", "b"), ("a2", "a"), ("c1", "c"), ("a3", "a"), ("d1", "d")] {
            queue.due.lock().unwrap().push(Claimed { id: id.into(), attempts: 1, max_attempts: 3, job: lane.into() });
        }
        let runner = Runner {
            queue,
            handler: Slow::default(),
            clock: Arc::new(ManualClock::new(Timestamp::from_millis(0))),
            lease_ms: 15_000,
            batch: 10,
            name: "test",
        };
        assert_eq!(runner.run_pending("w").await.unwrap(), 6);
        assert_eq!(runner.handler.most.load(std::sync::atomic::Ordering::SeqCst), 4, "four lanes at once");
        let ran = runner.handler.ran.lock().unwrap().clone();
        let a: Vec<&str> = ran.iter().map(String::as_str).filter(|id| id.starts_with('a')).collect();
        assert_eq!(a, ["a1", "a2", "a3"], "one lane's jobs one after another, in claim order: {ran:?}");
    }
}
