//! Where the CLI's ConfigParams come from, lowest precedence first: a config file
//! (`--config` or `$MEMLOCK_CONFIG`), `$MEMLOCK_SERVERS`, then `--server` and `--set` flags, and
//! last the password (`$MEMLOCK_PASSWORD`, or `--password-file`). `--set` refuses passwords: a
//! command line is visible to every user of the machine.
//!
//! A config file is either flat `key=value` lines (Java-properties style, `#` comments) or YAML,
//! read by a real YAML parser (`yaml-rust2`): mappings nest into dotted keys, lists get their
//! index (`connections: [{host: m1}]` is `connections.0.host`, as pip-services' `ConfigParams`
//! flattens them), and scalars are the values. A key without a value, or YAML that is not
//! mappings, lists and scalars, is an error naming the key, never a silent misread.
//!
//! ```yaml
//! connection:
//!   host: m1
//!   port: 11211
//! options.timeout: 2000
//! ```

use std::path::Path;

use anyhow::{Context, bail};
use yaml_rust2::{Yaml, YamlLoader};

pub type Pairs = Vec<(String, String)>;

/// Reads a config file into ConfigParams pairs.
pub fn read_file(path: &Path) -> anyhow::Result<Pairs> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    parse(&text).with_context(|| format!("in config file {}", path.display()))
}

/// Parses a config file's text: flat `key=value` lines, or YAML.
pub fn parse(text: &str) -> anyhow::Result<Pairs> {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let flat = !lines.is_empty()
        && lines.iter().all(|l| {
            l.split_once('=').is_some_and(|(k, _)| {
                let k = k.trim();
                !k.is_empty() && !k.contains([':', ' ', '\t'])
            })
        });
    if flat {
        return Ok(lines
            .iter()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect());
    }
    let documents = YamlLoader::load_from_str(text).context("not valid YAML")?;
    let mut pairs = Vec::new();
    match documents.as_slice() {
        [] => {}
        [document] => flatten("", document, &mut pairs)?,
        _ => bail!("expected one YAML document, found {}", documents.len()),
    }
    Ok(pairs)
}

/// Appends `value` under the dotted key `prefix`.
fn flatten(prefix: &str, value: &Yaml, pairs: &mut Pairs) -> anyhow::Result<()> {
    let child = |key: &str| {
        if prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{prefix}.{key}")
        }
    };
    match value {
        Yaml::Hash(map) => {
            for (key, value) in map {
                let key = match key {
                    Yaml::String(s) => s.clone(),
                    Yaml::Integer(n) => n.to_string(),
                    other => bail!("key {other:?} under {prefix:?} is not a name"),
                };
                if key.trim().is_empty() || key.contains(char::is_whitespace) {
                    bail!("invalid key {key:?} under {prefix:?}");
                }
                flatten(&child(&key), value, pairs)?;
            }
        }
        Yaml::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                flatten(&child(&index.to_string()), item, pairs)?;
            }
        }
        Yaml::String(s) => pairs.push((prefix.to_owned(), s.clone())),
        Yaml::Integer(n) => pairs.push((prefix.to_owned(), n.to_string())),
        Yaml::Real(r) => pairs.push((prefix.to_owned(), r.clone())),
        Yaml::Boolean(b) => pairs.push((prefix.to_owned(), b.to_string())),
        Yaml::Null if prefix.is_empty() => {}
        Yaml::Null => bail!("config key {prefix} has no value"),
        other => bail!("config key {prefix}: unsupported YAML value {other:?}"),
    }
    if prefix.is_empty() && !matches!(value, Yaml::Hash(_) | Yaml::Null) {
        bail!("a config file is a mapping of keys (`options.timeout: 2000`), not a lone value");
    }
    Ok(())
}

/// The CLI's ConfigParams: the file < `$MEMLOCK_SERVERS` < `--server` < `--set` < the password.
pub fn assemble(
    file: Option<&Path>,
    servers: &[String],
    sets: &[String],
    password_file: Option<&Path>,
) -> anyhow::Result<Pairs> {
    let mut layers = Vec::new();
    if let Some(path) = file {
        layers.push(read_file(path)?);
    }
    if let Ok(list) = std::env::var("MEMLOCK_SERVERS") {
        layers.push(self::servers(&[list]));
    }
    layers.push(self::servers(servers));
    let sets: Pairs = sets
        .iter()
        .map(|s| assignment(s))
        .collect::<anyhow::Result<_>>()?;
    if let Some((key, _)) = sets
        .iter()
        .find(|(k, _)| k.to_ascii_lowercase().ends_with("password"))
    {
        bail!(
            "--set {key}=… would put a password on the command line, where other users see it: use --password-file FILE or $MEMLOCK_PASSWORD"
        );
    }
    layers.push(sets);
    let mut merged = merge(layers);
    // `--password-file` is always meant; `$MEMLOCK_PASSWORD` left in an environment only where
    // a user name is configured (a config with a credential store key has no use for it).
    let has_user = merged
        .iter()
        .any(|(k, _)| k.to_ascii_lowercase().ends_with("credential.username"));
    if let Some(password) = password(password_file, has_user)? {
        merged = merge(vec![merged, vec![("credential.password".into(), password)]]);
    }
    Ok(merged)
}

/// The password from `--password-file` (its first line) or, when `from_env`, `$MEMLOCK_PASSWORD`.
fn password(file: Option<&Path>, from_env: bool) -> anyhow::Result<Option<String>> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the password file {}", path.display()))?;
        let line = text.lines().next().unwrap_or_default();
        if line.is_empty() {
            bail!("the password file {} is empty", path.display());
        }
        return Ok(Some(line.to_owned()));
    }
    if !from_env {
        return Ok(None);
    }
    Ok(std::env::var("MEMLOCK_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty()))
}

/// memcached on localhost:11211 when no connection is configured at all (the seed's default).
pub fn with_default_server(mut config: Pairs) -> Pairs {
    if !config
        .iter()
        .any(|(k, _)| k.to_ascii_lowercase().starts_with("connection"))
    {
        config.push((
            "connection.uri".into(),
            "memcached://127.0.0.1:11211".into(),
        ));
    }
    config
}

/// `host:port` (or a `memcached://` uri) list, as `connections.<n>.uri` pairs.
pub fn servers(list: &[String]) -> Pairs {
    list.iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .enumerate()
        .map(|(i, s)| (format!("connections.{}.uri", i + 1), s.to_owned()))
        .collect()
}

/// `KEY=VALUE` from `--set`.
pub fn assignment(text: &str) -> anyhow::Result<(String, String)> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.trim().to_owned())),
        _ => bail!("--set expects KEY=VALUE, got {text:?}"),
    }
}

/// Later sources replace earlier ones; server lists replace each other whole.
pub fn merge(layers: Vec<Pairs>) -> Pairs {
    let mut merged: Pairs = Vec::new();
    for layer in layers {
        if layer.iter().any(|(k, _)| is_connection_key(k)) {
            merged.retain(|(k, _)| !is_connection_key(k));
        }
        for (key, value) in layer {
            merged.retain(|(k, _)| !k.eq_ignore_ascii_case(&key));
            merged.push((key, value));
        }
    }
    merged
}

fn is_connection_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.starts_with("connection.") || key.starts_with("connections.")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Pairs {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn flat_and_nested_files() {
        let yaml = "# memlock\nconnection:\n  host: m1\n  port: 11211\noptions:\n  timeout: \"2000\" # ms\noptions.retries: 3\n";
        assert_eq!(
            parse(yaml).expect("parses"),
            p(&[
                ("connection.host", "m1"),
                ("connection.port", "11211"),
                ("options.timeout", "2000"),
                ("options.retries", "3")
            ])
        );
        let flat = "# flat\nconnection.uri=memcached://m1:11211\noptions.timeout = 2000\n";
        assert_eq!(
            parse(flat).expect("parses"),
            p(&[
                ("connection.uri", "memcached://m1:11211"),
                ("options.timeout", "2000")
            ])
        );
        assert!(parse("just words\n").is_err());
    }

    #[test]
    fn a_quoted_hash_is_part_of_the_value() {
        assert_eq!(
            parse("connection.host: \"m1 #2\"\n").expect("parses"),
            p(&[("connection.host", "m1 #2")])
        );
    }

    #[test]
    fn a_key_without_a_value_is_an_error_naming_it() {
        let err = parse("options:\n  timeout:\n").expect_err("no value");
        assert!(format!("{err:#}").contains("options.timeout"), "{err:#}");
    }

    #[test]
    fn lists_get_their_index() {
        let yaml = "connections:\n  - host: m1\n    port: 11211\n  - host: m2\n";
        assert_eq!(
            parse(yaml).expect("parses"),
            p(&[
                ("connections.0.host", "m1"),
                ("connections.0.port", "11211"),
                ("connections.1.host", "m2")
            ])
        );
    }

    #[test]
    fn later_layers_win_and_server_lists_replace() {
        let merged = merge(vec![
            p(&[("connection.uri", "a:1"), ("options.timeout", "1")]),
            servers(&["b:2,c:3".to_string()]),
            p(&[("OPTIONS.TIMEOUT", "2")]),
        ]);
        assert_eq!(
            merged,
            p(&[
                ("connections.1.uri", "b:2"),
                ("connections.2.uri", "c:3"),
                ("OPTIONS.TIMEOUT", "2")
            ])
        );
    }
}
