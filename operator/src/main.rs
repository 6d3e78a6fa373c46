//! `ironlog-operator`: runs the KafkaCluster and KafkaTopic controllers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service, ServiceAccount};
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Client, ResourceExt};

use ironlog_operator::admin::kafka::KafkaConnector;
use ironlog_operator::controller::{self, apply::discover_capabilities, Context, Error};
use ironlog_operator::crd::{KafkaCluster, KafkaTopic, KafkaUser};
use ironlog_operator::leader::{self, LeaseConfig};
use ironlog_operator::metrics::{self, Metrics};

#[derive(Parser, Debug)]
#[command(
    name = "ironlog-operator",
    about = "Kubernetes operator for Ironlog clusters, topics and users"
)]
struct Args {
    /// Address serving /metrics and /healthz.
    #[arg(
        long,
        env = "IRONLOG_OPERATOR_METRICS_ADDR",
        default_value = "0.0.0.0:8080"
    )]
    metrics_addr: SocketAddr,
    /// Disable Lease leader election (only for a single replica).
    #[arg(long, env = "IRONLOG_OPERATOR_NO_LEADER_ELECTION")]
    no_leader_election: bool,
    /// Namespace of the leader Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    #[arg(
        long,
        env = "IRONLOG_OPERATOR_LEASE_NAME",
        default_value = "ironlog-operator"
    )]
    lease_name: String,
    /// This replica's identity in the Lease; defaults to the pod name.
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// TEST ONLY: honour the `ironlog.dev/bootstrap-override` annotation on KafkaClusters and
    /// KafkaTopics, letting the operator reach a broker outside Kubernetes.
    #[arg(long, env = "IRONLOG_OPERATOR_ALLOW_BOOTSTRAP_OVERRIDE")]
    allow_bootstrap_override: bool,
    /// Log format: `json` or `text`.
    #[arg(long, env = "IRONLOG_OPERATOR_LOG_FORMAT", default_value = "json")]
    log_format: String,
}

fn error_policy<K>(kind: &'static str) -> impl Fn(Arc<K>, &Error, Arc<Context>) -> Action {
    move |_obj, err, ctx| {
        ctx.metrics
            .failures
            .with_label_values(&[kind, err.metric_reason()])
            .inc();
        tracing::warn!(kind, error = %err, "reconcile failed; retrying in 15s");
        Action::requeue(Duration::from_secs(15))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,kube=warn".into());
    if args.log_format == "text" {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    } else {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init();
    }

    let client = Client::try_default()
        .await
        .context("loading the Kubernetes client configuration")?;
    let caps = discover_capabilities(&client)
        .await
        .context("discovering API server capabilities")?;
    tracing::info!(?caps, "API server capabilities");

    let metrics = Arc::new(Metrics::new().context("registering metrics")?);
    tokio::spawn({
        let metrics = metrics.clone();
        async move {
            if let Err(e) = metrics::serve(args.metrics_addr, metrics).await {
                tracing::error!(error = %e, "metrics endpoint stopped");
            }
        }
    });

    let identity = args.identity.clone().unwrap_or_else(|| {
        format!(
            "{}-{}",
            std::env::var("HOSTNAME").unwrap_or_else(|_| "ironlog-operator".into()),
            std::process::id()
        )
    });
    let lease = LeaseConfig {
        namespace: args.lease_namespace.clone(),
        name: args.lease_name.clone(),
        identity: identity.clone(),
        lease_duration: Duration::from_secs(15),
        renew_interval: Duration::from_secs(5),
    };
    if !args.no_leader_election {
        leader::acquire(&client, &lease).await;
    }
    metrics.leader.set(1);

    let ctx = Arc::new(Context {
        client: client.clone(),
        caps,
        admin: Arc::new(KafkaConnector),
        metrics,
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: "ironlog-operator".into(),
                instance: Some(identity),
            },
        ),
        allow_bootstrap_override: args.allow_bootstrap_override,
    });

    let wc = watcher::Config::default();
    // Only the Secrets the operator writes (not every Secret of the cluster).
    let managed_secrets =
        watcher::Config::default().labels("app.kubernetes.io/managed-by=ironlog-operator");
    let clusters = Controller::new(Api::<KafkaCluster>::all(client.clone()), wc.clone())
        .owns(Api::<StatefulSet>::all(client.clone()), wc.clone())
        .owns(Api::<Service>::all(client.clone()), wc.clone())
        .owns(Api::<ConfigMap>::all(client.clone()), wc.clone())
        .owns(Api::<ServiceAccount>::all(client.clone()), wc.clone())
        .owns(Api::<Secret>::all(client.clone()), managed_secrets.clone())
        // Broker pods (not owned: the StatefulSet owns them) wake their cluster up when they
        // change, e.g. when a Node's loss marks them not ready.
        .watches(
            Api::<Pod>::all(client.clone()),
            watcher::Config::default()
                .labels("app.kubernetes.io/name=ironlog,app.kubernetes.io/component=broker"),
            |pod: Pod| {
                let cluster = pod.labels().get("app.kubernetes.io/instance")?.clone();
                Some(ObjectRef::<KafkaCluster>::new(&cluster).within(&pod.namespace()?))
            },
        )
        .shutdown_on_signal()
        .run(
            controller::cluster::reconcile,
            error_policy("KafkaCluster"),
            ctx.clone(),
        )
        .for_each(|res| async move {
            if let Ok((obj, _)) = res {
                tracing::debug!(name = obj.name, "reconciled KafkaCluster");
            }
        });
    let users = Controller::new(Api::<KafkaUser>::all(client.clone()), wc.clone())
        // A changed password in a user's Secret is set on the cluster.
        .owns(Api::<Secret>::all(client.clone()), managed_secrets.clone())
        .shutdown_on_signal()
        .run(
            controller::user::reconcile,
            error_policy("KafkaUser"),
            ctx.clone(),
        )
        .for_each(|res| async move {
            if let Ok((obj, _)) = res {
                tracing::debug!(name = obj.name, "reconciled KafkaUser");
            }
        });
    let topics = Controller::new(Api::<KafkaTopic>::all(client.clone()), wc)
        .shutdown_on_signal()
        .run(
            controller::topic::reconcile,
            error_policy("KafkaTopic"),
            ctx.clone(),
        )
        .for_each(|res| async move {
            if let Ok((obj, _)) = res {
                tracing::debug!(name = obj.name, "reconciled KafkaTopic");
            }
        });
    tracing::info!("controllers running");

    let lost_leadership = async {
        if args.no_leader_election {
            futures::future::pending::<()>().await
        } else {
            leader::keep(&client, &lease).await
        }
    };
    tokio::select! {
        _ = async { tokio::join!(clusters, topics, users) } => tracing::info!("controllers stopped"),
        _ = lost_leadership => anyhow::bail!("lost the leader Lease; exiting so a fresh process campaigns again"),
    }
    Ok(())
}
