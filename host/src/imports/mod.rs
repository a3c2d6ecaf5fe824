//! The component's imports, implemented on [`crate::state::HostState`].

mod clock;
mod credentials;
mod discovery;
mod socket;

pub use clock::{FixedWallClock, TokioMonotonicClock, process_origin};
pub use socket::Connection;
pub(crate) use socket::socket_error;

impl crate::bindings::memlock::lock::types::Host for crate::state::HostState {}
