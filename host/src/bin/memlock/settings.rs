//! Where the CLI's ConfigParams come from, lowest precedence first: a config file
//! (`--config` or `$MEMLOCK_CONFIG`), `$MEMLOCK_SERVERS`, then `--server` and `--set` flags.
//!
//! The file holds the seed's keys, either flat (`connection.uri: memcached://m1:11211` or
//! `options.timeout=2000`) or as a nested YAML mapping of scalars:
//!
//! ```yaml
//! connection:
//!   host: m1
//!   port: 11211
//! options:
//!   timeout: 2000
//! ```

use std::path::Path;

use anyhow::{Context, bail};

pub type Pairs = Vec<(String, String)>;

/// Reads a config file into ConfigParams pairs.
pub fn read_file(path: &Path) -> anyhow::Result<Pairs> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    parse(&text).with_context(|| format!("in config file {}", path.display()))
}

/// Parses flat `key: value` / `key=value` lines and nested YAML mappings of scalars.
pub fn parse(text: &str) -> anyhow::Result<Pairs> {
    let mut pairs = Vec::new();
    // (indent, section name) of the enclosing mappings.
    let mut sections: Vec<(usize, String)> = Vec::new();
    for (number, raw) in text.lines().enumerate() {
        let line = raw.split(" #").next().unwrap_or_default().trim_end();
        let content = line.trim_start();
        if content.is_empty() || content.starts_with('#') || content == "---" {
            continue;
        }
        let indent = line.len() - content.len();
        while sections.last().is_some_and(|(i, _)| *i >= indent) {
            sections.pop();
        }
        let Some((key, value)) = content.split_once([':', '=']) else {
            bail!(
                "line {}: expected `key: value`, got {content:?}",
                number + 1
            );
        };
        let (key, value) = (key.trim(), unquote(value.trim()));
        if key.is_empty() || key.contains(char::is_whitespace) {
            bail!("line {}: invalid key {key:?}", number + 1);
        }
        let full = sections
            .iter()
            .map(|(_, s)| s.as_str())
            .chain([key])
            .collect::<Vec<_>>()
            .join(".");
        if value.is_empty() {
            sections.push((indent, key.to_owned()));
        } else {
            pairs.push((full, value.to_owned()));
        }
    }
    Ok(pairs)
}

fn unquote(value: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = value.strip_prefix(q).and_then(|v| v.strip_suffix(q)) {
            return inner;
        }
    }
    value
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
        let text = "# memlock\nconnection:\n  host: m1\n  port: 11211\noptions:\n  timeout: \"2000\" # ms\noptions.retries=3\n";
        assert_eq!(
            parse(text).expect("parses"),
            p(&[
                ("connection.host", "m1"),
                ("connection.port", "11211"),
                ("options.timeout", "2000"),
                ("options.retries", "3")
            ])
        );
        assert!(parse("just words\n").is_err());
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
