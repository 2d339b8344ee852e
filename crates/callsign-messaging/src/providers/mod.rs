//! The built-in providers, one module each; the [`crate::Registry`] lists them.
pub mod dev;
pub mod esendex;
pub mod mitto;
pub mod twilio;
pub mod webhook;
