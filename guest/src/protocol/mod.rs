//! The memcached wire protocol, sans I/O: requests are encoded into a byte buffer, replies are
//! parsed from one. Nothing here knows whether bytes travel through a WIT import, tokio or turmoil,
//! so the codec is unit-tested natively and the component stays small.
//!
//! Only the commands the lock uses exist: meta `ms`/`mg`/`md`, `stats` (which process answers),
//! and `mn` for tests.

pub mod reply;
pub mod request;

pub use reply::{
    MetaReply, MetaStatus, ProtocolError, ServerProcess, parse_meta, parse_stats, parse_stored,
};
pub use request::Request;
