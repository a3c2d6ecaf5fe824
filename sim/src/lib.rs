//! memlock's deterministic simulation: the real component, in several simulated clients, against
//! fake memcached servers in a turmoil world, under proptest-generated fault schedules.
//!
//! - [`fake`]: the fake memcached (sans-IO engine + async server), checked against real memcached
//!   by `tests/differential.rs`;
//! - [`schedule`]: cases (seed, shape, faults), their generator and their one-line text form;
//! - [`world`]: one run of a case; [`workload`]: what each client does; [`runner`]: many cases
//!   through proptest, shrinking failures;
//! - [`history`] and [`check`]: the recorded events and the properties checked on them;
//! - [`net`]: the component's socket import over `turmoil::net`; [`resource`]: the guarded
//!   resource that checks fencing tokens.

pub mod check;
pub mod fake;
pub mod history;
pub mod net;
pub mod resource;
pub mod runner;
pub mod schedule;
pub mod workload;
pub mod world;
