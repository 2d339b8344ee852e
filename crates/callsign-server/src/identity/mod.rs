//! The parts of an authorization server the phone factor stands on: keys and tokens, applications, users, logs.
pub mod bootstrap;
pub mod events;
pub mod passwords;
pub mod signing;
