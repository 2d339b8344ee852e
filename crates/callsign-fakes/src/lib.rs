//! A small HTTP/1.1 server for the provider tests (hyper, no framework): every request is recorded; a check
//! function refuses requests that break the provider's documented wire format; otherwise the next scripted reply
//! is answered, or the default one. One module per provider builds a strict fake of its API on it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod clicksend;
pub mod esendex;
pub mod infobip;
pub mod mitto;
pub mod sns;
pub mod telesign;

/// What an accepted provider request delivered: the channel (`sms` or `voice`), the recipient in E.164 (with
/// `+`), and the text (the SMS body, or the script a voice call reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub channel: &'static str,
    pub to: String,
    pub text: String,
}

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

/// A request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// Names in lowercase.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The status the fake answered.
    pub status: u16,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    /// The body as a form.
    pub fn form(&self) -> Vec<(String, String)> {
        serde_urlencoded::from_bytes(&self.body).unwrap_or_default()
    }
    /// One form field.
    pub fn field(&self, key: &str) -> Option<String> {
        self.form().into_iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
    /// The path without its query string.
    pub fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or("")
    }
    /// The `(user, password)` of an `Authorization: Basic` header.
    pub fn basic_auth(&self) -> Option<(String, String)> {
        use base64::Engine as _;
        let v = self.header("authorization")?.strip_prefix("Basic ")?;
        let raw = base64::engine::general_purpose::STANDARD.decode(v.trim()).ok()?;
        let s = String::from_utf8(raw).ok()?;
        let (u, p) = s.split_once(':')?;
        Some((u.to_owned(), p.to_owned()))
    }
    /// Whether the `content-type` header's media type (before any `;`) is `media`.
    pub fn content_type_is(&self, media: &str) -> bool {
        self.header("content-type")
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| m.trim().eq_ignore_ascii_case(media))
    }
}

/// What the fake answers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub content_type: &'static str,
    /// Wait this long before answering (timeouts).
    pub delay: Option<Duration>,
}

impl Reply {
    pub fn json(status: u16, body: serde_json::Value) -> Reply {
        Reply { status, body: body.to_string(), content_type: "application/json", delay: None }
    }
    pub fn xml(status: u16, body: &str) -> Reply {
        Reply { status, body: body.to_owned(), content_type: "application/xml", delay: None }
    }
    pub fn text(status: u16, body: &str) -> Reply {
        Reply { status, body: body.to_owned(), content_type: "text/plain", delay: None }
    }
    pub fn after(mut self, d: Duration) -> Reply {
        self.delay = Some(d);
        self
    }
}

/// Refuse a request (`Err(reply)`) or let it through.
pub type Check = dyn Fn(&Seen) -> Result<(), Reply> + Send + Sync;
/// The answer to the `n`th accepted request (from 1) when nothing is scripted.
pub type Answer = dyn Fn(&Seen, usize) -> Reply + Send + Sync;

struct State {
    script: VecDeque<Reply>,
    seen: Vec<Seen>,
    accepted: usize,
}

#[derive(Clone)]
pub struct Fake {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl Fake {
    pub async fn start(check: Box<Check>, default: Box<Answer>) -> Fake {
        let state = Arc::new(Mutex::new(State { script: VecDeque::new(), seen: Vec::new(), accepted: 0 }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let check: Arc<Check> = Arc::from(check);
        let default: Arc<Answer> = Arc::from(default);
        let st = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let (st, check, default) = (st.clone(), check.clone(), default.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req: hyper::Request<Incoming>| {
                        let (st, check, default) = (st.clone(), check.clone(), default.clone());
                        async move { Ok::<_, Infallible>(handle(req, &st, check.as_ref(), default.as_ref()).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Fake { url, state }
    }

    /// Answer the next accepted request with `reply` (in order), then the default again.
    pub fn then(&self, reply: Reply) {
        self.state.lock().unwrap().script.push_back(reply);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// The only request seen.
    pub fn one(&self) -> Seen {
        let seen = self.seen();
        assert_eq!(seen.len(), 1, "{seen:?}");
        seen.into_iter().next().unwrap()
    }
}

async fn handle(
    req: hyper::Request<Incoming>,
    st: &Mutex<State>,
    check: &Check,
    default: &Answer,
) -> hyper::Response<Full<Bytes>> {
    let method = req.method().to_string();
    let path = req.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default();
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_ascii_lowercase(), v.to_str().unwrap_or("\u{fffd}").to_owned()))
        .collect();
    let body = req.into_body().collect().await.map(|b| b.to_bytes().to_vec()).unwrap_or_default();
    let mut seen = Seen { method, path, headers, body, status: 0 };
    let reply = {
        let mut st = st.lock().unwrap();
        let reply = match check(&seen) {
            Err(refusal) => refusal,
            Ok(()) => {
                st.accepted += 1;
                let n = st.accepted;
                st.script.pop_front().unwrap_or_else(|| default(&seen, n))
            }
        };
        seen.status = reply.status;
        st.seen.push(seen);
        reply
    };
    if let Some(d) = reply.delay {
        tokio::time::sleep(d).await;
    }
    hyper::Response::builder()
        .status(reply.status)
        .header("content-type", reply.content_type)
        .body(Full::new(Bytes::from(reply.body)))
        .unwrap()
}

/// A URL nothing listens on.
pub async fn dead_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}
