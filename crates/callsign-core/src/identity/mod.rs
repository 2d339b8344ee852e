//! The parts of an authorization server the phone factor stands on: keys and tokens, passwords, log events.
pub mod events;
pub mod passwords;
pub mod signing;

/// The one database connection (Auth0's default name).
pub const DB_CONNECTION: &str = "Username-Password-Authentication";
