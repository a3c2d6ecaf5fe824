//! The lock's outcome paths against a scripted host: a small in-memory memcached (items, CAS
//! counter, restarts) and faults injected at exact requests — a reply lost after the server
//! applied the request or before it did, a server that stalls and applies the request late, a
//! restart between two operations. These tests catch defects in the lock core without the
//! simulation; the simulation then checks the same rules under generated schedules.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::format;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Clients made so far, to give each its own random sequence.
static CLIENTS: AtomicU64 = AtomicU64::new(1);
use std::string::{String, ToString};
use std::vec::Vec;

use super::MemcachedLock;
use crate::driver::{ConnectionParams, Host, SocketError};
use crate::error::Code;

/// What happens to the next request that starts with a given command (`ms`, `md`, `mg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// The server applies the request; the reply is lost and the connection is reset.
    ApplyThenReset,
    /// The connection is reset before the server reads the request.
    ResetBeforeApply,
    /// The server stalls: no reply within the timeout; it applies the request later, before
    /// the next request it reads.
    StallThenApply,
}

#[derive(Default)]
struct Server {
    /// Which process this is: a connection to an earlier one is closed.
    generation: u64,
    pid: u64,
    started_at: u64,
    items: BTreeMap<Vec<u8>, (Vec<u8>, u64)>,
    next_cas: u64,
    /// Faults by command, consumed in order.
    faults: VecDeque<(&'static str, Fault)>,
    /// A request the stalled server has read but not applied yet.
    late: Option<Vec<u8>>,
    /// Every request line received, for assertions.
    log: Vec<String>,
}

impl Server {
    fn new() -> Self {
        Server {
            pid: 7,
            started_at: 1_000,
            next_cas: 1,
            ..Server::default()
        }
    }

    /// Loses every item and restarts the CAS counter, as memcached does.
    fn restart(&mut self, pid: u64, started_at: u64) {
        self.items.clear();
        self.next_cas = 1;
        self.late = None;
        self.generation += 1;
        (self.pid, self.started_at) = (pid, started_at);
    }

    fn apply(&mut self, request: &[u8]) -> Vec<u8> {
        let text = String::from_utf8_lossy(request).into_owned();
        let (line, data) = text.split_once("\r\n").unwrap_or((&text, ""));
        let value = data
            .strip_suffix("\r\n")
            .unwrap_or(data)
            .as_bytes()
            .to_vec();
        if line == "stats" {
            return format!(
                "STAT pid {}\r\nSTAT uptime 10\r\nSTAT time {}\r\nEND\r\n",
                self.pid,
                self.started_at + 10
            )
            .into_bytes();
        }
        let words: Vec<&str> = line.split(' ').collect();
        let key = words[1].as_bytes().to_vec();
        let flag = |f: char| words[2..].iter().find_map(|w| w.strip_prefix(f));
        let opaque = flag('O').map(|o| format!(" O{o}")).unwrap_or_default();
        let cas_flag: Option<u64> = flag('C').and_then(|c| c.parse().ok());
        let status = match words[0] {
            "ms" if flag('M') == Some("E") => {
                if self.items.contains_key(&key) {
                    "NS c0".to_string()
                } else {
                    let cas = self.store(key, value);
                    format!("HD c{cas}")
                }
            }
            "ms" => match self.items.get(&key).map(|(_, cas)| *cas) {
                None => "NF c0".to_string(),
                Some(cas) if Some(cas) != cas_flag => "EX c0".to_string(),
                Some(_) => {
                    let cas = self.store(key, value);
                    format!("HD c{cas}")
                }
            },
            "md" => match self.items.get(&key).map(|(_, cas)| *cas) {
                None => "NF".to_string(),
                Some(cas) if Some(cas) != cas_flag => "EX".to_string(),
                Some(_) => {
                    self.items.remove(&key);
                    "HD".to_string()
                }
            },
            "mg" => match self.items.get(&key) {
                None => "EN".to_string(),
                Some((value, cas)) => {
                    let value = String::from_utf8_lossy(value).into_owned();
                    return format!("VA {} c{cas}{opaque}\r\n{value}\r\n", value.len())
                        .into_bytes();
                }
            },
            other => panic!("the scripted server does not know {other}"),
        };
        format!("{status}{opaque}\r\n").into_bytes()
    }

    /// Applies every command in `request` (a `stats` and an `mg` can share one write).
    fn apply_all(&mut self, request: &[u8]) -> Vec<u8> {
        let mut reply = Vec::new();
        let mut rest = request;
        while !rest.is_empty() {
            let line_end = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .expect("a whole line")
                + 2;
            let end = if rest.starts_with(b"ms ") {
                let data = &rest[line_end..];
                line_end + data.windows(2).position(|w| w == b"\r\n").expect("data") + 2
            } else {
                line_end
            };
            reply.extend(self.apply(&rest[..end]));
            rest = &rest[end..];
        }
        reply
    }

    fn store(&mut self, key: Vec<u8>, value: Vec<u8>) -> u64 {
        let cas = self.next_cas;
        self.next_cas += 1;
        self.items.insert(key, (value, cas));
        cas
    }

    fn exchange(&mut self, stream: u64, request: &[u8]) -> Result<Vec<u8>, SocketError> {
        if stream != self.generation {
            return Err(SocketError::Closed);
        }
        if let Some(late) = self.late.take() {
            self.apply_all(&late);
        }
        // The connection handshake (stats, the incarnation item) is never faulted.
        if is_handshake(request) {
            return Ok(self.apply_all(request));
        }
        let line = String::from_utf8_lossy(request)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        self.log.push(line.clone());
        let command = line.split(' ').next().unwrap_or_default();
        let fault = self
            .faults
            .iter()
            .position(|(c, _)| *c == command)
            .and_then(|i| self.faults.remove(i))
            .map(|(_, f)| f);
        match fault {
            None => Ok(self.apply_all(request)),
            Some(Fault::ApplyThenReset) => {
                self.apply_all(request);
                Err(SocketError::Closed)
            }
            Some(Fault::ResetBeforeApply) => Err(SocketError::Closed),
            Some(Fault::StallThenApply) => {
                self.late = Some(request.to_vec());
                Err(SocketError::TimedOut)
            }
        }
    }
}

/// The incarnation item's key as sent (base64).
fn incarnation_wire() -> String {
    let key =
        crate::key::LockKey::internal(crate::driver::connection::INCARNATION_KEY, 250).unwrap();
    String::from_utf8(key.wire().to_vec()).unwrap()
}

fn is_handshake(request: &[u8]) -> bool {
    request.starts_with(b"stats")
        || String::from_utf8_lossy(request).contains(&format!(" {} ", incarnation_wire()))
}

/// A [`Host`] whose one server is a [`Server`]; time moves only when the lock sleeps or a
/// request times out.
struct Scripted {
    /// Every sleep reports a cancelled call.
    cancel_sleeps: std::cell::Cell<bool>,
    /// Shared by every lock of one test: several clients of one server.
    server: Rc<RefCell<Server>>,
    now: RefCell<u64>,
    random: RefCell<u64>,
    /// Replies to requests `send` wrote, for `receive`.
    unread: RefCell<Vec<u8>>,
}

impl Scripted {
    fn new(server: Rc<RefCell<Server>>) -> Self {
        Scripted {
            cancel_sleeps: std::cell::Cell::new(false),
            server,
            unread: RefCell::new(Vec::new()),
            now: RefCell::new(1_000_000_000),
            // Each client its own random sequence, as real clients have.
            random: RefCell::new(
                CLIENTS
                    .fetch_add(1, Ordering::Relaxed)
                    .wrapping_mul(0x1234_5678),
            ),
        }
    }
}

impl Host for Scripted {
    /// The server generation the connection was opened to.
    type Stream = u64;

    fn connect(
        &self,
        _host: &str,
        _port: u16,
        _timeout_ms: u32,
        _tls: Option<&crate::security::Tls>,
    ) -> Result<u64, SocketError> {
        Ok(self.server.borrow().generation)
    }

    fn exchange(
        &self,
        stream: &u64,
        request: &[u8],
        _max_bytes: u32,
        timeout_ms: u32,
        reply: &mut Vec<u8>,
    ) -> Result<(), SocketError> {
        let result = self.server.borrow_mut().exchange(*stream, request);
        if result == Err(SocketError::TimedOut) {
            *self.now.borrow_mut() += u64::from(timeout_ms) * 1_000_000;
        }
        reply.extend(result?);
        Ok(())
    }

    fn send(&self, stream: &u64, request: &[u8], _timeout_ms: u32) -> Result<(), SocketError> {
        let reply = self.server.borrow_mut().exchange(*stream, request);
        match reply {
            // A stalled request: nothing to read later.
            Err(SocketError::TimedOut) => Ok(()),
            Err(e) => Err(e),
            Ok(bytes) => {
                self.unread.borrow_mut().extend(bytes);
                Ok(())
            }
        }
    }

    fn receive(
        &self,
        _stream: &u64,
        _max_bytes: u32,
        timeout_ms: u32,
        reply: &mut Vec<u8>,
    ) -> Result<(), SocketError> {
        let mut unread = self.unread.borrow_mut();
        if !unread.is_empty() {
            reply.append(&mut unread);
            return Ok(());
        }
        *self.now.borrow_mut() += u64::from(timeout_ms) * 1_000_000;
        Err(SocketError::TimedOut)
    }

    fn now_ns(&self) -> u64 {
        *self.now.borrow()
    }

    fn sleep_ns(&self, ns: u64) -> bool {
        *self.now.borrow_mut() += ns;
        !self.cancel_sleeps.get()
    }

    fn random_u64(&self) -> u64 {
        let mut state = self.random.borrow_mut();
        // splitmix64: distinct owner tokens, deterministic tests.
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn resolve_all(&self, _: Option<&str>, _: &str) -> Result<Vec<ConnectionParams>, String> {
        Ok(Vec::new())
    }

    fn lookup_credential(
        &self,
        _: Option<&str>,
        _: &str,
    ) -> Result<Option<ConnectionParams>, String> {
        Ok(None)
    }
}

fn open_lock() -> MemcachedLock<Scripted> {
    open_lock_on(Rc::new(RefCell::new(Server::new())))
}

/// Another client of the same server.
fn open_lock_on(server: Rc<RefCell<Server>>) -> MemcachedLock<Scripted> {
    let mut lock = MemcachedLock::new(Scripted::new(server));
    lock.configure(&[
        ("connection.host", "127.0.0.1"),
        ("connection.port", "11211"),
        ("options.timeout", "200"),
    ])
    .expect("configure");
    lock.open(None).expect("open");
    lock
}

fn inject(lock: &MemcachedLock<Scripted>, command: &'static str, fault: Fault) {
    lock.host()
        .server
        .borrow_mut()
        .faults
        .push_back((command, fault));
}

/// Lock items on the server (the incarnation item is not one).
fn items(lock: &MemcachedLock<Scripted>) -> usize {
    lock_items(lock).len()
}

fn lock_items(lock: &MemcachedLock<Scripted>) -> Vec<(Vec<u8>, Vec<u8>, u64)> {
    let wire = incarnation_wire().into_bytes();
    let server = lock.host().server.borrow();
    server
        .items
        .iter()
        .filter(|(key, _)| **key != wire)
        .map(|(key, (value, cas))| (key.clone(), value.clone(), *cas))
        .collect()
}

/// Requests the server received that start with `prefix`.
fn sent(lock: &MemcachedLock<Scripted>, prefix: &str) -> usize {
    let server = lock.host().server.borrow();
    server.log.iter().filter(|l| l.starts_with(prefix)).count()
}

fn stored_cas(lock: &MemcachedLock<Scripted>) -> Option<u64> {
    lock_items(lock).first().map(|(_, _, cas)| *cas)
}

/// Replaces every lock item by one of another owner, as if ours expired and theirs was stored.
fn someone_else_holds_job(lock: &MemcachedLock<Scripted>) {
    let wire = incarnation_wire().into_bytes();
    let mut server = lock.host().server.borrow_mut();
    server.items.retain(|key, _| *key == wire);
    server.store(
        b"am9i".to_vec(),
        b"ffffffffffffffffffffffffffffffff".to_vec(),
    );
}

#[test]
fn an_acquire_applied_before_its_reply_was_lost_is_adopted_not_resent() {
    let mut lock = open_lock();
    inject(&lock, "ms", Fault::ApplyThenReset);
    let lease = lock
        .try_acquire(None, b"job", 2_000)
        .expect("no error")
        .expect("held: the lookup found our token");
    assert_eq!(stored_cas(&lock), Some(lease.cas));
    let adds = sent(&lock, "ms ");
    assert_eq!(adds, 1, "the add was not sent twice");
}

#[test]
fn an_acquire_lost_before_the_server_read_it_is_sent_again_once() {
    let mut lock = open_lock();
    inject(&lock, "ms", Fault::ResetBeforeApply);
    let lease = lock
        .try_acquire(None, b"job", 2_000)
        .expect("no error")
        .expect("held after one re-send");
    assert_eq!(stored_cas(&lock), Some(lease.cas));
}

#[test]
fn a_stalled_acquire_is_an_orphan_deleted_owner_checked_before_the_next_operation() {
    let mut lock = open_lock();
    inject(&lock, "ms", Fault::StallThenApply);
    let error = lock
        .try_acquire(None, b"job", 30_000)
        .expect_err("timed out");
    assert_eq!(error.code, Code::Timeout);
    // The next operation on that server first finds the late-applied item and deletes it.
    let lease = lock
        .try_acquire(None, b"job", 30_000)
        .expect("no error")
        .expect("the orphan no longer blocks the key");
    assert_eq!(items(&lock), 1);
    assert_eq!(stored_cas(&lock), Some(lease.cas));
}

#[test]
fn a_release_whose_cas_moved_deletes_nothing_of_another_owner() {
    let mut lock = open_lock();
    let lease = lock.try_acquire(None, b"job", 2_000).unwrap().unwrap();
    // Another owner's item under the same key (ours expired, theirs was stored).
    someone_else_holds_job(&lock);
    assert_eq!(
        lock.release(None, &lease),
        Ok(false),
        "EX, then token mismatch"
    );
    assert_eq!(items(&lock), 1, "the other owner's item is still there");
}

/// A restart, then a new holder whose item gets the stale lease's CAS again (CAS counters restart
/// with the process); the stale release and extend must touch nothing. `new_pid` is the restarted
/// process's pid: the same one (memcached as pid 1 in a container, restarted within the second,
/// so `stats` reports the same pid and start) or another.
fn stale_lease_after_a_restart(new_pid: u64, new_start: u64) {
    let server = Rc::new(RefCell::new(Server::new()));
    let mut stale = open_lock_on(server.clone());
    let lease = stale.try_acquire(None, b"job", 2_000).unwrap().unwrap();
    server.borrow_mut().restart(new_pid, new_start);
    let mut holder = open_lock_on(server.clone());
    let theirs = holder.try_acquire(None, b"job", 2_000).unwrap().unwrap();
    assert_eq!(
        theirs.cas, lease.cas,
        "CAS counters restart: the same number again"
    );
    assert_eq!(stale.release(None, &lease), Ok(false));
    assert_eq!(
        stored_cas(&stale),
        Some(theirs.cas),
        "the new holder's item survives"
    );
    let extended = stale.extend(None, &lease, 2_000).expect_err("not ours");
    assert_eq!(extended.code, Code::LockLost);
    let items = lock_items(&stale);
    assert_eq!(items.len(), 1);
    assert_eq!(
        items[0].1,
        theirs.owner_token.hex().to_vec(),
        "their token, untouched"
    );
    assert_eq!(items[0].2, theirs.cas, "not extended by the stale holder");
}

#[test]
fn a_restart_between_acquire_and_release_touches_nothing() {
    stale_lease_after_a_restart(8, 2_000);
}

#[test]
fn a_restart_that_keeps_pid_and_start_second_touches_nothing() {
    let same = Server::new();
    stale_lease_after_a_restart(same.pid, same.started_at);
}

#[test]
fn an_extend_whose_reply_was_lost_after_it_applied_is_still_held() {
    let mut lock = open_lock();
    let lease = lock.try_acquire(None, b"job", 2_000).unwrap().unwrap();
    inject(&lock, "ms", Fault::ApplyThenReset);
    let extended = lock.extend(None, &lease, 3_000).expect("extended");
    assert_eq!(stored_cas(&lock), Some(extended.cas));
    assert_ne!(extended.cas, lease.cas);
}

#[test]
fn an_extend_whose_request_was_lost_is_retried_not_reported_lost() {
    let mut lock = open_lock();
    let lease = lock.try_acquire(None, b"job", 2_000).unwrap().unwrap();
    // The reset comes before the server reads the extend: the item keeps our token and CAS.
    inject(&lock, "ms", Fault::ResetBeforeApply);
    let extended = lock
        .extend(None, &lease, 3_000)
        .expect("still ours, so extended on the retry");
    assert_eq!(stored_cas(&lock), Some(extended.cas));
}

#[test]
fn an_extend_that_keeps_failing_reports_the_real_cause_not_lock_lost() {
    let mut lock = open_lock();
    let lease = lock.try_acquire(None, b"job", 2_000).unwrap().unwrap();
    for _ in 0..10 {
        inject(&lock, "ms", Fault::ResetBeforeApply);
    }
    let error = lock.extend(None, &lease, 3_000).expect_err("cannot extend");
    assert_ne!(error.code, Code::LockLost, "{error:?}");
    assert_eq!(error.code, Code::ConnectFailed, "{error:?}");
}

#[test]
fn an_extend_of_a_lease_someone_else_now_holds_is_lock_lost() {
    let mut lock = open_lock();
    let lease = lock.try_acquire(None, b"job", 2_000).unwrap().unwrap();
    someone_else_holds_job(&lock);
    let error = lock.extend(None, &lease, 3_000).expect_err("taken over");
    assert_eq!(error.code, Code::LockLost);
}

#[test]
fn a_blocking_acquire_whose_sleep_is_cancelled_ends_at_once_holding_nothing() {
    let mut lock = open_lock();
    lock.host().server.borrow_mut().store(
        b"am9i".to_vec(),
        b"ffffffffffffffffffffffffffffffff".to_vec(),
    );
    lock.host().cancel_sleeps.set(true);
    let error = lock
        .acquire(None, b"job", 2_000, 60_000)
        .expect_err("cancelled");
    assert_eq!(error.code, Code::Cancelled);
    let attempts = sent(&lock, "ms ");
    assert_eq!(attempts, 1, "no attempt after the cancelled sleep");
}

/// The incarnation item is evicted (or flushed) while a lease is held; the next connection stores
/// a new one. Same process, same item: the lease must still extend and release, by its token.
#[test]
fn a_new_incarnation_of_the_same_process_keeps_the_lease_usable() {
    let server = Rc::new(RefCell::new(Server::new()));
    let mut lock = open_lock_on(server.clone());
    let lease = lock.try_acquire(None, b"job", 2_000).unwrap().unwrap();
    let drop_incarnation = || {
        let mut server = server.borrow_mut();
        let wire = incarnation_wire().into_bytes();
        server.items.remove(&wire);
        // Connections opened from now on see the new incarnation.
        server.generation += 1;
    };
    drop_incarnation();
    let extended = lock
        .extend(None, &lease, 3_000)
        .expect("still ours: extended by its token");
    assert_eq!(stored_cas(&lock), Some(extended.cas));
    drop_incarnation();
    assert_eq!(
        lock.release(None, &extended),
        Ok(true),
        "released by its token"
    );
    assert_eq!(items(&lock), 0);
}

/// Several scripted servers, for quorum mode: server `i` listens on port 11211 + `i`. Each
/// connection keeps the replies to what `send` wrote until `receive` reads them.
struct Cluster {
    servers: Vec<Rc<RefCell<Server>>>,
    now: RefCell<u64>,
    random: RefCell<u64>,
    unread: RefCell<BTreeMap<u64, Vec<u8>>>,
    next_connection: std::cell::Cell<u64>,
}

impl Cluster {
    fn new(n: usize) -> Self {
        Cluster {
            servers: (0..n)
                .map(|_| Rc::new(RefCell::new(Server::new())))
                .collect(),
            now: RefCell::new(1_000_000_000),
            random: RefCell::new(CLIENTS.fetch_add(1, Ordering::Relaxed)),
            unread: RefCell::new(BTreeMap::new()),
            next_connection: std::cell::Cell::new(1),
        }
    }
}

impl Host for Cluster {
    /// (server, the generation it was opened to, connection id).
    type Stream = (usize, u64, u64);

    fn connect(
        &self,
        _host: &str,
        port: u16,
        _timeout_ms: u32,
        _tls: Option<&crate::security::Tls>,
    ) -> Result<Self::Stream, SocketError> {
        let index = usize::from(port - 11211);
        let id = self.next_connection.get();
        self.next_connection.set(id + 1);
        Ok((index, self.servers[index].borrow().generation, id))
    }

    fn exchange(
        &self,
        stream: &Self::Stream,
        request: &[u8],
        _max_bytes: u32,
        timeout_ms: u32,
        reply: &mut Vec<u8>,
    ) -> Result<(), SocketError> {
        let result = self.servers[stream.0]
            .borrow_mut()
            .exchange(stream.1, request);
        if result == Err(SocketError::TimedOut) {
            *self.now.borrow_mut() += u64::from(timeout_ms) * 1_000_000;
        }
        reply.extend(result?);
        Ok(())
    }

    fn send(
        &self,
        stream: &Self::Stream,
        request: &[u8],
        _timeout_ms: u32,
    ) -> Result<(), SocketError> {
        match self.servers[stream.0]
            .borrow_mut()
            .exchange(stream.1, request)
        {
            Err(SocketError::TimedOut) => Ok(()),
            Err(e) => Err(e),
            Ok(bytes) => {
                self.unread
                    .borrow_mut()
                    .entry(stream.2)
                    .or_default()
                    .extend(bytes);
                Ok(())
            }
        }
    }

    fn receive(
        &self,
        stream: &Self::Stream,
        _max_bytes: u32,
        timeout_ms: u32,
        reply: &mut Vec<u8>,
    ) -> Result<(), SocketError> {
        if let Some(bytes) = self.unread.borrow_mut().get_mut(&stream.2)
            && !bytes.is_empty()
        {
            reply.append(bytes);
            return Ok(());
        }
        *self.now.borrow_mut() += u64::from(timeout_ms) * 1_000_000;
        Err(SocketError::TimedOut)
    }

    fn now_ns(&self) -> u64 {
        *self.now.borrow()
    }

    fn sleep_ns(&self, ns: u64) -> bool {
        *self.now.borrow_mut() += ns;
        true
    }

    fn random_u64(&self) -> u64 {
        let mut state = self.random.borrow_mut();
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn resolve_all(&self, _: Option<&str>, _: &str) -> Result<Vec<ConnectionParams>, String> {
        Ok(Vec::new())
    }

    fn lookup_credential(
        &self,
        _: Option<&str>,
        _: &str,
    ) -> Result<Option<ConnectionParams>, String> {
        Ok(None)
    }
}

/// A quorum lock over the cluster's servers. The scripted servers report `uptime 10`, so they
/// count (10 s − 3 s ≥ max_lease 5 s) from the start.
fn quorum_on(cluster: Cluster) -> MemcachedLock<Cluster> {
    let n = cluster.servers.len();
    let mut lock = MemcachedLock::new(cluster);
    let mut config: Vec<(String, String)> = (0..n)
        .map(|i| (format!("connections.{i}.port"), (11211 + i).to_string()))
        .collect();
    config.push(("options.mode".into(), "quorum".into()));
    config.push(("options.max_lease".into(), "5000".into()));
    config.push(("options.timeout".into(), "200".into()));
    lock.configure(&config).expect("configure");
    lock.open(None).expect("open");
    lock
}

/// An acquire that won with one server's reply lost (the server applies the add late) holds that
/// item too: it is the lease's, not an orphan, and nothing may delete it while the lease is held
/// (cleaning it as an orphan deleted a live lease's item, and a second client could later reach
/// a majority with that server).
#[test]
fn a_won_quorum_acquire_leaves_no_orphan_to_delete_its_late_item() {
    let mut lock = quorum_on(Cluster::new(3));
    let late = lock.host().servers[2].clone();
    late.borrow_mut()
        .faults
        .push_back(("ms", Fault::StallThenApply));
    let lease = lock
        .try_acquire(None, b"job", 4_000)
        .expect("no error")
        .expect("held by two of three");
    // Another operation: the late add is applied on server 2, and nothing takes it back.
    assert!(lock.try_acquire(None, b"other", 4_000).unwrap().is_some());
    let wire = String::from("am9i").into_bytes();
    for (i, server) in lock.host().servers.iter().enumerate() {
        let server = server.borrow();
        let value = server.items.get(&wire).map(|(v, _)| v.clone());
        assert_eq!(
            value,
            Some(lease.owner_token.hex().to_vec()),
            "server {i} lost the lease's item while the lease is held"
        );
    }
}

/// The instance that acquired a quorum lease releases it in one round (`md … C<cas>` on each
/// server); another instance, which does not know where it lives, finds it by owner token first
/// (`mg`, then `md`). Both release it everywhere.
#[test]
fn a_quorum_release_is_one_round_where_the_places_are_known() {
    let count = |lock: &MemcachedLock<Cluster>, prefix: &str| -> Vec<usize> {
        lock.host()
            .servers
            .iter()
            .map(|s| {
                s.borrow()
                    .log
                    .iter()
                    .filter(|l| l.starts_with(prefix))
                    .count()
            })
            .collect()
    };
    let mut lock = quorum_on(Cluster::new(3));
    let lease = lock.try_acquire(None, b"job", 4_000).unwrap().unwrap();
    assert_eq!(lock.release(None, &lease), Ok(true));
    assert_eq!(
        count(&lock, "mg "),
        [0, 0, 0],
        "no lookups: the places were known"
    );
    assert_eq!(count(&lock, "md "), [1, 1, 1]);
    // A lease this instance does not know (as from a handle): found by its token.
    let lease = lock.try_acquire(None, b"job", 4_000).unwrap().unwrap();
    lock.replicas.clear();
    assert_eq!(lock.release(None, &lease), Ok(true));
    assert_eq!(count(&lock, "mg "), [1, 1, 1]);
    assert_eq!(count(&lock, "md "), [2, 2, 2]);
    for server in &lock.host().servers {
        let wire = incarnation_wire().into_bytes();
        assert!(
            server.borrow().items.keys().all(|k| *k == wire),
            "nothing left"
        );
    }
}

/// A server's age is its uptime at the handshake plus the time since, and the time since is read
/// on this client's clock, which may run fast by the drift allowance: it must count that time at
/// the slowest true rate the allowance admits, or a restarted server could count up to 1 % of
/// `max_lease` early (300 ms for the default 30 s) — while a lease it granted before its restart
/// may still be believed.
#[test]
fn a_servers_age_discounts_the_clients_clock_by_the_drift_allowance() {
    let mut lock = MemcachedLock::new(Cluster::new(3));
    let mut config: Vec<(String, String)> = (0..3)
        .map(|i| (format!("connections.{i}.port"), (11211 + i).to_string()))
        .collect();
    config.push(("options.mode".into(), "quorum".into()));
    config.push(("options.max_lease".into(), "20000".into()));
    config.push(("options.idle".into(), "600000".into()));
    lock.configure(&config).expect("configure");
    lock.open(None).expect("open");
    // The servers report uptime 10: at the handshake they have run at least 7 s.
    let young = lock.try_acquire(None, b"job", 1_000).expect_err("young");
    assert_eq!(young.code, Code::NoQuorum, "{young:?}");
    // 13.05 s later by this clock: 20.05 s by its count, but at 1 % fast only 19.92 s for sure.
    *lock.host().now.borrow_mut() += 13_050_000_000;
    let early = lock.try_acquire(None, b"job", 1_000);
    assert!(
        matches!(&early, Err(e) if e.code == Code::NoQuorum),
        "counted before the allowance was covered: {early:?}"
    );
    // 13.2 s: 13.2 × 0.99 = 13.07 s, so 20.07 s for sure.
    *lock.host().now.borrow_mut() += 150_000_000;
    assert!(
        lock.try_acquire(None, b"job", 1_000)
            .expect("counted")
            .is_some()
    );
}
