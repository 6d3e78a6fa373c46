//! ACLs: DescribeAcls, CreateAcls and DeleteAcls (v1+, which know pattern types), with
//! Kafka's wire codes as typed values.
//!
//! Kafka's ACL enums share one numbering scheme: 0 is UNKNOWN (never valid in a request),
//! 1 is ANY (a filter matching every value), the rest are values a binding holds; pattern
//! types add MATCH (2), a filter for every binding that applies to a name (LITERAL with the
//! name or `*`, PREFIXED with a prefix of it).

use std::fmt;

use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use kafka_protocol::protocol::StrBytes;

use crate::client::{Client, Target};
use crate::error::{check, ClientError};

/// The name a CLUSTER resource always has.
pub const CLUSTER_RESOURCE_NAME: &str = "kafka-cluster";

/// Generates an ACL enum with its wire codes and Kafka names; `UNKNOWN` stands for codes
/// a broker sends that this client does not know.
macro_rules! acl_enum {
    ($(#[$meta:meta])* $ty:ident { $($variant:ident = $code:literal, $name:literal;)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $ty {
            /// A code this client does not know (0 on the wire is UNKNOWN too).
            Unknown,
            $($variant,)+
        }

        impl $ty {
            /// Every known value.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// Kafka's wire code.
            pub fn code(self) -> i8 {
                match self {
                    $ty::Unknown => 0,
                    $($ty::$variant => $code,)+
                }
            }

            /// The value of a wire code; [`Self::Unknown`] for codes not known.
            pub fn from_code(code: i8) -> $ty {
                match code {
                    $($code => $ty::$variant,)+
                    _ => $ty::Unknown,
                }
            }

            /// Kafka's name (`TOPIC`, `READ`, `ALLOW`, ...).
            pub fn name(self) -> &'static str {
                match self {
                    $ty::Unknown => "UNKNOWN",
                    $($ty::$variant => $name,)+
                }
            }

            /// Parses Kafka's name or its camel-case form, case-insensitively and ignoring
            /// `_` and `-`: `CLUSTER_ACTION`, `ClusterAction` and `cluster-action` alike.
            pub fn parse(name: &str) -> Option<$ty> {
                let wanted = normalize(name);
                Self::ALL.iter().copied().find(|v| normalize(v.name()) == wanted)
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

fn normalize(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '_' && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

acl_enum!(
    /// Kafka's `ResourceType`.
    ResourceType {
        Any = 1, "ANY";
        Topic = 2, "TOPIC";
        Group = 3, "GROUP";
        Cluster = 4, "CLUSTER";
        TransactionalId = 5, "TRANSACTIONAL_ID";
        DelegationToken = 6, "DELEGATION_TOKEN";
        User = 7, "USER";
    }
);

acl_enum!(
    /// Kafka's `PatternType`: LITERAL and PREFIXED for bindings, ANY and MATCH in filters.
    PatternType {
        Any = 1, "ANY";
        Match = 2, "MATCH";
        Literal = 3, "LITERAL";
        Prefixed = 4, "PREFIXED";
    }
);

acl_enum!(
    /// Kafka's `AclOperation`.
    AclOperation {
        Any = 1, "ANY";
        All = 2, "ALL";
        Read = 3, "READ";
        Write = 4, "WRITE";
        Create = 5, "CREATE";
        Delete = 6, "DELETE";
        Alter = 7, "ALTER";
        Describe = 8, "DESCRIBE";
        ClusterAction = 9, "CLUSTER_ACTION";
        DescribeConfigs = 10, "DESCRIBE_CONFIGS";
        AlterConfigs = 11, "ALTER_CONFIGS";
        IdempotentWrite = 12, "IDEMPOTENT_WRITE";
        CreateTokens = 13, "CREATE_TOKENS";
        DescribeTokens = 14, "DESCRIBE_TOKENS";
    }
);

acl_enum!(
    /// Kafka's `AclPermissionType`.
    AclPermission {
        Any = 1, "ANY";
        Deny = 2, "DENY";
        Allow = 3, "ALLOW";
    }
);

/// One ACL: `principal` from `host` is allowed or denied `operation` on the resources of
/// `resource_type` that `resource_name` names by `pattern_type`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    pub resource_name: String,
    pub pattern_type: PatternType,
    /// `Type:name`, as `User:alice`; `User:*` for every principal.
    pub principal: String,
    /// A client address, or `*` for every host.
    pub host: String,
    pub operation: AclOperation,
    pub permission: AclPermission,
}

/// Selects ACL bindings: `None` and the ANY codes match everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclBindingFilter {
    pub resource_type: ResourceType,
    pub resource_name: Option<String>,
    pub pattern_type: PatternType,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: AclOperation,
    pub permission: AclPermission,
}

impl AclBindingFilter {
    /// Matches every binding.
    pub fn any() -> AclBindingFilter {
        AclBindingFilter {
            resource_type: ResourceType::Any,
            resource_name: None,
            pattern_type: PatternType::Any,
            principal: None,
            host: None,
            operation: AclOperation::Any,
            permission: AclPermission::Any,
        }
    }
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

impl Client {
    /// The ACL bindings matching `filter`.
    ///
    /// # Errors
    /// [`ClientError::Kafka`] when the broker refuses the request, e.g.
    /// CLUSTER_AUTHORIZATION_FAILED or SECURITY_DISABLED (no authorizer).
    pub async fn describe_acls(
        &self,
        filter: &AclBindingFilter,
    ) -> Result<Vec<AclBinding>, ClientError> {
        let request = DescribeAclsRequest::default()
            .with_resource_type_filter(filter.resource_type.code())
            .with_resource_name_filter(filter.resource_name.as_deref().map(str_bytes))
            .with_pattern_type_filter(filter.pattern_type.code())
            .with_principal_filter(filter.principal.as_deref().map(str_bytes))
            .with_host_filter(filter.host.as_deref().map(str_bytes))
            .with_operation(filter.operation.code())
            .with_permission_type(filter.permission.code());
        let response = self
            .with_retries(None, || self.send(Target::Any, &request))
            .await?;
        check(
            response.error_code,
            response.error_message.as_deref(),
            || "describe ACLs".to_owned(),
        )?;
        let mut bindings = Vec::new();
        for resource in response.resources {
            for acl in resource.acls {
                bindings.push(AclBinding {
                    resource_type: ResourceType::from_code(resource.resource_type),
                    resource_name: resource.resource_name.to_string(),
                    pattern_type: PatternType::from_code(resource.pattern_type),
                    principal: acl.principal.to_string(),
                    host: acl.host.to_string(),
                    operation: AclOperation::from_code(acl.operation),
                    permission: AclPermission::from_code(acl.permission_type),
                });
            }
        }
        bindings.sort();
        Ok(bindings)
    }

    /// Creates ACL bindings. The outer error is for the request as a whole; each binding
    /// has its own result, in the order given.
    pub async fn create_acls(
        &self,
        bindings: &[AclBinding],
    ) -> Result<Vec<(AclBinding, Result<(), ClientError>)>, ClientError> {
        let request = CreateAclsRequest::default().with_creations(
            bindings
                .iter()
                .map(|b| {
                    AclCreation::default()
                        .with_resource_type(b.resource_type.code())
                        .with_resource_name(str_bytes(&b.resource_name))
                        .with_resource_pattern_type(b.pattern_type.code())
                        .with_principal(str_bytes(&b.principal))
                        .with_host(str_bytes(&b.host))
                        .with_operation(b.operation.code())
                        .with_permission_type(b.permission.code())
                })
                .collect(),
        );
        let response = self
            .with_retries(None, || self.send(Target::Controller, &request))
            .await?;
        if response.results.len() != bindings.len() {
            return Err(ClientError::protocol(
                "CreateAcls response",
                format!(
                    "{} results for {} creations",
                    response.results.len(),
                    bindings.len()
                ),
            ));
        }
        Ok(bindings
            .iter()
            .zip(response.results)
            .map(|(binding, result)| {
                let outcome = check(result.error_code, result.error_message.as_deref(), || {
                    format!("create ACL {}", describe_binding(binding))
                });
                (binding.clone(), outcome)
            })
            .collect())
    }

    /// Deletes the ACL bindings matching each filter. The outer error is for the request as
    /// a whole; each filter has its own result: the bindings it deleted.
    pub async fn delete_acls(
        &self,
        filters: &[AclBindingFilter],
    ) -> Result<Vec<Result<Vec<AclBinding>, ClientError>>, ClientError> {
        let request = DeleteAclsRequest::default().with_filters(
            filters
                .iter()
                .map(|f| {
                    DeleteAclsFilter::default()
                        .with_resource_type_filter(f.resource_type.code())
                        .with_resource_name_filter(f.resource_name.as_deref().map(str_bytes))
                        .with_pattern_type_filter(f.pattern_type.code())
                        .with_principal_filter(f.principal.as_deref().map(str_bytes))
                        .with_host_filter(f.host.as_deref().map(str_bytes))
                        .with_operation(f.operation.code())
                        .with_permission_type(f.permission.code())
                })
                .collect(),
        );
        let response = self
            .with_retries(None, || self.send(Target::Controller, &request))
            .await?;
        if response.filter_results.len() != filters.len() {
            return Err(ClientError::protocol(
                "DeleteAcls response",
                format!(
                    "{} results for {} filters",
                    response.filter_results.len(),
                    filters.len()
                ),
            ));
        }
        Ok(response
            .filter_results
            .into_iter()
            .map(|result| {
                check(result.error_code, result.error_message.as_deref(), || {
                    "delete ACLs".to_owned()
                })?;
                let mut deleted = Vec::new();
                for acl in result.matching_acls {
                    let binding = AclBinding {
                        resource_type: ResourceType::from_code(acl.resource_type),
                        resource_name: acl.resource_name.to_string(),
                        pattern_type: PatternType::from_code(acl.pattern_type),
                        principal: acl.principal.to_string(),
                        host: acl.host.to_string(),
                        operation: AclOperation::from_code(acl.operation),
                        permission: AclPermission::from_code(acl.permission_type),
                    };
                    check(acl.error_code, acl.error_message.as_deref(), || {
                        format!("delete ACL {}", describe_binding(&binding))
                    })?;
                    deleted.push(binding);
                }
                Ok(deleted)
            })
            .collect())
    }
}

/// One line naming a binding, for messages:
/// `ALLOW User:alice READ on TOPIC orders (LITERAL) from *`.
pub fn describe_binding(b: &AclBinding) -> String {
    format!(
        "{} {} {} on {} {} ({}) from {}",
        b.permission,
        b.principal,
        b.operation,
        b.resource_type,
        b.resource_name,
        b.pattern_type,
        b.host
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_codes_are_kafkas() {
        assert_eq!(ResourceType::Topic.code(), 2);
        assert_eq!(ResourceType::Group.code(), 3);
        assert_eq!(ResourceType::Cluster.code(), 4);
        assert_eq!(ResourceType::TransactionalId.code(), 5);
        assert_eq!(ResourceType::Any.code(), 1);
        assert_eq!(PatternType::Any.code(), 1);
        assert_eq!(PatternType::Match.code(), 2);
        assert_eq!(PatternType::Literal.code(), 3);
        assert_eq!(PatternType::Prefixed.code(), 4);
        assert_eq!(AclOperation::All.code(), 2);
        assert_eq!(AclOperation::Read.code(), 3);
        assert_eq!(AclOperation::Write.code(), 4);
        assert_eq!(AclOperation::IdempotentWrite.code(), 12);
        assert_eq!(AclPermission::Deny.code(), 2);
        assert_eq!(AclPermission::Allow.code(), 3);
        assert_eq!(AclPermission::Any.code(), 1);
        for op in AclOperation::ALL {
            assert_eq!(AclOperation::from_code(op.code()), *op);
        }
        assert_eq!(AclOperation::from_code(99), AclOperation::Unknown);
        assert_eq!(ResourceType::from_code(0), ResourceType::Unknown);
    }

    #[test]
    fn names_parse_in_kafka_and_camel_case() {
        assert_eq!(AclOperation::parse("Read"), Some(AclOperation::Read));
        assert_eq!(AclOperation::parse("READ"), Some(AclOperation::Read));
        assert_eq!(
            AclOperation::parse("ClusterAction"),
            Some(AclOperation::ClusterAction)
        );
        assert_eq!(
            AclOperation::parse("DESCRIBE_CONFIGS"),
            Some(AclOperation::DescribeConfigs)
        );
        assert_eq!(
            AclOperation::parse("idempotent-write"),
            Some(AclOperation::IdempotentWrite)
        );
        assert_eq!(AclOperation::parse("Unknown"), None);
        assert_eq!(AclOperation::parse("Frobnicate"), None);
        assert_eq!(PatternType::parse("prefixed"), Some(PatternType::Prefixed));
        assert_eq!(
            ResourceType::parse("transactional-id"),
            Some(ResourceType::TransactionalId)
        );
    }

    #[test]
    fn bindings_print_readably() {
        let b = AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: "orders".into(),
            pattern_type: PatternType::Literal,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: AclOperation::Read,
            permission: AclPermission::Allow,
        };
        assert_eq!(
            describe_binding(&b),
            "ALLOW User:alice READ on TOPIC orders (LITERAL) from *"
        );
    }
}
