//! How a connection is protected: TLS (done by the host, asked for here) and memcached's ASCII
//! authentication (done here, by the component, so every host gets it).
//!
//! Keys follow pip-services: `connection.protocol` = `memcacheds` (or a `memcacheds://` uri) turns
//! TLS on; `credential.*` holds the user, the password or a credential store key, and the TLS
//! files (`ssl_ca_file`, `ssl_crt_file`, `ssl_key_file`). Top-level `credential.*` applies to
//! every connection; `connections.<n>.credential.*` overrides it for one.
//!
//! The password is a [`Secret`]: it is only ever written to the server, inside the
//! authentication command. Its `Debug` is redacted, and no error message quotes it.

use crate::prelude::*;

use crate::error::{LockError, Result};

/// A password: never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: &str) -> Self {
        Secret(value.to_owned())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl core::fmt::Debug for Secret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Who the client is to the server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Credential {
    /// No authentication: a server that asks for it is an `UNAUTHORIZED` error.
    #[default]
    None,
    Password {
        username: String,
        password: Secret,
    },
    /// Resolved at `open` through the referenced credential store.
    StoreKey(String),
}

/// TLS as configured; the server name defaults to the connection's host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    pub server_name: Option<String>,
    pub ca_file: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    /// `false` only with `credential.ssl_insecure=true`.
    pub verify: bool,
}

/// TLS and authentication for one connection.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Security {
    pub tls: Option<Tls>,
    pub credential: Credential,
}

/// The `credential.*` parameters a connection knows.
pub const CREDENTIAL_PARAMS: &[&str] = &[
    "username",
    "password",
    "store_key",
    "ssl_ca_file",
    "ssl_crt_file",
    "ssl_key_file",
    "ssl_server_name",
    "ssl_insecure",
];

/// Reads one connection's security from its `credential.*` parameters (names without the
/// prefix) and whether its protocol asks for TLS. `prefix` names the section in errors.
#[inline(never)]
pub fn security(prefix: &str, tls_on: bool, params: &[(&str, &str)]) -> Result<Security> {
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
            .filter(|v| !v.is_empty())
    };
    let key = |name: &str| format!("{prefix}credential.{name}");
    let credential = match (get("username"), get("password"), get("store_key")) {
        (None, None, None) => Credential::None,
        (Some(username), Some(password), None) => {
            if username.contains(char::is_whitespace) {
                return Err(LockError::config(
                    &key("username"),
                    "memcached's authentication cannot carry a user name with spaces",
                ));
            }
            if password.contains(char::is_whitespace) {
                return Err(LockError::config(
                    &key("password"),
                    "memcached's authentication cannot carry a password with spaces (it splits user and password at a space)",
                ));
            }
            Credential::Password {
                username: username.to_owned(),
                password: Secret::new(password),
            }
        }
        (None, None, Some(store_key)) => Credential::StoreKey(store_key.to_owned()),
        (_, _, Some(_)) => {
            return Err(LockError::config(
                &key("store_key"),
                "set either a credential store key or a user name and password, not both",
            ));
        }
        (Some(_), None, None) => {
            return Err(LockError::config(
                &key("password"),
                "a user name needs a password",
            ));
        }
        (None, Some(_), None) => {
            return Err(LockError::config(
                &key("username"),
                "a password needs a user name",
            ));
        }
    };
    let insecure = match get("ssl_insecure") {
        None | Some("0") => false,
        Some("1") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(_) => {
            return Err(LockError::config(
                &key("ssl_insecure"),
                "expected true or false",
            ));
        }
    };
    let tls_files = [
        "ssl_ca_file",
        "ssl_crt_file",
        "ssl_key_file",
        "ssl_server_name",
    ];
    if !tls_on {
        if let Some(name) = tls_files.iter().find(|n| get(n).is_some()) {
            return Err(LockError::config(
                &key(name),
                "TLS settings are given but TLS is off: set connection.protocol=memcacheds or use a memcacheds:// uri",
            ));
        }
        if insecure {
            return Err(LockError::config(
                &key("ssl_insecure"),
                "TLS is off: set connection.protocol=memcacheds or use a memcacheds:// uri",
            ));
        }
        return Ok(Security {
            tls: None,
            credential,
        });
    }
    let (cert_file, key_file) = (get("ssl_crt_file"), get("ssl_key_file"));
    if cert_file.is_some() != key_file.is_some() {
        let missing = if cert_file.is_none() {
            "ssl_crt_file"
        } else {
            "ssl_key_file"
        };
        return Err(LockError::config(
            &key(missing),
            "a client certificate needs both ssl_crt_file and ssl_key_file",
        ));
    }
    let tls = Tls {
        server_name: get("ssl_server_name").map(str::to_owned),
        ca_file: get("ssl_ca_file").map(str::to_owned),
        cert_file: cert_file.map(str::to_owned),
        key_file: key_file.map(str::to_owned),
        verify: !insecure,
    };
    Ok(Security {
        tls: Some(tls),
        credential,
    })
}

/// A credential store's answer (`username`, `password`, as ConfigParams pairs) for `store_key`.
pub fn from_store(store_key: &str, pairs: &[(String, String)]) -> Result<Credential> {
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    match (get("username"), get("password")) {
        (Some(username), Some(password))
            if !username.contains(char::is_whitespace)
                && !password.contains(char::is_whitespace) =>
        {
            Ok(Credential::Password {
                username: username.to_owned(),
                password: Secret::new(password),
            })
        }
        _ => Err(LockError::config(
            "credential.store_key",
            format!(
                "the credential stored under \"{store_key}\" has no usable username and password (both set, neither with spaces)"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_never_printed() {
        let s = security("", false, &[("username", "alice"), ("password", "hunter2")]).unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
        let err = security("", false, &[("password", "hunter2")]).unwrap_err();
        assert!(!err.message.contains("hunter2"), "{}", err.message);
    }

    #[test]
    fn tls_settings_without_tls_are_refused() {
        let err = security("", false, &[("ssl_ca_file", "/ca.pem")]).unwrap_err();
        assert!(
            err.message.contains("credential.ssl_ca_file"),
            "{}",
            err.message
        );
        let err = security("connections.2.", true, &[("ssl_crt_file", "/c.pem")]).unwrap_err();
        assert!(
            err.message
                .contains("connections.2.credential.ssl_key_file"),
            "{}",
            err.message
        );
        let tls = security("", true, &[("ssl_insecure", "true")])
            .unwrap()
            .tls
            .unwrap();
        assert!(!tls.verify);
        let tls = security("", true, &[]).unwrap().tls.unwrap();
        assert!(tls.verify && tls.ca_file.is_none());
    }

    #[test]
    fn a_credential_is_a_password_pair_or_a_store_key() {
        assert_eq!(
            security("", false, &[]).unwrap().credential,
            Credential::None
        );
        assert!(security("", false, &[("username", "a")]).is_err());
        assert!(security("", false, &[("username", "a b"), ("password", "p")]).is_err());
        assert!(
            security(
                "",
                false,
                &[("username", "a"), ("password", "p"), ("store_key", "k")]
            )
            .is_err()
        );
        assert_eq!(
            security("", false, &[("store_key", "k")])
                .unwrap()
                .credential,
            Credential::StoreKey("k".into())
        );
        let pairs = [
            ("username".to_owned(), "u".to_owned()),
            ("password".to_owned(), "p".to_owned()),
        ];
        assert!(matches!(
            from_store("k", &pairs),
            Ok(Credential::Password { .. })
        ));
        assert!(from_store("k", &pairs[..1]).is_err());
    }
}
