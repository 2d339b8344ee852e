//! The phone factor: Guardian configuration, templates, the MFA API's services, and delivery.
pub mod config;
pub mod delivery;
pub mod service;
pub mod templates;
pub mod twilio;
pub mod webhook;
