//! KafkaUser reconcile: one way, Kubernetes → cluster, through the Kafka admin API
//! (AlterUserScramCredentials, CreateAcls/DeleteAcls, AlterClientQuotas). The operator owns
//! the user's credential, every ACL of its principal and its user-level quotas; a finalizer
//! removes all three when the resource goes away (the Secret, owned by the KafkaUser, is
//! garbage-collected with it).
//!
//! Pure parts ([`desired_acls`], [`plan_acls`], [`desired_quotas`], [`plan_quotas`],
//! [`build_user_secret`], [`validate_user`]) decide; [`reconcile`] reads and writes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::ByteString;
use kube::api::{Api, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{finalizer, Event as Finalizer};
use kube::{Resource, ResourceExt};

use super::access::{admin_target, generate_password, secret_value};
use super::apply::patch_status;
use super::build::SCRAM_MECHANISM;
use super::status::{to_conditions, Cond};
use super::{kube_err, Context, Error};
use crate::admin::{
    AclBinding, AclOperation, AclPermission, Admin, AdminError, PatternType, ResourceType,
};
use crate::crd::{
    AclOperationName, AclPatternType, AclResourceType, AclRuleType, KafkaCluster, KafkaUser,
    KafkaUserStatus, UserAuthenticationType, UserQuotas,
};

pub const USER_FINALIZER: &str = "ironlog.dev/user";

const RETRY: Duration = Duration::from_secs(30);
const RESYNC: Duration = Duration::from_secs(300);

/// The name a CLUSTER resource always has in Kafka.
const CLUSTER_RESOURCE: &str = "kafka-cluster";

/// Kafka's quota keys, as the spec's fields map to them.
pub const QUOTA_KEYS: [&str; 3] = [
    "producer_byte_rate",
    "consumer_byte_rate",
    "request_percentage",
];

/// Problems with a KafkaUser on its cluster; empty means go ahead. Pure.
pub fn validate_user(ku: &KafkaUser, kc: &KafkaCluster) -> Vec<String> {
    let mut problems = Vec::new();
    let acls = ku
        .spec
        .authorization
        .as_ref()
        .map_or(&[][..], |a| a.acls.as_slice());
    for (i, rule) in acls.iter().enumerate() {
        let r = &rule.resource;
        match (r.type_, r.name.as_deref()) {
            (AclResourceType::Cluster, Some(name)) if name != CLUSTER_RESOURCE => problems.push(
                format!("acls[{i}]: a cluster resource has no name (got {name:?})"),
            ),
            (AclResourceType::Cluster, _) => {}
            (_, None | Some("")) => problems.push(format!(
                "acls[{i}]: a {:?} resource needs a name (`*` for all)",
                r.type_
            )),
            _ => {}
        }
        if r.type_ == AclResourceType::Cluster && r.pattern_type == AclPatternType::Prefix {
            problems.push(format!("acls[{i}]: a cluster resource cannot be a prefix"));
        }
    }
    if !acls.is_empty() && kc.spec.authorization.is_none() {
        problems.push(format!(
            "KafkaCluster {} has no spec.authorization: ACLs would not be enforced",
            kc.name_any()
        ));
    }
    if ku.spec.authentication.type_ == UserAuthenticationType::Tls
        && kc
            .spec
            .tls
            .as_ref()
            .and_then(|t| t.client_ca.as_ref())
            .is_none()
    {
        problems.push(format!(
            "a TLS user needs KafkaCluster {} to trust client certificates (spec.tls.clientCa)",
            kc.name_any()
        ));
    }
    problems
}

fn operation(op: AclOperationName) -> AclOperation {
    match op {
        AclOperationName::All => AclOperation::All,
        AclOperationName::Read => AclOperation::Read,
        AclOperationName::Write => AclOperation::Write,
        AclOperationName::Create => AclOperation::Create,
        AclOperationName::Delete => AclOperation::Delete,
        AclOperationName::Alter => AclOperation::Alter,
        AclOperationName::Describe => AclOperation::Describe,
        AclOperationName::ClusterAction => AclOperation::ClusterAction,
        AclOperationName::DescribeConfigs => AclOperation::DescribeConfigs,
        AclOperationName::AlterConfigs => AclOperation::AlterConfigs,
        AclOperationName::IdempotentWrite => AclOperation::IdempotentWrite,
    }
}

/// The ACL bindings the spec asks for: one per rule and operation, sorted, without
/// duplicates. Pure.
pub fn desired_acls(ku: &KafkaUser) -> Vec<AclBinding> {
    let principal = ku.principal();
    let mut out = BTreeSet::new();
    for rule in ku.spec.authorization.iter().flat_map(|a| &a.acls) {
        let r = &rule.resource;
        let (resource_type, resource_name) = match r.type_ {
            AclResourceType::Topic => (ResourceType::Topic, r.name.clone()),
            AclResourceType::Group => (ResourceType::Group, r.name.clone()),
            AclResourceType::TransactionalId => (ResourceType::TransactionalId, r.name.clone()),
            AclResourceType::Cluster => (ResourceType::Cluster, Some(CLUSTER_RESOURCE.into())),
        };
        for op in &rule.operations {
            out.insert(AclBinding {
                resource_type,
                resource_name: resource_name.clone().unwrap_or_default(),
                pattern_type: match r.pattern_type {
                    AclPatternType::Literal => PatternType::Literal,
                    AclPatternType::Prefix => PatternType::Prefixed,
                },
                principal: principal.clone(),
                host: rule.host.clone(),
                operation: operation(*op),
                permission: match rule.type_ {
                    AclRuleType::Allow => AclPermission::Allow,
                    AclRuleType::Deny => AclPermission::Deny,
                },
            });
        }
    }
    out.into_iter().collect()
}

/// What to create and delete so the principal has exactly `desired`. Pure.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AclPlan {
    pub create: Vec<AclBinding>,
    pub delete: Vec<AclBinding>,
}

pub fn plan_acls(desired: &[AclBinding], existing: &[AclBinding]) -> AclPlan {
    let want: BTreeSet<&AclBinding> = desired.iter().collect();
    let have: BTreeSet<&AclBinding> = existing.iter().collect();
    AclPlan {
        create: want.difference(&have).map(|b| (*b).clone()).collect(),
        delete: have.difference(&want).map(|b| (*b).clone()).collect(),
    }
}

/// The spec's quotas by Kafka key. Pure.
pub fn desired_quotas(quotas: Option<&UserQuotas>) -> BTreeMap<String, f64> {
    let Some(q) = quotas else {
        return BTreeMap::new();
    };
    [
        (QUOTA_KEYS[0], q.producer_byte_rate),
        (QUOTA_KEYS[1], q.consumer_byte_rate),
        (QUOTA_KEYS[2], q.request_percentage),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((k.to_string(), v? as f64)))
    .collect()
}

/// `(set, remove)` turning `existing` into `desired`. Pure.
pub fn plan_quotas(
    desired: &BTreeMap<String, f64>,
    existing: &BTreeMap<String, f64>,
) -> (BTreeMap<String, f64>, Vec<String>) {
    let set = desired
        .iter()
        .filter(|(k, v)| existing.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    let remove = existing
        .keys()
        .filter(|k| !desired.contains_key(*k))
        .cloned()
        .collect();
    (set, remove)
}

/// The Secret of a SCRAM user: what a client needs to log in. Pure.
pub fn build_user_secret(ku: &KafkaUser, password: &str) -> Secret {
    let user = ku.user_name();
    let jaas = format!(
        "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"{user}\" password=\"{password}\";"
    );
    let data = [
        ("username", user.clone()),
        ("password", password.to_string()),
        ("sasl.mechanism", SCRAM_MECHANISM.to_string()),
        ("sasl.jaas.config", jaas),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), ByteString(v.into_bytes())))
    .collect();
    let mut meta = kube::api::ObjectMeta {
        name: Some(user),
        namespace: ku.namespace(),
        labels: Some(BTreeMap::from([
            ("app.kubernetes.io/name".to_string(), "ironlog".to_string()),
            (
                "app.kubernetes.io/instance".to_string(),
                ku.spec.cluster.clone(),
            ),
            (
                "app.kubernetes.io/managed-by".to_string(),
                "ironlog-operator".to_string(),
            ),
        ])),
        ..Default::default()
    };
    if let Some(owner) = ku.controller_owner_ref(&()) {
        meta.owner_references = Some(vec![owner]);
    }
    Secret {
        metadata: meta,
        type_: Some("Opaque".to_string()),
        data: Some(data),
        ..Secret::default()
    }
}

pub async fn reconcile(ku: Arc<KafkaUser>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile_timer("KafkaUser");
    let ns = ku.namespace().ok_or(Error::MissingNamespace)?;
    let api = Api::<KafkaUser>::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, USER_FINALIZER, ku, |event| async {
        match event {
            Finalizer::Apply(ku) => apply_user(&ku, &ctx, &ns).await,
            Finalizer::Cleanup(ku) => cleanup_user(&ku, &ctx, &ns).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

/// What the status says besides the conditions.
#[derive(Default)]
struct Seen {
    secret: Option<String>,
    password_version: Option<String>,
}

async fn write_status(
    ku: &KafkaUser,
    ctx: &Context,
    ns: &str,
    ready: Cond,
    seen: Seen,
) -> Result<(), Error> {
    let previous = ku.status.clone().unwrap_or_default();
    let status = KafkaUserStatus {
        observed_generation: ku.metadata.generation,
        conditions: to_conditions(
            &[ready],
            &previous.conditions,
            ku.metadata.generation,
            Timestamp::now(),
        ),
        principal: Some(ku.principal()),
        secret: seen.secret.or(previous.secret),
        password_version: seen.password_version.or(previous.password_version),
    };
    patch_status(
        &Api::<KafkaUser>::namespaced(ctx.client.clone(), ns),
        &ku.name_any(),
        &status,
        format!("KafkaUser {ns}/{}", ku.name_any()),
    )
    .await
}

async fn not_ready(
    ku: &KafkaUser,
    ctx: &Context,
    ns: &str,
    reason: &str,
    message: String,
) -> Result<Action, Error> {
    write_status(
        ku,
        ctx,
        ns,
        Cond::new("Ready", false, reason, message),
        Seen::default(),
    )
    .await?;
    Ok(Action::requeue(RETRY))
}

/// The user's Secret: read it, or create it with a fresh password. Returns the password and
/// the Secret's resourceVersion.
async fn ensure_secret(ku: &KafkaUser, ctx: &Context, ns: &str) -> Result<(String, String), Error> {
    let api = Api::<Secret>::namespaced(ctx.client.clone(), ns);
    let name = ku.user_name();
    let secret = match api
        .get_opt(&name)
        .await
        .map_err(kube_err(format!("reading Secret {name}")))?
    {
        Some(s) => s,
        None => {
            let fresh = build_user_secret(ku, &generate_password()?);
            match api.create(&PostParams::default(), &fresh).await {
                Ok(s) => {
                    ctx.event(
                        ku,
                        EventType::Normal,
                        "SecretCreated",
                        format!("generated the password into Secret {name}"),
                    )
                    .await;
                    s
                }
                Err(kube::Error::Api(e)) if e.code == 409 => api
                    .get(&name)
                    .await
                    .map_err(kube_err(format!("reading Secret {name}")))?,
                Err(e) => return Err(kube_err(format!("creating Secret {name}"))(e)),
            }
        }
    };
    let password = secret_value(&secret, "password")
        .filter(|p| !p.is_empty())
        .ok_or_else(|| Error::Invalid(format!("Secret {name} has no password")))?;
    Ok((password, secret.resource_version().unwrap_or_default()))
}

async fn apply_user(ku: &KafkaUser, ctx: &Context, ns: &str) -> Result<Action, Error> {
    let clusters = Api::<KafkaCluster>::namespaced(ctx.client.clone(), ns);
    let Some(kc) = clusters
        .get_opt(&ku.spec.cluster)
        .await
        .map_err(kube_err("reading KafkaCluster"))?
    else {
        let msg = format!(
            "KafkaCluster {} not found in namespace {ns}",
            ku.spec.cluster
        );
        return not_ready(ku, ctx, ns, "ClusterNotFound", msg).await;
    };
    let problems = validate_user(ku, &kc);
    if !problems.is_empty() {
        return not_ready(ku, ctx, ns, "InvalidSpec", problems.join("; ")).await;
    }
    let mut seen = Seen::default();
    let password = match ku.spec.authentication.type_ {
        UserAuthenticationType::ScramSha512 => match ensure_secret(ku, ctx, ns).await {
            Ok((password, version)) => {
                seen.secret = Some(ku.user_name());
                seen.password_version = Some(version);
                Some(password)
            }
            Err(Error::Invalid(msg)) => return not_ready(ku, ctx, ns, "InvalidSecret", msg).await,
            Err(e) => return Err(e),
        },
        UserAuthenticationType::Tls => None,
    };
    let target = admin_target(&kc, ctx, ns).await?;
    let admin = match ctx.connect_admin(&target).await {
        Ok(a) => a,
        Err(e) => return not_ready(ku, ctx, ns, "ClusterUnreachable", e.to_string()).await,
    };
    let password_known = seen.password_version.is_some()
        && ku.status.as_ref().and_then(|s| s.password_version.as_ref())
            == seen.password_version.as_ref();
    match sync_user(
        ku,
        &kc,
        ctx,
        admin.as_ref(),
        password.as_deref(),
        password_known,
    )
    .await
    {
        Ok(done) => {
            let msg = format!("{} has its credential, {done}", ku.principal());
            write_status(
                ku,
                ctx,
                ns,
                Cond::new("Ready", true, "Reconciled", msg),
                seen,
            )
            .await?;
            Ok(Action::requeue(RESYNC))
        }
        Err(AdminError::Unsupported { api }) => {
            let msg = format!("the cluster does not support the {api} API");
            not_ready(ku, ctx, ns, "NotSupported", msg).await
        }
        Err(e @ AdminError::Kafka { .. }) => {
            not_ready(ku, ctx, ns, "KafkaError", e.to_string()).await
        }
        Err(e @ AdminError::Unreachable(_)) => {
            not_ready(ku, ctx, ns, "ClusterUnreachable", e.to_string()).await
        }
        Err(e) => Err(e.into()),
    }
}

/// Brings the credential, the ACLs and the quotas in line; says what it holds.
async fn sync_user(
    ku: &KafkaUser,
    kc: &KafkaCluster,
    ctx: &Context,
    admin: &dyn Admin,
    password: Option<&str>,
    password_known: bool,
) -> Result<String, AdminError> {
    let user = ku.user_name();
    if let Some(password) = password {
        // A password the cluster has already (same Secret version, credential present) is
        // not set again: every upsert is a new salt and a metadata record.
        if !(password_known && admin.has_scram_user(&user).await?) {
            admin.upsert_scram_user(&user, password).await?;
            ctx.event(
                ku,
                EventType::Normal,
                "CredentialSet",
                format!("set the {SCRAM_MECHANISM} credential of {user}"),
            )
            .await;
        }
    }
    let desired = desired_acls(ku);
    if kc.spec.authorization.is_some() {
        let existing = admin.describe_acls(&ku.principal()).await?;
        let plan = plan_acls(&desired, &existing);
        if !plan.delete.is_empty() {
            admin.delete_acls(&plan.delete).await?;
        }
        if !plan.create.is_empty() {
            admin.create_acls(&plan.create).await?;
        }
        if plan != AclPlan::default() {
            ctx.event(
                ku,
                EventType::Normal,
                "AclsUpdated",
                format!(
                    "{} ACLs created, {} deleted",
                    plan.create.len(),
                    plan.delete.len()
                ),
            )
            .await;
        }
    }
    let quotas = desired_quotas(ku.spec.quotas.as_ref());
    let existing = admin.describe_user_quotas(&user).await?;
    let (set, remove) = plan_quotas(&quotas, &existing);
    if !set.is_empty() || !remove.is_empty() {
        admin.alter_user_quotas(&user, &set, &remove).await?;
    }
    let quotas = if quotas.is_empty() {
        "none".to_string()
    } else {
        let set: Vec<String> = quotas.iter().map(|(k, v)| format!("{k}={v}")).collect();
        set.join(",")
    };
    Ok(format!("{} ACLs, quotas {quotas}", desired.len()))
}

async fn cleanup_user(ku: &KafkaUser, ctx: &Context, ns: &str) -> Result<Action, Error> {
    let clusters = Api::<KafkaCluster>::namespaced(ctx.client.clone(), ns);
    let kc = clusters
        .get_opt(&ku.spec.cluster)
        .await
        .map_err(kube_err("reading KafkaCluster"))?;
    let Some(kc) = kc.filter(|kc| kc.meta().deletion_timestamp.is_none()) else {
        tracing::info!(
            user = ku.user_name(),
            "KafkaCluster gone; releasing KafkaUser"
        );
        return Ok(Action::await_change());
    };
    let admin = ctx
        .connect_admin(&admin_target(&kc, ctx, ns).await?)
        .await?;
    let user = ku.user_name();
    if ku.spec.authentication.type_ == UserAuthenticationType::ScramSha512 {
        admin.delete_scram_user(&user).await?;
    }
    if kc.spec.authorization.is_some() {
        let existing = admin.describe_acls(&ku.principal()).await?;
        if !existing.is_empty() {
            admin.delete_acls(&existing).await?;
        }
    }
    let existing = admin.describe_user_quotas(&user).await?;
    if !existing.is_empty() {
        let keys: Vec<String> = existing.keys().cloned().collect();
        admin
            .alter_user_quotas(&user, &BTreeMap::new(), &keys)
            .await?;
    }
    ctx.event(
        ku,
        EventType::Normal,
        "Deleted",
        format!("removed {}'s credential, ACLs and quotas", ku.principal()),
    )
    .await;
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::build::test_support::cluster;
    use serde_json::json;

    fn user(spec: serde_json::Value) -> KafkaUser {
        let mut ku: KafkaUser = serde_json::from_value(json!({
            "apiVersion": "ironlog.dev/v1alpha1",
            "kind": "KafkaUser",
            "metadata": {"name": "alice", "namespace": "prod", "uid": "uid-u"},
            "spec": spec,
        }))
        .unwrap();
        ku.metadata.generation = Some(1);
        ku
    }

    fn binding(
        resource_type: ResourceType,
        name: &str,
        pattern_type: PatternType,
        operation: AclOperation,
        permission: AclPermission,
    ) -> AclBinding {
        AclBinding {
            resource_type,
            resource_name: name.into(),
            pattern_type,
            principal: "User:alice".into(),
            host: "*".into(),
            operation,
            permission,
        }
    }

    fn alice() -> KafkaUser {
        user(json!({
            "cluster": "events",
            "authentication": {"type": "scram-sha-512"},
            "authorization": {"acls": [
                {"resource": {"type": "topic", "name": "orders-", "patternType": "prefix"},
                 "operations": ["Write", "Describe"]},
                {"resource": {"type": "topic", "name": "orders-audit"},
                 "operations": ["Write"], "type": "deny"},
                {"resource": {"type": "cluster"}, "operations": ["IdempotentWrite", "IdempotentWrite"]},
            ]},
            "quotas": {"producerByteRate": 1048576, "requestPercentage": 50},
        }))
    }

    #[test]
    fn one_binding_per_rule_and_operation_sorted_and_deduplicated() {
        use AclOperation::*;
        use AclPermission::*;
        use PatternType::*;
        use ResourceType::*;
        assert_eq!(
            desired_acls(&alice()),
            [
                binding(Topic, "orders-", Prefixed, Write, Allow),
                binding(Topic, "orders-", Prefixed, Describe, Allow),
                binding(Topic, "orders-audit", Literal, Write, Deny),
                binding(Cluster, "kafka-cluster", Literal, IdempotentWrite, Allow),
            ]
        );
        let tls = user(json!({
            "cluster": "events",
            "authentication": {"type": "tls"},
            "authorization": {"acls": [{"resource": {"type": "group", "name": "*"}, "operations": ["Read"]}]},
        }));
        assert_eq!(tls.principal(), "User:CN=alice");
        assert_eq!(desired_acls(&tls)[0].principal, "User:CN=alice");
    }

    #[test]
    fn the_acl_plan_creates_what_is_missing_and_deletes_what_is_not_asked_for() {
        use AclOperation::*;
        use AclPermission::*;
        let desired = desired_acls(&alice());
        let stale = binding(
            ResourceType::Topic,
            "payments",
            PatternType::Literal,
            Read,
            Allow,
        );
        let existing = vec![desired[0].clone(), stale.clone()];
        let plan = plan_acls(&desired, &existing);
        assert_eq!(plan.create, desired[1..].to_vec());
        assert_eq!(plan.delete, [stale]);
        assert_eq!(plan_acls(&desired, &desired), AclPlan::default());
    }

    #[test]
    fn quotas_map_to_kafka_keys_and_plan_set_and_remove() {
        let want = desired_quotas(alice().spec.quotas.as_ref());
        assert_eq!(
            want,
            BTreeMap::from([
                ("producer_byte_rate".to_string(), 1048576.0),
                ("request_percentage".to_string(), 50.0),
            ])
        );
        let have = BTreeMap::from([
            ("producer_byte_rate".to_string(), 1.0),
            ("request_percentage".to_string(), 50.0),
            ("consumer_byte_rate".to_string(), 7.0),
        ]);
        let (set, remove) = plan_quotas(&want, &have);
        assert_eq!(
            set,
            BTreeMap::from([("producer_byte_rate".to_string(), 1048576.0)])
        );
        assert_eq!(remove, ["consumer_byte_rate"]);
        assert_eq!(desired_quotas(None), BTreeMap::new());
    }

    #[test]
    fn the_secret_holds_the_login_and_belongs_to_the_user() {
        let s = build_user_secret(&alice(), "pw123");
        assert_eq!(s.metadata.name.as_deref(), Some("alice"));
        let owner = &s.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("KafkaUser", "uid-u")
        );
        assert_eq!(owner.controller, Some(true));
        assert_eq!(
            s.metadata.labels.as_ref().unwrap()["app.kubernetes.io/managed-by"],
            "ironlog-operator"
        );
        assert_eq!(secret_value(&s, "username").as_deref(), Some("alice"));
        assert_eq!(secret_value(&s, "password").as_deref(), Some("pw123"));
        assert_eq!(
            secret_value(&s, "sasl.mechanism").as_deref(),
            Some("SCRAM-SHA-512")
        );
        assert_eq!(
            secret_value(&s, "sasl.jaas.config").as_deref(),
            Some("org.apache.kafka.common.security.scram.ScramLoginModule required username=\"alice\" password=\"pw123\";")
        );
    }

    #[test]
    fn validation_names_each_problem() {
        let kc = cluster(3);
        let ku = user(json!({
            "cluster": "events",
            "authentication": {"type": "tls"},
            "authorization": {"acls": [
                {"resource": {"type": "topic"}, "operations": ["Read"]},
                {"resource": {"type": "cluster", "name": "x"}, "operations": ["Alter"]},
            ]},
        }));
        assert_eq!(
            validate_user(&ku, &kc),
            [
                "acls[0]: a Topic resource needs a name (`*` for all)",
                "acls[1]: a cluster resource has no name (got \"x\")",
                "KafkaCluster events has no spec.authorization: ACLs would not be enforced",
                "a TLS user needs KafkaCluster events to trust client certificates (spec.tls.clientCa)",
            ]
        );
        let plain = user(json!({"cluster": "events", "authentication": {"type": "scram-sha-512"}}));
        assert!(validate_user(&plain, &kc).is_empty());
    }
}
