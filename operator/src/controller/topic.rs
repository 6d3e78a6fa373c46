//! KafkaTopic reconcile: one way, Kubernetes → cluster, through the Kafka admin API.
//! A finalizer deletes the topic when the resource goes away.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{finalizer, Event as Finalizer};
use kube::ResourceExt;

use super::access::admin_target;
use super::apply::patch_status;
use super::status::{to_conditions, Cond};
use super::{kube_err, Context, Error};
use crate::admin::{
    Admin, AdminError, AdminTarget, BrokerId, ConfigEntry, Reassignment, TopicInfo,
    UNKNOWN_TOPIC_OR_PARTITION,
};
use crate::crd::{KafkaCluster, KafkaTopic, KafkaTopicSpec, KafkaTopicStatus};

pub const TOPIC_FINALIZER: &str = "ironlog.dev/topic";

const RETRY: Duration = Duration::from_secs(30);
const RESYNC: Duration = Duration::from_secs(300);

/// What has to change on the cluster for a topic to match its spec. Pure.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopicPlan {
    pub create: bool,
    pub grow_partitions_to: Option<i32>,
    /// (have, want) when the spec asks for fewer partitions: Kafka can't do that.
    pub partition_decrease: Option<(i32, i32)>,
    pub set_config: BTreeMap<String, String>,
    pub delete_config: Vec<String>,
    pub replica_moves: Vec<Reassignment>,
    /// The requested replication factor can't be placed on the cluster's brokers.
    pub replication_impossible: Option<String>,
}

impl TopicPlan {
    pub fn is_noop(&self) -> bool {
        !self.create
            && self.grow_partitions_to.is_none()
            && self.set_config.is_empty()
            && self.delete_config.is_empty()
            && self.replica_moves.is_empty()
    }
}

/// Compares the spec with what the cluster has (`None`: topic absent).
pub fn plan_topic(
    spec: &KafkaTopicSpec,
    observed: Option<(&TopicInfo, &BTreeMap<String, ConfigEntry>)>,
    brokers: &BTreeSet<BrokerId>,
) -> TopicPlan {
    let mut plan = TopicPlan::default();
    let Some((info, config)) = observed else {
        plan.create = true;
        if spec.replicas as usize > brokers.len() {
            plan.replication_impossible = Some(format!(
                "replication factor {} exceeds the {} brokers of the cluster",
                spec.replicas,
                brokers.len()
            ));
            plan.create = false;
        }
        return plan;
    };
    let have = info.partitions.len() as i32;
    if spec.partitions > have {
        plan.grow_partitions_to = Some(spec.partitions);
    } else if spec.partitions < have {
        plan.partition_decrease = Some((have, spec.partitions));
    }
    for (k, v) in &spec.config {
        if config.get(k).and_then(|e| e.value.as_ref()) != Some(v)
            || !config.get(k).is_some_and(|e| e.is_topic_override)
        {
            plan.set_config.insert(k.clone(), v.clone());
        }
    }
    plan.delete_config = config
        .iter()
        .filter(|(k, e)| e.is_topic_override && !spec.config.contains_key(*k))
        .map(|(k, _)| k.clone())
        .collect();
    let want_rf = spec.replicas as usize;
    if info.replication_factor() != want_rf {
        if want_rf > brokers.len() {
            plan.replication_impossible = Some(format!(
                "replication factor {want_rf} exceeds the {} brokers of the cluster",
                brokers.len()
            ));
        } else {
            plan.replica_moves = plan_replication_factor(info, want_rf, brokers);
        }
    }
    plan
}

/// New replica lists giving every partition `rf` replicas: shrinking drops the last replicas
/// (the leader stays), growing adds the least-loaded brokers not yet in the list.
fn plan_replication_factor(
    info: &TopicInfo,
    rf: usize,
    brokers: &BTreeSet<BrokerId>,
) -> Vec<Reassignment> {
    let mut load: BTreeMap<BrokerId, usize> = brokers.iter().map(|b| (*b, 0)).collect();
    for p in info.partitions.values() {
        for r in &p.replicas {
            *load.entry(*r).or_default() += 1;
        }
    }
    let mut moves = Vec::new();
    for (i, p) in &info.partitions {
        let mut replicas = p.replicas.clone();
        replicas.truncate(rf);
        while replicas.len() < rf {
            let Some(b) = load
                .iter()
                .filter(|(b, _)| !replicas.contains(b))
                .min_by_key(|(b, n)| (**n, **b))
                .map(|(b, _)| *b)
            else {
                break;
            };
            replicas.push(b);
            *load.entry(b).or_default() += 1;
        }
        if replicas != p.replicas {
            moves.push(Reassignment {
                topic: String::new(),
                partition: *i,
                replicas,
            });
        }
    }
    moves
}

/// The KafkaTopic claiming a topic name first (oldest, then by name) owns it; the others are
/// in conflict and leave the topic alone.
pub fn conflict_winner(claimants: &[KafkaTopic]) -> Option<&KafkaTopic> {
    claimants.iter().min_by(|a, b| {
        let key = |t: &KafkaTopic| {
            (
                t.metadata.creation_timestamp.clone().map(|t| t.0),
                t.name_any(),
            )
        };
        key(a).cmp(&key(b))
    })
}

pub async fn reconcile(kt: Arc<KafkaTopic>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile_timer("KafkaTopic");
    let ns = kt.namespace().ok_or(Error::MissingNamespace)?;
    let api = Api::<KafkaTopic>::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, TOPIC_FINALIZER, kt, |event| async {
        match event {
            Finalizer::Apply(kt) => apply_topic(&kt, &ctx, &ns).await,
            Finalizer::Cleanup(kt) => cleanup_topic(&kt, &ctx, &ns).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

/// Where the topic's cluster is, or why there is nowhere to go.
enum Target {
    Bootstrap(AdminTarget),
    /// The KafkaCluster does not exist (and no override).
    ClusterMissing,
}

async fn target(kt: &KafkaTopic, ctx: &Context, ns: &str) -> Result<Target, Error> {
    if let Some(addr) = ctx.bootstrap_override(kt) {
        return Ok(Target::Bootstrap(AdminTarget::plaintext(addr)));
    }
    let clusters = Api::<KafkaCluster>::namespaced(ctx.client.clone(), ns);
    match clusters
        .get_opt(&kt.spec.cluster)
        .await
        .map_err(kube_err("reading KafkaCluster"))?
    {
        Some(kc) => Ok(Target::Bootstrap(admin_target(&kc, ctx, ns).await?)),
        None => Ok(Target::ClusterMissing),
    }
}

/// Whether `kt` owns its topic name; `Some(winner)` names the owner when it does not.
async fn conflicting_owner(
    kt: &KafkaTopic,
    ctx: &Context,
    ns: &str,
) -> Result<Option<String>, Error> {
    let all = Api::<KafkaTopic>::namespaced(ctx.client.clone(), ns)
        .list(&ListParams::default())
        .await
        .map_err(kube_err("listing KafkaTopics"))?;
    let claimants: Vec<KafkaTopic> = all
        .items
        .into_iter()
        .filter(|t| {
            t.spec.cluster == kt.spec.cluster
                && t.topic_name() == kt.topic_name()
                && t.metadata.deletion_timestamp.is_none()
        })
        .collect();
    Ok(conflict_winner(&claimants)
        .map(|w| w.name_any())
        .filter(|w| *w != kt.name_any()))
}

async fn write_status(
    kt: &KafkaTopic,
    ctx: &Context,
    ns: &str,
    conds: &[Cond],
    partitions: Option<i32>,
) -> Result<(), Error> {
    let previous = kt.status.clone().unwrap_or_default();
    let status = KafkaTopicStatus {
        observed_generation: kt.metadata.generation,
        conditions: to_conditions(
            conds,
            &previous.conditions,
            kt.metadata.generation,
            Timestamp::now(),
        ),
        topic_name: Some(kt.topic_name()),
        partitions: partitions.or(previous.partitions),
    };
    patch_status(
        &Api::<KafkaTopic>::namespaced(ctx.client.clone(), ns),
        &kt.name_any(),
        &status,
        format!("KafkaTopic {ns}/{}", kt.name_any()),
    )
    .await?;
    Ok(())
}

fn not_ready(reason: &str, message: String) -> Vec<Cond> {
    vec![
        Cond::new("Ready", false, reason, message),
        Cond::new(
            "ResourceConflict",
            false,
            "NoConflict",
            "this resource owns the topic",
        ),
        Cond::new(
            "NotSupported",
            false,
            "AsExpected",
            "no unsupported change requested",
        ),
    ]
}

async fn apply_topic(kt: &KafkaTopic, ctx: &Context, ns: &str) -> Result<Action, Error> {
    if let Some(owner) = conflicting_owner(kt, ctx, ns).await? {
        let msg = format!(
            "KafkaTopic {owner} already manages topic {:?} on cluster {}",
            kt.topic_name(),
            kt.spec.cluster
        );
        let conds = vec![
            Cond::new("Ready", false, "ResourceConflict", msg.clone()),
            Cond::new("ResourceConflict", true, "TopicClaimed", msg.clone()),
            Cond::new(
                "NotSupported",
                false,
                "AsExpected",
                "no unsupported change requested",
            ),
        ];
        if !kt.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "ResourceConflict" && c.status == "True")
        }) {
            ctx.event(kt, EventType::Warning, "ResourceConflict", msg)
                .await;
        }
        write_status(kt, ctx, ns, &conds, None).await?;
        return Ok(Action::requeue(RESYNC));
    }
    let bootstrap = match target(kt, ctx, ns).await? {
        Target::Bootstrap(b) => b,
        Target::ClusterMissing => {
            let msg = format!(
                "KafkaCluster {} not found in namespace {ns}",
                kt.spec.cluster
            );
            write_status(kt, ctx, ns, &not_ready("ClusterNotFound", msg), None).await?;
            return Ok(Action::requeue(RETRY));
        }
    };
    let admin = match ctx.connect_admin(&bootstrap).await {
        Ok(a) => a,
        Err(e) => {
            write_status(
                kt,
                ctx,
                ns,
                &not_ready("ClusterUnreachable", e.to_string()),
                None,
            )
            .await?;
            return Ok(Action::requeue(RETRY));
        }
    };
    match sync_topic(kt, ctx, admin.as_ref()).await {
        Ok((conds, partitions, settled)) => {
            write_status(kt, ctx, ns, &conds, partitions).await?;
            Ok(Action::requeue(if settled {
                RESYNC
            } else {
                Duration::from_secs(5)
            }))
        }
        Err(AdminError::Unsupported { api }) => {
            let msg = format!("the cluster does not support the {api} API");
            write_status(kt, ctx, ns, &not_ready("NotSupported", msg), None).await?;
            Ok(Action::requeue(RESYNC))
        }
        Err(e @ AdminError::Kafka { .. }) => {
            write_status(kt, ctx, ns, &not_ready("KafkaError", e.to_string()), None).await?;
            Ok(Action::requeue(RETRY))
        }
        Err(e) => Err(e.into()),
    }
}

/// Applies one round of changes; returns the conditions, the observed partition count, and
/// whether nothing is left to do.
async fn sync_topic(
    kt: &KafkaTopic,
    ctx: &Context,
    admin: &dyn Admin,
) -> Result<(Vec<Cond>, Option<i32>, bool), AdminError> {
    let name = kt.topic_name();
    let meta = admin.metadata().await?;
    let info = meta.topics.get(&name);
    let config = match info {
        Some(_) => admin.describe_topic_config(&name).await?,
        None => BTreeMap::new(),
    };
    let plan = plan_topic(&kt.spec, info.map(|i| (i, &config)), &meta.brokers);
    let mut partitions = info.map(|i| i.partitions.len() as i32);

    if plan.create {
        admin
            .create_topic(
                &name,
                kt.spec.partitions,
                kt.spec.replicas as i16,
                &kt.spec.config,
            )
            .await?;
        ctx.metrics
            .topic_operations
            .with_label_values(&["create"])
            .inc();
        ctx.event(
            kt,
            EventType::Normal,
            "Created",
            format!(
                "created topic {name} with {} partitions",
                kt.spec.partitions
            ),
        )
        .await;
        partitions = Some(kt.spec.partitions);
    }
    if let Some(total) = plan.grow_partitions_to {
        admin.create_partitions(&name, total).await?;
        ctx.metrics
            .topic_operations
            .with_label_values(&["create_partitions"])
            .inc();
        ctx.event(
            kt,
            EventType::Normal,
            "PartitionsAdded",
            format!("topic {name} grown to {total} partitions"),
        )
        .await;
        partitions = Some(total);
    }
    if !plan.set_config.is_empty() || !plan.delete_config.is_empty() {
        admin
            .alter_topic_config(&name, &plan.set_config, &plan.delete_config)
            .await?;
        ctx.metrics
            .topic_operations
            .with_label_values(&["alter_config"])
            .inc();
        let keys: Vec<_> = plan
            .set_config
            .keys()
            .chain(plan.delete_config.iter())
            .cloned()
            .collect();
        ctx.event(
            kt,
            EventType::Normal,
            "ConfigUpdated",
            format!("topic {name}: updated {}", keys.join(", ")),
        )
        .await;
    }
    let mut moving = false;
    if !plan.replica_moves.is_empty() {
        let running = admin.list_reassignments().await?;
        moving = true;
        if !running.iter().any(|(t, _)| *t == name) {
            let moves: Vec<Reassignment> = plan
                .replica_moves
                .iter()
                .map(|m| Reassignment {
                    topic: name.clone(),
                    ..m.clone()
                })
                .collect();
            admin.alter_reassignments(&moves).await?;
            ctx.metrics
                .topic_operations
                .with_label_values(&["reassign"])
                .inc();
            ctx.event(
                kt,
                EventType::Normal,
                "ReplicationFactorChanging",
                format!(
                    "reassigning {} partitions of {name} to {} replicas",
                    moves.len(),
                    kt.spec.replicas
                ),
            )
            .await;
        }
    }

    let mut conds = Vec::new();
    let not_supported = match plan.partition_decrease {
        Some((have, want)) => Cond::new(
            "NotSupported",
            true,
            "PartitionDecrease",
            format!("topic {name} has {have} partitions; Kafka cannot reduce it to {want}"),
        ),
        None => Cond::new(
            "NotSupported",
            false,
            "AsExpected",
            "no unsupported change requested",
        ),
    };
    let ready = if let Some(why) = &plan.replication_impossible {
        Cond::new("Ready", false, "ReplicationFactorTooHigh", why.clone())
    } else if plan.partition_decrease.is_some() {
        Cond::new(
            "Ready",
            false,
            "NotSupported",
            not_supported.message.clone(),
        )
    } else if moving {
        Cond::new(
            "Ready",
            false,
            "Reassigning",
            format!(
                "changing replication factor of {name} to {}",
                kt.spec.replicas
            ),
        )
    } else {
        Cond::new(
            "Ready",
            true,
            "Reconciled",
            format!("topic {name} matches the spec"),
        )
    };
    conds.push(ready);
    conds.push(Cond::new(
        "ResourceConflict",
        false,
        "NoConflict",
        "this resource owns the topic",
    ));
    conds.push(not_supported);
    Ok((
        conds,
        partitions,
        plan.is_noop() || (!moving && plan.replica_moves.is_empty() && !plan.create),
    ))
}

async fn cleanup_topic(kt: &KafkaTopic, ctx: &Context, ns: &str) -> Result<Action, Error> {
    if conflicting_owner(kt, ctx, ns).await?.is_some() {
        // The topic belongs to another KafkaTopic: release this one without touching Kafka.
        return Ok(Action::await_change());
    }
    let bootstrap = match target(kt, ctx, ns).await? {
        Target::Bootstrap(b) => b,
        Target::ClusterMissing => {
            tracing::info!(
                topic = kt.topic_name(),
                "KafkaCluster gone; releasing KafkaTopic without deleting"
            );
            return Ok(Action::await_change());
        }
    };
    let admin = ctx.connect_admin(&bootstrap).await?;
    let name = kt.topic_name();
    match admin.delete_topic(&name).await {
        Ok(()) => {
            ctx.metrics
                .topic_operations
                .with_label_values(&["delete"])
                .inc();
            ctx.event(
                kt,
                EventType::Normal,
                "Deleted",
                format!("deleted topic {name}"),
            )
            .await;
        }
        Err(e) if e.kafka_code() == Some(UNKNOWN_TOPIC_OR_PARTITION) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::fake::FakeAdmin;
    use crate::admin::Admin;

    fn spec(partitions: i32, replicas: i32, config: &[(&str, &str)]) -> KafkaTopicSpec {
        KafkaTopicSpec {
            cluster: "events".into(),
            topic_name: None,
            partitions,
            replicas,
            config: config
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    async fn observed(fake: &FakeAdmin, name: &str) -> (TopicInfo, BTreeMap<String, ConfigEntry>) {
        let meta = fake.metadata().await.unwrap();
        (
            meta.topics[name].clone(),
            fake.describe_topic_config(name).await.unwrap(),
        )
    }

    #[test]
    fn absent_topic_is_created() {
        let plan = plan_topic(&spec(3, 1, &[]), None, &BTreeSet::from([0]));
        assert!(plan.create);
        let plan = plan_topic(&spec(3, 2, &[]), None, &BTreeSet::from([0]));
        assert!(!plan.create);
        assert!(plan
            .replication_impossible
            .unwrap()
            .contains("exceeds the 1 brokers"));
    }

    #[tokio::test]
    async fn grow_partitions_and_diff_config() {
        let fake = FakeAdmin::with_brokers([0]);
        let cfg = BTreeMap::from([
            ("retention.ms".to_string(), "1000".to_string()),
            ("segment.ms".to_string(), "5".to_string()),
        ]);
        fake.create_topic("t", 2, 1, &cfg).await.unwrap();
        let (info, config) = observed(&fake, "t").await;
        let plan = plan_topic(
            &spec(
                4,
                1,
                &[("retention.ms", "2000"), ("cleanup.policy", "delete")],
            ),
            Some((&info, &config)),
            &BTreeSet::from([0]),
        );
        assert_eq!(plan.grow_partitions_to, Some(4));
        // cleanup.policy equals the default but is not yet an override: set it explicitly.
        assert_eq!(
            plan.set_config,
            BTreeMap::from([
                ("cleanup.policy".into(), "delete".into()),
                ("retention.ms".into(), "2000".into())
            ])
        );
        assert_eq!(plan.delete_config, ["segment.ms"]);
        assert!(!plan.create);
    }

    #[tokio::test]
    async fn partition_decrease_is_not_supported_and_matching_spec_is_noop() {
        let fake = FakeAdmin::with_brokers([0]);
        fake.create_topic("t", 3, 1, &BTreeMap::new())
            .await
            .unwrap();
        let (info, config) = observed(&fake, "t").await;
        let plan = plan_topic(
            &spec(2, 1, &[]),
            Some((&info, &config)),
            &BTreeSet::from([0]),
        );
        assert_eq!(plan.partition_decrease, Some((3, 2)));
        assert!(plan.is_noop());
        let plan = plan_topic(
            &spec(3, 1, &[]),
            Some((&info, &config)),
            &BTreeSet::from([0]),
        );
        assert_eq!(plan, TopicPlan::default());
    }

    #[tokio::test]
    async fn replication_factor_change_becomes_reassignments() {
        let fake = FakeAdmin::with_brokers([0, 1, 2]);
        fake.add_topic("t", &[&[0], &[1]]);
        fake.state
            .lock()
            .unwrap()
            .configs
            .insert("t".into(), BTreeMap::new());
        let (info, config) = observed(&fake, "t").await;
        let plan = plan_topic(
            &spec(2, 2, &[]),
            Some((&info, &config)),
            &BTreeSet::from([0, 1, 2]),
        );
        assert_eq!(
            plan.replica_moves,
            vec![
                Reassignment {
                    topic: String::new(),
                    partition: 0,
                    replicas: vec![0, 2]
                },
                Reassignment {
                    topic: String::new(),
                    partition: 1,
                    replicas: vec![1, 0]
                },
            ]
        );
        let plan = plan_topic(
            &spec(2, 4, &[]),
            Some((&info, &config)),
            &BTreeSet::from([0, 1, 2]),
        );
        assert!(plan.replica_moves.is_empty());
        assert!(plan.replication_impossible.is_some());
    }

    #[test]
    fn oldest_claimant_wins() {
        let mk = |name: &str, ts: &str| {
            let mut t = KafkaTopic::new(name, spec(1, 1, &[]));
            t.metadata.creation_timestamp = Some(
                k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(ts.parse().unwrap()),
            );
            t
        };
        let ts = [
            mk("b", "2024-01-01T00:00:00Z"),
            mk("a", "2024-01-02T00:00:00Z"),
            mk("c", "2024-01-01T00:00:00Z"),
        ];
        assert_eq!(conflict_winner(&ts).unwrap().name_any(), "b");
    }
}
