//! Delivery leases: a worker renews its claims while a send is in flight, so a slow provider is not raced by
//! another worker (a second copy of the message), and a crashed worker's job is taken over after one lease. These
//! tests run the server's workers in the background and wait for them in real time (`common::eventually`).
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use callsign_core::guardian::GuardianConfig;
use callsign_domain::Clock;
use callsign_server::config::Num;
use callsign_store::{Channel, JobStatus};
use common::{PHONE, PW, TestApp, eventually, let_the_workers_poll};
use serde_json::json;

const HOOK: &str = "/api/v2/guardian/factors/phone/providers/phone-message-hook";
/// The lease these tests run with (the shortest allowed is 2 s): renewed every second of real time.
const LEASE_SECS: u64 = 3;

/// A webhook endpoint that counts requests and answers each one only when the test lets it.
#[derive(Clone)]
struct Gate {
    url: String,
    received: Arc<AtomicUsize>,
    release: Arc<tokio::sync::Semaphore>,
}

impl Gate {
    async fn start() -> Gate {
        let received = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(tokio::sync::Semaphore::new(0));
        let (r, g) = (received.clone(), release.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move || {
                let (r, g) = (r.clone(), g.clone());
                async move {
                    r.fetch_add(1, Ordering::SeqCst);
                    g.acquire().await.unwrap().forget();
                    (StatusCode::OK, "ok")
                }
            }),
        );
        Gate { url: format!("{}/hook", common::serve(app).await), received, release }
    }
    fn received(&self) -> usize {
        self.received.load(Ordering::SeqCst)
    }
    async fn wait_for(&self, n: usize) {
        eventually(format!("the endpoint got {n} requests"), async || {
            let got = self.received();
            if got >= n { Ok(()) } else { Err(format!("{got} requests")) }
        })
        .await;
    }
}

/// A user, an application, the phone factor on with the custom provider aimed at `gate`, and an mfa_token.
async fn setup(t: &TestApp, gate: &Gate) -> String {
    let admin = t.mgmt_token().await;
    t.create_user(&admin, "ann@example.com").await;
    let c = t.create_app(&admin, &["password", "http://auth0.com/oauth/grant-type/mfa-oob"]).await;
    let mut g = GuardianConfig::load_for_update(&t.app).await.unwrap();
    g.factors.insert("sms".into(), true);
    g.policies = vec!["all-applications".into()];
    g.message_types = vec!["sms".into()];
    g.save(&t.app).await.unwrap();
    assert_eq!(t.put(&admin, HOOK, json!({"url": gate.url})).await.0, 200);
    let selected = json!({"provider": "phone-message-hook"});
    assert_eq!(t.put(&admin, "/api/v2/guardian/factors/phone/selected-provider", selected).await.0, 200);
    let (s, v) = t.post(&admin, &format!("{HOOK}/secrets"), json!({})).await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = t
        .token_request(json!({"grant_type": "password", "client_id": c["client_id"], "client_secret": c["client_secret"], "username": "ann@example.com", "password": PW}))
        .await;
    assert_eq!((s, v["error"].as_str()), (403, Some("mfa_required")), "{v}");
    v["mfa_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_slow_send_keeps_its_claim_past_the_lease() {
    let t = TestApp::spawn_with_workers(|r| r.delivery_lease_secs = Some(Num(LEASE_SECS))).await;
    assert_eq!(callsign_core::delivery::lease_ms(&t.app), 3_000);
    let gate = Gate::start().await;
    let mfa = setup(&t, &gate).await;
    let r = t
        .http
        .post(t.url("/mfa/associate"))
        .bearer_auth(&mfa)
        .json(&json!({"authenticator_types": ["oob"], "oob_channels": ["sms"], "phone_number": PHONE}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // A worker has the job and is stuck in the provider's request.
    gate.wait_for(1).await;
    let running = t.app.store.list_jobs(Some(JobStatus::Running), 10).await.unwrap();
    assert_eq!(running.len(), 1);
    let job = running[0].clone();
    let claimed_at = t.clock.now();
    assert_eq!(job.claim_expires_at, Some(claimed_at.plus(Duration::from_secs(LEASE_SECS))));

    // Two thirds into the lease (by the clock claims are counted with), a heartbeat moves the expiry on.
    t.clock.advance(Duration::from_secs(2));
    let renewed = eventually("the worker renewed its claim while the send was blocked", async || {
        let j = t.app.store.get_job(&job.id).await.unwrap().unwrap();
        match j.claim_expires_at {
            Some(at) if j.claim_expires_at > job.claim_expires_at => Ok(at),
            other => Err(format!("the claim expires at {other:?}")),
        }
    })
    .await;
    assert!(renewed >= claimed_at.plus(Duration::from_secs(2 + LEASE_SECS)), "now + lease");

    // Past the original expiry, nobody can take the job over: not another claimer, not the other worker.
    t.clock.advance(Duration::from_secs(2));
    assert!(t.clock.now() > job.claim_expires_at.unwrap());
    let stolen = t.app.store.claim_jobs("intruder", t.clock.now(), 3_000, 10).await.unwrap();
    assert!(stolen.is_empty(), "a claim renewed while sending is not stale: {stolen:?}");
    let_the_workers_poll().await; // the idle worker looks, and must leave it alone
    let j = t.app.store.get_job(&job.id).await.unwrap().unwrap();
    assert_eq!((j.status.as_str(), j.claimed_by.as_deref(), j.attempts), ("running", job.claimed_by.as_deref(), 1));
    assert_eq!(gate.received(), 1, "the message went to the provider once");

    // The provider answers; the worker that sent it records the outcome (its claim was never lost).
    gate.release.add_permits(100);
    let done = t.finished(&job.id).await;
    assert_eq!((done.status.as_str(), done.attempts), ("sent", 1));
    assert_eq!(done.details["provider_response"]["status"], 200, "{}", done.details);
    assert_eq!(gate.received(), 1);
    t.stop().await;
}

#[tokio::test]
async fn a_crashed_workers_job_is_taken_over_after_one_lease() {
    let t = TestApp::spawn_with_workers(|r| r.delivery_lease_secs = Some(Num(LEASE_SECS))).await;
    let lease = callsign_core::delivery::lease_ms(&t.app);
    let payload = callsign_core::delivery::Payload {
        to: PHONE.into(),
        text: "hello".into(),
        locale: "en".into(),
        from: None,
        context: Default::default(),
    };
    let mut job = callsign_core::delivery::new_job(&t.app, Channel::Sms, "auth0", &payload, None, None, None).unwrap();
    // Due 30 s from now, so that the "crashed" worker, claiming with that time, takes it before the live ones.
    job.run_at = t.clock.now().plus(Duration::from_secs(30));
    t.app.store.enqueue_job(&job).await.unwrap();
    assert_eq!(t.app.store.claim_jobs("crashed", job.run_at, lease, 10).await.unwrap().len(), 1);

    // Within the lease the claim holds (the live workers poll every second and leave it alone)...
    t.clock.set(job.run_at.plus(Duration::from_millis(2_900)));
    let_the_workers_poll().await;
    assert_eq!(t.app.store.count_dev_messages().await.unwrap(), 0);
    // ...and once it has lapsed without a heartbeat, a live worker sends the message.
    t.clock.advance(Duration::from_millis(101));
    let msgs = t.inbox(PHONE, 1).await;
    assert_eq!(msgs[0].text, "hello");
    let done = t.finished(&job.id).await;
    assert_eq!((done.status.as_str(), done.attempts), ("sent", 2));
    t.stop().await;
}
