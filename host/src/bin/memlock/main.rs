//! `memlock`: the memlock component on real memcached, from the shell.

mod demo;
mod output;
mod run;
mod settings;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use memlock_host::{Error, Lease, Lock, Runtime};
use output::{Exit, Output};
use settings::Pairs;

/// A distributed lock on memcached, running as a WebAssembly component.
#[derive(Parser)]
#[command(name = "memlock", version, about, after_help = EXIT_CODES)]
struct Cli {
    /// memcached server (`host:port` or `memcached://host:port`); repeat or comma-separate to
    /// shard keys across several. Overrides the config file and $MEMLOCK_SERVERS.
    #[arg(long = "server", short = 's', global = true, value_name = "HOST:PORT")]
    servers: Vec<String>,
    /// Config file with pip-services keys (connection.*, connections.*, options.*).
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "MEMLOCK_CONFIG",
        value_name = "FILE"
    )]
    config: Option<PathBuf>,
    /// Sets one config key, e.g. `--set options.timeout=2000`; repeatable, wins over everything.
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Print one JSON object per outcome on stdout.
    #[arg(long, global = true)]
    json: bool,
    /// Correlation id passed to every call (appears in errors and logs).
    #[arg(long, global = true)]
    correlation_id: Option<String>,
    #[command(subcommand)]
    command: Command,
}

const EXIT_CODES: &str = "Exit codes: 0 acquired/released/extended, 1 busy or lease no longer held, 2 usage, \
3 timed out waiting, 4 invalid config/key/ttl/handle, 5 memcached unavailable or misbehaving, 6 internal error. \
`run` exits with the command's status, or 7 if the lease was lost and the command stopped, 126/127 if the \
command cannot be executed / is not found";

#[derive(Subcommand)]
enum Command {
    /// One attempt to take KEY; prints the lease handle on success.
    TryAcquire {
        key: String,
        /// Lease duration in milliseconds.
        #[arg(long, default_value_t = 10_000)]
        ttl: i64,
    },
    /// Waits up to --timeout for KEY; prints the lease handle on success.
    Acquire {
        key: String,
        /// Lease duration in milliseconds.
        #[arg(long, default_value_t = 10_000)]
        ttl: i64,
        /// How long to wait, in milliseconds.
        #[arg(long, default_value_t = 10_000)]
        timeout: i64,
    },
    /// Releases a lease by its handle (from try-acquire/acquire, in any process).
    Release {
        /// The lease handle (`ml1.…`).
        lease: String,
    },
    /// Prolongs a lease by its handle to --ttl from now; prints the new handle.
    Extend {
        /// The lease handle (`ml1.…`).
        lease: String,
        /// New lease duration in milliseconds, from now.
        #[arg(long, default_value_t = 10_000)]
        ttl: i64,
    },
    /// Runs a command while holding KEY, renewing the lease; stops it if the lease is lost.
    Run(run::RunArgs),
    /// Shows workers contending for a key on memcached (starts one if no server is configured).
    Demo(demo::DemoArgs),
    /// Internal: one demo worker process.
    #[command(hide = true)]
    DemoWorker(demo::WorkerArgs),
}

fn main() -> ExitCode {
    // Die quietly on a closed pipe (`memlock ... | head`) like other Unix tools, instead of
    // panicking inside println!.
    // SAFETY: setting a signal disposition to SIG_DFL before any thread starts.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("MEMLOCK_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let out = Output { json: cli.json };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return out
                .invalid(&format!("cannot start the async runtime: {e}"))
                .into();
        }
    };
    runtime.block_on(run(cli, &out)).into()
}

async fn run(cli: Cli, out: &Output) -> Exit {
    let config = match config(&cli) {
        Ok(config) => config,
        Err(e) => return out.invalid(&format!("{e:#}")),
    };
    let cid = cli.correlation_id.as_deref();
    match cli.command {
        Command::Demo(args) => return demo::run(args, config, cli.json).await,
        Command::DemoWorker(args) => return demo::worker(args, config).await,
        Command::Run(args) => return run::run(args, with_default_server(config), cid, out).await,
        _ => {}
    }
    let lock = match open(&with_default_server(config), cid).await {
        Ok(lock) => lock,
        Err(e) => return out.error(&e),
    };
    let exit = match cli.command {
        Command::TryAcquire { key, ttl } => {
            match lock.try_acquire(cid, key.as_bytes(), ttl).await {
                Ok(Some(lease)) => out.acquired(&lease, Duration::ZERO),
                Ok(None) => out.busy(&key),
                Err(e) => out.error(&e),
            }
        }
        Command::Acquire { key, ttl, timeout } => {
            let started = Instant::now();
            match with_progress(
                &key,
                cli.json,
                lock.acquire(cid, key.as_bytes(), ttl, timeout),
            )
            .await
            {
                Ok(lease) => out.acquired(&lease, started.elapsed()),
                Err(e) => out.error(&e),
            }
        }
        Command::Release { lease } => match Lease::from_handle(&lease) {
            Ok(lease) => match lock.release(cid, &lease).await {
                Ok(deleted) => out.released(&lease, deleted),
                Err(e) => out.error(&e),
            },
            Err(e) => out.invalid(&e.to_string()),
        },
        Command::Extend { lease, ttl } => match Lease::from_handle(&lease) {
            Ok(lease) => match lock.extend(cid, &lease, ttl).await {
                Ok(extended) => out.extended(&extended),
                Err(e) => out.error(&e),
            },
            Err(e) => out.invalid(&e.to_string()),
        },
        Command::Demo(_) | Command::DemoWorker(_) | Command::Run(_) => Exit::Internal,
    };
    let _ = lock.close(cid).await;
    exit
}

/// Assembles ConfigParams: file < $MEMLOCK_SERVERS < --server < --set.
fn config(cli: &Cli) -> anyhow::Result<Pairs> {
    let mut layers = Vec::new();
    if let Some(path) = &cli.config {
        layers.push(settings::read_file(path)?);
    }
    if let Ok(list) = std::env::var("MEMLOCK_SERVERS") {
        layers.push(settings::servers(&[list]));
    }
    layers.push(settings::servers(&cli.servers));
    layers.push(
        cli.sets
            .iter()
            .map(|s| settings::assignment(s))
            .collect::<anyhow::Result<_>>()?,
    );
    Ok(settings::merge(layers))
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

/// A configured, opened lock instance.
pub async fn open(config: &Pairs, cid: Option<&str>) -> Result<Lock, Error> {
    let lock = Lock::new(Runtime::shared()?).await?;
    lock.configure(config).await?;
    lock.open(cid).await?;
    Ok(lock)
}

/// Shows a waiting line on a terminal while `wait` runs.
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
