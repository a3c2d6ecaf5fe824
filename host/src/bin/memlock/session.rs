//! What every lock-taking command does around the library: open a configured lock, and show
//! that it is waiting when a wait takes a while.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use memlock_host::{Error, Lock, Runtime};

use crate::settings::Pairs;

/// A configured, opened lock.
pub async fn open(config: &Pairs, cid: Option<&str>) -> Result<Lock, Error> {
    let lock = Lock::new(Runtime::shared()?).await?;
    lock.configure(config).await?;
    lock.open(cid).await?;
    Ok(lock)
}

/// Shows a waiting line on a terminal (never in `--json` mode) while `wait` runs, and clears it.
pub async fn with_progress<T>(key: &str, json: bool, wait: impl Future<Output = T>) -> T {
    let show = !json && std::io::stderr().is_terminal();
    let started = Instant::now();
    tokio::pin!(wait);
    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    let mut shown = false;
    let result = loop {
        tokio::select! {
            biased;
            result = &mut wait => break result,
            _ = ticker.tick(), if show => {
                if started.elapsed() >= Duration::from_millis(500) {
                    eprint!("\rwaiting for {key:?}… {:.1} s", started.elapsed().as_secs_f64());
                    shown = true;
                }
            }
        }
    };
    if shown {
        eprint!("\r\x1b[K");
    }
    result
}
