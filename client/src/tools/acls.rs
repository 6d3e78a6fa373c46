//! `ironlog acls`: list, add and remove ACLs (like `kafka-acls.sh`).
//!
//! The flags map to Kafka's ACL codes in pure functions ([`list_filter`],
//! [`add_bindings`], [`remove_filters`]) so the mapping is tested without a broker.
//! `add` creates one binding per principal and operation; `remove` deletes what matches
//! one filter per principal and operation (any principal, any operation when none given).

use crate::acl::{
    AclBinding, AclBindingFilter, AclOperation, AclPermission, PatternType, ResourceType,
    CLUSTER_RESOURCE_NAME,
};
use crate::tools::{format_table, ConnectionArgs};

#[derive(clap::Args, Debug)]
pub struct AclsArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,

    #[command(subcommand)]
    pub command: AclsCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum AclsCommand {
    /// List ACLs, all or those matching the filters.
    List {
        /// Only ACLs of this principal (User:alice).
        #[arg(long)]
        principal: Option<String>,
        #[command(flatten)]
        resource: ResourceArgs,
        /// literal, prefixed, any (default) or match (every ACL that applies to the named
        /// resource: literal, wildcard and prefixed ones).
        #[arg(long, value_parser = parse_pattern_type)]
        resource_pattern_type: Option<PatternType>,
    },
    /// Add ACLs: each principal gets each operation on the resource.
    Add(AclChangeArgs),
    /// Remove the ACLs matching the filters (on one resource).
    Remove(AclChangeArgs),
}

/// The resource an ACL is about: one of --topic, --group, --cluster, --transactional-id.
#[derive(clap::Args, Debug, Clone, Default, PartialEq, Eq)]
#[group(id = "resource", multiple = false)]
pub struct ResourceArgs {
    /// A topic (`*` for every topic).
    #[arg(long)]
    pub topic: Option<String>,
    /// A consumer group (`*` for every group).
    #[arg(long)]
    pub group: Option<String>,
    /// The cluster itself.
    #[arg(long)]
    pub cluster: bool,
    /// A transactional id (`*` for every one).
    #[arg(long)]
    pub transactional_id: Option<String>,
}

/// The flags of `add` and `remove`.
#[derive(clap::Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct AclChangeArgs {
    /// A principal to allow (User:alice, User:* for everyone); repeatable.
    #[arg(long, value_name = "PRINCIPAL")]
    pub allow_principal: Vec<String>,
    /// A principal to deny; repeatable.
    #[arg(long, value_name = "PRINCIPAL")]
    pub deny_principal: Vec<String>,
    /// Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs,
    /// AlterConfigs, IdempotentWrite or All; repeatable.
    #[arg(long = "operation", value_name = "OPERATION", value_parser = parse_operation)]
    pub operations: Vec<AclOperation>,
    #[command(flatten)]
    pub resource: ResourceArgs,
    /// literal (default) or prefixed; remove also takes any and match.
    #[arg(long, value_parser = parse_pattern_type)]
    pub resource_pattern_type: Option<PatternType>,
    /// The client host the ACL is for: add's default is `*` (every host), remove's any
    /// host.
    #[arg(long)]
    pub host: Option<String>,
}

/// Parses an operation name (`Read`, `READ`, `ClusterAction`, `cluster-action`, ...).
pub fn parse_operation(name: &str) -> Result<AclOperation, String> {
    AclOperation::parse(name).ok_or_else(|| {
        format!(
            "unknown operation {name:?} (one of {})",
            AclOperation::ALL
                .iter()
                .filter(|o| **o != AclOperation::Any)
                .map(|o| o.name())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// Parses a pattern type name: literal, prefixed, any or match.
pub fn parse_pattern_type(name: &str) -> Result<PatternType, String> {
    PatternType::parse(name).ok_or_else(|| {
        format!("unknown resource pattern type {name:?} (literal, prefixed, any or match)")
    })
}

/// The resource the flags name: its type and name.
pub fn resource(args: &ResourceArgs) -> Option<(ResourceType, String)> {
    if let Some(topic) = &args.topic {
        Some((ResourceType::Topic, topic.clone()))
    } else if let Some(group) = &args.group {
        Some((ResourceType::Group, group.clone()))
    } else if args.cluster {
        Some((ResourceType::Cluster, CLUSTER_RESOURCE_NAME.to_owned()))
    } else {
        args.transactional_id
            .as_ref()
            .map(|id| (ResourceType::TransactionalId, id.clone()))
    }
}

/// A principal must read `Type:name`.
fn check_principal(principal: &str) -> Result<(), String> {
    match principal.split_once(':') {
        Some((kind, name)) if !kind.is_empty() && !name.is_empty() => Ok(()),
        _ => Err(format!(
            "principal {principal:?} is not Type:name (User:alice, User:*)"
        )),
    }
}

/// The filter of `list`.
pub fn list_filter(
    principal: Option<&str>,
    resource_args: &ResourceArgs,
    pattern: Option<PatternType>,
) -> Result<AclBindingFilter, String> {
    if let Some(p) = principal {
        check_principal(p)?;
    }
    let (resource_type, resource_name) = match resource(resource_args) {
        Some((kind, name)) => (kind, Some(name)),
        None => (ResourceType::Any, None),
    };
    Ok(AclBindingFilter {
        resource_type,
        resource_name,
        pattern_type: pattern.unwrap_or(PatternType::Any),
        principal: principal.map(str::to_owned),
        host: None,
        operation: AclOperation::Any,
        permission: AclPermission::Any,
    })
}

/// The principals of `add`/`remove` with their permission.
fn principals(args: &AclChangeArgs) -> Result<Vec<(AclPermission, String)>, String> {
    let mut out = Vec::new();
    for (permission, list) in [
        (AclPermission::Allow, &args.allow_principal),
        (AclPermission::Deny, &args.deny_principal),
    ] {
        for principal in list {
            check_principal(principal)?;
            out.push((permission, principal.clone()));
        }
    }
    Ok(out)
}

fn required_resource(args: &AclChangeArgs) -> Result<(ResourceType, String), String> {
    resource(&args.resource).ok_or_else(|| {
        "name the resource: --topic, --group, --cluster or --transactional-id".to_owned()
    })
}

/// The bindings `add` creates: every principal × every operation, on the resource.
pub fn add_bindings(args: &AclChangeArgs) -> Result<Vec<AclBinding>, String> {
    let (resource_type, resource_name) = required_resource(args)?;
    let principals = principals(args)?;
    if principals.is_empty() {
        return Err("give --allow-principal or --deny-principal".into());
    }
    if args.operations.is_empty() {
        return Err("give at least one --operation".into());
    }
    if let Some(op) = args
        .operations
        .iter()
        .find(|o| matches!(o, AclOperation::Any | AclOperation::Unknown))
    {
        return Err(format!(
            "--operation {op} matches ACLs; it cannot be granted"
        ));
    }
    let pattern_type = args.resource_pattern_type.unwrap_or(PatternType::Literal);
    if !matches!(pattern_type, PatternType::Literal | PatternType::Prefixed) {
        return Err(format!(
            "--resource-pattern-type {} only filters; add takes literal or prefixed",
            pattern_type.name().to_ascii_lowercase()
        ));
    }
    let host = args.host.clone().unwrap_or_else(|| "*".to_owned());
    let mut bindings = Vec::new();
    for (permission, principal) in &principals {
        for operation in &args.operations {
            bindings.push(AclBinding {
                resource_type,
                resource_name: resource_name.clone(),
                pattern_type,
                principal: principal.clone(),
                host: host.clone(),
                operation: *operation,
                permission: *permission,
            });
        }
    }
    Ok(bindings)
}

/// The filters `remove` deletes with: every principal × every operation on the resource;
/// no principal means any principal (and permission), no operation any operation.
pub fn remove_filters(args: &AclChangeArgs) -> Result<Vec<AclBindingFilter>, String> {
    let (resource_type, resource_name) = required_resource(args)?;
    let principals: Vec<(AclPermission, Option<String>)> = {
        let named = principals(args)?;
        if named.is_empty() {
            vec![(AclPermission::Any, None)]
        } else {
            named.into_iter().map(|(perm, p)| (perm, Some(p))).collect()
        }
    };
    let operations = if args.operations.is_empty() {
        vec![AclOperation::Any]
    } else {
        args.operations.clone()
    };
    let pattern_type = args.resource_pattern_type.unwrap_or(PatternType::Literal);
    let mut filters = Vec::new();
    for (permission, principal) in &principals {
        for operation in &operations {
            filters.push(AclBindingFilter {
                resource_type,
                resource_name: Some(resource_name.clone()),
                pattern_type,
                principal: principal.clone(),
                host: args.host.clone(),
                operation: *operation,
                permission: *permission,
            });
        }
    }
    Ok(filters)
}

/// The ACL table, one row per binding.
pub fn format_acls(bindings: &[AclBinding]) -> String {
    let rows: Vec<Vec<String>> = bindings
        .iter()
        .map(|b| {
            vec![
                b.resource_type.name().to_owned(),
                b.resource_name.clone(),
                b.pattern_type.name().to_owned(),
                b.principal.clone(),
                b.host.clone(),
                b.operation.name().to_owned(),
                b.permission.name().to_owned(),
            ]
        })
        .collect();
    format_table(
        &[
            "RESOURCE TYPE",
            "NAME",
            "PATTERN",
            "PRINCIPAL",
            "HOST",
            "OPERATION",
            "PERMISSION",
        ],
        &rows,
    )
}

/// Runs `ironlog acls`.
pub async fn run(args: AclsArgs) -> anyhow::Result<()> {
    // Flags are checked before connecting.
    match args.command {
        AclsCommand::List {
            principal,
            resource,
            resource_pattern_type,
        } => {
            let filter = list_filter(principal.as_deref(), &resource, resource_pattern_type)
                .map_err(anyhow::Error::msg)?;
            let client = args.connection.connect().await?;
            let bindings = client.describe_acls(&filter).await?;
            if bindings.is_empty() {
                eprintln!("No ACLs match.");
            } else {
                print!("{}", format_acls(&bindings));
            }
        }
        AclsCommand::Add(change) => {
            let bindings = add_bindings(&change).map_err(anyhow::Error::msg)?;
            let client = args.connection.connect().await?;
            let results = client.create_acls(&bindings).await?;
            let (created, failed): (Vec<_>, Vec<_>) =
                results.into_iter().partition(|(_, r)| r.is_ok());
            let created: Vec<AclBinding> = created.into_iter().map(|(b, _)| b).collect();
            if !created.is_empty() {
                println!("Created {} ACL(s):", created.len());
                print!("{}", format_acls(&created));
            }
            if !failed.is_empty() {
                let lines: Vec<String> = failed
                    .into_iter()
                    .filter_map(|(_, r)| r.err())
                    .map(|e| format!("  {e}"))
                    .collect();
                anyhow::bail!(
                    "{} of {} ACL(s) not created:\n{}",
                    lines.len(),
                    bindings.len(),
                    lines.join("\n")
                );
            }
        }
        AclsCommand::Remove(change) => {
            let filters = remove_filters(&change).map_err(anyhow::Error::msg)?;
            let client = args.connection.connect().await?;
            let results = client.delete_acls(&filters).await?;
            let mut removed = Vec::new();
            let mut errors = Vec::new();
            for result in results {
                match result {
                    Ok(bindings) => removed.extend(bindings),
                    Err(e) => errors.push(format!("  {e}")),
                }
            }
            removed.sort();
            removed.dedup();
            if removed.is_empty() {
                eprintln!("No ACLs matched; nothing removed.");
            } else {
                println!("Removed {} ACL(s):", removed.len());
                print!("{}", format_acls(&removed));
            }
            if !errors.is_empty() {
                anyhow::bail!("ACLs not removed:\n{}", errors.join("\n"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::parse_args;

    fn change(argv: &[&str]) -> AclChangeArgs {
        let args: AclsArgs = parse_args(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        match args.command {
            AclsCommand::Add(c) | AclsCommand::Remove(c) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn add_maps_flags_to_kafka_codes() {
        let args = change(&[
            "add",
            "--allow-principal",
            "User:alice",
            "--deny-principal",
            "User:mallory",
            "--operation",
            "Read",
            "--operation",
            "describe-configs",
            "--topic",
            "orders",
            "--resource-pattern-type",
            "prefixed",
        ]);
        let bindings = add_bindings(&args).unwrap();
        let codes: Vec<(i8, &str, i8, &str, &str, i8, i8)> = bindings
            .iter()
            .map(|b| {
                (
                    b.resource_type.code(),
                    b.resource_name.as_str(),
                    b.pattern_type.code(),
                    b.principal.as_str(),
                    b.host.as_str(),
                    b.operation.code(),
                    b.permission.code(),
                )
            })
            .collect();
        assert_eq!(
            codes,
            vec![
                (2, "orders", 4, "User:alice", "*", 3, 3),
                (2, "orders", 4, "User:alice", "*", 10, 3),
                (2, "orders", 4, "User:mallory", "*", 3, 2),
                (2, "orders", 4, "User:mallory", "*", 10, 2),
            ]
        );
    }

    #[test]
    fn resources_map_to_their_types() {
        let one = |flags: &[&str]| {
            let mut argv = vec![
                "add",
                "--allow-principal",
                "User:a",
                "--operation",
                "All",
                "--host",
                "10.0.0.1",
            ];
            argv.extend_from_slice(flags);
            let b = add_bindings(&change(&argv)).unwrap().remove(0);
            assert_eq!(b.operation.code(), 2);
            assert_eq!(b.host, "10.0.0.1");
            assert_eq!(b.pattern_type.code(), 3, "literal by default");
            (b.resource_type.code(), b.resource_name)
        };
        assert_eq!(one(&["--topic", "*"]), (2, "*".to_owned()));
        assert_eq!(one(&["--group", "billing"]), (3, "billing".to_owned()));
        assert_eq!(one(&["--cluster"]), (4, "kafka-cluster".to_owned()));
        assert_eq!(one(&["--transactional-id", "tx"]), (5, "tx".to_owned()));
    }

    #[test]
    fn operations_parse_by_kafka_and_java_names() {
        for (name, code) in [
            ("Read", 3),
            ("WRITE", 4),
            ("create", 5),
            ("Delete", 6),
            ("Alter", 7),
            ("Describe", 8),
            ("ClusterAction", 9),
            ("DescribeConfigs", 10),
            ("ALTER_CONFIGS", 11),
            ("IdempotentWrite", 12),
            ("All", 2),
        ] {
            assert_eq!(parse_operation(name).unwrap().code(), code, "{name}");
        }
        let err = parse_operation("Frob").unwrap_err();
        assert!(err.contains("unknown operation \"Frob\""), "{err}");
        assert!(err.contains("IDEMPOTENT_WRITE"), "{err}");
    }

    #[test]
    fn add_refuses_what_cannot_be_a_binding() {
        let err =
            add_bindings(&change(&["add", "--operation", "Read", "--topic", "t"])).unwrap_err();
        assert!(err.contains("--allow-principal"), "{err}");
        let err = add_bindings(&change(&[
            "add",
            "--allow-principal",
            "User:a",
            "--topic",
            "t",
        ]))
        .unwrap_err();
        assert!(err.contains("--operation"), "{err}");
        let err = add_bindings(&change(&[
            "add",
            "--allow-principal",
            "User:a",
            "--operation",
            "Read",
        ]))
        .unwrap_err();
        assert!(err.contains("--topic, --group, --cluster"), "{err}");
        let err = add_bindings(&change(&[
            "add",
            "--allow-principal",
            "alice",
            "--operation",
            "Read",
            "--topic",
            "t",
        ]))
        .unwrap_err();
        assert!(err.contains("not Type:name"), "{err}");
        let err = add_bindings(&change(&[
            "add",
            "--allow-principal",
            "User:a",
            "--operation",
            "Any",
            "--topic",
            "t",
        ]))
        .unwrap_err();
        assert!(err.contains("cannot be granted"), "{err}");
        let err = add_bindings(&change(&[
            "add",
            "--allow-principal",
            "User:a",
            "--operation",
            "Read",
            "--topic",
            "t",
            "--resource-pattern-type",
            "match",
        ]))
        .unwrap_err();
        assert!(err.contains("only filters"), "{err}");
        // Two resources at once is a usage error.
        assert!(parse_args::<AclsArgs>(&["list", "--topic", "t", "--cluster"]).is_err());
    }

    #[test]
    fn remove_defaults_to_any_principal_and_operation() {
        let filters = remove_filters(&change(&["remove", "--group", "g"])).unwrap();
        assert_eq!(filters.len(), 1);
        let f = &filters[0];
        assert_eq!(f.resource_type.code(), 3);
        assert_eq!(f.resource_name.as_deref(), Some("g"));
        assert_eq!(f.pattern_type.code(), 3);
        assert_eq!(f.principal, None);
        assert_eq!(f.host, None);
        assert_eq!(f.operation.code(), 1);
        assert_eq!(f.permission.code(), 1);
        let filters = remove_filters(&change(&[
            "remove",
            "--deny-principal",
            "User:b",
            "--operation",
            "Write",
            "--topic",
            "t",
            "--resource-pattern-type",
            "any",
            "--host",
            "1.2.3.4",
        ]))
        .unwrap();
        assert_eq!(filters.len(), 1);
        let f = &filters[0];
        assert_eq!(f.pattern_type.code(), 1);
        assert_eq!(f.principal.as_deref(), Some("User:b"));
        assert_eq!(f.permission.code(), 2);
        assert_eq!(f.operation.code(), 4);
        assert_eq!(f.host.as_deref(), Some("1.2.3.4"));
    }

    #[test]
    fn list_filter_maps_flags() {
        let f = list_filter(None, &ResourceArgs::default(), None).unwrap();
        assert_eq!(f, AclBindingFilter::any());
        let f = list_filter(
            Some("User:alice"),
            &ResourceArgs {
                topic: Some("orders".into()),
                ..ResourceArgs::default()
            },
            Some(PatternType::Match),
        )
        .unwrap();
        assert_eq!(f.resource_type.code(), 2);
        assert_eq!(f.resource_name.as_deref(), Some("orders"));
        assert_eq!(f.pattern_type.code(), 2);
        assert_eq!(f.principal.as_deref(), Some("User:alice"));
        assert_eq!(f.operation.code(), 1);
        assert_eq!(f.permission.code(), 1);
        let args: AclsArgs =
            parse_args(&["list", "--cluster", "--resource-pattern-type", "LITERAL"]).unwrap();
        match args.command {
            AclsCommand::List {
                resource,
                resource_pattern_type,
                ..
            } => {
                let f = list_filter(None, &resource, resource_pattern_type).unwrap();
                assert_eq!(f.resource_type.code(), 4);
                assert_eq!(f.resource_name.as_deref(), Some("kafka-cluster"));
                assert_eq!(f.pattern_type.code(), 3);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn acl_table_lists_every_field() {
        let table = format_acls(&[AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: "orders".into(),
            pattern_type: PatternType::Literal,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: AclOperation::Read,
            permission: AclPermission::Allow,
        }]);
        assert_eq!(
            table,
            "RESOURCE TYPE  NAME    PATTERN  PRINCIPAL   HOST  OPERATION  PERMISSION\n\
             TOPIC          orders  LITERAL  User:alice  *     READ       ALLOW\n"
        );
    }
}
