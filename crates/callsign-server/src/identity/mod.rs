//! First-start bootstrap (the Management client and the dashboard's setup link). Keys, tokens, passwords and log
//! events are services in `callsign-core` (`callsign_core::identity`).
pub mod bootstrap;
