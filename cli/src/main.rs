//! `ironlog`: the broker and the user's toolbox in one binary.

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use ironlog_server::config::{file, BrokerArgs, BrokerConfig};

/// jemalloc instead of the system allocator. glibc's malloc gives the megabyte buffers a broker
/// cycles through (requests read, records fetched) back to the kernel as soon as they are
/// freed, so the next request faults in and zeroes fresh pages: measured with `bench/run.sh`'s
/// cost workload, 0.645 s of broker CPU per GB consumed with glibc, 0.287 with the freed
/// memory kept for reuse. jemalloc keeps freed pages for a while (10 s by default) and reuses
/// them.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser, Debug)]
#[command(
    name = "ironlog",
    version,
    about = "Kafka-compatible event streaming",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a broker.
    Broker(Box<BrokerArgs>),
    /// Create, list, describe, alter and delete topics (like kafka-topics).
    Topics(ironlog_client::tools::topics::TopicsArgs),
    /// Produce lines from stdin as records (like kafka-console-producer).
    Produce(ironlog_client::tools::produce::ProduceArgs),
    /// Print records (like kafka-console-consumer), alone or in a consumer group (--group).
    Consume(ironlog_client::tools::consume::ConsumeArgs),
    /// List, describe (with lag), reset offsets of and delete consumer groups
    /// (like kafka-consumer-groups).
    Groups(ironlog_client::tools::groups::GroupsArgs),
    /// Describe the cluster: id, brokers, controller, the metadata quorum and partitions
    /// without a leader (like kafka-cluster and kafka-metadata-quorum).
    Cluster(ironlog_client::tools::cluster::ClusterArgs),
    /// List, create and delete SCRAM users (like kafka-configs --entity-type users).
    Users(ironlog_client::tools::users::UsersArgs),
    /// List, add and remove ACLs (like kafka-acls).
    Acls(ironlog_client::tools::acls::AclsArgs),
    /// Measure a broker with librdkafka: produce or consume records and report throughput
    /// and latency (like kafka-producer-perf-test and kafka-consumer-perf-test).
    Perf(ironlog_perf::PerfArgs),
}

fn main() -> std::process::ExitCode {
    // Parsed in two steps (not `Cli::parse()`) to keep the matches: `broker --config` asks
    // them which flags were given and which are defaults.
    let matches = Cli::command().get_matches();
    let mut cli =
        Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.format(&mut Cli::command()).exit());
    // The config file is applied before logging starts: it may set the log level. Any
    // problem in it stops the broker here, before it binds a port.
    let config_file = match &mut cli.command {
        Command::Broker(args) => {
            let broker_matches = matches
                .subcommand_matches("broker")
                .expect("Command::Broker was parsed from the broker subcommand");
            match file::load(args, broker_matches) {
                Ok(loaded) => loaded,
                Err(e) => {
                    eprintln!("error: {e}");
                    return std::process::ExitCode::FAILURE;
                }
            }
        }
        _ => None,
    };
    let log_level = match &cli.command {
        Command::Broker(args) => args.log_level.clone(),
        _ => std::env::var("IRONLOG_LOG_LEVEL").unwrap_or_else(|_| "warn".into()),
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&log_level).unwrap_or_else(|e| {
        eprintln!("invalid --log-level {log_level:?} ({e}); using info");
        tracing_subscriber::EnvFilter::new("info")
    });
    // Colours only on a terminal: container and file logs stay plain text.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    if let Some(loaded) = &config_file {
        tracing::info!(
            file = %loaded.path.display(),
            keys = loaded.keys,
            "read broker config file"
        );
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Broker(args) => run_broker(*args).await,
            Command::Topics(args) => ironlog_client::tools::topics::run(args).await,
            Command::Produce(args) => ironlog_client::tools::produce::run(args).await,
            Command::Consume(args) => ironlog_client::tools::consume::run(args).await,
            Command::Groups(args) => ironlog_client::tools::groups::run(args).await,
            Command::Cluster(args) => ironlog_client::tools::cluster::run(args).await,
            Command::Users(args) => ironlog_client::tools::users::run(args).await,
            Command::Acls(args) => ironlog_client::tools::acls::run(args).await,
            Command::Perf(args) => tokio::task::spawn_blocking(move || ironlog_perf::run(args))
                .await
                .map_err(anyhow::Error::from)
                .and_then(|r| r),
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run_broker(args: BrokerArgs) -> anyhow::Result<()> {
    let config = BrokerConfig::from_args(&args)?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown signal received; finishing requests in hand and flushing logs");
        let _ = stop.send(true);
    });
    ironlog_server::broker::run(config, stopped).await
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
