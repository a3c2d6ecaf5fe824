//! pip-services ConfigParams for the lock: `connection(s).*` and `options.*`, checked once.
//!
//! Keys are the seed's (`MemcachedLock` and its `Lock` base), so an existing config file keeps
//! working; defaults are memlock's (README's table), and some differ from the seed's
//! (`retries`, `timeout`). Every value is validated in [`LockConfig::from_pairs`]; a bad one is an
//! `INVALID_CONFIG` error naming the key. Unknown `options.*` keys are errors too: a typo such as
//! `options.timout` would otherwise silently leave a default in force. `credential.*` (TLS files
//! and authentication, [`crate::security`]) applies to every connection, and
//! `connections.<n>.credential.*` to one. Keys outside `connection.`, `connections.`,
//! `credential.` and `options.` belong to other components and are ignored, as pip-services does.

use crate::prelude::*;

use crate::driver::sharding::Sharding;
use crate::error::{Code, LockError, Result};
use crate::key::MEMCACHED_MAX_KEY;
use crate::security::{CREDENTIAL_PARAMS, Security, security};
use crate::small_map::SmallMap;
use crate::ttl::MEMCACHED_MAX_RELATIVE_SECS;

/// memcached's default port.
pub const DEFAULT_PORT: u16 = 11211;

/// Where one server is, as configured.
#[derive(Clone, PartialEq, Eq)]
pub enum ConnectionSpec {
    Endpoint(Endpoint),
    /// Resolved at `open` through the discovery import; `params` (protocol, `credential.*`)
    /// apply to every connection it resolves to.
    Discovery {
        key: String,
        params: Vec<(String, String)>,
    },
}

/// Prints a discovery key's inherited parameters by name only: a password is among them.
impl core::fmt::Debug for ConnectionSpec {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ConnectionSpec::Endpoint(e) => f.debug_tuple("Endpoint").field(e).finish(),
            ConnectionSpec::Discovery { key, params } => f
                .debug_struct("Discovery")
                .field("key", key)
                .field("params", &params.iter().map(|(k, _)| k).collect::<Vec<_>>())
                .finish(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub security: Security,
}

impl Endpoint {
    /// A plaintext endpoint without authentication.
    pub fn plain(host: &str, port: u16) -> Self {
        Endpoint {
            host: host.to_owned(),
            port,
            security: Security::default(),
        }
    }
}

impl core::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// `options.*`: the seed's names, memlock's defaults. Times are milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Base interval between attempts of a blocking acquire (each wait uniform in 0.75–1.5 ×).
    pub retry_timeout: u64,
    /// Longest key on the wire, after base64 (memcached allows 250).
    pub max_key_size: usize,
    /// Longest ttl on the wire, seconds (memcached reads larger values as unix times).
    pub max_expiration: u32,
    /// Largest value the client reads back from the server.
    pub max_value: usize,
    /// Idle connections kept per server.
    pub pool_size: usize,
    /// Connect timeout, covering every connect attempt of one operation.
    pub reconnect: u64,
    /// Round-trip timeout of one command.
    pub timeout: u64,
    /// Further connect attempts within `reconnect` after a failed one.
    pub retries: u32,
    /// Consecutive failed operations after which a server is marked down.
    pub failures: u32,
    /// How long a server marked down is skipped before it is tried again.
    pub retry: u64,
    /// Idle time after which a pooled connection is closed instead of reused (0: never).
    pub idle: u64,
    /// Part of every ttl the holder does not count on, in millionths (`drift_factor` 0.01 = 10000).
    pub drift_ppm: u32,
    /// Fixed part of the drift allowance, ms.
    pub drift_ms: u64,
    /// Which server owns a key when there are several (`jump` or `rendezvous`).
    pub sharding: Sharding,
    /// `shard` (a key lives on one server) or `quorum` (on every server; a majority decides).
    pub mode: Mode,
    /// Quorum mode: the longest ttl, ms; and how long a server process must have run before it
    /// counts toward a majority (a restarted process has forgotten the locks it held).
    pub max_lease: u64,
}

/// How the configured servers hold a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Shard,
    Quorum,
}

/// Fewest servers quorum mode accepts: with two, losing one loses the majority.
pub const MIN_QUORUM_SERVERS: usize = 3;

impl Default for Options {
    fn default() -> Self {
        Options {
            retry_timeout: 100,
            max_key_size: MEMCACHED_MAX_KEY,
            max_expiration: MEMCACHED_MAX_RELATIVE_SECS,
            max_value: 1_048_576,
            pool_size: 5,
            reconnect: 10_000,
            timeout: 5_000,
            retries: 5,
            failures: 5,
            retry: 30_000,
            idle: 5_000,
            drift_ppm: 10_000,
            drift_ms: 2,
            sharding: Sharding::Jump,
            mode: Mode::Shard,
            max_lease: 30_000,
        }
    }
}

/// Smallest `max_value` that still holds an owner token.
pub const MIN_MAX_VALUE: usize = 64;
const HOUR_MS: u64 = 3_600_000;

/// The lock's whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LockConfig {
    pub connections: Vec<ConnectionSpec>,
    pub options: Options,
}

impl LockConfig {
    /// Reads ConfigParams pairs. Keys are case-insensitive, as in pip-services.
    pub fn from_pairs<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> Result<Self> {
        let map: SmallMap<String, &str> = pairs
            .iter()
            .map(|(k, v)| (k.as_ref().trim().to_ascii_lowercase(), v.as_ref().trim()))
            .collect();
        let config = LockConfig {
            connections: connections(&map)?,
            options: options(&map)?,
        };
        let explicit = config
            .connections
            .iter()
            .all(|c| matches!(c, ConnectionSpec::Endpoint(_)));
        if config.options.mode == Mode::Quorum && !explicit {
            // A majority is a majority of one list: clients that discovered different lists
            // could each hold a majority of their own.
            return Err(LockError::config(
                "options.mode",
                "quorum mode needs its servers listed (connections.*), the same in every client; discovery is refused",
            ));
        }
        if !config.connections.is_empty() {
            config.check_quorum(config.connections.len())?;
        }
        Ok(config)
    }

    /// Quorum mode needs at least [`MIN_QUORUM_SERVERS`] servers.
    pub fn check_quorum(&self, servers: usize) -> Result<()> {
        if self.options.mode == Mode::Quorum && servers < MIN_QUORUM_SERVERS {
            return Err(LockError::config(
                "options.mode",
                format!(
                    "quorum needs at least {MIN_QUORUM_SERVERS} servers (an odd number is best), got {servers}"
                ),
            ));
        }
        Ok(())
    }
}

fn connections(map: &SmallMap<String, &str>) -> Result<Vec<ConnectionSpec>> {
    // `connections.<name>.<param>` wins over `connection.<param>`, as in ConnectionParams.manyFromConfig.
    // Keyed by (number, name): numeric section names sort numerically, so `connections.10`
    // follows `connections.9`, and other names after them.
    type Sections<'a> = SmallMap<(u64, &'a str), SmallMap<&'a str, &'a str>>;
    let mut sections: Sections<'_> = SmallMap::new();
    for (key, value) in map.iter() {
        if let Some(rest) = key.strip_prefix("connections.") {
            let Some((name, param)) = rest.split_once('.') else {
                return Err(LockError::config(
                    key,
                    "expected connections.<name>.<param>",
                ));
            };
            let order = name.parse::<u64>().unwrap_or(u64::MAX);
            sections
                .entry_or_default((order, name))
                .insert(param, value);
        }
    }
    // Top-level `credential.*` is every connection's, unless its own section sets the parameter.
    fn shared<'a>(map: &'a SmallMap<String, &'a str>, params: &mut SmallMap<&'a str, &'a str>) {
        for (key, value) in map.iter().filter(|(k, _)| k.starts_with("credential.")) {
            if params.get(key.as_str()).is_none() {
                params.insert(key.as_str(), value);
            }
        }
    }
    if sections.is_empty() {
        let mut single: SmallMap<&str, &str> = map
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("connection.").map(|p| (p, *v)))
            .collect();
        if !single.is_empty() {
            shared(map, &mut single);
            return Ok(vec![connection_spec("connection", &single)?]);
        }
        return Ok(Vec::new());
    }
    sections
        .iter()
        .map(|((_, name), params)| {
            let mut params = params.clone();
            shared(map, &mut params);
            connection_spec(&format!("connections.{name}"), &params)
        })
        .collect()
}

/// One connection's parameters (`ConnectionParams` with its `credential.*`): a discovery key, a
/// uri, or host and port; the protocol (`memcached`, or `memcacheds` for TLS) and credentials.
#[inline(never)]
pub fn connection_spec(prefix: &str, params: &SmallMap<&str, &str>) -> Result<ConnectionSpec> {
    let mut credential: Vec<(&str, &str)> = Vec::new();
    for (param, value) in params.iter() {
        match *param {
            "host" | "port" | "uri" | "discovery_key" | "protocol" => {}
            other => match other.strip_prefix("credential.") {
                Some(name) if CREDENTIAL_PARAMS.contains(&name) => credential.push((name, *value)),
                Some(_) => {
                    return Err(LockError::config(
                        &format!("{prefix}.{other}"),
                        format!(
                            "unknown credential parameter (known: {})",
                            CREDENTIAL_PARAMS.join(", ")
                        ),
                    ));
                }
                None => {
                    return Err(LockError::config(
                        &format!("{prefix}.{other}"),
                        "unknown connection parameter (known: host, port, uri, discovery_key, protocol, credential.*)",
                    ));
                }
            },
        }
    }
    let protocol_tls = match params.get("protocol").copied() {
        None | Some("") => None,
        Some(p) if p.eq_ignore_ascii_case("memcached") => Some(false),
        Some(p) if p.eq_ignore_ascii_case("memcacheds") => Some(true),
        Some(other) => {
            return Err(LockError::config(
                &format!("{prefix}.protocol"),
                format!("protocol \"{other}\" is not supported; memcached, or memcacheds for TLS"),
            ));
        }
    };
    // Errors about a credential name the section it was set in: a connection's own, else the
    // shared `credential.*`.
    let credential_prefix = if prefix == "connection" {
        String::new()
    } else {
        format!("{prefix}.")
    };
    if let Some(key) = params.get("discovery_key").filter(|k| !k.is_empty()) {
        // Checked now, applied to each connection discovery resolves to.
        security(
            &credential_prefix,
            protocol_tls.unwrap_or(false),
            &credential,
        )?;
        let inherited = params
            .iter()
            .filter(|(k, _)| **k == "protocol" || k.starts_with("credential."))
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        return Ok(ConnectionSpec::Discovery {
            key: (*key).to_owned(),
            params: inherited,
        });
    }
    let (host, port, scheme_tls) = if let Some(uri) = params.get("uri").filter(|u| !u.is_empty()) {
        parse_uri(&format!("{prefix}.uri"), uri)?
    } else {
        let host = match params.get("host") {
            Some(h) if h.is_empty() || h.contains(char::is_whitespace) => {
                return Err(LockError::config(
                    &format!("{prefix}.host"),
                    format!("invalid host \"{h}\""),
                ));
            }
            Some(h) => (*h).to_owned(),
            None => "localhost".to_owned(),
        };
        let port = match params.get("port") {
            Some(p) => parse_port(&format!("{prefix}.port"), p)?,
            None => DEFAULT_PORT,
        };
        (host, port, None)
    };
    let tls = match (protocol_tls, scheme_tls) {
        (Some(protocol), Some(scheme)) if protocol != scheme => {
            return Err(LockError::config(
                &format!("{prefix}.protocol"),
                "the protocol and the uri's scheme disagree about TLS",
            ));
        }
        (Some(on), _) | (None, Some(on)) => on,
        (None, None) => false,
    };
    Ok(ConnectionSpec::Endpoint(Endpoint {
        host,
        port,
        security: security(&credential_prefix, tls, &credential)?,
    }))
}

/// `memcached://host:port`, `memcacheds://host:port` (TLS), `host:port` or `host`; IPv6 literals
/// in brackets. The third value says whether the scheme asks for TLS (`None`: no scheme).
pub fn parse_uri(key: &str, uri: &str) -> Result<(String, u16, Option<bool>)> {
    let (rest, tls) = match uri.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("memcached") => (rest, Some(false)),
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("memcacheds") => (rest, Some(true)),
        Some((scheme, _)) => {
            return Err(LockError::config(
                key,
                format!("scheme \"{scheme}\" is not memcached:// or memcacheds://"),
            ));
        }
        None => (uri, None),
    };
    // user:password@host: the password would end up in error messages and logs. Credentials
    // have keys of their own.
    if rest.contains('@') {
        return Err(LockError::config(
            key,
            "a uri with user information (user:password@) is refused: set credential.username and credential.password",
        ));
    }
    let rest = rest.trim_end_matches('/');
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let Some((host, after)) = v6.split_once(']') else {
            return Err(LockError::config(key, format!("unclosed [ in \"{uri}\"")));
        };
        match after.strip_prefix(':') {
            Some(p) => (host, Some(p)),
            None if after.is_empty() => (host, None),
            None => return Err(LockError::config(key, format!("cannot read \"{uri}\""))),
        }
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || "/@?#".contains(c)) {
        return Err(LockError::config(key, format!("invalid host in \"{uri}\"")));
    }
    let port = match port {
        Some(p) => parse_port(key, p)?,
        None => DEFAULT_PORT,
    };
    Ok((host.to_owned(), port, tls))
}

fn parse_port(key: &str, value: &str) -> Result<u16> {
    match value.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(LockError::config(
            key,
            format!("port must be 1..=65535, got \"{value}\""),
        )),
    }
}

fn options(map: &SmallMap<String, &str>) -> Result<Options> {
    let mut o = Options::default();
    for (key, value) in map.iter() {
        let Some(name) = key.strip_prefix("options.") else {
            continue;
        };
        match name {
            "retry_timeout" => o.retry_timeout = int(key, value, 1, HOUR_MS)?,
            // The seed's cache size: checked, so a typo is still an error, but a lock keeps one
            // small item per held key and has nothing to bound with it.
            "max_size" => _ = int(key, value, 0, u64::from(u32::MAX))?,
            "max_key_size" => {
                o.max_key_size = int(key, value, 4, MEMCACHED_MAX_KEY as u64)? as usize
            }
            "max_expiration" => {
                o.max_expiration =
                    int(key, value, 2, u64::from(MEMCACHED_MAX_RELATIVE_SECS))? as u32
            }
            "max_value" => o.max_value = int(key, value, MIN_MAX_VALUE as u64, 1 << 30)? as usize,
            "pool_size" => o.pool_size = int(key, value, 1, 1024)? as usize,
            "reconnect" => o.reconnect = int(key, value, 1, HOUR_MS)?,
            "timeout" => o.timeout = int(key, value, 1, HOUR_MS)?,
            "retries" => o.retries = int(key, value, 0, 100)? as u32,
            "failures" => o.failures = int(key, value, 1, 1_000_000)? as u32,
            "retry" => o.retry = int(key, value, 0, 24 * HOUR_MS)?,
            "idle" => o.idle = int(key, value, 0, 24 * HOUR_MS)?,
            "drift_factor" => o.drift_ppm = fraction_ppm(key, value)?,
            "drift_ms" => o.drift_ms = int(key, value, 0, HOUR_MS)?,
            "mode" => {
                o.mode = match value.to_ascii_lowercase().as_str() {
                    "shard" => Mode::Shard,
                    "quorum" => Mode::Quorum,
                    _ => {
                        return Err(LockError::config(
                            key,
                            format!("expected shard or quorum, got \"{value}\""),
                        ));
                    }
                }
            }
            "max_lease" => o.max_lease = int(key, value, 1, 24 * HOUR_MS)?,
            "sharding" => {
                o.sharding = match value.to_ascii_lowercase().as_str() {
                    "jump" => Sharding::Jump,
                    "rendezvous" => Sharding::Rendezvous,
                    _ => {
                        return Err(LockError::config(
                            key,
                            format!("expected jump or rendezvous, got \"{value}\""),
                        ));
                    }
                }
            }
            "remove" => match value.to_ascii_lowercase().as_str() {
                "false" | "0" | "" => {}
                "true" | "1" => {
                    return Err(LockError::config(
                        key,
                        "true is refused: moving a dead server's keys to another server lets two clients hold one lock",
                    ));
                }
                _ => {
                    return Err(LockError::config(
                        key,
                        format!("expected true or false, got \"{value}\""),
                    ));
                }
            },
            _ => {
                return Err(LockError::config(
                    key,
                    "unknown option (known: retry_timeout, max_size, max_key_size, max_expiration, max_value, pool_size, reconnect, timeout, retries, failures, retry, remove, idle, drift_factor, drift_ms, sharding, mode, max_lease)",
                ));
            }
        }
    }
    Ok(o)
}

/// A decimal fraction from 0 to 0.5 (`0.01`), as parts per million. Parsed by hand: float
/// parsing and formatting would add tens of kilobytes to the component.
fn fraction_ppm(key: &str, value: &str) -> Result<u32> {
    let parsed = match value.split_once('.') {
        None => value.parse::<u32>().ok().filter(|&n| n == 0),
        Some(("0" | "", digits))
            if (1..=6).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) =>
        {
            format!("{digits:0<6}").parse::<u32>().ok()
        }
        Some(_) => None,
    };
    parsed.filter(|&ppm| ppm <= 500_000).ok_or_else(|| {
        LockError::new(
            Code::InvalidConfig,
            format!("config key {key}: expected a fraction from 0 to 0.5 (at most 6 decimals), got \"{value}\""),
        )
    })
}

fn int(key: &str, value: &str, min: u64, max: u64) -> Result<u64> {
    match value.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(LockError::new(
            Code::InvalidConfig,
            format!("config key {key}: expected an integer in {min}..={max}, got \"{value}\""),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Result<LockConfig> {
        LockConfig::from_pairs(pairs)
    }

    fn endpoint(host: &str, port: u16) -> ConnectionSpec {
        ConnectionSpec::Endpoint(Endpoint::plain(host, port))
    }

    #[test]
    fn drift_factor_is_a_decimal_fraction() {
        let ppm = |v: &str| cfg(&[("options.drift_factor", v)]).map(|c| c.options.drift_ppm);
        assert_eq!(ppm("0.01"), Ok(10_000));
        assert_eq!(ppm("0.5"), Ok(500_000));
        assert_eq!(ppm("0"), Ok(0));
        assert_eq!(ppm(".000001"), Ok(1));
        assert!(ppm("0.5000001").is_err() && ppm("0.6").is_err() && ppm("-0.1").is_err());
    }

    #[test]
    fn tls_and_credentials_per_connection() {
        use crate::security::Credential;
        let c = cfg(&[
            ("connections.1.uri", "memcacheds://m1:11212"),
            ("connections.2.host", "m2"),
            ("connections.2.protocol", "memcacheds"),
            ("connections.2.credential.username", "bob"),
            ("connections.2.credential.password", "pw2"),
            ("connections.3.host", "m3"),
            ("credential.username", "alice"),
            ("credential.password", "pw"),
            ("credential.ssl_ca_file", "/ca.pem"),
        ]);
        // TLS settings at the top level meet a plaintext connection (3): refused, naming it.
        let err = c.unwrap_err();
        assert!(
            err.message.contains("connections.3.credential.ssl_ca_file"),
            "{}",
            err.message
        );
        let c = cfg(&[
            ("connections.1.uri", "memcacheds://m1:11212"),
            ("connections.2.host", "m2"),
            ("connections.2.credential.username", "bob"),
            ("connections.2.credential.password", "pw2"),
            ("credential.username", "alice"),
            ("credential.password", "pw"),
        ])
        .expect("valid");
        let [ConnectionSpec::Endpoint(one), ConnectionSpec::Endpoint(two)] = &c.connections[..]
        else {
            panic!("two endpoints: {:?}", c.connections);
        };
        assert!(one.security.tls.as_ref().is_some_and(|t| t.verify));
        assert!(two.security.tls.is_none());
        let user = |e: &Endpoint| match &e.security.credential {
            Credential::Password { username, .. } => username.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!((user(one), user(two)), ("alice".into(), "bob".into()));
        assert!(
            !format!("{c:?}").contains("pw"),
            "the password is printed: {c:?}"
        );
        // A password never shows in an error: not from a uri's userinfo, not from a password
        // memcached could not use (it splits the data at spaces), not in a discovery key's
        // inherited parameters.
        for uri in [
            "memcacheds://alice:s3cret@m1:11211",
            "memcached://alice:s3cret@m1",
        ] {
            let err = cfg(&[("connection.uri", uri)]).unwrap_err();
            assert!(!err.message.contains("s3cret"), "{}", err.message);
        }
        let err = cfg(&[
            ("connection.host", "m"),
            ("credential.username", "a"),
            ("credential.password", "s3cret word"),
        ])
        .unwrap_err();
        assert!(
            err.message.contains("credential.password") && !err.message.contains("s3cret"),
            "{}",
            err.message
        );
        let c = cfg(&[
            ("connection.discovery_key", "k"),
            ("credential.username", "a"),
            ("credential.password", "s3cret"),
        ])
        .expect("valid");
        assert!(!format!("{c:?}").contains("s3cret"), "printed: {c:?}");
        // The protocol and the scheme must agree; unknown credential parameters are refused.
        assert!(
            cfg(&[
                ("connection.uri", "memcacheds://m"),
                ("connection.protocol", "memcached")
            ])
            .is_err()
        );
        assert!(cfg(&[("connection.host", "m"), ("credential.passwd", "x")]).is_err());
        // Quorum mode: at least three servers, listed (a majority of a discovered list means
        // nothing to a client that discovered another).
        assert!(cfg(&[("connection.host", "m"), ("options.mode", "quorum")]).is_err());
        assert!(
            cfg(&[
                ("connection.discovery_key", "k"),
                ("options.mode", "quorum")
            ])
            .is_err_and(|e| e.message.contains("discovery"))
        );
        // A discovery key carries the protocol and credentials to what it resolves to.
        let c = cfg(&[
            ("connection.discovery_key", "k"),
            ("connection.protocol", "memcacheds"),
            ("credential.store_key", "s"),
        ])
        .expect("valid");
        let [ConnectionSpec::Discovery { params, .. }] = &c.connections[..] else {
            panic!("{:?}", c.connections);
        };
        assert!(params.contains(&("protocol".into(), "memcacheds".into())));
        assert!(params.contains(&("credential.store_key".into(), "s".into())));
    }

    #[test]
    fn seed_defaults() {
        let c = cfg(&[("connection.host", "m1")]).expect("valid");
        assert_eq!(c.connections, vec![endpoint("m1", 11211)]);
        assert_eq!(c.options, Options::default());
        assert_eq!(c.options.retry_timeout, 100);
    }

    /// Every key the pip-services documentation of `MemcachedLock` lists, with its documented
    /// default: a pip-services config must never be refused for a key pip-services documents.
    #[test]
    fn every_key_the_seed_documents_is_accepted() {
        let seed = [
            ("connection.discovery_key", "cache"),
            ("connection.host", "m1"),
            ("connection.port", "11211"),
            ("connection.uri", "memcached://m1:11211"),
            ("options.max_size", "1000"),
            ("options.max_key_size", "250"),
            ("options.max_expiration", "2592000"),
            ("options.max_value", "1048576"),
            ("options.pool_size", "5"),
            ("options.reconnect", "10000"),
            ("options.retries", "3"),
            ("options.timeout", "60000"),
            ("options.failures", "5"),
            ("options.retry", "30000"),
            ("options.idle", "5000"),
        ];
        for (key, value) in seed {
            if let Err(e) = cfg(&[("connection.host", "m1"), (key, value)]) {
                panic!("{key}={value} refused: {}", e.message);
            }
        }
    }

    #[test]
    fn connection_forms() {
        let c = cfg(&[("connection.uri", "memcached://m1:1234")]).expect("uri");
        assert_eq!(c.connections, vec![endpoint("m1", 1234)]);
        let c = cfg(&[("Connection.URI", "[::1]:99")]).expect("v6");
        assert_eq!(c.connections, vec![endpoint("::1", 99)]);
        let c = cfg(&[
            ("connections.10.host", "b"),
            ("connections.9.host", "a"),
            ("connections.9.port", "2"),
            ("connection.host", "ignored"),
        ])
        .expect("many");
        assert_eq!(c.connections, vec![endpoint("a", 2), endpoint("b", 11211)]);
        let c = cfg(&[("connection.discovery_key", "cache")]).expect("discovery");
        assert_eq!(
            c.connections,
            vec![ConnectionSpec::Discovery {
                key: "cache".into(),
                params: Vec::new()
            }]
        );
        assert!(cfg(&[]).expect("empty").connections.is_empty());
    }

    #[test]
    fn bad_values_name_their_key() {
        for (key, value) in [
            ("connection.port", "0"),
            ("connection.port", "http"),
            ("connection.uri", "redis://x:1"),
            ("connection.uri", "a b:1"),
            ("connection.user", "x"),
            ("options.timeout", "-1"),
            ("options.timeout", "0"),
            ("options.timeout", "1.5"),
            ("options.max_key_size", "251"),
            ("options.max_expiration", "2592001"),
            ("options.max_value", "10"),
            ("options.max_size", "many"),
            ("options.sharding", "ketama"),
            ("options.remove", "true"),
            ("options.timout", "10"),
            ("options.drift_factor", "0.9"),
            ("options.drift_factor", "NaN"),
            ("options.drift_factor", "1e-2"),
        ] {
            let err = cfg(&[(key, value)]).expect_err(key);
            assert_eq!(err.code, Code::InvalidConfig);
            assert!(err.message.contains(key), "{key}: {}", err.message);
        }
    }
}
