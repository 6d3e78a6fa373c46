//! The toolbox against a secured broker started in-process: a PLAINTEXT listener (the
//! inter-broker one), a SASL_SSL listener and an SSL listener that requires a client
//! certificate, with a CA, broker and client certificates made by rcgen, the ACL authorizer
//! on and `User:admin` (created with `--add-scram`) as the super user.
//!
//! Over SASL_SSL with SCRAM-SHA-512 as admin, through the client library and through the
//! `ironlog` binary with `--command-config`: create a user, list it, log in as it, add an
//! ACL, list it, remove it; a wrong password, an untrusted broker certificate and a missing
//! client certificate fail as they should.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ironlog_client::acl::{
    AclBinding, AclBindingFilter, AclOperation, AclPermission, PatternType, ResourceType,
};
use ironlog_client::{
    Client, ClientConfig, ClientError, SaslCredentials, SaslMechanism, ScramMechanism,
    SecurityConfig, SecurityProtocol, TlsSettings,
};
use ironlog_server::config::security::{
    ListenerConfig, ScramUser, SecurityConfig as BrokerSecurity, SecurityProtocol as Protocol,
    TlsFiles,
};
use ironlog_server::config::BrokerConfig;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use tokio::net::TcpListener;
use tokio::sync::watch;

const ADMIN_PASSWORD: &str = "admin-secret";

/// PEM files of a test PKI.
struct Pki {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
    /// A CA that signed nothing here.
    other_ca: PathBuf,
}

fn ca(name: &str) -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    (params.self_signed(&key).unwrap(), key)
}

fn leaf(
    names: &[&str],
    common_name: &str,
    usage: ExtendedKeyUsagePurpose,
    issuer: &(rcgen::Certificate, KeyPair),
) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.extended_key_usages = vec![usage];
    let cert = params.signed_by(&key, &issuer.0, &issuer.1).unwrap();
    (cert.pem(), key.serialize_pem())
}

impl Pki {
    fn generate(dir: &Path) -> Pki {
        let authority = ca("ironlog test CA");
        let (server_cert, server_key) = leaf(
            &["127.0.0.1", "localhost"],
            "broker",
            ExtendedKeyUsagePurpose::ServerAuth,
            &authority,
        );
        let (client_cert, client_key) = leaf(
            &[],
            "client",
            ExtendedKeyUsagePurpose::ClientAuth,
            &authority,
        );
        let other = ca("somebody else's CA");
        let write = |name: &str, content: &str| {
            let path = dir.join(name);
            std::fs::write(&path, content).unwrap();
            path
        };
        Pki {
            ca: write("ca.pem", &authority.0.pem()),
            server_cert: write("server.pem", &server_cert),
            server_key: write("server.key", &server_key),
            client_cert: write("client.pem", &client_cert),
            client_key: write("client.key", &client_key),
            other_ca: write("other-ca.pem", &other.0.pem()),
        }
    }
}

struct SecureBroker {
    sasl_ssl: SocketAddr,
    ssl: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

fn listener(name: &str, protocol: Protocol, bind: SocketAddr) -> ListenerConfig {
    ListenerConfig {
        name: name.into(),
        protocol,
        bind,
        advertised_host: bind.ip().to_string(),
        advertised_port: i32::from(bind.port()),
    }
}

impl SecureBroker {
    async fn start(data_dir: &Path, pki: &Pki) -> SecureBroker {
        SecureBroker::start_with(data_dir, pki, |_| {}).await
    }

    async fn start_with(
        data_dir: &Path,
        pki: &Pki,
        tweak: impl FnOnce(&mut BrokerConfig),
    ) -> SecureBroker {
        let plaintext = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sasl_ssl = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ssl = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let plaintext_addr = plaintext.local_addr().unwrap();
        let (sasl_ssl_addr, ssl_addr) = (sasl_ssl.local_addr().unwrap(), ssl.local_addr().unwrap());
        let mut config = BrokerConfig {
            node_id: 1,
            listen: plaintext_addr,
            advertised_host: plaintext_addr.ip().to_string(),
            advertised_port: i32::from(plaintext_addr.port()),
            listeners: vec![
                listener("PLAINTEXT", Protocol::Plaintext, plaintext_addr),
                listener("SASL_SSL", Protocol::SaslSsl, sasl_ssl_addr),
                listener("SSL", Protocol::Ssl, ssl_addr),
            ],
            inter_broker_listener: "PLAINTEXT".into(),
            inter_broker_client: Default::default(),
            security: BrokerSecurity {
                tls: Some(TlsFiles {
                    cert: pki.server_cert.clone(),
                    key: pki.server_key.clone(),
                    client_ca: Some(pki.ca.clone()),
                }),
                add_scram: vec![ScramUser {
                    mechanism: ScramMechanism::Sha512,
                    name: "admin".into(),
                    password: ADMIN_PASSWORD.into(),
                    iterations: 4096,
                }],
                authorizer: true,
                super_users: vec!["User:admin".into()],
                ..Default::default()
            },
            data_dir: data_dir.to_path_buf(),
            metrics_listen: http.local_addr().unwrap(),
            auto_create_topics: false,
            default_partitions: 1,
            default_replication_factor: 1,
            socket_request_max_bytes: 1024 * 1024,
            fetch_session_cache_slots: 1000,
            log_write_behind_bytes: 16 << 20,
            max_connections: 100,
            default_topic_config: vec![],
            group: ironlog_server::group::GroupConfig::default(),
            net: ironlog_server::config::NetLimits::default(),
            cleaner: None,
            cluster: ironlog_server::config::ClusterSettings::default(),
        };
        tweak(&mut config);
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(ironlog_server::broker::run_on_listeners(
            config,
            vec![plaintext, sasl_ssl, ssl],
            http,
            stopped,
        ));
        SecureBroker {
            sasl_ssl: sasl_ssl_addr,
            ssl: ssl_addr,
            stop,
            task,
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        self.task.await.unwrap().unwrap();
    }
}

fn sasl_ssl(
    broker: &SecureBroker,
    pki: &Pki,
    mechanism: SaslMechanism,
    user: &str,
    password: &str,
) -> ClientConfig {
    let mut config = ClientConfig::new(&broker.sasl_ssl.to_string()).unwrap();
    config.request_timeout = Duration::from_secs(10);
    config.retries = 1;
    config.security = SecurityConfig {
        protocol: SecurityProtocol::SaslSsl,
        sasl: Some(SaslCredentials {
            mechanism,
            username: user.into(),
            password: password.into(),
        }),
        tls: TlsSettings {
            ca_location: Some(pki.ca.clone()),
            ..TlsSettings::default()
        },
    };
    config
}

fn admin(broker: &SecureBroker, pki: &Pki) -> ClientConfig {
    sasl_ssl(
        broker,
        pki,
        SaslMechanism::Scram(ScramMechanism::Sha512),
        "admin",
        ADMIN_PASSWORD,
    )
}

/// The admin client, once the broker serves (the listeners are bound before it starts).
async fn wait_for_admin(broker: &SecureBroker, pki: &Pki) -> Client {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut config = admin(broker, pki);
        config.request_timeout = Duration::from_secs(2);
        match Client::connect(config).await {
            Ok(_) => return Client::connect(admin(broker, pki)).await.unwrap(),
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "broker did not accept the admin: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Runs the `ironlog` binary with `stdin`; returns (exit code, stdout, stderr).
async fn ironlog(args: &[&str], stdin: &str) -> (Option<i32>, String, String) {
    use tokio::io::AsyncWriteExt as _;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ironlog"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the ironlog binary");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("ironlog finished within 60 s")
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn alice_reads_orders() -> AclBinding {
    AclBinding {
        resource_type: ResourceType::Topic,
        resource_name: "orders".into(),
        pattern_type: PatternType::Literal,
        principal: "User:alice".into(),
        host: "*".into(),
        operation: AclOperation::Read,
        permission: AclPermission::Allow,
    }
}

fn principal_filter(principal: &str) -> AclBindingFilter {
    AclBindingFilter {
        principal: Some(principal.into()),
        ..AclBindingFilter::any()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_over_sasl_ssl_manages_users_and_acls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(dir.path());
    let broker = SecureBroker::start(&dir.path().join("data"), &pki).await;
    let client = wait_for_admin(&broker, &pki).await;

    // A user: the salted password is computed here; alice can log in with the password.
    client
        .upsert_user_scram_credential("alice", ScramMechanism::Sha512, 4096, "alice-secret")
        .await
        .expect("create alice");
    let users = client.describe_user_scram_credentials(None).await.unwrap();
    let listed: Vec<(String, Option<ScramMechanism>, i32)> = users
        .iter()
        .flat_map(|u| {
            u.credentials
                .iter()
                .map(|c| (u.user.clone(), c.mechanism, c.iterations))
        })
        .collect();
    assert_eq!(
        listed,
        vec![
            ("admin".to_owned(), Some(ScramMechanism::Sha512), 4096),
            ("alice".to_owned(), Some(ScramMechanism::Sha512), 4096),
        ]
    );
    let alice = Client::connect(sasl_ssl(
        &broker,
        &pki,
        SaslMechanism::Scram(ScramMechanism::Sha512),
        "alice",
        "alice-secret",
    ))
    .await
    .expect("alice logs in with SCRAM-SHA-512");
    // PLAIN checks the password against the same salted credential.
    Client::connect(sasl_ssl(
        &broker,
        &pki,
        SaslMechanism::Plain,
        "alice",
        "alice-secret",
    ))
    .await
    .expect("alice logs in with PLAIN");

    // Alice is no super user and has no ACL: describing ACLs is refused by name.
    let refused = alice
        .describe_acls(&AclBindingFilter::any())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(31), "{refused}");
    assert!(
        refused.to_string().contains("CLUSTER_AUTHORIZATION_FAILED"),
        "{refused}"
    );

    // An ACL: added, listed, removed.
    let results = client.create_acls(&[alice_reads_orders()]).await.unwrap();
    assert_eq!(results.len(), 1);
    assert!(results[0].1.is_ok(), "{:?}", results[0].1);
    assert_eq!(
        client
            .describe_acls(&principal_filter("User:alice"))
            .await
            .unwrap(),
        vec![alice_reads_orders()]
    );
    assert_eq!(
        client
            .describe_acls(&principal_filter("User:bob"))
            .await
            .unwrap(),
        vec![]
    );
    let removed = client
        .delete_acls(&[AclBindingFilter {
            resource_type: ResourceType::Topic,
            resource_name: Some("orders".into()),
            pattern_type: PatternType::Literal,
            ..AclBindingFilter::any()
        }])
        .await
        .unwrap();
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].as_ref().unwrap(), &vec![alice_reads_orders()]);
    assert_eq!(
        client
            .describe_acls(&principal_filter("User:alice"))
            .await
            .unwrap(),
        vec![]
    );

    // A wrong password: the broker's SASL_AUTHENTICATION_FAILED and message, not retried.
    let started = Instant::now();
    let err = Client::connect(sasl_ssl(
        &broker,
        &pki,
        SaslMechanism::Scram(ScramMechanism::Sha512),
        "alice",
        "wrong",
    ))
    .await
    .unwrap_err();
    match &err {
        ClientError::Authentication { message, .. } => {
            assert!(message.contains("SASL_AUTHENTICATION_FAILED"), "{err}");
            assert!(
                message.contains("invalid credentials with SASL mechanism SCRAM-SHA-512"),
                "{err}"
            );
        }
        other => panic!("expected an authentication error, got {other}"),
    }
    assert!(!err.is_retriable());
    assert!(started.elapsed() < Duration::from_secs(5), "{err}");
    // SCRAM-SHA-256: alice has no credential for it.
    let err = Client::connect(sasl_ssl(
        &broker,
        &pki,
        SaslMechanism::Scram(ScramMechanism::Sha256),
        "alice",
        "alice-secret",
    ))
    .await
    .unwrap_err();
    assert!(matches!(err, ClientError::Authentication { .. }), "{err}");

    // A broker certificate the client does not trust.
    let mut untrusting = admin(&broker, &pki);
    untrusting.security.tls.ca_location = Some(pki.other_ca.clone());
    let err = Client::connect(untrusting).await.unwrap_err();
    assert!(matches!(err, ClientError::Tls { .. }), "{err}");
    assert!(err.to_string().contains("certificate"), "{err}");

    // Mutual TLS on the SSL listener: with the client certificate, and without.
    let mut mutual = ClientConfig::new(&broker.ssl.to_string()).unwrap();
    mutual.request_timeout = Duration::from_secs(10);
    mutual.retries = 0;
    mutual.security = SecurityConfig {
        protocol: SecurityProtocol::Ssl,
        sasl: None,
        tls: TlsSettings {
            ca_location: Some(pki.ca.clone()),
            certificate_location: Some(pki.client_cert.clone()),
            key_location: Some(pki.client_key.clone()),
        },
    };
    let client_cert = Client::connect(mutual.clone())
        .await
        .expect("the client certificate is accepted");
    let metadata = client_cert.metadata(Some(&[])).await.unwrap();
    assert_eq!(
        metadata.brokers[0].address(),
        broker.ssl.to_string(),
        "the SSL listener's address is advertised to its clients"
    );
    mutual.security.tls.certificate_location = None;
    mutual.security.tls.key_location = None;
    assert!(
        Client::connect(mutual).await.is_err(),
        "no client certificate on an SSL listener with a client CA"
    );

    drop((client, alice, client_cert));
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toolbox_binary_with_command_config() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(dir.path());
    let broker = SecureBroker::start(&dir.path().join("data"), &pki).await;
    let client = wait_for_admin(&broker, &pki).await;
    let properties = |user: &str, password: &str| {
        let path = dir.path().join(format!("{user}-{password}.properties"));
        std::fs::write(
            &path,
            format!(
                "# {user} over SASL_SSL\nsecurity.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n\
                 sasl.username={user}\nsasl.password={password}\nssl.ca.location={}\n",
                pki.ca.display()
            ),
        )
        .unwrap();
        path.display().to_string()
    };
    let admin_config = properties("admin", ADMIN_PASSWORD);
    let bootstrap = broker.sasl_ssl.to_string();
    let run = |args: &[&str], stdin: &str| {
        let mut argv: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        argv.extend(["--bootstrap-server".to_owned(), bootstrap.clone()]);
        argv.extend(["--request-timeout-ms".to_owned(), "10000".to_owned()]);
        let stdin = stdin.to_owned();
        async move {
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            ironlog(&argv, &stdin).await
        }
    };

    // users create (password from stdin), list, and the new user logs in.
    let (code, out, err) = run(
        &[
            "users",
            "create",
            "carol",
            "--mechanism",
            "SCRAM-SHA-512",
            "--iterations",
            "8192",
            "--command-config",
            &admin_config,
        ],
        "carol-secret\n",
    )
    .await;
    assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
    assert!(
        out.contains("credential of carol (8192 iterations)"),
        "{out}"
    );
    let (code, out, err) = run(&["users", "list", "--command-config", &admin_config], "").await;
    assert_eq!(code, Some(0), "stderr: {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "USER   MECHANISM      ITERATIONS", "{out}");
    assert!(lines.contains(&"admin  SCRAM-SHA-512  4096"), "{out}");
    assert!(lines.contains(&"carol  SCRAM-SHA-512  8192"), "{out}");
    let carol_config = properties("carol", "carol-secret");
    // Carol is authenticated but not authorized: the broker's error by its Kafka name.
    let (code, _, err) = run(&["acls", "list", "--command-config", &carol_config], "").await;
    assert_eq!(code, Some(1), "stderr: {err}");
    assert!(err.contains("CLUSTER_AUTHORIZATION_FAILED"), "{err}");

    // acls add, list, remove.
    let (code, out, err) = run(
        &[
            "acls",
            "add",
            "--allow-principal",
            "User:carol",
            "--operation",
            "Read",
            "--operation",
            "Describe",
            "--group",
            "billing",
            "--resource-pattern-type",
            "prefixed",
            "--command-config",
            &admin_config,
        ],
        "",
    )
    .await;
    assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
    assert!(out.starts_with("Created 2 ACL(s):"), "{out}");
    let (code, out, err) = run(
        &[
            "acls",
            "list",
            "--principal",
            "User:carol",
            "--command-config",
            &admin_config,
        ],
        "",
    )
    .await;
    assert_eq!(code, Some(0), "stderr: {err}");
    assert_eq!(
        out,
        "RESOURCE TYPE  NAME     PATTERN   PRINCIPAL   HOST  OPERATION  PERMISSION\n\
         GROUP          billing  PREFIXED  User:carol  *     READ       ALLOW\n\
         GROUP          billing  PREFIXED  User:carol  *     DESCRIBE   ALLOW\n"
    );
    let (code, out, err) = run(
        &[
            "acls",
            "remove",
            "--allow-principal",
            "User:carol",
            "--operation",
            "Describe",
            "--group",
            "billing",
            "--resource-pattern-type",
            "prefixed",
            "--command-config",
            &admin_config,
        ],
        "",
    )
    .await;
    assert_eq!(code, Some(0), "stderr: {err}");
    assert!(out.starts_with("Removed 1 ACL(s):"), "{out}");
    assert!(out.contains("DESCRIBE"), "{out}");
    let left = client
        .describe_acls(&principal_filter("User:carol"))
        .await
        .unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].operation, AclOperation::Read);

    // users delete: carol cannot log in any more.
    let (code, _, err) = run(
        &[
            "users",
            "delete",
            "carol",
            "--mechanism",
            "SCRAM-SHA-512",
            "--command-config",
            &admin_config,
        ],
        "",
    )
    .await;
    assert_eq!(code, Some(0), "stderr: {err}");
    let (code, _, err) = run(
        &["cluster", "describe", "--command-config", &carol_config],
        "",
    )
    .await;
    assert_eq!(code, Some(1), "stderr: {err}");
    assert!(err.contains("SASL_AUTHENTICATION_FAILED"), "{err}");

    // A wrong password and a refused properties file, for any tool.
    let wrong = properties("admin", "not-the-password");
    let (code, _, err) = run(&["topics", "list", "--command-config", &wrong], "").await;
    assert_eq!(code, Some(1), "stderr: {err}");
    assert!(err.contains("SASL authentication with broker"), "{err}");
    assert!(err.contains("SASL_AUTHENTICATION_FAILED"), "{err}");
    let bad = dir.path().join("bad.properties");
    std::fs::write(
        &bad,
        "security.protocol=SASL_SSL\nsasl.kerberos.service.name=kafka\n",
    )
    .unwrap();
    let (code, _, err) = run(
        &[
            "groups",
            "list",
            "--command-config",
            &bad.display().to_string(),
        ],
        "",
    )
    .await;
    assert_eq!(code, Some(1), "stderr: {err}");
    assert!(
        err.contains("unknown property sasl.kerberos.service.name"),
        "{err}"
    );

    drop(client);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiring_sasl_sessions_are_renewed_by_reconnecting() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(dir.path());
    // KIP-368: a session of 400 ms; a request on an expired session closes the connection.
    let broker = SecureBroker::start_with(&dir.path().join("data"), &pki, |config| {
        config.security.connections_max_reauth_ms = 400;
    })
    .await;
    let client = wait_for_admin(&broker, &pki).await;
    for _ in 0..3 {
        let users = client
            .describe_user_scram_credentials(None)
            .await
            .expect("requests go on across session ends");
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].user, "admin");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(client);
    broker.stop().await;
}
