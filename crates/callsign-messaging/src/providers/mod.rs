//! The built-in providers, one module each; the [`crate::Registry`] lists them.
pub mod dev;
pub mod mitto;
pub mod sns;
pub mod twilio;
pub mod webhook;
