//! A raw memcached client for assertions: what does the server hold, byte for byte?

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

pub struct Raw {
    reader: BufReader<TcpStream>,
}

/// An item as the server has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub value: Vec<u8>,
    pub cas: u64,
    /// Remaining ttl in seconds; -1 means it never expires.
    pub ttl: i64,
}

impl Raw {
    pub fn connect(port: u16) -> Raw {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("raw connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("read timeout");
        Raw {
            reader: BufReader::new(stream),
        }
    }

    /// Sends raw bytes and reads one line.
    pub fn command(&mut self, bytes: &[u8]) -> String {
        self.reader.get_mut().write_all(bytes).expect("raw write");
        self.line()
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("raw read");
        line.trim_end().to_string()
    }

    /// The item under `key` (raw bytes, looked up base64-encoded), if any.
    pub fn get(&mut self, key: &[u8]) -> Option<Item> {
        let b64 = base64(key);
        let header = self.command(format!("mg {b64} b v c t\r\n").as_bytes());
        if header == "EN" {
            return None;
        }
        let mut parts = header.split(' ');
        assert_eq!(parts.next(), Some("VA"), "unexpected reply {header:?}");
        let len: usize = parts
            .next()
            .and_then(|l| l.parse().ok())
            .expect("VA length");
        let (mut cas, mut ttl) = (0, 0);
        for flag in parts {
            match flag.split_at(1) {
                ("c", v) => cas = v.parse().expect("cas"),
                ("t", v) => ttl = v.parse().expect("ttl"),
                _ => {}
            }
        }
        let mut value = vec![0; len + 2];
        self.reader.read_exact(&mut value).expect("value");
        value.truncate(len);
        Some(Item { value, cas, ttl })
    }

    /// Stores a plain item (`set`), for sentinels.
    pub fn set(&mut self, key: &str, value: &str) {
        let reply =
            self.command(format!("set {key} 0 0 {}\r\n{value}\r\n", value.len()).as_bytes());
        assert_eq!(reply, "STORED");
    }

    /// Classic `get` of a plain key: the value, if any.
    pub fn get_plain(&mut self, key: &str) -> Option<String> {
        let header = self.command(format!("get {key}\r\n").as_bytes());
        if header == "END" {
            return None;
        }
        let value = self.line();
        assert_eq!(self.line(), "END");
        Some(value)
    }

    /// `stats`: every `STAT name value` pair.
    pub fn stats(&mut self) -> Vec<(String, String)> {
        let mut line = self.command(b"stats\r\n");
        let mut stats = Vec::new();
        while line != "END" {
            let mut parts = line.splitn(3, ' ');
            if let (Some("STAT"), Some(name), Some(value)) =
                (parts.next(), parts.next(), parts.next())
            {
                stats.push((name.to_string(), value.to_string()));
            }
            line = self.line();
        }
        stats
    }

    pub fn delete(&mut self, key: &[u8]) -> String {
        self.command(format!("md {} b\r\n", base64(key)).as_bytes())
    }
}

/// A key as memcached's `b` flag expects it.
pub fn base64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}
