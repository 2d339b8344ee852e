//! The provider fakes' server (`callsign-fakes`).
pub use callsign_fakes::{Fake, Reply, Seen, dead_url};
