//! A fake memcached for the simulation, with memcached 1.6.18's semantics for what the lock uses:
//! meta `ms mg md mn` (flags `b c C k O q t v s f T M`), classic `add set cas get gets delete
//! touch version flush_all stats`, the one-second clock tick, CAS values that restart with the
//! process, LRU eviction under a memory cap, `SERVER_ERROR` when full with eviction off, and
//! ASCII authentication (`-Y`, [`FakeMemcached::process_on`]).
//!
//! The protocol engine ([`FakeMemcached::process`]) is sans-IO: bytes in, bytes out, with the
//! server's tick passed in. [`serve`] runs it on any async stream: `turmoil::net` in the
//! simulation, tokio TCP in the differential test that holds it to a real memcached.

pub mod serve;
pub mod store;

use store::{Store, StoreError};

pub const VERSION: &str = "1.6.18";
/// memcached's KEY_MAX_LENGTH, on the wire (before base64 decoding).
const KEY_MAX: usize = 250;
const LINE_MAX: usize = 2048;
/// memcached's `ITEM_UPDATE_INTERVAL`: its clock starts this many seconds (plus two) before the
/// process did, and `stats uptime` takes them off again.
const ITEM_UPDATE_INTERVAL_S: u64 = 60;

/// One memcached process: its items and counters. A restart is a new `FakeMemcached`.
#[derive(Debug)]
pub struct FakeMemcached {
    pub store: Store,
    pid: u64,
    /// Unix time of `current_time == 0`.
    process_started: u64,
    /// Items removed by delete commands since the caller last drained it: (key, value).
    pub removed: Vec<(Vec<u8>, Vec<u8>)>,
    /// Stores that replaced an item (compare-and-set, or a plain set over an existing item) since
    /// the caller last drained it: (key, old value, new value).
    pub swapped: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)>,
    /// Meta stores applied since the caller last drained it: (key, value, exptime tick; 0 never).
    pub stored: Vec<(Vec<u8>, Vec<u8>, u64)>,
    /// Out of memory with eviction off: every store fails with `SERVER_ERROR`.
    pub full: bool,
    /// With `-Y`: the `<user> <password>` a connection must send before anything else.
    credentials: Option<Vec<u8>>,
}

/// The result of feeding bytes to the server.
pub enum Step {
    /// Need more bytes.
    Incomplete,
    /// A command was consumed (`consumed` bytes) producing `reply`.
    Reply { consumed: usize, reply: Vec<u8> },
    /// The stream cannot be parsed any further; memcached closes the connection.
    Close { reply: Vec<u8> },
}

impl FakeMemcached {
    /// `memory_limit` in bytes; `evict = false` is memcached's `-M`.
    pub fn new(pid: u64, process_started: u64, memory_limit: usize, evict: bool) -> Self {
        FakeMemcached {
            store: Store::new(memory_limit, evict),
            pid,
            process_started,
            removed: Vec::new(),
            swapped: Vec::new(),
            stored: Vec::new(),
            full: false,
            credentials: None,
        }
    }

    /// memcached's `-Y`: connections must authenticate as `username`/`password` first.
    pub fn require_authentication(&mut self, username: &str, password: &str) {
        self.credentials = Some(format!("{username} {password}").into_bytes());
    }

    /// [`Self::process`] for a connection whose authentication state is `authenticated`. Until
    /// it authenticates, as memcached 1.6.18 does: only a `set` is read, and its data must be
    /// `<user> <password>` (`STORED`); anything else answers `CLIENT_ERROR unauthenticated` and
    /// discards what the connection had sent so far, except a lone `set` with wrong credentials:
    /// `CLIENT_ERROR authentication failure`.
    pub fn process_on(&mut self, authenticated: &mut bool, input: &[u8], now: u64) -> Step {
        let Some(expected) = &self.credentials else {
            return self.process(input, now);
        };
        if *authenticated {
            return self.process(input, now);
        }
        let refuse = Step::Reply {
            consumed: input.len(),
            reply: b"CLIENT_ERROR unauthenticated\r\n".to_vec(),
        };
        let Some(end) = input.iter().position(|&b| b == b'\n') else {
            return if input.len() > LINE_MAX {
                refuse
            } else {
                Step::Incomplete
            };
        };
        let line = &input[..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let tokens: Vec<&[u8]> = line
            .split(|&b| b == b' ')
            .filter(|t| !t.is_empty())
            .collect();
        let (Some(&b"set"), Some(bytes)) = (
            tokens.first(),
            tokens.get(4).and_then(|t| parse_num::<usize>(t)),
        ) else {
            return refuse;
        };
        let total = end + 1 + bytes + 2;
        if input.len() < total {
            return Step::Incomplete;
        }
        if input[end + 1..end + 1 + bytes] != expected[..] {
            // memcached 1.6.18 answers wrong credentials with "authentication failure", but
            // with "unauthenticated" (and drops the rest) when more commands follow them.
            if input.len() > total {
                return refuse;
            }
            return reply(total, b"CLIENT_ERROR authentication failure\r\n".to_vec());
        }
        *authenticated = true;
        reply(total, b"STORED\r\n".to_vec())
    }

    /// What `stats` reports as this process: (pid, start time in unix seconds).
    pub fn server_process(&self) -> (u64, u64) {
        (self.pid, self.process_started)
    }

    /// Handles the first complete command in `input` at server tick `now`.
    pub fn process(&mut self, input: &[u8], now: u64) -> Step {
        let Some(end) = input.iter().position(|&b| b == b'\n') else {
            return if input.len() > LINE_MAX {
                Step::Close {
                    reply: b"CLIENT_ERROR line too long\r\n".to_vec(),
                }
            } else {
                Step::Incomplete
            };
        };
        let line_len = end + 1;
        let line = &input[..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let tokens: Vec<&[u8]> = line
            .split(|&b| b == b' ')
            .filter(|t| !t.is_empty())
            .collect();
        let Some(&command) = tokens.first() else {
            return reply(line_len, b"ERROR\r\n".to_vec());
        };
        match command {
            b"ms" => self.meta_set(&tokens, input, line_len, now),
            b"mg" => reply(line_len, self.meta_get(&tokens, now)),
            b"md" => reply(line_len, self.meta_delete(&tokens, now)),
            b"mn" => reply(line_len, b"MN\r\n".to_vec()),
            b"set" | b"add" | b"replace" | b"cas" => {
                self.classic_store(&tokens, input, line_len, now)
            }
            b"get" | b"gets" => reply(line_len, self.classic_get(&tokens, now)),
            b"delete" => reply(line_len, self.classic_delete(&tokens, now)),
            b"touch" => reply(line_len, self.classic_touch(&tokens, now)),
            b"version" => reply(line_len, format!("VERSION {VERSION}\r\n").into_bytes()),
            b"flush_all" => {
                self.store.flush();
                reply(line_len, b"OK\r\n".to_vec())
            }
            b"stats" => reply(line_len, self.stats(now)),
            _ => reply(line_len, b"ERROR\r\n".to_vec()),
        }
    }

    fn stats(&self, now: u64) -> Vec<u8> {
        // memcached reports `current_time − ITEM_UPDATE_INTERVAL`: its clock starts at 62, so a
        // fresh process says `uptime 2`.
        let uptime = now.saturating_sub(ITEM_UPDATE_INTERVAL_S);
        format!(
            "STAT pid {}\r\nSTAT uptime {uptime}\r\nSTAT time {}\r\nSTAT version {VERSION}\r\nSTAT curr_items {}\r\nSTAT evictions {}\r\nEND\r\n",
            self.pid,
            self.process_started + now,
            self.store.len(),
            self.store.evictions
        )
        .into_bytes()
    }

    fn meta_set(&mut self, tokens: &[&[u8]], input: &[u8], line_len: usize, now: u64) -> Step {
        if tokens.len() < 3 {
            return reply(line_len, client_error("bad command line format"));
        }
        let Some(datalen) = parse_num::<usize>(tokens[2]) else {
            return reply(line_len, client_error("bad data chunk"));
        };
        let total = line_len + datalen + 2;
        if input.len() < total {
            return Step::Incomplete;
        }
        let flags = match MetaFlags::parse(&tokens[3..]) {
            Ok(f) => f,
            Err(e) => return reply(total, client_error(e)),
        };
        if &input[line_len + datalen..total] != b"\r\n" {
            return reply(total, client_error("bad data chunk"));
        }
        let key = match decode_key(tokens[1], flags.base64) {
            Ok(k) => k,
            Err(e) => return reply(total, client_error(e)),
        };
        let value = input[line_len..line_len + datalen].to_vec();
        let exptime = Store::realtime(flags.ttl.unwrap_or(0), now, self.process_started);
        let existing = self.store.peek(&key, now).map(|i| i.cas);
        // `C` turns set and replace into compare-and-set; add ignores it (found by the
        // differential test against memcached 1.6.18).
        let mode = match (flags.mode.unwrap_or(Mode::Set), flags.compare_cas) {
            (Mode::Set | Mode::Replace, Some(_)) => Mode::Cas,
            (mode, _) => mode,
        };
        // Whatever this store replaces — by compare-and-set or by a plain set — is reported, so
        // the checker sees a lease overwritten by someone else however it happened.
        let previous = self.store.peek(&key, now).map(|i| i.value.clone());
        let journal = (key.clone(), value.clone());
        if self.full {
            // memcached allocates the new item before it looks at the key: when memory is full
            // every store fails this way, whatever the key holds.
            return reply(
                total,
                b"SERVER_ERROR out of memory storing object\r\n".to_vec(),
            );
        }
        let (status, cas) = match (mode, existing) {
            (Mode::Cas, None) => ("NF", 0),
            (Mode::Cas, Some(have)) if Some(have) != flags.compare_cas => ("EX", 0),
            (Mode::Add, Some(_)) => ("NS", 0),
            (Mode::Replace, None) => ("NS", 0),
            _ => match self.store.put_item(
                &key,
                value,
                flags.client_flags.unwrap_or(0),
                exptime,
                flags.base64,
            ) {
                Ok(cas) => ("HD", cas),
                Err(StoreError::OutOfMemory) => {
                    return reply(
                        total,
                        b"SERVER_ERROR out of memory storing object\r\n".to_vec(),
                    );
                }
            },
        };
        if status == "HD" {
            self.stored
                .push((journal.0.clone(), journal.1.clone(), exptime));
        }
        if let (Some(old), "HD") = (previous, status) {
            self.swapped.push((journal.0, old, journal.1));
        }
        if status == "HD" && flags.quiet {
            return reply(total, Vec::new());
        }
        let mut out = status.as_bytes().to_vec();
        for flag in &tokens[3..] {
            match flag.first() {
                Some(b'O') => push_flag(&mut out, flag),
                Some(b'k') => push_key(&mut out, tokens[1], flags.base64),
                Some(b'c') => push_flag(&mut out, format!("c{cas}").as_bytes()),
                _ => {}
            }
        }
        out.extend_from_slice(b"\r\n");
        reply(total, out)
    }

    fn meta_get(&mut self, tokens: &[&[u8]], now: u64) -> Vec<u8> {
        let (flags, key) = match meta_key_and_flags(tokens) {
            Ok(parsed) => parsed,
            Err(reply) => return reply,
        };
        // memcached fetches first, then applies flags in request order: an item touched into
        // the past is still returned, and `t` before `T` reports the old ttl.
        let Some(mut item) = self.store.get(&key, now).cloned() else {
            if flags.quiet {
                return Vec::new();
            }
            let mut out = b"EN".to_vec();
            for flag in &tokens[2..] {
                match flag.first() {
                    Some(b'O') => push_flag(&mut out, flag),
                    Some(b'k') => push_key(&mut out, tokens[1], flags.base64),
                    _ => {}
                }
            }
            out.extend_from_slice(b"\r\n");
            return out;
        };
        let mut out = if flags.value {
            format!("VA {}", item.value.len()).into_bytes()
        } else {
            b"HD".to_vec()
        };
        for flag in &tokens[2..] {
            match flag.first() {
                Some(b'O') => push_flag(&mut out, flag),
                Some(b'k') if item.key_binary => {
                    push_key(&mut out, base64_encode(&key).as_bytes(), true)
                }
                Some(b'k') => push_key(&mut out, &key, false),
                Some(b'c') => push_flag(&mut out, format!("c{}", item.cas).as_bytes()),
                Some(b'f') => push_flag(&mut out, format!("f{}", item.client_flags).as_bytes()),
                Some(b's') => push_flag(&mut out, format!("s{}", item.value.len()).as_bytes()),
                Some(b't') => {
                    let ttl = if item.exptime == 0 {
                        -1
                    } else {
                        item.exptime as i64 - now as i64
                    };
                    push_flag(&mut out, format!("t{ttl}").as_bytes());
                }
                Some(b'T') => {
                    item.exptime =
                        Store::realtime(flags.ttl.unwrap_or(0), now, self.process_started);
                    self.store.touch(&key, item.exptime, now);
                }
                _ => {}
            }
        }
        out.extend_from_slice(b"\r\n");
        if flags.value {
            out.extend_from_slice(&item.value);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    fn meta_delete(&mut self, tokens: &[&[u8]], now: u64) -> Vec<u8> {
        let (flags, key) = match meta_key_and_flags(tokens) {
            Ok(parsed) => parsed,
            Err(reply) => return reply,
        };
        let status = match (self.store.peek(&key, now).map(|i| i.cas), flags.compare_cas) {
            (None, _) => "NF",
            (Some(have), Some(want)) if have != want => "EX",
            _ => {
                if let Some(item) = self.store.remove(&key) {
                    self.removed.push((key.clone(), item.value));
                }
                "HD"
            }
        };
        if status == "HD" && flags.quiet {
            return Vec::new();
        }
        let mut out = status.as_bytes().to_vec();
        for flag in &tokens[2..] {
            match flag.first() {
                Some(b'O') => push_flag(&mut out, flag),
                Some(b'k') => push_key(&mut out, tokens[1], flags.base64),
                _ => {}
            }
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    fn classic_store(&mut self, tokens: &[&[u8]], input: &[u8], line_len: usize, now: u64) -> Step {
        let is_cas = tokens[0] == b"cas";
        let expected = if is_cas { 6 } else { 5 };
        if tokens.len() < expected || tokens.len() > expected + 1 || tokens[1].len() > KEY_MAX {
            return reply(line_len, client_error("bad command line format"));
        }
        let (Some(client_flags), Some(exptime), Some(bytes)) = (
            parse_num::<u32>(tokens[2]),
            parse_signed(tokens[3]),
            parse_num::<usize>(tokens[4]),
        ) else {
            return reply(line_len, client_error("bad command line format"));
        };
        let compare = if is_cas {
            match parse_num::<u64>(tokens[5]) {
                Some(c) => Some(c),
                None => return reply(line_len, client_error("bad command line format")),
            }
        } else {
            None
        };
        let noreply = tokens.len() == expected + 1 && tokens[expected] == b"noreply";
        let total = line_len + bytes + 2;
        if input.len() < total {
            return Step::Incomplete;
        }
        if &input[line_len + bytes..total] != b"\r\n" {
            return reply(total, client_error("bad data chunk"));
        }
        let key = tokens[1];
        let value = input[line_len..line_len + bytes].to_vec();
        let exptime = Store::realtime(exptime, now, self.process_started);
        let existing = self.store.peek(key, now).map(|i| i.cas);
        let answer: &[u8] = match (tokens[0], existing, compare) {
            _ if self.full => b"SERVER_ERROR out of memory storing object\r\n",
            (b"add", Some(_), _) => b"NOT_STORED\r\n",
            (b"replace", None, _) => b"NOT_STORED\r\n",
            (b"cas", None, _) => b"NOT_FOUND\r\n",
            (b"cas", Some(have), Some(want)) if have != want => b"EXISTS\r\n",
            _ => match self.store.put(key, value, client_flags, exptime) {
                Ok(_) => b"STORED\r\n",
                Err(StoreError::OutOfMemory) => b"SERVER_ERROR out of memory storing object\r\n",
            },
        };
        reply(total, if noreply { Vec::new() } else { answer.to_vec() })
    }

    fn classic_get(&mut self, tokens: &[&[u8]], now: u64) -> Vec<u8> {
        if tokens.len() < 2 {
            return b"ERROR\r\n".to_vec();
        }
        let with_cas = tokens[0] == b"gets";
        let mut out = Vec::new();
        for key in &tokens[1..] {
            if key.len() > KEY_MAX {
                return client_error("bad command line format");
            }
            if let Some(item) = self.store.get(key, now) {
                out.extend_from_slice(b"VALUE ");
                out.extend_from_slice(key);
                out.extend_from_slice(
                    format!(" {} {}", item.client_flags, item.value.len()).as_bytes(),
                );
                if with_cas {
                    out.extend_from_slice(format!(" {}", item.cas).as_bytes());
                }
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(&item.value);
                out.extend_from_slice(b"\r\n");
            }
        }
        out.extend_from_slice(b"END\r\n");
        out
    }

    fn classic_delete(&mut self, tokens: &[&[u8]], now: u64) -> Vec<u8> {
        let noreply = tokens.last() == Some(&&b"noreply"[..]);
        let args = tokens.len() - usize::from(noreply);
        let legacy_zero = args == 3 && tokens[2] == b"0";
        if args < 2 || (args > 2 && !legacy_zero) || tokens[1].len() > KEY_MAX {
            return client_error("bad command line format.  Usage: delete <key> [noreply]");
        }
        let found = self.store.peek(tokens[1], now).is_some();
        if let Some(item) = self.store.remove(tokens[1]) {
            self.removed.push((tokens[1].to_vec(), item.value));
        }
        if noreply {
            return Vec::new();
        }
        if found {
            b"DELETED\r\n".to_vec()
        } else {
            b"NOT_FOUND\r\n".to_vec()
        }
    }

    fn classic_touch(&mut self, tokens: &[&[u8]], now: u64) -> Vec<u8> {
        if tokens.len() < 3 || tokens[1].len() > KEY_MAX {
            return b"ERROR\r\n".to_vec();
        }
        let Some(exptime) = parse_signed(tokens[2]) else {
            return client_error("invalid exptime argument");
        };
        let exptime = Store::realtime(exptime, now, self.process_started);
        let touched = self.store.touch(tokens[1], exptime, now);
        if tokens.get(3) == Some(&&b"noreply"[..]) {
            return Vec::new();
        }
        if touched {
            b"TOUCHED\r\n".to_vec()
        } else {
            b"NOT_FOUND\r\n".to_vec()
        }
    }
}

/// `<cmd> <key> <flags>*` of `mg`/`md`: the flags and the decoded key, or the error reply.
fn meta_key_and_flags(tokens: &[&[u8]]) -> Result<(MetaFlags, Vec<u8>), Vec<u8>> {
    if tokens.len() < 2 {
        return Err(client_error("bad command line format"));
    }
    let flags = MetaFlags::parse(&tokens[2..]).map_err(client_error)?;
    let key = decode_key(tokens[1], flags.base64).map_err(client_error)?;
    Ok((flags, key))
}

fn reply(consumed: usize, reply: Vec<u8>) -> Step {
    Step::Reply { consumed, reply }
}

fn client_error(message: &str) -> Vec<u8> {
    format!("CLIENT_ERROR {message}\r\n").into_bytes()
}

fn push_flag(out: &mut Vec<u8>, flag: &[u8]) {
    out.push(b' ');
    out.extend_from_slice(flag);
}

/// memcached echoes the key as sent; a base64 key comes back with a ` b` flag after it.
fn push_key(out: &mut Vec<u8>, wire_key: &[u8], base64: bool) {
    out.extend_from_slice(b" k");
    out.extend_from_slice(wire_key);
    if base64 {
        out.extend_from_slice(b" b");
    }
}

fn parse_num<T: std::str::FromStr>(token: &[u8]) -> Option<T> {
    std::str::from_utf8(token)
        .ok()
        .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse().ok())
}

fn parse_signed(token: &[u8]) -> Option<i64> {
    std::str::from_utf8(token)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .filter(|v| i32::try_from(*v).is_ok())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Set,
    Add,
    Replace,
    Cas,
}

/// The meta flags this fake understands.
struct MetaFlags {
    base64: bool,
    quiet: bool,
    value: bool,
    ttl: Option<i64>,
    compare_cas: Option<u64>,
    client_flags: Option<u32>,
    mode: Option<Mode>,
}

impl MetaFlags {
    fn parse(tokens: &[&[u8]]) -> Result<MetaFlags, &'static str> {
        let mut f = MetaFlags {
            base64: false,
            quiet: false,
            value: false,
            ttl: None,
            compare_cas: None,
            client_flags: None,
            mode: None,
        };
        let mut seen = [false; 128];
        for token in tokens {
            let (&flag, rest) = token.split_first().ok_or("bad command line format")?;
            if !flag.is_ascii_alphabetic() {
                return Err("invalid flag");
            }
            if seen[flag as usize] {
                return Err("duplicate flag");
            }
            seen[flag as usize] = true;
            match flag {
                b'b' => f.base64 = true,
                b'q' => f.quiet = true,
                b'v' => f.value = true,
                b'T' => f.ttl = Some(parse_signed(rest).ok_or("bad token in command line format")?),
                b'C' => {
                    f.compare_cas = Some(parse_num(rest).ok_or("bad token in command line format")?)
                }
                b'F' => {
                    f.client_flags =
                        Some(parse_num(rest).ok_or("bad token in command line format")?)
                }
                b'M' => {
                    f.mode = Some(match rest {
                        b"E" | b"e" => Mode::Add,
                        b"R" | b"r" => Mode::Replace,
                        b"S" | b"s" => Mode::Set,
                        _ => return Err("invalid mode for ms STORE"),
                    })
                }
                b'O' if rest.len() > 32 => return Err("opaque token too long"),
                b'O' | b'k' | b'c' | b't' | b's' | b'f' => {}
                _ => return Err("invalid flag"),
            }
        }
        Ok(f)
    }
}

/// The key as stored: the wire token, base64-decoded under the `b` flag.
fn decode_key(token: &[u8], base64: bool) -> Result<Vec<u8>, &'static str> {
    if token.len() > KEY_MAX {
        return Err("bad command line format");
    }
    if !base64 {
        return Ok(token.to_vec());
    }
    base64_decode(token).ok_or("error decoding key")
}

fn base64_encode(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// memcached's own decoding rules, not a library's: it accepts non-canonical trailing bits that a
/// strict decoder refuses, and the differential test holds this to the real server.
fn base64_decode(data: &[u8]) -> Option<Vec<u8>> {
    if data.is_empty() || !data.len().is_multiple_of(4) {
        return None;
    }
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(data.len() / 4 * 3);
    for (i, chunk) in data.chunks(4).enumerate() {
        let last = i == data.len() / 4 - 1;
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = (n << 6) | value(c)?;
        }
        n <<= 6 * pad as u32;
        out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8][..3 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(server: &mut FakeMemcached, input: &[u8]) -> String {
        match server.process(input, 100) {
            Step::Reply { consumed, reply } => {
                assert_eq!(consumed, input.len());
                String::from_utf8(reply).expect("ascii")
            }
            Step::Incomplete => "<incomplete>".into(),
            Step::Close { .. } => "<close>".into(),
        }
    }

    #[test]
    fn the_lock_primitives_from_memcached_facts() {
        let mut s = FakeMemcached::new(1, 1000, 1 << 20, true);
        assert_eq!(run(&mut s, b"ms lk1 4 T30 ME c\r\nownA\r\n"), "HD c1\r\n");
        assert_eq!(run(&mut s, b"ms lk1 4 T30 ME c\r\nownB\r\n"), "NS c0\r\n");
        assert_eq!(run(&mut s, b"mg lk1 v c t\r\n"), "VA 4 c1 t30\r\nownA\r\n");
        assert_eq!(
            run(&mut s, b"mg nokey v c t k O123\r\n"),
            "EN knokey O123\r\n"
        );
        assert_eq!(run(&mut s, b"md lk1 C2\r\n"), "EX\r\n");
        assert_eq!(run(&mut s, b"md lk1 C1\r\n"), "HD\r\n");
        assert_eq!(run(&mut s, b"md lk1 C1\r\n"), "NF\r\n");
        assert_eq!(
            run(&mut s, b"ms gone 4 T90 C12345 c\r\nownA\r\n"),
            "NF c0\r\n"
        );
        assert_eq!(
            run(&mut s, b"ms bG9jaw== 1 b T5 ME c O7\r\nx\r\n"),
            "HD c2 O7\r\n"
        );
        assert_eq!(run(&mut s, b"mg lock v\r\n"), "VA 1\r\nx\r\n");
        assert_eq!(
            run(&mut s, b"mg !!!! b v\r\n"),
            "CLIENT_ERROR error decoding key\r\n"
        );
        assert_eq!(
            run(&mut s, b"ms k 1 E5\r\nx\r\n"),
            "CLIENT_ERROR invalid flag\r\n"
        );
        assert_eq!(run(&mut s, b"ms k 4 T30 ME c\r\nown"), "<incomplete>");
        assert_eq!(base64_decode(b"YSBiDQo="), Some(b"a b\r\n".to_vec()));
    }
}
