//! Scripted misbehaving servers: each accepts connections on a free loopback port and answers
//! the connection handshake correctly (`stats`, and a hit for the incarnation item), then follows
//! its script.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;

/// What the fake does after the handshake, when the first lock command arrives.
#[derive(Debug, Clone, Copy)]
pub enum Script {
    /// Answers with these bytes and keeps the connection open.
    Reply(&'static [u8]),
    /// Answers with these bytes, then closes the connection.
    ReplyThenClose(&'static [u8]),
    /// Sends an endless line without `\r\n`.
    Flood,
}

pub struct FakeServer {
    port: u16,
}

/// The reply to the handshake: `stats`, then the incarnation item's `mg` (opaque 0).
const HANDSHAKE: &[u8] = b"STAT pid 4242\r\nSTAT uptime 10\r\nSTAT time 1700000010\r\nEND\r\n\
VA 16 O0\r\n0123456789abcdef\r\n";

impl FakeServer {
    pub fn start(script: Script) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake server");
        let port = listener.local_addr().expect("addr").port();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                thread::spawn(move || serve(stream, script));
            }
        });
        FakeServer { port }
    }

    pub fn uri(&self) -> String {
        format!("memcached://127.0.0.1:{}", self.port)
    }
}

fn serve(mut stream: TcpStream, script: Script) {
    let mut buf = [0u8; 4096];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let request = &buf[..n];
        if request.starts_with(b"stats") {
            if stream.write_all(HANDSHAKE).is_err() {
                return;
            }
            continue;
        }
        match script {
            Script::Reply(bytes) => {
                if stream.write_all(bytes).is_err() {
                    return;
                }
            }
            Script::ReplyThenClose(bytes) => {
                let _ = stream.write_all(bytes);
                return;
            }
            Script::Flood => {
                let chunk = [b'A'; 1024];
                for _ in 0..64 {
                    if stream.write_all(&chunk).is_err() {
                        return;
                    }
                }
            }
        }
    }
}
