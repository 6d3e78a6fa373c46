//! Leader election on a `coordination.k8s.io/v1` Lease, so two operator replicas are safe:
//! only the holder reconciles. Updates carry the Lease's resourceVersion, so two candidates
//! racing for an expired lease cannot both win (the loser gets a 409 Conflict).

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, PostParams};
use kube::Client;

/// Lease settings.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_interval: Duration,
}

/// Whether `lease` may be taken by `identity` at `now`: free, ours, or expired. Pure.
pub fn can_acquire(lease: &LeaseSpec, identity: &str, now: Timestamp) -> bool {
    let Some(holder) = lease.holder_identity.as_deref().filter(|h| !h.is_empty()) else {
        return true;
    };
    if holder == identity {
        return true;
    }
    let duration = SignedDuration::from_secs(i64::from(lease.lease_duration_seconds.unwrap_or(15)));
    match &lease.renew_time {
        Some(MicroTime(renewed)) => renewed
            .saturating_add(duration)
            .map(|expiry| expiry < now)
            .unwrap_or(true),
        None => true,
    }
}

/// Tries once to acquire or renew the lease. `Ok(true)` while we hold it.
pub async fn try_acquire(client: &Client, cfg: &LeaseConfig) -> Result<bool, kube::Error> {
    let api = Api::<Lease>::namespaced(client.clone(), &cfg.namespace);
    let now = Timestamp::now();
    let duration_secs = i32::try_from(cfg.lease_duration.as_secs()).unwrap_or(15);
    let Some(mut lease) = api.get_opt(&cfg.name).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(cfg.name.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(cfg.identity.clone()),
                lease_duration_seconds: Some(duration_secs),
                acquire_time: Some(MicroTime(now)),
                renew_time: Some(MicroTime(now)),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        };
    };
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    if !can_acquire(spec, &cfg.identity, now) {
        return Ok(false);
    }
    if spec.holder_identity.as_deref() != Some(cfg.identity.as_str()) {
        spec.holder_identity = Some(cfg.identity.clone());
        spec.acquire_time = Some(MicroTime(now));
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    spec.renew_time = Some(MicroTime(now));
    spec.lease_duration_seconds = Some(duration_secs);
    // `lease` still carries the resourceVersion we read: a concurrent writer makes this a 409.
    match api.replace(&cfg.name, &PostParams::default(), &lease).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Blocks until this process holds the lease.
pub async fn acquire(client: &Client, cfg: &LeaseConfig) {
    let mut tick = tokio::time::interval(cfg.renew_interval);
    loop {
        tick.tick().await;
        match try_acquire(client, cfg).await {
            Ok(true) => {
                tracing::info!(
                    lease = cfg.name,
                    identity = cfg.identity,
                    "acquired leadership"
                );
                return;
            }
            Ok(false) => tracing::debug!(lease = cfg.name, "another replica leads; waiting"),
            Err(e) => {
                tracing::warn!(error = %e, "leader election: could not read or update the Lease")
            }
        }
    }
}

/// Renews the lease until it is lost; returns when leadership can no longer be guaranteed
/// (the caller then exits so a restarted process campaigns afresh).
pub async fn keep(client: &Client, cfg: &LeaseConfig) {
    let mut tick = tokio::time::interval(cfg.renew_interval);
    let mut last_renewed = tokio::time::Instant::now();
    loop {
        tick.tick().await;
        match try_acquire(client, cfg).await {
            Ok(true) => last_renewed = tokio::time::Instant::now(),
            Ok(false) => {
                tracing::error!(lease = cfg.name, "leadership lost to another replica");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not renew the leader Lease");
                if last_renewed.elapsed() >= cfg.lease_duration {
                    tracing::error!("leader Lease expired without renewal");
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: Option<&str>, renewed: &str) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(str::to_string),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(renewed.parse().unwrap())),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn acquire_free_own_or_expired_leases_only() {
        let now: Timestamp = "2024-01-01T00:01:00Z".parse().unwrap();
        assert!(can_acquire(&lease(None, "2024-01-01T00:00:59Z"), "me", now));
        assert!(can_acquire(
            &lease(Some("me"), "2024-01-01T00:00:59Z"),
            "me",
            now
        ));
        assert!(!can_acquire(
            &lease(Some("other"), "2024-01-01T00:00:50Z"),
            "me",
            now
        ));
        assert!(can_acquire(
            &lease(Some("other"), "2024-01-01T00:00:40Z"),
            "me",
            now
        ));
    }
}
