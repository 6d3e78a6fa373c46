//! [`MetadataImage::apply`]: how each command changes the image.
//!
//! # Leader election
//! A partition is led by a live (registered, unfenced) member of its ISR, chosen in
//! replica order. When none is left (its leader is fenced and no other in-sync replica is
//! live), it goes offline: leader [`NO_LEADER`], the ISR kept as the members last in sync,
//! so that one of them coming back leads it again (a clean election). If the topic enables
//! [`unclean_election_enabled`], the first live replica outside the ISR leads instead, with
//! the ISR reduced to it and [`PartitionState::recovering`] set; this is tried when the
//! leader is fenced, when a replica of an offline partition registers, and when the config
//! is turned on. A fenced broker is never elected.
//!
//! # ISR changes
//! Only the current leader changes the ISR ([`MetadataCommand::AlterPartition`]), at the
//! current leader epoch and, when given, partition epoch: a proposal based on an older
//! state is refused, never merged. It may drop any follower but add only live brokers.

use std::collections::BTreeSet;

use crate::acl::{AclBinding, AclBindingFilter};
use crate::command::{CommandError, CommandResult, MetadataCommand, NewTopic};
use crate::image::{
    unclean_election_enabled, validate_topic_name, BrokerId, MetadataImage, PartitionState,
    TopicMeta, NO_LEADER,
};
use crate::placement;
use crate::quota::{QuotaAlteration, QuotaValue};
use crate::security::{validate_scram_credential, ScramCredential, ScramMechanism};

/// The most partitions one command may add (Kafka's controller refuses batches of more
/// than 10,000 records).
pub const MAX_PARTITIONS_PER_COMMAND: i32 = 10_000;

/// Refuses adding more than [`MAX_PARTITIONS_PER_COMMAND`] partitions at once. The broker
/// checks it before proposing (and for validate_only requests); apply checks it again.
pub fn check_partitions_per_command(count: i32) -> Result<(), CommandError> {
    if count > MAX_PARTITIONS_PER_COMMAND {
        return Err(CommandError::TooManyPartitions(count));
    }
    Ok(())
}

impl MetadataImage {
    /// Applies one committed command. Never fails halfway: a command that doesn't fit the
    /// image changes nothing and is answered [`CommandResult::Rejected`].
    pub fn apply(&mut self, command: &MetadataCommand) -> CommandResult {
        let result = match command {
            MetadataCommand::Bootstrap { cluster_id, legacy } => {
                if self.cluster_id.is_empty() {
                    self.cluster_id = cluster_id.clone();
                    if let Some(legacy) = legacy {
                        for topic in &legacy.topics {
                            let mut topic = topic.clone();
                            topic.assignments = (0..topic.partitions)
                                .map(|_| PartitionState::new(vec![legacy.node]))
                                .collect();
                            topic.replication_factor = 1;
                            self.topics.insert(topic.name.clone(), topic);
                        }
                        self.next_producer_id = self.next_producer_id.max(legacy.next_producer_id);
                    }
                }
                Ok(CommandResult::Done)
            }
            MetadataCommand::RegisterBroker(registration) => {
                let id = registration.id;
                let mut registration = registration.clone();
                registration.fenced = false;
                self.brokers.insert(id, registration);
                let live = self.live_ids();
                for topic in self.topics.values_mut() {
                    let unclean = unclean_election_enabled(topic);
                    for state in &mut topic.assignments {
                        if state.leader == NO_LEADER && state.replicas.contains(&id) {
                            elect_offline(state, &live, unclean);
                        }
                    }
                }
                Ok(CommandResult::Done)
            }
            MetadataCommand::FenceBroker { id, incarnation }
            | MetadataCommand::ControlledShutdown { id, incarnation } => {
                self.fence(*id, *incarnation);
                Ok(CommandResult::Done)
            }
            MetadataCommand::CreateTopic(new) => self.create_topic(new),
            MetadataCommand::CreatePartitions {
                topic,
                total,
                assignments,
            } => self.create_partitions(topic, *total, assignments.as_deref()),
            MetadataCommand::ReplaceTopicConfigs { topic, configs } => {
                let live = self.live_ids();
                match self.topics.get_mut(topic) {
                    Some(t) => {
                        t.configs = configs.clone();
                        if unclean_election_enabled(t) {
                            for state in &mut t.assignments {
                                if state.leader == NO_LEADER {
                                    elect_offline(state, &live, true);
                                }
                            }
                        }
                        Ok(CommandResult::Done)
                    }
                    None => Err(CommandError::UnknownTopic(topic.clone())),
                }
            }
            MetadataCommand::DeleteTopic { topic } => match self.topics.remove(topic) {
                Some(_) => Ok(CommandResult::Done),
                None => Err(CommandError::UnknownTopic(topic.clone())),
            },
            MetadataCommand::AllocateProducerIds { count } => {
                if *count <= 0 {
                    Err(CommandError::InvalidRequest(format!(
                        "cannot allocate {count} producer ids"
                    )))
                } else {
                    let first = self.next_producer_id;
                    self.next_producer_id += count;
                    Ok(CommandResult::ProducerIds {
                        first,
                        count: *count,
                    })
                }
            }
            MetadataCommand::AlterPartition {
                topic,
                partition,
                leader,
                leader_epoch,
                isr,
                partition_epoch,
            } => self.alter_partition(
                topic,
                *partition,
                *leader,
                *leader_epoch,
                *partition_epoch,
                isr,
            ),
            MetadataCommand::Reassign {
                topic,
                partition,
                target,
            } => self.reassign(topic, *partition, target.as_deref()),
            MetadataCommand::ElectPreferred { topic, partition } => {
                self.elect_preferred(topic, *partition)
            }
            MetadataCommand::UpsertScramCredential { user, credential } => {
                self.upsert_scram_credential(user, credential)
            }
            MetadataCommand::DeleteScramCredential { user, mechanism } => {
                self.delete_scram_credential(user, *mechanism)
            }
            MetadataCommand::CreateAcls { acls } => self.create_acls(acls),
            MetadataCommand::DeleteAcls { filters } => Ok(self.delete_acls(filters)),
            MetadataCommand::AlterClientQuotas { entries } => self.alter_client_quotas(entries),
        };
        result.unwrap_or_else(CommandResult::Rejected)
    }

    /// Registered brokers that are not fenced.
    fn live_ids(&self) -> BTreeSet<BrokerId> {
        self.live_brokers().map(|b| b.id).collect()
    }

    fn partition_mut(
        &mut self,
        topic: &str,
        partition: i32,
    ) -> Result<&mut PartitionState, CommandError> {
        let t = self
            .topics
            .get_mut(topic)
            .ok_or_else(|| CommandError::UnknownTopic(topic.into()))?;
        usize::try_from(partition)
            .ok()
            .and_then(|p| t.assignments.get_mut(p))
            .ok_or_else(|| CommandError::UnknownPartition {
                topic: topic.into(),
                partition,
            })
    }

    /// Fences `id` (unless it has restarted since: another incarnation) and moves its
    /// leaderships to the next live in-sync replica, in replica order. A partition with no
    /// other live in-sync replica gets an unclean leader if its topic allows one and a
    /// replica is live; otherwise it is left without a leader, its ISR kept as the last
    /// ones in sync (KRaft does the same), so that the broker's return brings it back.
    /// A follower leaves the ISR unless it is the last member.
    fn fence(&mut self, id: BrokerId, incarnation: uuid::Uuid) {
        match self.brokers.get_mut(&id) {
            Some(b) if b.incarnation == incarnation => b.fenced = true,
            _ => return,
        }
        let live = self.live_ids();
        for topic in self.topics.values_mut() {
            let unclean = unclean_election_enabled(topic);
            for state in &mut topic.assignments {
                if !state.isr.contains(&id) {
                    continue;
                }
                if state.leader == id {
                    state.leader = NO_LEADER;
                    if !elect_offline(state, &live, unclean) {
                        // Offline: the leader change to none is still a leader change.
                        bump_leader(state);
                    }
                } else if state.isr.len() > 1 {
                    state.isr.retain(|r| *r != id);
                    state.partition_epoch += 1;
                }
            }
        }
    }

    fn check_replicas(&self, replicas: &[BrokerId], what: &str) -> Result<(), CommandError> {
        if replicas.is_empty() {
            return Err(CommandError::InvalidReplicaAssignment(format!(
                "{what}: the replica list is empty"
            )));
        }
        for (i, r) in replicas.iter().enumerate() {
            if replicas[..i].contains(r) {
                return Err(CommandError::InvalidReplicaAssignment(format!(
                    "{what}: broker {r} is listed twice in {replicas:?}"
                )));
            }
            if !self.brokers.contains_key(r) {
                return Err(CommandError::InvalidReplicaAssignment(format!(
                    "{what}: broker {r} is not registered (brokers: {:?})",
                    self.brokers.keys().collect::<Vec<_>>()
                )));
            }
        }
        Ok(())
    }

    /// Replica lists for `count` new partitions from `first`: the explicit ones, checked,
    /// or placed over the live brokers.
    fn assign(
        &self,
        topic_id: uuid::Uuid,
        topic: &str,
        first: i32,
        count: i32,
        replication_factor: i16,
        explicit: Option<&[Vec<BrokerId>]>,
    ) -> Result<Vec<Vec<BrokerId>>, CommandError> {
        check_partitions_per_command(count)?;
        if let Some(explicit) = explicit {
            if explicit.len() != count as usize {
                return Err(CommandError::InvalidReplicaAssignment(format!(
                    "{topic}: {} replica lists given for {count} new partitions",
                    explicit.len()
                )));
            }
            for (i, replicas) in explicit.iter().enumerate() {
                self.check_replicas(replicas, &format!("{topic}-{}", first + i as i32))?;
                if replication_factor > 0 && replicas.len() != replication_factor as usize {
                    return Err(CommandError::InvalidReplicaAssignment(format!(
                        "{topic}-{}: {} replicas, but the topic's replication factor is {replication_factor}",
                        first + i as i32,
                        replicas.len()
                    )));
                }
            }
            return Ok(explicit.to_vec());
        }
        self.check_replication_factor(replication_factor)?;
        let live: Vec<_> = self.live_brokers().collect();
        Ok(placement::place(
            &live,
            topic_id,
            first,
            count,
            replication_factor as usize,
        ))
    }

    /// Whether `replication_factor` replicas can be placed on the live (unfenced) brokers.
    pub fn check_replication_factor(&self, replication_factor: i16) -> Result<(), CommandError> {
        let live = self.live_brokers().count();
        if replication_factor < 1 {
            return Err(CommandError::InvalidReplicationFactor(format!(
                "replication factor must be at least 1, got {replication_factor}"
            )));
        }
        if replication_factor as usize > live {
            return Err(CommandError::InvalidReplicationFactor(format!(
                "replication factor {replication_factor} is larger than the {live} available broker{}",
                if live == 1 { "" } else { "s" }
            )));
        }
        Ok(())
    }

    fn create_topic(&mut self, new: &NewTopic) -> Result<CommandResult, CommandError> {
        validate_topic_name(&new.name).map_err(CommandError::InvalidTopic)?;
        if self.topics.contains_key(&new.name) {
            return Err(CommandError::TopicExists(new.name.clone()));
        }
        let (partitions, replication_factor) = match &new.assignments {
            Some(lists) => (
                lists.len() as i32,
                lists.first().map_or(0, |l| l.len() as i16),
            ),
            None => (new.partitions, new.replication_factor),
        };
        if partitions < 1 {
            return Err(CommandError::InvalidPartitions(format!(
                "number of partitions must be at least 1, got {partitions}"
            )));
        }
        let lists = self.assign(
            new.id,
            &new.name,
            0,
            partitions,
            replication_factor,
            new.assignments.as_deref(),
        )?;
        let topic = TopicMeta {
            name: new.name.clone(),
            id: new.id,
            partitions,
            replication_factor,
            configs: new.configs.clone(),
            assignments: lists.into_iter().map(|r| self.new_partition(r)).collect(),
        };
        self.topics.insert(topic.name.clone(), topic.clone());
        Ok(CommandResult::TopicCreated(topic))
    }

    /// A new partition on `replicas`, led by the first live one. Every live replica is in
    /// sync (all the logs are empty), in replica order, so the leader comes first.
    fn new_partition(&self, replicas: Vec<BrokerId>) -> PartitionState {
        let mut state = PartitionState::new(replicas);
        let live: Vec<BrokerId> = state
            .replicas
            .iter()
            .copied()
            .filter(|r| self.is_live(*r))
            .collect();
        match live.first() {
            Some(&leader) => {
                state.leader = leader;
                state.isr = live;
            }
            // Explicitly placed on fenced brokers only: offline until one returns. The ISR
            // stays every replica (their logs are empty), so whichever returns first leads
            // cleanly.
            None => state.leader = NO_LEADER,
        }
        state
    }

    fn create_partitions(
        &mut self,
        topic: &str,
        total: i32,
        explicit: Option<&[Vec<BrokerId>]>,
    ) -> Result<CommandResult, CommandError> {
        let t = self
            .topics
            .get(topic)
            .ok_or_else(|| CommandError::UnknownTopic(topic.into()))?;
        if total <= t.partitions {
            return Err(CommandError::InvalidPartitions(format!(
                "topic {topic:?} has {} partitions; the new count must be larger, got {total}",
                t.partitions
            )));
        }
        let lists = self.assign(
            t.id,
            topic,
            t.partitions,
            total - t.partitions,
            t.replication_factor,
            explicit,
        )?;
        let states: Vec<_> = lists.into_iter().map(|r| self.new_partition(r)).collect();
        let t = self.topics.get_mut(topic).expect("checked above");
        t.assignments.extend(states);
        t.partitions = total;
        Ok(CommandResult::Done)
    }

    /// Kafka's AlterPartition as KRaft's controller applies it; the checks are in the order
    /// [`MetadataCommand::AlterPartition`] documents.
    fn alter_partition(
        &mut self,
        topic: &str,
        partition: i32,
        leader: BrokerId,
        leader_epoch: i32,
        partition_epoch: Option<i32>,
        isr: &[BrokerId],
    ) -> Result<CommandResult, CommandError> {
        let live = self.live_ids();
        let state = self.partition_mut(topic, partition)?;
        if state.leader != leader || state.leader_epoch != leader_epoch {
            return Err(CommandError::NotLeader {
                topic: topic.into(),
                partition,
                leader,
                leader_epoch,
            });
        }
        if let Some(got) = partition_epoch {
            if got != state.partition_epoch {
                return Err(CommandError::StalePartitionEpoch {
                    topic: topic.into(),
                    partition,
                    current: state.partition_epoch,
                    got,
                });
            }
        }
        // Only joining members must be live: dropping a member is always allowed.
        if let Some(&replica) = isr
            .iter()
            .find(|r| !state.isr.contains(r) && !live.contains(r))
        {
            return Err(CommandError::IneligibleReplica {
                topic: topic.into(),
                partition,
                replica,
            });
        }
        let duplicate = isr.iter().enumerate().any(|(i, r)| isr[..i].contains(r));
        if !isr.contains(&leader) || duplicate || isr.iter().any(|r| !state.replicas.contains(r)) {
            return Err(CommandError::InvalidRequest(format!(
                "{topic}-{partition}: ISR {isr:?} must hold the leader and only replicas of {:?}, each once",
                state.replicas
            )));
        }
        state.isr = isr.to_vec();
        state.partition_epoch += 1;
        state.recovering = false;
        if state.is_reassigning() && state.adding.iter().all(|r| state.isr.contains(r)) {
            complete_reassignment(state);
        }
        Ok(CommandResult::Done)
    }

    fn reassign(
        &mut self,
        topic: &str,
        partition: i32,
        target: Option<&[BrokerId]>,
    ) -> Result<CommandResult, CommandError> {
        if let Some(target) = target {
            self.check_replicas(target, &format!("{topic}-{partition}"))?;
        }
        let live = self.live_ids();
        let unclean = self.topic(topic).is_some_and(unclean_election_enabled);
        let state = self.partition_mut(topic, partition)?;
        match target {
            None => {
                if !state.is_reassigning() {
                    return Err(CommandError::NoReassignmentInProgress {
                        topic: topic.into(),
                        partition,
                    });
                }
                // Kafka's PartitionReassignmentRevert: an ISR of added replicas only would
                // be left empty, which takes an unclean election.
                if !unclean && state.isr.iter().all(|r| state.adding.contains(r)) {
                    return Err(CommandError::InvalidReplicaAssignment(format!(
                        "{topic}-{partition}: cancelling the reassignment would leave no in-sync replica (ISR {:?}, adding {:?}); let it finish, or enable {} on the topic",
                        state.isr, state.adding, crate::image::UNCLEAN_LEADER_ELECTION_ENABLE
                    )));
                }
                let original = state.original_replicas();
                let adding = std::mem::take(&mut state.adding);
                state.removing.clear();
                state.original.clear();
                state.isr.retain(|r| !adding.contains(r));
                state.replicas = original;
                if adding.contains(&state.leader) || state.isr.is_empty() {
                    state.leader = state.isr.first().copied().unwrap_or(NO_LEADER);
                    bump_leader(state);
                } else {
                    state.partition_epoch += 1;
                }
            }
            Some(target) => {
                // A new target replaces an in-flight one: start again from the original.
                let current = state.original_replicas();
                let adding: Vec<_> = target
                    .iter()
                    .copied()
                    .filter(|r| !current.contains(r))
                    .collect();
                let removing: Vec<_> = current
                    .iter()
                    .copied()
                    .filter(|r| !target.contains(r))
                    .collect();
                let mut replicas = target.to_vec();
                replicas.extend(removing.iter().copied());
                state.isr.retain(|r| current.contains(r));
                state.replicas = replicas;
                state.adding = adding;
                state.removing = removing;
                state.original = current;
                state.partition_epoch += 1;
                if state.adding.is_empty() {
                    complete_reassignment(state);
                }
            }
        }
        // Moving off the only in-sync replicas can leave no leader: elect as a fence would.
        if state.leader == NO_LEADER {
            elect_offline(state, &live, unclean);
        }
        Ok(CommandResult::Done)
    }

    fn elect_preferred(
        &mut self,
        topic: &str,
        partition: i32,
    ) -> Result<CommandResult, CommandError> {
        let live = self.live_ids();
        let state = self.partition_mut(topic, partition)?;
        let preferred = state.replicas[0];
        if state.leader == preferred {
            return Err(CommandError::ElectionNotNeeded {
                topic: topic.into(),
                partition,
            });
        }
        if !state.isr.contains(&preferred) || !live.contains(&preferred) {
            return Err(CommandError::PreferredLeaderNotAvailable {
                topic: topic.into(),
                partition,
            });
        }
        state.leader = preferred;
        bump_leader(state);
        Ok(CommandResult::Done)
    }
}

/// Security metadata: SCRAM credentials, ACLs, client quotas.
impl MetadataImage {
    fn upsert_scram_credential(
        &mut self,
        user: &str,
        credential: &ScramCredential,
    ) -> Result<CommandResult, CommandError> {
        validate_scram_credential(user, credential)
            .map_err(CommandError::UnacceptableCredential)?;
        self.scram
            .entry(user.to_owned())
            .or_default()
            .insert(credential.mechanism, credential.clone());
        Ok(CommandResult::Done)
    }

    fn delete_scram_credential(
        &mut self,
        user: &str,
        mechanism: ScramMechanism,
    ) -> Result<CommandResult, CommandError> {
        if user.is_empty() {
            return Err(CommandError::UnacceptableCredential(
                "the user name is empty".into(),
            ));
        }
        let not_found = || {
            CommandError::ResourceNotFound(format!(
                "user {user:?} has no {} credential",
                mechanism.sasl_name()
            ))
        };
        let credentials = self.scram.get_mut(user).ok_or_else(not_found)?;
        credentials.remove(&mechanism).ok_or_else(not_found)?;
        if credentials.is_empty() {
            self.scram.remove(user);
        }
        Ok(CommandResult::Done)
    }

    fn create_acls(&mut self, acls: &[AclBinding]) -> Result<CommandResult, CommandError> {
        for binding in acls {
            binding
                .validate()
                .map_err(|e| CommandError::InvalidRequest(format!("ACL {binding}: {e}")))?;
        }
        self.acls.extend(acls.iter().cloned());
        Ok(CommandResult::Done)
    }

    fn delete_acls(&mut self, filters: &[AclBindingFilter]) -> CommandResult {
        let deleted = filters
            .iter()
            .map(|filter| {
                let matched = self.describe_acls(filter);
                for binding in &matched {
                    self.acls.remove(binding);
                }
                matched
            })
            .collect();
        CommandResult::AclsDeleted(deleted)
    }

    fn alter_client_quotas(
        &mut self,
        entries: &[QuotaAlteration],
    ) -> Result<CommandResult, CommandError> {
        let entities = entries
            .iter()
            .map(QuotaAlteration::validate)
            .collect::<Result<Vec<_>, _>>()
            .map_err(CommandError::InvalidRequest)?;
        for (entity, entry) in entities.into_iter().zip(entries) {
            let mut quotas = self.client_quotas.remove(&entity).unwrap_or_default();
            for (key, value) in &entry.ops {
                match value.map(QuotaValue::new) {
                    Some(value) => {
                        quotas.insert(key.clone(), value.expect("validated above"));
                    }
                    None => {
                        quotas.remove(key);
                    }
                }
            }
            if !quotas.is_empty() {
                self.client_quotas.insert(entity, quotas);
            }
        }
        Ok(CommandResult::Done)
    }
}

/// Elects a leader for `state`, which has none: the first live in-sync replica in replica
/// order (clean; the ISR keeps its live members), or else, if `unclean`, the first live
/// replica (the ISR becomes it alone and the partition is recovering). Returns whether a
/// leader was elected; if not, `state` is unchanged.
fn elect_offline(state: &mut PartitionState, live: &BTreeSet<BrokerId>, unclean: bool) -> bool {
    debug_assert_eq!(state.leader, NO_LEADER);
    let live_replica = |in_isr: bool| {
        state
            .replicas
            .iter()
            .copied()
            .find(|r| live.contains(r) && (!in_isr || state.isr.contains(r)))
    };
    if let Some(leader) = live_replica(true) {
        state.leader = leader;
        state.isr.retain(|r| live.contains(r));
    } else if let Some(leader) = live_replica(false).filter(|_| unclean) {
        state.leader = leader;
        state.isr = vec![leader];
        state.recovering = true;
    } else {
        return false;
    }
    bump_leader(state);
    true
}

fn bump_leader(state: &mut PartitionState) {
    state.leader_epoch += 1;
    state.partition_epoch += 1;
}

/// Every added replica is in sync: the removed ones go, and leadership moves off them.
fn complete_reassignment(state: &mut PartitionState) {
    let removing = std::mem::take(&mut state.removing);
    state.adding.clear();
    state.original.clear();
    state.replicas.retain(|r| !removing.contains(r));
    state.isr.retain(|r| !removing.contains(r));
    if removing.contains(&state.leader) || state.leader == NO_LEADER {
        state.leader = state
            .replicas
            .iter()
            .copied()
            .find(|r| state.isr.contains(r))
            .unwrap_or(NO_LEADER);
        state.leader_epoch += 1;
    }
    state.partition_epoch += 1;
}

#[cfg(test)]
pub(crate) mod tests;
