//! `memlock`: the memlock component on real memcached, from the shell.

mod output;
mod run;
mod session;
mod settings;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use memlock_host::Lease;
use output::{Exit, Output};

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
    /// File whose first line is the password for memcached's authentication
    /// (`credential.password`; or set $MEMLOCK_PASSWORD). A password is never read from the
    /// command line, where other users see it.
    #[arg(long, global = true, value_name = "FILE")]
    password_file: Option<PathBuf>,
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
3 timed out waiting, 4 invalid config/key/ttl/handle or refused credentials, 5 memcached unavailable or misbehaving, 6 internal error. \
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
    let config = match settings::assemble(
        cli.config.as_deref(),
        &cli.servers,
        &cli.sets,
        cli.password_file.as_deref(),
    ) {
        Ok(config) => settings::with_default_server(config),
        Err(e) => return out.invalid(&format!("{e:#}")),
    };
    let cid = cli.correlation_id.as_deref();
    if let Command::Run(args) = cli.command {
        return run::run(args, config, cid, out).await;
    }
    let lock = match session::open(&config, cid).await {
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
            match session::with_progress(
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
        Command::Run(_) => Exit::Internal,
    };
    let _ = lock.close(cid).await;
    exit
}
