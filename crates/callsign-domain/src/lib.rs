//! Callsign's domain: types, validation and policies. No I/O lives here.
#![forbid(unsafe_code)]

pub mod channel;
pub mod clock;
pub mod color;
pub mod hash;
pub mod ids;
pub mod kinds;
pub mod net;
pub mod otp;
pub mod phone;
pub mod rng;
pub mod scopes;
pub mod seal;
pub mod secret;
pub mod user;
pub mod web_origin;

pub use channel::Channel;
pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use rng::{OsRandom, RandomSource, SeededRandom};
pub use secret::Secret;
