//! Where the component's sockets go. [`Network`] opens byte streams; the real one is tokio TCP,
//! the simulation supplies `turmoil::net`. Timeouts are applied above it with `tokio::time`, which
//! is simulated time under turmoil.

use std::future::Future;
use std::io;
use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWrite};

/// A connected byte stream.
pub trait NetStream: AsyncRead + AsyncWrite + Unpin + Send + Sync + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync + 'static> NetStream for T {}

pub type ConnectFuture<'a> =
    Pin<Box<dyn Future<Output = io::Result<Box<dyn NetStream>>> + Send + 'a>>;

/// Opens streams to `host:port`.
pub trait Network: Send + Sync + 'static {
    fn connect<'a>(&'a self, host: &'a str, port: u16) -> ConnectFuture<'a>;
}

/// Real TCP through tokio, with `TCP_NODELAY` (every lock command is one small write).
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioNetwork;

impl Network for TokioNetwork {
    fn connect<'a>(&'a self, host: &'a str, port: u16) -> ConnectFuture<'a> {
        Box::pin(async move {
            let stream = tokio::net::TcpStream::connect((host, port)).await?;
            stream.set_nodelay(true)?;
            Ok(Box::new(stream) as Box<dyn NetStream>)
        })
    }
}
