//! End-to-end tests against a real Kubernetes API server with the operator running as a
//! process. Run by `e2e/k8s/run.sh`, which starts kube-apiserver, kube-controller-manager and
//! kube-scheduler (no kubelet), applies `crds/`, starts `ironlog-operator` with
//! `--allow-bootstrap-override`, and runs `cargo test --test k8s_e2e -- --ignored`.
//!
//! Environment: KUBECONFIG (the test API server), E2E_OPERATOR_METRICS (`host:port` of the
//! running operator's metrics endpoint), IRONLOG_BIN (broker binary, for the KafkaTopic test).
//! Every wait polls a condition under a deadline; none sleeps a fixed time.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, ObjectMeta, PostParams};
use kube::{Client, ResourceExt};

use ironlog_operator::admin::kafka::KafkaConnector;
use ironlog_operator::admin::{AdminConnector, AdminTarget};
use ironlog_operator::controller::apply::{discover_capabilities, pdb_resource};
use ironlog_operator::crd::{KafkaCluster, KafkaTopic};

const DEADLINE: Duration = Duration::from_secs(60);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

async fn client() -> Client {
    Client::try_default()
        .await
        .expect("KUBECONFIG must point at the e2e API server")
}

/// Polls `probe` until it yields `Some`, panicking with `what` after `timeout`.
async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn run(cmd: &str, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut child = Command::new(cmd)
        .args(args)
        .current_dir(repo_root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {cmd}: {e}"));
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn kubectl(args: &[&str], stdin: Option<&str>) -> (bool, String) {
    run("kubectl", args, stdin)
}

async fn fresh_namespace(client: &Client, name: &str) -> String {
    let api = Api::<Namespace>::all(client.clone());
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    api.create(&PostParams::default(), &ns)
        .await
        .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
    name.to_string()
}

fn condition(status: &serde_json::Value, type_: &str) -> Option<(String, String, String, i64)> {
    let c = status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)?;
    Some((
        c["status"].as_str()?.to_string(),
        c["reason"].as_str()?.to_string(),
        c["message"].as_str()?.to_string(),
        c["observedGeneration"].as_i64().unwrap_or(-1),
    ))
}

async fn cluster_status(api: &Api<KafkaCluster>, name: &str) -> Option<(i64, serde_json::Value)> {
    let kc = api.get_opt(name).await.ok()??;
    let status = serde_json::to_value(kc.status.as_ref()?).ok()?;
    Some((kc.metadata.generation.unwrap_or(0), status))
}

/// Waits until the status describes the current generation and `type_` has `want` status.
async fn wait_condition(
    api: &Api<KafkaCluster>,
    name: &str,
    type_: &str,
    want: &str,
) -> (String, String) {
    wait_for(
        &format!("KafkaCluster {name} condition {type_}={want}"),
        DEADLINE,
        || async {
            let (generation, status) = cluster_status(api, name).await?;
            if status["observedGeneration"].as_i64() != Some(generation) {
                return None;
            }
            let (s, reason, message, observed) = condition(&status, type_)?;
            (s == want && observed == generation).then_some((reason, message))
        },
    )
    .await
}

#[tokio::test]
#[ignore = "needs a real API server: run e2e/k8s/run.sh"]
async fn crds_are_established() {
    let api = Api::<CustomResourceDefinition>::all(client().await);
    for name in [
        "kafkaclusters.ironlog.dev",
        "kafkatopics.ironlog.dev",
        "kafkausers.ironlog.dev",
    ] {
        wait_for(&format!("{name} Established"), DEADLINE, || async {
            let crd = api.get_opt(name).await.ok()??;
            crd.status?
                .conditions?
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
                .then_some(())
        })
        .await;
    }
}

#[tokio::test]
#[ignore = "needs a real API server: run e2e/k8s/run.sh"]
async fn cluster_yields_owned_objects_status_and_scales() {
    let client = client().await;
    let ns = fresh_namespace(&client, "e2e-cluster").await;
    let manifest = r#"
apiVersion: ironlog.dev/v1alpha1
kind: KafkaCluster
metadata: {name: events}
spec:
  replicas: 3
  config: {num.partitions: "6", log.retention.ms: "3600000"}
"#;
    let (ok, out) = kubectl(&["apply", "-n", &ns, "-f", "-"], Some(manifest));
    assert!(ok, "{out}");
    let kcs = Api::<KafkaCluster>::namespaced(client.clone(), &ns);
    let (reason, message) = wait_condition(&kcs, "events", "Progressing", "True").await;
    assert_eq!(reason, "WaitingForBrokers", "{message}");
    let kc = kcs.get("events").await.unwrap();
    let uid = kc.uid().unwrap();
    let status = kc.status.clone().unwrap();
    assert_eq!(status.observed_generation, kc.metadata.generation);
    let types: Vec<_> = status.conditions.iter().map(|c| c.type_.as_str()).collect();
    assert_eq!(types, ["Ready", "Progressing", "Degraded"]);
    assert_eq!(
        status.bootstrap.as_deref(),
        Some("events-bootstrap.e2e-cluster.svc:9092")
    );
    assert_eq!(status.brokers.len(), 3);

    let owned_by_cluster = |meta: &ObjectMeta| {
        let refs = meta.owner_references.clone().unwrap_or_default();
        assert!(
            refs.iter()
                .any(|r| r.uid == uid && r.kind == "KafkaCluster" && r.controller == Some(true)),
            "{:?} not owned by the KafkaCluster: {refs:?}",
            meta.name
        );
    };
    let cm = Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .get("events-config")
        .await
        .unwrap();
    owned_by_cluster(&cm.metadata);
    let properties = cm.data.unwrap()["server.properties"].clone();
    assert!(
        properties.contains("\nlog.retention.ms=3600000\n"),
        "{properties}"
    );
    assert!(properties.contains("\nnum.partitions=6\n"), "{properties}");
    assert_eq!(
        properties
            .lines()
            .find_map(|l| l.strip_prefix("controller.quorum.voters="))
            .map(|v| v.split(',').count()),
        Some(3),
        "{properties}"
    );

    let svcs = Api::<Service>::namespaced(client.clone(), &ns);
    let headless = svcs.get("events-brokers").await.unwrap();
    owned_by_cluster(&headless.metadata);
    let hs = headless.spec.unwrap();
    assert_eq!(hs.cluster_ip.as_deref(), Some("None"));
    assert_eq!(hs.publish_not_ready_addresses, Some(true));
    let bootstrap = svcs.get("events-bootstrap").await.unwrap();
    owned_by_cluster(&bootstrap.metadata);
    assert_ne!(bootstrap.spec.unwrap().cluster_ip.as_deref(), Some("None"));

    let sa = Api::<ServiceAccount>::namespaced(client.clone(), &ns)
        .get("events-broker")
        .await
        .unwrap();
    owned_by_cluster(&sa.metadata);

    let stss = Api::<StatefulSet>::namespaced(client.clone(), &ns);
    let sts = stss.get("events").await.unwrap();
    owned_by_cluster(&sts.metadata);
    let spec = sts.spec.unwrap();
    assert_eq!(spec.replicas, Some(3));
    assert_eq!(spec.service_name.as_deref(), Some("events-brokers"));
    let env: BTreeMap<_, _> = spec.template.spec.unwrap().containers[0]
        .env
        .clone()
        .unwrap()
        .into_iter()
        .map(|e| (e.name, e.value.unwrap_or_default()))
        .collect();
    assert_eq!(env["IRONLOG_CONFIG"], "/etc/ironlog/server.properties");

    // The PDB in whichever policy version the server offers (v1beta1 on the 1.20 test bed).
    let caps = discover_capabilities(&client).await.unwrap();
    let pdbs = Api::<DynamicObject>::namespaced_with(client.clone(), &ns, &pdb_resource(caps));
    let pdb = pdbs.get("events").await.unwrap();
    owned_by_cluster(&pdb.metadata);
    assert_eq!(pdb.data["spec"]["maxUnavailable"], 1);

    // kubectl scale goes through the scale subresource and reaches the StatefulSet.
    let (ok, out) = kubectl(&["scale", "-n", &ns, "kc", "events", "--replicas=5"], None);
    assert!(ok, "{out}");
    wait_for("StatefulSet scaled to 5", DEADLINE, || async {
        (stss.get("events").await.ok()?.spec?.replicas == Some(5)).then_some(())
    })
    .await;
    let (ok, out) = kubectl(
        &[
            "get",
            "-n",
            &ns,
            "kc",
            "events",
            "-o",
            "jsonpath={.status.replicas}",
        ],
        None,
    );
    assert!(
        ok && wait_for("status.replicas 5", DEADLINE, || async {
            (kcs.get("events").await.ok()?.status?.replicas == 5).then_some(true)
        })
        .await,
        "{out}"
    );

    // Scaling down needs the brokers drained first; with no broker reachable the operator
    // refuses, says why, and leaves the StatefulSet alone.
    let (ok, out) = kubectl(&["scale", "-n", &ns, "kc", "events", "--replicas=2"], None);
    assert!(ok, "{out}");
    let (reason, message) = wait_condition(&kcs, "events", "Degraded", "True").await;
    assert_eq!(reason, "ScaleDownBlocked");
    assert!(message.contains("cannot reach the cluster"), "{message}");
    assert_eq!(
        stss.get("events").await.unwrap().spec.unwrap().replicas,
        Some(5)
    );
}

#[tokio::test]
#[ignore = "needs a real API server: run e2e/k8s/run.sh"]
async fn invalid_specs_are_rejected_or_reported() {
    let client = client().await;
    let ns = fresh_namespace(&client, "e2e-invalid").await;
    // Rejected by the CRD schema at admission (client-side validation off: the server decides).
    for (bad, why) in [
        ("{replicas: 0}", "spec.replicas"),
        ("{replicas: 3, storage: {size: lots}}", "spec.storage.size"),
        ("{image: x}", "spec.replicas"),
    ] {
        let manifest = format!("apiVersion: ironlog.dev/v1alpha1\nkind: KafkaCluster\nmetadata: {{name: bad}}\nspec: {bad}\n");
        let (ok, out) = kubectl(
            &["apply", "--validate=false", "-n", &ns, "-f", "-"],
            Some(&manifest),
        );
        assert!(!ok, "{bad} was accepted");
        assert!(out.contains(why), "{bad}: {out}");
    }
    let (ok, out) = kubectl(
        &["apply", "--validate=false", "-n", &ns, "-f", "-"],
        Some("apiVersion: ironlog.dev/v1alpha1\nkind: KafkaTopic\nmetadata: {name: t}\nspec: {cluster: c, partitions: 0, replicas: 1}\n"),
    );
    assert!(!ok && out.contains("spec.partitions"), "{out}");

    // Valid to the schema, invalid to the operator: reported in status, nothing built.
    let manifest = r#"
apiVersion: ironlog.dev/v1alpha1
kind: KafkaCluster
metadata: {name: wrong}
spec:
  replicas: 2
  controllers: 3
  config: {node.id: "4"}
"#;
    let (ok, out) = kubectl(&["apply", "-n", &ns, "-f", "-"], Some(manifest));
    assert!(ok, "{out}");
    let kcs = Api::<KafkaCluster>::namespaced(client.clone(), &ns);
    let (reason, message) = wait_condition(&kcs, "wrong", "Degraded", "True").await;
    assert_eq!(reason, "InvalidSpec");
    assert!(
        message.contains("controllers (3) must be between 1 and replicas (2)"),
        "{message}"
    );
    assert!(message.contains("\"node.id\""), "{message}");
    let (ok, out) = kubectl(&["get", "-n", &ns, "kc", "wrong"], None);
    assert!(ok && out.contains("Degraded"), "printer columns: {out}");
    assert!(Api::<StatefulSet>::namespaced(client.clone(), &ns)
        .get_opt("wrong")
        .await
        .unwrap()
        .is_none());

    // Fixing the spec recovers.
    let (ok, out) = kubectl(
        &[
            "patch",
            "-n",
            &ns,
            "kc",
            "wrong",
            "--type=json",
            "-p",
            r#"[{"op":"remove","path":"/spec/controllers"},{"op":"remove","path":"/spec/config"}]"#,
        ],
        None,
    );
    assert!(ok, "{out}");
    wait_condition(&kcs, "wrong", "Degraded", "False").await;
    assert!(Api::<StatefulSet>::namespaced(client.clone(), &ns)
        .get_opt("wrong")
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
#[ignore = "needs a real API server: run e2e/k8s/run.sh"]
async fn deleting_the_cluster_garbage_collects_its_objects() {
    let client = client().await;
    let ns = fresh_namespace(&client, "e2e-gc").await;
    let (ok, out) = kubectl(
        &["apply", "-n", &ns, "-f", "-"],
        Some("apiVersion: ironlog.dev/v1alpha1\nkind: KafkaCluster\nmetadata: {name: gone}\nspec: {replicas: 1}\n"),
    );
    assert!(ok, "{out}");
    let stss = Api::<StatefulSet>::namespaced(client.clone(), &ns);
    let cms = Api::<ConfigMap>::namespaced(client.clone(), &ns);
    let svcs = Api::<Service>::namespaced(client.clone(), &ns);
    wait_for("StatefulSet created", DEADLINE, || async {
        stss.get_opt("gone").await.ok()?
    })
    .await;
    let (ok, out) = kubectl(&["delete", "-n", &ns, "kc", "gone", "--wait=true"], None);
    assert!(ok, "{out}");
    wait_for(
        "owned objects garbage-collected",
        Duration::from_secs(120),
        || async {
            let left = [
                stss.get_opt("gone").await.ok()?.is_some(),
                cms.get_opt("gone-config").await.ok()?.is_some(),
                svcs.get_opt("gone-brokers").await.ok()?.is_some(),
                svcs.get_opt("gone-bootstrap").await.ok()?.is_some(),
            ];
            (!left.contains(&true)).then_some(())
        },
    )
    .await;
}

#[tokio::test]
#[ignore = "needs a real API server: run e2e/k8s/run.sh"]
async fn helm_chart_installs() {
    let client = client().await;
    let (ok, out) = run(
        "helm",
        &[
            "install",
            "e2e-op",
            "charts/ironlog-operator",
            "--namespace",
            "e2e-helm",
            "--create-namespace",
            "--set",
            "replicaCount=2",
            "--set",
            "serviceMonitor.enabled=false",
        ],
        None,
    );
    assert!(ok, "{out}");
    let dep = Api::<Deployment>::namespaced(client.clone(), "e2e-helm")
        .get("e2e-op-ironlog-operator")
        .await
        .unwrap();
    assert_eq!(dep.spec.unwrap().replicas, Some(2));
    let (ok, out) = run(
        "helm",
        &["uninstall", "e2e-op", "--namespace", "e2e-helm"],
        None,
    );
    assert!(ok, "{out}");
}

#[tokio::test]
#[ignore = "needs a real API server: run e2e/k8s/run.sh"]
async fn plain_manifests_apply() {
    let client = client().await;
    // manifests/01-operator.yaml is generated from the chart: it must match a fresh render.
    let (ok, rendered) = run(
        "helm",
        &[
            "template",
            "ironlog-operator",
            "charts/ironlog-operator",
            "--namespace",
            "ironlog-system",
        ],
        None,
    );
    assert!(ok, "{rendered}");
    let committed =
        std::fs::read_to_string(repo_root().join("manifests/01-operator.yaml")).unwrap();
    let committed = committed
        .split_once('\n')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    assert!(
        committed == rendered,
        "manifests/01-operator.yaml drifted from the chart; run manifests/generate.sh"
    );
    let (ok, out) = kubectl(&["apply", "-f", "manifests/"], None);
    assert!(ok, "{out}");
    let (ok, out) = kubectl(&["apply", "-f", "manifests/examples/"], None);
    assert!(ok, "{out}");
    Api::<Deployment>::namespaced(client.clone(), "ironlog-system")
        .get("ironlog-operator")
        .await
        .unwrap();
    // The example cluster is reconciled by the operator under test.
    let kcs = Api::<KafkaCluster>::namespaced(client.clone(), "default");
    let name = kcs.list(&Default::default()).await.unwrap().items[0].name_any();
    wait_condition(&kcs, &name, "Progressing", "True").await;
}

fn http_get(addr: &str, path: &str) -> String {
    let mut s =
        std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

#[tokio::test]
#[ignore = "needs a real API server: run e2e/k8s/run.sh"]
async fn operator_serves_metrics_health_and_holds_the_lease() {
    let addr = std::env::var("E2E_OPERATOR_METRICS").expect("E2E_OPERATOR_METRICS");
    assert!(http_get(&addr, "/healthz").starts_with("HTTP/1.1 200"));
    let metrics = http_get(&addr, "/metrics");
    assert!(
        metrics.contains("ironlog_operator_reconciles_total{kind=\"KafkaCluster\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("ironlog_operator_leader 1"), "{metrics}");
    let lease = Api::<Lease>::namespaced(client().await, "default")
        .get("ironlog-operator")
        .await
        .unwrap();
    assert!(lease
        .spec
        .unwrap()
        .holder_identity
        .is_some_and(|h| !h.is_empty()));
}

/// A broker process on loopback, killed on drop.
struct Broker {
    child: Child,
    addr: String,
    _dir: PathBuf,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_broker() -> Broker {
    let bin = std::env::var("IRONLOG_BIN").expect("IRONLOG_BIN must name the ironlog binary");
    let dir = std::env::temp_dir().join(format!("ironlog-e2e-k8s-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let addr = format!("127.0.0.1:{}", free_port());
    let metrics = format!("127.0.0.1:{}", free_port());
    let child = Command::new(bin)
        .args(["broker", "--node-id", "0", "--listen", &addr, "--data-dir"])
        .arg(&dir)
        .args([
            "--metrics-listen",
            &metrics,
            "--auto-create-topics",
            "false",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting the broker");
    let broker = Broker {
        child,
        addr,
        _dir: dir,
    };
    wait_for("broker accepting connections", DEADLINE, || async {
        std::net::TcpStream::connect(&broker.addr).ok().map(|_| ())
    })
    .await;
    broker
}

#[tokio::test]
#[ignore = "needs a real API server and IRONLOG_BIN: run e2e/k8s/run.sh"]
async fn kafka_topic_lifecycle_on_a_real_broker() {
    let broker = start_broker().await;
    let client = client().await;
    let ns = fresh_namespace(&client, "e2e-topic").await;
    let kts = Api::<KafkaTopic>::namespaced(client.clone(), &ns);
    let admin = KafkaConnector
        .connect(&AdminTarget::plaintext(broker.addr.as_str()))
        .await
        .expect("admin connection to the broker");

    let manifest = format!(
        r#"
apiVersion: ironlog.dev/v1alpha1
kind: KafkaTopic
metadata:
  name: orders-k8s
  annotations: {{ironlog.dev/bootstrap-override: "{}"}}
spec:
  cluster: local
  topicName: orders.v1
  partitions: 1
  replicas: 1
  config: {{retention.ms: "100000"}}
"#,
        broker.addr
    );
    let (ok, out) = kubectl(&["apply", "-n", &ns, "-f", "-"], Some(&manifest));
    assert!(ok, "{out}");
    let ready = |generation_at_least: i64| {
        let kts = kts.clone();
        async move {
            let kt = kts.get_opt("orders-k8s").await.ok()??;
            let st = kt.status?;
            let ready = st.conditions.iter().find(|c| c.type_ == "Ready")?;
            (ready.status == "True" && st.observed_generation? >= generation_at_least).then_some(st)
        }
    };
    let st = wait_for("KafkaTopic Ready", DEADLINE, || ready(1)).await;
    assert_eq!(st.topic_name.as_deref(), Some("orders.v1"));
    let kt = kts.get("orders-k8s").await.unwrap();
    assert!(
        kt.finalizers().iter().any(|f| f == "ironlog.dev/topic"),
        "finalizer missing"
    );
    let meta = admin.metadata().await.unwrap();
    assert_eq!(meta.topics["orders.v1"].partitions.len(), 1);
    let cfg = admin.describe_topic_config("orders.v1").await.unwrap();
    assert_eq!(cfg["retention.ms"].value.as_deref(), Some("100000"));

    // Grow partitions and change config.
    let (ok, out) = kubectl(
        &[
            "patch",
            "-n",
            &ns,
            "kt",
            "orders-k8s",
            "--type=merge",
            "-p",
            r#"{"spec":{"partitions":3,"config":{"retention.ms":"200000","cleanup.policy":"compact"}}}"#,
        ],
        None,
    );
    assert!(ok, "{out}");
    wait_for(
        "partitions grown and config altered on the broker",
        DEADLINE,
        || async {
            let meta = admin.metadata().await.ok()?;
            let cfg = admin.describe_topic_config("orders.v1").await.ok()?;
            (meta.topics.get("orders.v1")?.partitions.len() == 3
                && cfg.get("retention.ms")?.value.as_deref() == Some("200000")
                && cfg.get("cleanup.policy")?.value.as_deref() == Some("compact"))
            .then_some(())
        },
    )
    .await;
    let st = wait_for("KafkaTopic Ready at generation 2", DEADLINE, || ready(2)).await;
    assert_eq!(st.partitions, Some(3));

    // A partition decrease is refused with NotSupported.
    let (ok, out) = kubectl(
        &[
            "patch",
            "-n",
            &ns,
            "kt",
            "orders-k8s",
            "--type=merge",
            "-p",
            r#"{"spec":{"partitions":2}}"#,
        ],
        None,
    );
    assert!(ok, "{out}");
    wait_for("NotSupported condition", DEADLINE, || async {
        let st = kts.get("orders-k8s").await.ok()?.status?;
        st.conditions
            .iter()
            .any(|c| {
                c.type_ == "NotSupported" && c.status == "True" && c.reason == "PartitionDecrease"
            })
            .then_some(())
    })
    .await;
    assert_eq!(
        admin.metadata().await.unwrap().topics["orders.v1"]
            .partitions
            .len(),
        3
    );

    // A second resource claiming the same topic is a conflict and changes nothing.
    let twin = manifest
        .replace("name: orders-k8s", "name: orders-twin")
        .replace("partitions: 1", "partitions: 9");
    let (ok, out) = kubectl(&["apply", "-n", &ns, "-f", "-"], Some(&twin));
    assert!(ok, "{out}");
    wait_for("ResourceConflict on the twin", DEADLINE, || async {
        let st = kts.get("orders-twin").await.ok()?.status?;
        st.conditions
            .iter()
            .any(|c| c.type_ == "ResourceConflict" && c.status == "True")
            .then_some(())
    })
    .await;
    let (ok, out) = kubectl(
        &["delete", "-n", &ns, "kt", "orders-twin", "--wait=true"],
        None,
    );
    assert!(ok, "{out}");
    assert_eq!(
        admin.metadata().await.unwrap().topics["orders.v1"]
            .partitions
            .len(),
        3,
        "twin touched the topic"
    );

    // Deleting the resource deletes the topic through the finalizer.
    let (ok, out) = kubectl(
        &[
            "delete",
            "-n",
            &ns,
            "kt",
            "orders-k8s",
            "--wait=true",
            "--timeout=60s",
        ],
        None,
    );
    assert!(ok, "{out}");
    assert!(kts.get_opt("orders-k8s").await.unwrap().is_none());
    wait_for("topic deleted on the broker", DEADLINE, || async {
        (!admin
            .metadata()
            .await
            .ok()?
            .topics
            .contains_key("orders.v1"))
        .then_some(())
    })
    .await;
}
