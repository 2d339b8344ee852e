//! The built-in providers, one module each; the [`crate::Registry`] lists them.
pub mod clicksend;
pub mod dev;
pub mod esendex;
pub mod infobip;
pub mod mitto;
pub mod sns;
pub mod telesign;
pub mod twilio;
pub mod webhook;
