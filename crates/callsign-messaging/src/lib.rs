//! Callsign's phone-message providers behind one seam.
//!
//! - [`Provider`]: a provider built once from its typed, validated settings and the shared [`Deps`] (HTTP client,
//!   clock, randomness…), that sends a [`Message`] and answers a [`Receipt`] or a [`SendError`] (retryable or
//!   final), declares its [`Capabilities`], and checks and reads its delivery receipts ([`Provider::parse_callback`]).
//! - [`ProviderKind`]: what a provider is before it is built: its Guardian name, its declared settings
//!   ([`FieldSpec`]), how they are checked, and [`ProviderKind::build`].
//! - [`Registry`]: the kinds this build knows, by name; an unknown name is an error ([`UnknownProvider`]), never a
//!   silent fallback.
//! - [`Router`]: picks the provider for a message from a [`Route`] and records which one handled each [`Attempt`].
//! - [`transport`]: what the HTTP providers share (the client, error classification, body excerpts).
//! - [`providers`]: the built-in providers: `dev` (the development provider), `twilio`, `webhook`.
//!
//! Nothing here knows the store, the HTTP server or the application state: the caller (the core services) reads
//! the settings and secrets, builds the provider through the registry, and records what the router reports.
//!
//! ```no_run
//! # async fn deliver(deps: callsign_messaging::Deps, msg: callsign_messaging::Message,
//! #     values: serde_json::Map<String, serde_json::Value>, token: String) -> Result<(), Box<dyn std::error::Error>> {
//! use callsign_messaging::{ProviderSettings, Registry, Route, Router};
//!
//! let registry = Registry::builtin();
//! let kind = registry.get("twilio")?; // an unknown name is an error, never another provider
//! let settings = ProviderSettings::from_values(values).with_secret("auth_token", token);
//! let provider = kind.build(settings, &deps)?;
//! let attempt = Router::new(deps.clock.clone()).send(&Route::single(provider), &msg).await;
//! match attempt.result {
//!     Ok(receipt) => println!("sent by {}: {}", attempt.provider, receipt.details),
//!     Err(e) if e.retryable => println!("{} failed, try again later: {e}", attempt.provider),
//!     Err(e) => println!("{} failed for good: {e} {}", attempt.provider, e.details),
//! }
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod callback;
pub mod declared;
pub mod health;
pub mod kind;
pub mod message;
pub mod provider;
pub mod providers;
pub mod registry;
pub mod router;
pub mod transport;
pub mod voice;

pub use callback::{Callback, CallbackError, CallbackOutcome, ReceiptState, callback_path, callback_url};
pub use declared::Declared;
pub use health::{BreakerPolicy, BreakerState, Health, Observed, ProviderHealth};
pub use kind::{
    BuildError, Deps, DevInbox, DevMessage, FieldKind, FieldProblem, FieldSpec, GeneratedSecret, GuardianUpdate,
    ProblemKind, ProviderKind, ProviderSettings, Required, SecretState,
};
pub use message::{Action, Message, MessageContext};
pub use provider::{Capabilities, Provider, Receipt, SendError};
pub use registry::{Registry, UnknownProvider};
pub use router::{Attempt, ChainOutcome, Route, Router, Skip, is_provider_fault};
