//! KafkaCluster reconcile: validate → build → apply → status.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::ResourceExt;

use super::apply::{apply, apply_pdb, patch_status};
use super::build::{self, BrokerConfig, Names};
use super::rollout::{self, Step};
use super::status::{cluster_conditions, to_conditions, ClusterObservation};
use super::validate::validate_cluster;
use super::{kube_err, Context, Error};
use crate::admin::Admin;
use crate::crd::{BrokerStatus, KafkaCluster, KafkaClusterStatus};

/// Requeue while something is moving; otherwise a slow periodic resync.
const ACTIVE_REQUEUE: Duration = Duration::from_secs(10);
const IDLE_REQUEUE: Duration = Duration::from_secs(300);

pub async fn reconcile(kc: Arc<KafkaCluster>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile_timer("KafkaCluster");
    let ns = kc.namespace().ok_or(Error::MissingNamespace)?;
    let mut obs = ClusterObservation {
        desired_replicas: kc.spec.replicas,
        invalid: validate_cluster(&kc),
        ..ClusterObservation::default()
    };
    if obs.invalid.is_empty() {
        match converge(&kc, &ctx, &ns, &mut obs).await {
            Ok(()) => {}
            // The API server refused what we built (e.g. an immutable StatefulSet field changed):
            // report it in status; retrying unchanged would fail the same way.
            Err(Error::Kube {
                op,
                source: kube::Error::Api(resp),
            }) if (400..500).contains(&resp.code) && resp.code != 409 => {
                obs.apply_error = Some(format!("{op}: {}", resp.message));
            }
            Err(e) => return Err(e),
        }
    }
    let conds = cluster_conditions(&obs);
    let previous = kc.status.clone().unwrap_or_default();
    let names = Names::of(&kc);
    let status = KafkaClusterStatus {
        observed_generation: kc.metadata.generation,
        conditions: to_conditions(
            &conds,
            &previous.conditions,
            kc.metadata.generation,
            Timestamp::now(),
        ),
        replicas: obs.sts_replicas,
        ready_replicas: obs.ready_replicas,
        selector: Some(build::selector_string(&kc)),
        bootstrap: Some(names.bootstrap_address()),
        brokers: (0..obs.sts_replicas)
            .map(|id| BrokerStatus {
                node_id: id,
                pod: names.pod(id),
                address: format!("{}:{}", names.broker_host(id), build::KAFKA_PORT),
                voter: id < kc.spec.effective_controllers(),
            })
            .collect(),
    };
    announce_transitions(&kc, &ctx, &previous, &status).await;
    patch_status(
        &Api::<KafkaCluster>::namespaced(ctx.client.clone(), &ns),
        &kc.name_any(),
        &status,
        format!("KafkaCluster {ns}/{}", kc.name_any()),
    )
    .await?;

    let moving = conds.iter().any(|c| c.type_ == "Progressing" && c.status);
    Ok(Action::requeue(if moving {
        ACTIVE_REQUEUE
    } else {
        IDLE_REQUEUE
    }))
}

/// Events for notable changes of the Degraded/Progressing reasons.
async fn announce_transitions(
    kc: &KafkaCluster,
    ctx: &Context,
    before: &KafkaClusterStatus,
    after: &KafkaClusterStatus,
) {
    let reason_of = |s: &KafkaClusterStatus, t: &str| {
        s.conditions
            .iter()
            .find(|c| c.type_ == t && c.status == "True")
            .map(|c| (c.reason.clone(), c.message.clone()))
    };
    if let Some((reason, message)) = reason_of(after, "Degraded") {
        if reason_of(before, "Degraded").map(|r| r.0) != Some(reason.clone()) {
            ctx.event(kc, EventType::Warning, &reason, message).await;
        }
    }
    if let Some((reason, message)) = reason_of(after, "Progressing") {
        if reason_of(before, "Progressing").map(|r| r.0) != Some(reason.clone()) {
            ctx.event(kc, EventType::Normal, &reason, message).await;
        }
    }
    let ready = |s: &KafkaClusterStatus| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    };
    if ready(after) && !ready(before) {
        ctx.event(
            kc,
            EventType::Normal,
            "Ready",
            format!("{} brokers ready", after.ready_replicas),
        )
        .await;
    }
}

/// Bootstrap address the operator uses to reach the brokers.
fn admin_bootstrap(kc: &KafkaCluster, ctx: &Context) -> String {
    ctx.bootstrap_override(kc)
        .unwrap_or_else(|| Names::of(kc).bootstrap_address())
}

fn note(obs: &mut ClusterObservation, step: Step) {
    match step {
        Step::Done => {}
        Step::InProgress { reason, message } => obs.in_progress = Some((reason.into(), message)),
        Step::Blocked { reason, message } => obs.blocked = Some((reason.into(), message)),
    }
}

async fn converge(
    kc: &KafkaCluster,
    ctx: &Context,
    ns: &str,
    obs: &mut ClusterObservation,
) -> Result<(), Error> {
    let names = Names::of(kc);
    let client = &ctx.client;
    let sts_api = Api::<StatefulSet>::namespaced(client.clone(), ns);
    let current = sts_api
        .get_opt(&names.statefulset())
        .await
        .map_err(kube_err("reading StatefulSet"))?;
    let current_replicas = current.as_ref().and_then(|s| s.spec.as_ref()?.replicas);
    let desired = kc.spec.replicas;
    let bootstrap = admin_bootstrap(kc, ctx);
    let mut admin: Option<Box<dyn Admin>> = None;

    // Scale-down only after every replica has left the brokers being removed.
    let mut sts_replicas = desired;
    if let Some(cur) = current_replicas.filter(|cur| desired < *cur) {
        sts_replicas = cur;
        match ctx.connect_admin(&bootstrap).await {
            Err(e) => {
                obs.blocked = Some((
                    "ScaleDownBlocked".into(),
                    format!(
                    "cannot reach the cluster at {bootstrap} to drain brokers {desired}..{}: {e}",
                    cur - 1
                ),
                ))
            }
            Ok(a) => {
                match rollout::scale_down_step(a.as_ref(), desired).await? {
                    Step::Done => sts_replicas = desired,
                    step => note(obs, step),
                }
                admin = Some(a);
            }
        }
    }

    // Build (pure), then apply: identity and config first, the StatefulSet last.
    let config = BrokerConfig::from_spec(&kc.spec.config);
    apply(client, &build::build_service_account(kc)).await?;
    apply(client, &build::build_config_map(kc, &config)).await?;
    apply(client, &build::build_headless_service(kc)).await?;
    apply(client, &build::build_bootstrap_service(kc)).await?;
    apply_pdb(client, ctx.caps, &build::build_pdb(kc)).await?;
    let sts = apply(
        client,
        &build::build_statefulset(kc, sts_replicas, &config, ctx.caps),
    )
    .await?;

    if let Some(cur) = current_replicas.filter(|cur| sts_replicas < *cur) {
        ctx.event(
            kc,
            EventType::Normal,
            "ScaledDown",
            format!("StatefulSet scaled from {cur} to {sts_replicas} brokers"),
        )
        .await;
        if kc.spec.storage.delete_claim && !ctx.caps.pvc_retention_policy {
            delete_claims(ctx, ns, &names, sts_replicas..cur).await?;
        }
    }

    let st = sts.status.clone().unwrap_or_default();
    obs.sts_replicas = sts_replicas;
    obs.ready_replicas = st.ready_replicas.unwrap_or(0);
    obs.updated_replicas = st.updated_replicas.unwrap_or(0);
    obs.sts_current = st.observed_generation >= sts.metadata.generation;

    if obs.blocked.is_none() && obs.in_progress.is_none() {
        roll(kc, ctx, ns, &sts, &bootstrap, &mut admin, obs).await?;
    }
    // After a scale-up, once every broker is ready, spread partitions onto the new ones.
    if obs.blocked.is_none()
        && obs.in_progress.is_none()
        && sts_replicas == desired
        && obs.ready_replicas >= desired
    {
        if let Some(a) = admin_for(ctx, &bootstrap, &mut admin).await {
            let step = rollout::spread_step(a, desired).await?;
            note(obs, step);
        }
    }
    Ok(())
}

async fn admin_for<'a>(
    ctx: &Context,
    bootstrap: &str,
    slot: &'a mut Option<Box<dyn Admin>>,
) -> Option<&'a dyn Admin> {
    if slot.is_none() {
        match ctx.connect_admin(bootstrap).await {
            Ok(a) => *slot = Some(a),
            Err(e) => {
                tracing::info!(error = %e, bootstrap, "cluster not reachable over the Kafka protocol")
            }
        }
    }
    slot.as_deref()
}

/// Restarts at most one broker running an outdated pod revision (OnDelete StatefulSet).
async fn roll(
    kc: &KafkaCluster,
    ctx: &Context,
    ns: &str,
    sts: &StatefulSet,
    bootstrap: &str,
    admin: &mut Option<Box<dyn Admin>>,
    obs: &mut ClusterObservation,
) -> Result<(), Error> {
    let Some(update_revision) = sts.status.as_ref().and_then(|s| s.update_revision.clone()) else {
        return Ok(());
    };
    let pods = Api::<Pod>::namespaced(ctx.client.clone(), ns);
    let lp = ListParams::default().labels(&build::selector_string(kc));
    let listed = pods
        .list(&lp)
        .await
        .map_err(kube_err("listing broker pods"))?;
    let prefix = format!("{}-", kc.name_any());
    let outdated: Vec<(i32, bool)> = listed
        .items
        .iter()
        .filter(|p| p.labels().get("controller-revision-hash") != Some(&update_revision))
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| {
            let ordinal = p.name_any().strip_prefix(&prefix)?.parse().ok()?;
            let ready = p
                .status
                .as_ref()?
                .conditions
                .as_ref()?
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            Some((ordinal, ready))
        })
        .collect();
    if outdated.is_empty() {
        return Ok(());
    }
    let min_isr = kc
        .spec
        .config
        .get("min.insync.replicas")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let needs_admin = outdated.iter().all(|(_, ready)| *ready);
    let admin = if needs_admin {
        admin_for(ctx, bootstrap, admin).await
    } else {
        None
    };
    let (restart, step) = rollout::roll_step(admin, &outdated, min_isr).await?;
    if let Some(ordinal) = restart {
        let pod = Names::of(kc).pod(ordinal);
        pods.delete(&pod, &DeleteParams::default())
            .await
            .map_err(kube_err(format!("restarting broker pod {pod}")))?;
        ctx.metrics.broker_restarts.inc();
        ctx.event(
            kc,
            EventType::Normal,
            "RestartingBroker",
            format!("restarting {pod} to apply a new configuration"),
        )
        .await;
    }
    note(obs, step);
    Ok(())
}

/// Deletes the claims of brokers scaled away, on servers without a StatefulSet retention policy.
async fn delete_claims(
    ctx: &Context,
    ns: &str,
    names: &Names,
    ordinals: std::ops::Range<i32>,
) -> Result<(), Error> {
    let pvcs = Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), ns);
    for ordinal in ordinals {
        let claim = format!("data-{}", names.pod(ordinal));
        match pvcs.delete(&claim, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(resp)) if resp.code == 404 => {}
            Err(e) => return Err(kube_err(format!("deleting claim {claim}"))(e)),
        }
    }
    Ok(())
}
