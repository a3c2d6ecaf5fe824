//! The component's sockets over `turmoil::net`: partitions, holds and latency apply to them.

use memlock_host::net::{ConnectFuture, NetStream, Network};

pub struct TurmoilNetwork;

impl Network for TurmoilNetwork {
    fn connect<'a>(&'a self, host: &'a str, port: u16) -> ConnectFuture<'a> {
        Box::pin(async move {
            let stream = turmoil::net::TcpStream::connect((host, port)).await?;
            Ok(Box::new(stream) as Box<dyn NetStream>)
        })
    }
}
