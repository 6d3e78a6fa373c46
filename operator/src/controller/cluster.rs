//! KafkaCluster reconcile: validate → build → apply → status.

use std::sync::Arc;
use std::time::Duration;

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    Node, ObjectReference, PersistentVolume, PersistentVolumeClaim, Pod,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};

use super::access::admin_target;
use super::apply::{apply, apply_pdb, patch_status};
use super::build::{self, BrokerConfig, Names};
use super::health::{assess, healthy_brokers, BrokerHealth, BrokerPod, NodeHealth, Observed};
use super::rollout::{self, Racks, RollGate, Step};
use super::status::{cluster_conditions, to_conditions, ClusterObservation};
use super::validate::validate_cluster;
use super::{kube_err, Context, Error};
use crate::admin::{Admin, AdminError, AdminTarget, ClusterMetadata};
use crate::crd::{BrokerState, BrokerStatus, KafkaCluster, KafkaClusterStatus, ListenerStatus};

/// Requeue while something is moving; otherwise a slow periodic resync.
const ACTIVE_REQUEUE: Duration = Duration::from_secs(5);
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
    // Where clients go: the first listener.
    let first_port = kc
        .spec
        .listeners
        .first()
        .map_or(build::KAFKA_PORT, |l| l.port);
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
        bootstrap: Some(names.bootstrap_on(first_port)),
        // Without a fresh look at the brokers (the reconcile failed early), keep the last one:
        // it carries the node-loss clocks.
        brokers: if obs.brokers.is_empty() {
            previous.brokers.clone()
        } else {
            obs.brokers
                .iter()
                .map(|h| BrokerStatus {
                    node_id: h.id,
                    pod: names.pod(h.id),
                    address: format!("{}:{first_port}", names.broker_host(h.id)),
                    voter: h.id < kc.spec.effective_controllers(),
                    state: h.state,
                    node: h.node.clone(),
                    unhealthy_since: h.unhealthy_since.map(Time),
                })
                .collect()
        },
        under_replicated_partitions: obs.under_replicated,
        reassigning_partitions: obs.reassigning,
        listeners: kc
            .spec
            .listeners
            .iter()
            .map(|l| ListenerStatus {
                name: l.name.clone(),
                security_protocol: build::security_protocol(l).to_string(),
                bootstrap: names.bootstrap_on(l.port),
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

    // Something moving, a broker whose node-loss clock runs, or replicas catching up (they
    // rejoin the ISR with no Kubernetes event to wake the operator, and the status must
    // follow): look again soon.
    let moving = conds.iter().any(|c| c.type_ == "Progressing" && c.status)
        || obs.brokers.iter().any(|b| b.unhealthy_since.is_some())
        || obs.under_replicated.is_some_and(|n| n > 0);
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
    for b in &after.brokers {
        let was = before
            .brokers
            .iter()
            .find(|p| p.node_id == b.node_id)
            .map(|p| p.state);
        if was == Some(b.state) {
            continue;
        }
        let node = b.node.as_deref().unwrap_or("no Node");
        let timeout = kc.spec.node_loss_timeout_seconds;
        let (type_, reason, note) = match (was, b.state) {
            (_, BrokerState::Lost) => (
                EventType::Warning,
                "BrokerLost",
                format!(
                    "broker {} ({node}) fenced or unreachable for longer than \
                     nodeLossTimeoutSeconds={timeout}: moving its replicas to healthy brokers",
                    b.node_id
                ),
            ),
            (_, BrokerState::Unreachable) => (
                EventType::Warning,
                "BrokerUnreachable",
                format!(
                    "broker {}: Node {node} is not ready; its replicas move if it stays so for {timeout} s",
                    b.node_id
                ),
            ),
            (
                Some(BrokerState::Lost | BrokerState::Unreachable | BrokerState::Fenced),
                BrokerState::Ready,
            ) => (
                EventType::Normal,
                "BrokerRecovered",
                format!("broker {} is registered and ready again on {node}", b.node_id),
            ),
            _ => continue,
        };
        let pod = pod_ref(kc, &b.pod);
        ctx.event_about(kc, type_, reason, note, Some(pod)).await;
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

/// A broker pod by name, for Events about it.
fn pod_ref(kc: &KafkaCluster, pod: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: Some(pod.to_string()),
        namespace: kc.namespace(),
        ..ObjectReference::default()
    }
}

/// A step's outcome; a failed admin call (the cluster unreachable, a request timed out) is
/// reported in the status and retried at the next reconcile, like a step in progress.
fn note_step(obs: &mut ClusterObservation, step: Result<Step, AdminError>) {
    match step {
        Ok(step) => note(obs, step),
        Err(e) => obs.in_progress = Some(("WaitingForCluster".into(), e.to_string())),
    }
}

fn note(obs: &mut ClusterObservation, step: Step) {
    match step {
        Step::Done => {}
        Step::InProgress { reason, message } => obs.in_progress = Some((reason.into(), message)),
        Step::Blocked { reason, message } => obs.blocked = Some((reason.into(), message)),
    }
}

/// What the reconcile read about the brokers before deciding anything.
struct Observation {
    pods: Vec<BrokerPod>,
    /// The pod objects, by ordinal (for deletions and claims).
    pod_objects: BTreeMap<i32, Pod>,
    nodes: BTreeMap<String, NodeHealth>,
    node_labels: BTreeMap<String, BTreeMap<String, String>>,
    meta: Option<ClusterMetadata>,
    reassigning: Option<usize>,
}

async fn observe(
    kc: &KafkaCluster,
    ctx: &Context,
    ns: &str,
    update_revision: Option<&str>,
    bootstrap: &AdminTarget,
    admin: &mut Option<Box<dyn Admin>>,
) -> Result<Observation, Error> {
    let pods_api = Api::<Pod>::namespaced(ctx.client.clone(), ns);
    let lp = ListParams::default().labels(&build::selector_string(kc));
    let listed = pods_api
        .list(&lp)
        .await
        .map_err(kube_err("listing broker pods"))?;
    let prefix = format!("{}-", kc.name_any());
    let mut pods = Vec::new();
    let mut pod_objects = BTreeMap::new();
    for p in listed.items {
        let Some(ordinal) = p
            .name_any()
            .strip_prefix(&prefix)
            .and_then(|o| o.parse::<i32>().ok())
        else {
            continue;
        };
        let ready = p
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        pods.push(BrokerPod {
            ordinal,
            node: p.spec.as_ref().and_then(|s| s.node_name.clone()),
            ready,
            terminating: p.metadata.deletion_timestamp.is_some(),
            outdated: update_revision.is_some_and(|rev| {
                p.labels()
                    .get("controller-revision-hash")
                    .map(String::as_str)
                    != Some(rev)
            }),
        });
        pod_objects.insert(ordinal, p);
    }
    let nodes_listed = Api::<Node>::all(ctx.client.clone())
        .list(&ListParams::default())
        .await
        .map_err(kube_err("listing Nodes"))?;
    let mut nodes = BTreeMap::new();
    let mut node_labels = BTreeMap::new();
    for n in nodes_listed.items {
        let ready = n
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready"));
        let health = match ready {
            Some(c) if c.status == "True" => NodeHealth::Ready,
            Some(c) => NodeHealth::NotReady {
                since: c
                    .last_transition_time
                    .as_ref()
                    .map_or_else(Timestamp::now, |t| t.0),
            },
            None => NodeHealth::NotReady {
                since: Timestamp::now(),
            },
        };
        node_labels.insert(n.name_any(), n.labels().clone());
        nodes.insert(n.name_any(), health);
    }
    // Ask the cluster only once a broker serves: before that there is nothing to reach.
    let (mut meta, mut reassigning) = (None, None);
    if pods.iter().any(|p| p.ready) {
        if let Some(a) = admin_for(ctx, bootstrap, admin).await {
            match a.metadata().await {
                Ok(m) => meta = Some(m),
                Err(e) => tracing::info!(error = %e, "reading cluster metadata"),
            }
            match a.list_reassignments().await {
                Ok(r) => reassigning = Some(r.len()),
                Err(e) => tracing::info!(error = %e, "listing partition reassignments"),
            }
        }
    }
    Ok(Observation {
        pods,
        pod_objects,
        nodes,
        node_labels,
        meta,
        reassigning,
    })
}

/// Each broker's rack: its Node's `rack.topologyKey` label.
fn racks(kc: &KafkaCluster, health: &[BrokerHealth], seen: &Observation) -> Racks {
    let Some(key) = kc.spec.rack.as_ref().map(|r| &r.topology_key) else {
        return Racks::new();
    };
    health
        .iter()
        .filter_map(|h| {
            let labels = seen.node_labels.get(h.node.as_ref()?)?;
            Some((h.id, labels.get(key)?.clone()))
        })
        .collect()
}

/// Whether a roll may restart a ready broker now (see [`RollGate`]).
fn roll_gate(health: &[BrokerHealth], seen: &Observation) -> RollGate {
    for h in health {
        let pod = seen.pods.iter().find(|p| p.ordinal == h.id);
        match pod {
            None => return RollGate::Wait(format!("broker {} has no pod yet", h.id)),
            Some(p) if p.terminating => {
                return RollGate::Wait(format!("broker {} is shutting down", h.id))
            }
            Some(p) if !p.ready => return RollGate::Wait(format!("broker {} is not ready", h.id)),
            Some(_) => {}
        }
        if h.state != BrokerState::Ready && h.state != BrokerState::Draining {
            return RollGate::Wait(format!(
                "broker {} is {:?}, not registered and unfenced",
                h.id, h.state
            ));
        }
    }
    RollGate::Open
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
    let update_revision = current
        .as_ref()
        .and_then(|s| s.status.as_ref()?.update_revision.clone());
    let desired = kc.spec.replicas;
    let bootstrap = admin_target(kc, ctx, ns).await?;
    let mut admin: Option<Box<dyn Admin>> = None;

    let seen = observe(
        kc,
        ctx,
        ns,
        update_revision.as_deref(),
        &bootstrap,
        &mut admin,
    )
    .await?;
    let previous = kc.status.clone().unwrap_or_default();
    let health = assess(&Observed {
        sts_replicas: current_replicas.unwrap_or(desired).max(0),
        desired,
        pods: &seen.pods,
        nodes: &seen.nodes,
        live: seen.meta.as_ref().map(|m| &m.brokers),
        previous: &previous.brokers,
        now: Timestamp::now(),
        node_loss_timeout: Duration::from_secs(kc.spec.node_loss_timeout_seconds.max(0) as u64),
    });
    let racks = racks(kc, &health, &seen);
    let gate = roll_gate(&health, &seen);
    let lost: BTreeSet<i32> = health.iter().filter(|h| h.lost()).map(|h| h.id).collect();

    // Scale-down only after every replica has left the brokers being removed, and never
    // while a broker is restarting or lost.
    let mut sts_replicas = desired;
    if let Some(cur) = current_replicas.filter(|cur| desired < *cur) {
        sts_replicas = cur;
        match (admin_for(ctx, &bootstrap, &mut admin).await, &gate) {
            (None, _) => {
                obs.blocked = Some((
                    "ScaleDownBlocked".into(),
                    format!(
                        "cannot reach the cluster at {bootstrap} to drain brokers {desired}..{}",
                        cur - 1
                    ),
                ))
            }
            (Some(_), RollGate::Wait(why)) => {
                obs.in_progress = Some(("Draining".into(), format!("drain waits: {why}")))
            }
            (Some(a), RollGate::Open) => match rollout::scale_down_step(a, desired, &racks).await {
                Ok(Step::Done) => sts_replicas = desired,
                step => note_step(obs, step),
            },
        }
    }

    // Build (pure), then apply: identity and config first, the StatefulSet last.
    let config = BrokerConfig::of(kc);
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
    obs.under_replicated = seen.meta.as_ref().map(|m| m.under_replicated() as i32);
    obs.reassigning = seen.reassigning.map(|n| n as i32);

    unstick_pods(ctx, ns, &seen).await?;
    if !lost.is_empty() {
        heal(
            kc, ctx, ns, &health, &lost, &seen, &racks, &bootstrap, &mut admin, obs,
        )
        .await?;
    } else if obs.blocked.is_none() && obs.in_progress.is_none() {
        roll(
            kc,
            ctx,
            ns,
            &seen,
            gate,
            update_revision.as_deref(),
            &bootstrap,
            &mut admin,
            obs,
        )
        .await?;
    }
    // Once every broker is ready and up to date, spread partitions onto brokers holding none
    // (after a scale-up, or a lost broker back with an empty disk).
    let outdated = seen.pods.iter().any(|p| p.outdated);
    if obs.blocked.is_none()
        && obs.in_progress.is_none()
        && lost.is_empty()
        && !outdated
        && sts_replicas == desired
        && obs.ready_replicas >= desired
    {
        if let Some(a) = admin_for(ctx, &bootstrap, &mut admin).await {
            note_step(obs, rollout::spread_step(a, desired).await);
        }
    }
    obs.brokers = health;
    Ok(())
}

/// Node loss: move the lost brokers' replicas to healthy brokers, and free the StatefulSet
/// slot of each broker whose Node is down, so that its pod comes back on a healthy Node.
#[allow(clippy::too_many_arguments)]
async fn heal(
    kc: &KafkaCluster,
    ctx: &Context,
    ns: &str,
    health: &[BrokerHealth],
    lost: &BTreeSet<i32>,
    seen: &Observation,
    racks: &Racks,
    bootstrap: &AdminTarget,
    admin: &mut Option<Box<dyn Admin>>,
    obs: &mut ClusterObservation,
) -> Result<(), Error> {
    for h in health.iter().filter(|h| h.lost() && h.node_down) {
        if let Some(pod) = seen.pod_objects.get(&h.id) {
            free_slot(kc, ctx, ns, pod, h).await?;
        }
    }
    let healthy: Vec<i32> = match &seen.meta {
        Some(meta) => healthy_brokers(health, &meta.brokers)
            .into_iter()
            .filter(|b| *b < kc.spec.replicas)
            .collect(),
        None => Vec::new(),
    };
    match admin_for(ctx, bootstrap, admin).await {
        Some(a) if !healthy.is_empty() => {
            note_step(obs, rollout::replace_step(a, lost, &healthy, racks).await);
        }
        _ => {
            obs.in_progress = Some((
                "ReplacingLostBrokers".into(),
                format!(
                    "brokers {lost:?} lost; no healthy broker reachable to take their replicas"
                ),
            ))
        }
    }
    Ok(())
}

/// Frees a lost broker's StatefulSet slot: deletes its pod at once (the kubelet on a lost
/// Node can't confirm a graceful deletion), and its claim when the volume is bound to that
/// Node (node-local storage is gone with it). The StatefulSet controller then creates the
/// pod again, on a healthy Node, with a new claim where the old one was deleted.
async fn free_slot(
    kc: &KafkaCluster,
    ctx: &Context,
    ns: &str,
    pod: &Pod,
    h: &BrokerHealth,
) -> Result<(), Error> {
    let pod_name = pod.name_any();
    let pvcs = Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), ns);
    let pvs = Api::<PersistentVolume>::all(ctx.client.clone());
    let mut deleted_claims = Vec::new();
    for claim in pod_claims(pod) {
        let Some(pvc) = pvcs
            .get_opt(&claim)
            .await
            .map_err(kube_err(format!("reading claim {claim}")))?
        else {
            continue;
        };
        if pvc.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let volume = pvc.spec.as_ref().and_then(|s| s.volume_name.clone());
        let node_local = match volume {
            Some(v) => pvs
                .get_opt(&v)
                .await
                .map_err(kube_err(format!("reading volume {v}")))?
                .and_then(|pv| pv.spec)
                .is_some_and(|s| s.node_affinity.is_some() || s.local.is_some()),
            None => false,
        };
        if node_local && delete_claim(&pvcs, &claim).await? {
            deleted_claims.push(claim);
        }
    }
    if !delete_pod_now(ctx, ns, &pod_name).await? {
        return Ok(());
    }
    let node = h.node.as_deref().unwrap_or("?");
    let disk = if deleted_claims.is_empty() {
        "its volume is kept".to_string()
    } else {
        format!(
            "its node-local claim {} is deleted too: it rejoins with an empty disk",
            deleted_claims.join(", ")
        )
    };
    ctx.event_about(
        kc,
        EventType::Warning,
        "BrokerSlotFreed",
        format!("broker {} lost with Node {node}: pod {pod_name} deleted so it starts on a healthy Node; {disk}", h.id),
        Some(pod.object_ref(&())),
    )
    .await;
    Ok(())
}

/// A pod re-created while its old claim was still being deleted waits forever for that claim:
/// delete it again so the StatefulSet controller makes a new claim with the next pod.
async fn unstick_pods(ctx: &Context, ns: &str, seen: &Observation) -> Result<(), Error> {
    let pvcs = Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), ns);
    for pod in seen.pod_objects.values() {
        let unscheduled = pod.spec.as_ref().is_some_and(|s| s.node_name.is_none());
        if !unscheduled || pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        for claim in pod_claims(pod) {
            let terminating = pvcs
                .get_opt(&claim)
                .await
                .map_err(kube_err(format!("reading claim {claim}")))?
                .is_some_and(|c| c.metadata.deletion_timestamp.is_some());
            if terminating {
                let name = pod.name_any();
                tracing::info!(
                    pod = name,
                    claim,
                    "pod waits for a claim being deleted; re-creating it"
                );
                delete_pod_now(ctx, ns, &name).await?;
                break;
            }
        }
    }
    Ok(())
}

async fn admin_for<'a>(
    ctx: &Context,
    bootstrap: &AdminTarget,
    slot: &'a mut Option<Box<dyn Admin>>,
) -> Option<&'a dyn Admin> {
    if slot.is_none() {
        match ctx.connect_admin(bootstrap).await {
            Ok(a) => *slot = Some(a),
            Err(e) => {
                tracing::info!(error = %e, %bootstrap, "cluster not reachable over the Kafka protocol")
            }
        }
    }
    slot.as_deref()
}

/// Restarts at most one broker running an outdated pod revision (OnDelete StatefulSet).
#[allow(clippy::too_many_arguments)]
async fn roll(
    kc: &KafkaCluster,
    ctx: &Context,
    ns: &str,
    seen: &Observation,
    gate: RollGate,
    update_revision: Option<&str>,
    bootstrap: &AdminTarget,
    admin: &mut Option<Box<dyn Admin>>,
    obs: &mut ClusterObservation,
) -> Result<(), Error> {
    let outdated: Vec<(i32, bool)> = seen
        .pods
        .iter()
        .filter(|p| p.outdated && !p.terminating)
        .map(|p| (p.ordinal, p.ready))
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
    let (restart, step) = match rollout::roll_step(admin, &outdated, min_isr, gate).await {
        Ok(r) => r,
        Err(e) => {
            note_step(obs, Err(e));
            return Ok(());
        }
    };
    if let Some(ordinal) = restart {
        let pod = Names::of(kc).pod(ordinal);
        Api::<Pod>::namespaced(ctx.client.clone(), ns)
            .delete(&pod, &DeleteParams::default())
            .await
            .map_err(kube_err(format!("restarting broker pod {pod}")))?;
        ctx.metrics.broker_restarts.inc();
        let related = seen
            .pod_objects
            .get(&ordinal)
            .map(|p| p.object_ref(&()))
            .unwrap_or_else(|| pod_ref(kc, &pod));
        ctx.event_about(
            kc,
            EventType::Normal,
            "RestartingBroker",
            format!(
                "restarting {pod} to apply the pod template revision {}",
                update_revision.unwrap_or("?")
            ),
            Some(related),
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
        delete_claim(&pvcs, &format!("data-{}", names.pod(ordinal))).await?;
    }
    Ok(())
}

/// The claims a pod mounts.
fn pod_claims(pod: &Pod) -> Vec<String> {
    pod.spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|v| Some(v.persistent_volume_claim.as_ref()?.claim_name.clone()))
        .collect()
}

/// Deletes a claim; `false` when it was gone already.
async fn delete_claim(pvcs: &Api<PersistentVolumeClaim>, claim: &str) -> Result<bool, Error> {
    match pvcs.delete(claim, &DeleteParams::default()).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(resp)) if resp.code == 404 => Ok(false),
        Err(e) => Err(kube_err(format!("deleting claim {claim}"))(e)),
    }
}

/// Deletes a pod without a grace period (its kubelet is gone, or it never started); `false`
/// when it was gone already.
async fn delete_pod_now(ctx: &Context, ns: &str, pod: &str) -> Result<bool, Error> {
    match Api::<Pod>::namespaced(ctx.client.clone(), ns)
        .delete(pod, &DeleteParams::default().grace_period(0))
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(resp)) if resp.code == 404 => Ok(false),
        Err(e) => Err(kube_err(format!("deleting pod {pod}"))(e)),
    }
}
