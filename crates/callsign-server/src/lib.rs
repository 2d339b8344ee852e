//! Callsign's server: configuration, HTTP surfaces, services and the `callsign` binary's commands.
#![forbid(unsafe_code)]

pub mod app;
pub mod config;
pub mod dashboard;
pub mod db;
pub mod http;
pub mod identity;
pub mod keys;
pub mod login;
pub mod metrics;
pub mod tls;
pub mod web;

/// Start-up and command errors, where the message is what matters.
pub use callsign_core::{BoxError, BoxResult};
