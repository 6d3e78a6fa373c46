//! The quorum end to end: real Raft, real files, real sockets on loopback.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ironlog_metadata::{
    BrokerRegistration, CommandResult, MetadataCommand, MetadataImage, NewTopic,
};
use ironlog_quorum::{Quorum, QuorumConfig, QuorumError, QuorumStatus};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(20);
const PROPOSE: Duration = Duration::from_secs(10);

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "ironlog_quorum=info".into()),
        )
        .with_test_writer()
        .try_init();
}

fn register(id: i32) -> MetadataCommand {
    MetadataCommand::RegisterBroker(BrokerRegistration {
        id,
        incarnation: Uuid::new_v4(),
        host: "localhost".into(),
        port: 9092 + id,
        rack: None,
        listeners: Vec::new(),
        fenced: false,
    })
}

fn create_topic(name: &str, partitions: i32) -> MetadataCommand {
    MetadataCommand::CreateTopic(NewTopic {
        name: name.into(),
        id: Uuid::new_v4(),
        partitions,
        replication_factor: 1,
        configs: BTreeMap::new(),
        assignments: None,
    })
}

/// Polls `check` until it answers `Some`, failing the test after [`WAIT`].
async fn wait_until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the watched image satisfies `pred`.
async fn wait_image(
    q: &Quorum,
    what: &str,
    pred: impl Fn(&MetadataImage) -> bool,
) -> Arc<MetadataImage> {
    let mut rx = q.subscribe();
    let image = tokio::time::timeout(WAIT, rx.wait_for(|i| pred(i)))
        .await
        .unwrap_or_else(|_| panic!("timed out waiting until {what}"))
        .expect("the quorum is running");
    image.clone()
}

/// Ports free right now on loopback.
fn free_addrs(n: usize) -> Vec<SocketAddr> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners.iter().map(|l| l.local_addr().unwrap()).collect()
}

fn voter_config(id: i32, dir: &Path, addrs: &BTreeMap<i32, SocketAddr>) -> QuorumConfig {
    let mut config = QuorumConfig::new(id, dir);
    config.listen = Some(addrs[&id]);
    config.advertised = addrs[&id].to_string();
    config.voters = addrs.iter().map(|(id, a)| (*id, a.to_string())).collect();
    config
}

async fn propose_ok(q: &Quorum, cmd: MetadataCommand) -> CommandResult {
    let result = q
        .propose(cmd, PROPOSE)
        .await
        .expect("the proposal is applied");
    assert!(
        !matches!(result, CommandResult::Rejected(_)),
        "rejected: {result:?}"
    );
    result
}

/// The leader every node in `nodes` agrees on.
async fn agreed_leader(nodes: &[&Quorum]) -> i32 {
    wait_until("the nodes agree on a leader", || {
        let statuses: Vec<QuorumStatus> = nodes.iter().map(|q| q.status()).collect();
        let leader = statuses[0].leader?;
        let agreed = statuses.iter().all(|s| s.leader == Some(leader));
        let leaders = statuses.iter().filter(|s| s.is_leader).count();
        (agreed && leaders == 1).then_some(leader)
    })
    .await
}

#[tokio::test]
async fn a_quorum_of_one_leads_applies_and_restarts_intact() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let q = Quorum::start(QuorumConfig::new(1, dir.path()))
        .await
        .unwrap();
    let status = q.status();
    assert!(status.is_leader, "{status:?}");
    assert_eq!(status.leader, Some(1));
    assert_eq!(status.voters.len(), 1);
    assert!(status.learners.is_empty());

    // A second member on the same directory would corrupt the log: refused.
    let second = Quorum::start(QuorumConfig::new(1, dir.path())).await;
    assert!(
        matches!(second, Err(QuorumError::Locked(_))),
        "a second process on the directory must be refused"
    );

    propose_ok(&q, register(1)).await;
    let created = propose_ok(&q, create_topic("orders", 3)).await;
    let CommandResult::TopicCreated(topic) = created else {
        panic!("expected TopicCreated, got {created:?}");
    };
    assert_eq!(topic.partitions, 3);
    // Answered only once applied: the image has it already.
    let image = q.image();
    assert_eq!(image.topic("orders"), Some(&topic));
    assert_eq!(image.topic("orders").unwrap().assignments[0].leader, 1);
    // The same name again is the state machine's answer, not an error of the quorum.
    let again = q.propose(create_topic("orders", 1), PROPOSE).await.unwrap();
    assert!(matches!(again, CommandResult::Rejected(_)), "{again:?}");
    let status = q.status();
    assert_eq!(status.applied_index, status.commit_index);
    assert!(status.applied_index >= 3, "{status:?}");
    q.shutdown().await.unwrap();
    drop(q);

    let q = Quorum::start(QuorumConfig::new(1, dir.path()))
        .await
        .unwrap();
    let restored = wait_image(&q, "the log is re-applied", |i| i.topic("orders").is_some()).await;
    assert_eq!(*restored, *image);
    let ids = propose_ok(&q, MetadataCommand::AllocateProducerIds { count: 10 }).await;
    assert!(
        matches!(ids, CommandResult::ProducerIds { count: 10, .. }),
        "{ids:?}"
    );
    q.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_torn_log_tail_is_cut_off_at_open() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let q = Quorum::start(QuorumConfig::new(1, dir.path()))
        .await
        .unwrap();
    propose_ok(&q, register(1)).await;
    propose_ok(&q, create_topic("kept", 1)).await;
    let image = q.image();
    q.shutdown().await.unwrap();
    drop(q);

    let log = dir.path().join("raft.log");
    let good_len = std::fs::metadata(&log).unwrap().len();
    {
        // A frame whose write was interrupted: the header promises 100 bytes, 5 arrived.
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        f.write_all(&100u32.to_be_bytes()).unwrap();
        f.write_all(&[0, 0, 0, 0, b'{', b'"', b'x', b'"', b':'])
            .unwrap();
    }

    let q = Quorum::start(QuorumConfig::new(1, dir.path()))
        .await
        .unwrap();
    let restored = wait_image(&q, "the log is re-applied", |i| i.topic("kept").is_some()).await;
    assert_eq!(*restored, *image);
    // The node appends after the cut, and the next open reads it all back.
    propose_ok(&q, create_topic("after", 1)).await;
    assert!(std::fs::metadata(&log).unwrap().len() > good_len);
    q.shutdown().await.unwrap();
    drop(q);
    let q = Quorum::start(QuorumConfig::new(1, dir.path()))
        .await
        .unwrap();
    wait_image(&q, "both topics are back", |i| {
        i.topic("kept").is_some() && i.topic("after").is_some()
    })
    .await;
    q.shutdown().await.unwrap();
}

#[tokio::test]
async fn three_voters_elect_forward_fail_over_and_catch_up() {
    init_tracing();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let addrs: BTreeMap<i32, SocketAddr> = (1..=3).zip(free_addrs(3)).collect();
    let mut nodes: BTreeMap<i32, Quorum> = BTreeMap::new();
    for id in 1..=3 {
        let config = voter_config(id, dirs[id as usize - 1].path(), &addrs);
        nodes.insert(id, Quorum::start(config).await.unwrap());
    }
    let leader = agreed_leader(&nodes.values().collect::<Vec<_>>()).await;
    let follower = *nodes.keys().find(|id| **id != leader).unwrap();
    let status = nodes[&leader].status();
    assert_eq!(
        status.voters.iter().map(|v| v.id).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    wait_until("the leader knows every voter's matched index", || {
        let s = nodes[&leader].status();
        s.voters
            .iter()
            .all(|v| v.matched_index.is_some() && v.lag == Some(0))
            .then_some(())
    })
    .await;
    assert!(nodes[&follower]
        .status()
        .voters
        .iter()
        .all(|v| v.lag.is_none()));

    // Proposed through a follower: forwarded, and applied on the follower when answered.
    for id in 1..=3 {
        propose_ok(&nodes[&follower], register(id)).await;
    }
    propose_ok(&nodes[&follower], create_topic("forwarded", 3)).await;
    assert!(nodes[&follower].image().topic("forwarded").is_some());
    for q in nodes.values() {
        wait_image(q, "every node applied the topic", |i| {
            i.topic("forwarded").is_some()
        })
        .await;
    }

    // Heartbeats land on the leader only.
    let incarnation = Uuid::new_v4();
    nodes[&follower].heartbeat(7, incarnation).await.unwrap();
    let beats = nodes[&leader].heartbeats();
    assert_eq!(beats.get(&7).map(|(i, _)| *i), Some(incarnation));
    assert!(nodes[&follower].heartbeats().is_empty());

    // The leader goes away: the other two elect a new one and carry on.
    let old = nodes.remove(&leader).unwrap();
    old.shutdown().await.unwrap();
    drop(old);
    let new_leader = agreed_leader(&nodes.values().collect::<Vec<_>>()).await;
    assert_ne!(new_leader, leader);
    assert!(
        nodes[&new_leader].heartbeats().is_empty(),
        "heartbeats are per leadership"
    );
    let survivor = *nodes.keys().next().unwrap();
    propose_ok(&nodes[&survivor], create_topic("after-failover", 2)).await;

    // The old leader restarts from its directory and catches up.
    let config = voter_config(leader, dirs[leader as usize - 1].path(), &addrs);
    let back = Quorum::start(config).await.unwrap();
    let image = wait_image(&back, "the restarted node catches up", |i| {
        i.topic("after-failover").is_some()
    })
    .await;
    assert!(image.topic("forwarded").is_some());
    nodes.insert(leader, back);
    agreed_leader(&nodes.values().collect::<Vec<_>>()).await;
    // And it can propose again (forwarded unless it won the leadership back).
    propose_ok(&nodes[&leader], create_topic("from-the-restarted", 1)).await;
    for q in nodes.values() {
        wait_image(q, "every node applied the last topic", |i| {
            i.topic("from-the-restarted").is_some()
        })
        .await;
    }
    for q in nodes.values() {
        q.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn a_learner_joins_gets_the_image_and_proposes() {
    init_tracing();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let all = free_addrs(3);
    let addrs: BTreeMap<i32, SocketAddr> = [(1, all[0]), (2, all[1])].into();
    let mut voters = Vec::new();
    for id in 1..=2 {
        let mut config = voter_config(id, dirs[id as usize - 1].path(), &addrs);
        // Snapshot (and purge) early, so the learner has to be sent a snapshot.
        config.snapshot_every = 5;
        config.keep_after_snapshot = 0;
        voters.push(Quorum::start(config).await.unwrap());
    }
    agreed_leader(&voters.iter().collect::<Vec<_>>()).await;
    for id in 1..=2 {
        propose_ok(&voters[0], register(id)).await;
    }
    for n in 0..10 {
        propose_ok(&voters[1], create_topic(&format!("t{n}"), 1)).await;
    }
    assert!(dirs[0].path().join("snapshot.json").exists());

    let mut config = QuorumConfig::new(9, dirs[2].path());
    config.listen = Some(all[2]);
    config.advertised = all[2].to_string();
    config.voters = addrs.iter().map(|(id, a)| (*id, a.to_string())).collect();
    let learner = Quorum::start(config).await.unwrap();
    let image = wait_image(&learner, "the learner has the image", |i| {
        i.topic("t9").is_some()
    })
    .await;
    assert_eq!(*image, *voters[0].image());
    let status = wait_until("the learner shows as learner", || {
        let s = learner.status();
        (s.learners.iter().any(|l| l.id == 9) && s.leader.is_some()).then_some(s)
    })
    .await;
    assert!(!status.is_leader);
    assert_eq!(
        status.voters.iter().map(|v| v.id).collect::<Vec<_>>(),
        vec![1, 2]
    );
    let leader = status.leader.unwrap();
    let leader_node = voters
        .iter()
        .find(|q| q.status().node_id == leader)
        .unwrap();
    wait_until("the leader tracks the learner", || {
        let s = leader_node.status();
        let l = s.learners.iter().find(|l| l.id == 9)?;
        (l.lag == Some(0)).then_some(())
    })
    .await;

    propose_ok(&learner, create_topic("from-learner", 1)).await;
    assert!(learner.image().topic("from-learner").is_some());
    for q in &voters {
        wait_image(q, "the voters applied the learner's topic", |i| {
            i.topic("from-learner").is_some()
        })
        .await;
    }

    // The learner comes back on another address: the leader learns it and it catches up.
    learner.shutdown().await.unwrap();
    drop(learner);
    propose_ok(&voters[0], create_topic("while-away", 1)).await;
    let moved = free_addrs(1)[0];
    let mut config = QuorumConfig::new(9, dirs[2].path());
    config.listen = Some(moved);
    config.advertised = moved.to_string();
    config.voters = addrs.iter().map(|(id, a)| (*id, a.to_string())).collect();
    let learner = Quorum::start(config).await.unwrap();
    wait_image(&learner, "the moved learner catches up", |i| {
        i.topic("while-away").is_some()
    })
    .await;
    let status = wait_until("the learner's new address is in the membership", || {
        let s = learner.status();
        s.learners
            .iter()
            .any(|l| l.id == 9 && l.addr == moved.to_string())
            .then_some(s)
    })
    .await;
    assert_eq!(status.learners.len(), 1);
    learner.shutdown().await.unwrap();
    for q in &voters {
        q.shutdown().await.unwrap();
    }
}

/// A node that comes back under its id with an empty disk (its Kubernetes volume was lost with
/// its Node) is caught up again; the leader must not stop at its log going backwards (openraft's
/// `loosen-follower-log-revert`).
#[tokio::test]
async fn a_learner_back_with_an_empty_disk_catches_up_and_the_leader_carries_on() {
    init_tracing();
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let all = free_addrs(3);
    let addrs: BTreeMap<i32, SocketAddr> = [(1, all[0]), (2, all[1])].into();
    let mut voters = Vec::new();
    for id in 1..=2 {
        voters.push(
            Quorum::start(voter_config(id, dirs[id as usize - 1].path(), &addrs))
                .await
                .unwrap(),
        );
    }
    agreed_leader(&voters.iter().collect::<Vec<_>>()).await;
    propose_ok(&voters[0], register(1)).await;
    let learner_config = |dir: &Path| {
        let mut config = QuorumConfig::new(9, dir);
        config.listen = Some(all[2]);
        config.advertised = all[2].to_string();
        config.voters = addrs.iter().map(|(id, a)| (*id, a.to_string())).collect();
        config
    };
    let first_disk = tempfile::tempdir().unwrap();
    let learner = Quorum::start(learner_config(first_disk.path()))
        .await
        .unwrap();
    for n in 0..5 {
        propose_ok(&voters[0], create_topic(&format!("before{n}"), 1)).await;
    }
    wait_image(&learner, "the learner caught up", |i| {
        i.topic("before4").is_some()
    })
    .await;
    learner.shutdown().await.unwrap();
    drop(learner);
    drop(first_disk);

    let empty_disk = tempfile::tempdir().unwrap();
    let learner = Quorum::start(learner_config(empty_disk.path()))
        .await
        .unwrap();
    wait_image(&learner, "the learner with an empty disk caught up", |i| {
        i.topic("before4").is_some()
    })
    .await;
    // The leader still leads and commits.
    propose_ok(&voters[1], create_topic("after", 1)).await;
    wait_image(&learner, "the learner follows on", |i| {
        i.topic("after").is_some()
    })
    .await;
    // Proposed through voter 2: voter 1 applies it on its own time.
    wait_image(&voters[0], "voter 1 applied it too", |i| {
        i.topic("after").is_some()
    })
    .await;
    assert_eq!(*learner.image(), *voters[0].image());
    learner.shutdown().await.unwrap();
    for q in &voters {
        q.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn proposing_without_a_majority_times_out() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let addrs: BTreeMap<i32, SocketAddr> = (1..=3).zip(free_addrs(3)).collect();
    // Only node 1 of 3 is up: no leader can be elected.
    let q = Quorum::start(voter_config(1, dir.path(), &addrs))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let err = q
        .propose(register(1), Duration::from_millis(1500))
        .await
        .unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(1500));
    assert!(
        matches!(err, QuorumError::NoLeader(_) | QuorumError::Timeout(..)),
        "{err}"
    );
    assert!(q.heartbeat(1, Uuid::new_v4()).await.is_err());
    assert_eq!(q.status().leader, None);
    q.shutdown().await.unwrap();
}

/// The broker spawns these on a multi-threaded runtime: they must be `Send`.
#[allow(dead_code)]
fn the_api_futures_are_send(q: &'static Quorum) {
    fn send<F: Future + Send>(_: F) {}
    send(q.propose(register(1), PROPOSE));
    send(q.heartbeat(1, Uuid::nil()));
    send(q.shutdown());
    send(Quorum::start(QuorumConfig::new(1, "unused")));
}
