//! Access control lists, Kafka's model: a binding allows or denies one principal, from one
//! host, one operation on the resources a pattern names; a filter selects bindings.
//!
//! Kafka's wire enums mix values a binding can hold with values only a filter can (ANY,
//! and MATCH for pattern types) and one nothing can (UNKNOWN). Here the enums hold only the
//! storable values, so a stored [`AclBinding`] cannot carry a filter-only one: a filter says
//! "any" with `None` ([`AclBindingFilter`]) and matches patterns with a [`PatternFilter`].
//! `from_code` turns a wire code into a storable value; `filter_from_code` also accepts
//! [`ANY_CODE`].

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::image::MetadataImage;

/// The wire code of ANY in each of Kafka's ACL enums: matches every value, in a filter only.
pub const ANY_CODE: i8 = 1;

/// The wire code of UNKNOWN in each of Kafka's ACL enums: never valid in a request.
pub const UNKNOWN_CODE: i8 = 0;

/// The only name a [`ResourceType::Cluster`] binding may have.
pub const CLUSTER_RESOURCE_NAME: &str = "kafka-cluster";

/// The resource name, principal name or host that matches every one.
pub const WILDCARD: &str = "*";

/// The principal that matches every principal in a binding.
pub const WILDCARD_PRINCIPAL: &str = "User:*";

/// Generates an ACL enum's wire codes and names, for the storable values listed.
macro_rules! wire_codes {
    ($ty:ident { $($variant:ident = $code:literal, $name:literal;)+ }) => {
        impl $ty {
            /// Every storable value, in wire-code order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// Kafka's wire code.
            pub fn code(self) -> i8 {
                match self {
                    $($ty::$variant => $code,)+
                }
            }

            /// The storable value with this wire code: `None` for UNKNOWN, ANY and codes
            /// Kafka does not define.
            pub fn from_code(code: i8) -> Option<$ty> {
                match code {
                    $($code => Some($ty::$variant),)+
                    _ => None,
                }
            }

            /// A filter's wire code: [`ANY_CODE`] for `None`.
            pub fn filter_code(filter: Option<$ty>) -> i8 {
                filter.map_or(ANY_CODE, $ty::code)
            }

            /// A filter from its wire code: `Some(None)` for ANY, `Some(Some(_))` for a
            /// storable value, `None` for UNKNOWN and codes Kafka does not define.
            pub fn filter_from_code(code: i8) -> Option<Option<$ty>> {
                if code == ANY_CODE {
                    Some(None)
                } else {
                    $ty::from_code(code).map(Some)
                }
            }

            /// Kafka's name for it (`TOPIC`, `READ`, `ALLOW`, …).
            pub fn name(self) -> &'static str {
                match self {
                    $($ty::$variant => $name,)+
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

/// The kind of resource a binding is about. UNKNOWN (0) and ANY (1) are not storable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ResourceType {
    Topic,
    Group,
    /// The cluster itself, always named [`CLUSTER_RESOURCE_NAME`].
    Cluster,
    TransactionalId,
    DelegationToken,
    User,
}

wire_codes!(ResourceType {
    Topic = 2, "TOPIC";
    Group = 3, "GROUP";
    Cluster = 4, "CLUSTER";
    TransactionalId = 5, "TRANSACTIONAL_ID";
    DelegationToken = 6, "DELEGATION_TOKEN";
    User = 7, "USER";
});

/// How a binding's resource name names resources. ANY (1) and MATCH (2) are filter-only
/// ([`PatternFilter`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PatternType {
    /// The resource of exactly this name; the name [`WILDCARD`] names every resource of
    /// the type.
    Literal,
    /// Every resource whose name starts with this one.
    Prefixed,
}

wire_codes!(PatternType {
    Literal = 3, "LITERAL";
    Prefixed = 4, "PREFIXED";
});

/// What a binding allows or denies. ANY (1) is filter-only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AclOperation {
    /// Every operation.
    All,
    Read,
    Write,
    Create,
    Delete,
    Alter,
    Describe,
    ClusterAction,
    DescribeConfigs,
    AlterConfigs,
    IdempotentWrite,
    CreateTokens,
    DescribeTokens,
}

wire_codes!(AclOperation {
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
});

impl AclOperation {
    /// Whether an ALLOW of `self` also allows `operation`: [`AclOperation::All`] allows
    /// everything, Read, Write, Delete and Alter imply Describe, AlterConfigs implies
    /// DescribeConfigs. A DENY implies nothing: it denies only its own operation (and a
    /// DENY of All, every one).
    pub fn allow_implies(self, operation: AclOperation) -> bool {
        use AclOperation::*;
        self == All
            || self == operation
            || (operation == Describe && matches!(self, Read | Write | Delete | Alter))
            || (operation == DescribeConfigs && self == AlterConfigs)
    }
}

/// Whether a binding allows or denies. ANY (1) is filter-only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AclPermission {
    Deny,
    Allow,
}

wire_codes!(AclPermission {
    Deny = 2, "DENY";
    Allow = 3, "ALLOW";
});

/// One ACL: `principal` from `host` is allowed or denied `operation` on the resources of
/// `resource_type` that `resource_name` names by `pattern_type`. Only valid bindings
/// ([`AclBinding::validate`]) are stored. Ordered by resource first, which the image's
/// lookups rely on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    pub resource_name: String,
    pub pattern_type: PatternType,
    /// `Type:name`, as `User:alice`; [`WILDCARD_PRINCIPAL`] for every principal.
    pub principal: String,
    /// A client address, or [`WILDCARD`] for every host.
    pub host: String,
    pub operation: AclOperation,
    pub permission: AclPermission,
}

impl AclBinding {
    /// Kafka's rules for a new binding; `Err` is a sentence saying which one it breaks: the
    /// principal is `Type:name` (both non-empty), the resource name is not empty, a
    /// [`ResourceType::Cluster`] binding names [`CLUSTER_RESOURCE_NAME`], a prefixed
    /// pattern is not [`WILDCARD`] (a literal `*` says that), and the host is not empty.
    pub fn validate(&self) -> Result<(), String> {
        match self.principal.split_once(':') {
            Some((kind, name)) if !kind.is_empty() && !name.is_empty() => {}
            _ => {
                return Err(format!(
                    "principal {:?} is not of the form Type:name (such as User:alice)",
                    self.principal
                ))
            }
        }
        if self.resource_name.is_empty() {
            return Err("the resource name is empty".into());
        }
        if self.resource_type == ResourceType::Cluster
            && self.resource_name != CLUSTER_RESOURCE_NAME
        {
            return Err(format!(
                "the cluster resource is named {CLUSTER_RESOURCE_NAME:?}, not {:?}",
                self.resource_name
            ));
        }
        if self.pattern_type == PatternType::Prefixed && self.resource_name == WILDCARD {
            return Err(format!(
                "a prefixed pattern cannot be {WILDCARD:?}; use a literal {WILDCARD:?} for every resource"
            ));
        }
        if self.host.is_empty() {
            return Err(format!(
                "the host is empty; use {WILDCARD:?} for every host"
            ));
        }
        Ok(())
    }

    /// Whether this binding's pattern names the resource `resource_type` `name`: a literal
    /// equal to it or [`WILDCARD`], or a prefix of it.
    pub fn names_resource(&self, resource_type: ResourceType, name: &str) -> bool {
        self.resource_type == resource_type
            && match self.pattern_type {
                PatternType::Literal => {
                    self.resource_name == name || self.resource_name == WILDCARD
                }
                PatternType::Prefixed => name.starts_with(&self.resource_name),
            }
    }
}

impl fmt::Display for AclBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} on {} {} {:?} for {} from {}",
            self.permission,
            self.operation,
            self.pattern_type,
            self.resource_type,
            self.resource_name,
            self.principal,
            self.host
        )
    }
}

/// Which pattern types and names an [`AclBindingFilter`] matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PatternFilter {
    /// Every pattern type; a filter name must equal the binding's name (ANY, code 1).
    Any,
    /// The bindings that apply to the resource the filter names: literals of that name or
    /// [`WILDCARD`], and prefixes of it; without a name, every binding (MATCH, code 2).
    Match,
    /// Only this pattern type; a filter name must equal the binding's name.
    Exact(PatternType),
}

impl PatternFilter {
    /// Kafka's wire code: ANY 1, MATCH 2, LITERAL 3, PREFIXED 4.
    pub fn code(self) -> i8 {
        match self {
            PatternFilter::Any => ANY_CODE,
            PatternFilter::Match => 2,
            PatternFilter::Exact(pattern) => pattern.code(),
        }
    }

    /// From Kafka's wire code: `None` for UNKNOWN (0) and codes Kafka does not define.
    pub fn from_code(code: i8) -> Option<PatternFilter> {
        match code {
            ANY_CODE => Some(PatternFilter::Any),
            2 => Some(PatternFilter::Match),
            _ => PatternType::from_code(code).map(PatternFilter::Exact),
        }
    }
}

/// Selects bindings, as DescribeAcls and DeleteAcls do: each `None` matches every value;
/// a given principal or host matches only that exact string (the filter `User:*` matches
/// the bindings for every principal, not every binding); a name matches as `pattern` says.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AclBindingFilter {
    pub resource_type: Option<ResourceType>,
    pub resource_name: Option<String>,
    pub pattern: PatternFilter,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: Option<AclOperation>,
    pub permission: Option<AclPermission>,
}

impl AclBindingFilter {
    /// The filter that matches every binding.
    pub fn any() -> AclBindingFilter {
        AclBindingFilter {
            resource_type: None,
            resource_name: None,
            pattern: PatternFilter::Any,
            principal: None,
            host: None,
            operation: None,
            permission: None,
        }
    }

    /// The filter that matches exactly `binding`.
    pub fn exact(binding: &AclBinding) -> AclBindingFilter {
        AclBindingFilter {
            resource_type: Some(binding.resource_type),
            resource_name: Some(binding.resource_name.clone()),
            pattern: PatternFilter::Exact(binding.pattern_type),
            principal: Some(binding.principal.clone()),
            host: Some(binding.host.clone()),
            operation: Some(binding.operation),
            permission: Some(binding.permission),
        }
    }

    pub fn matches(&self, binding: &AclBinding) -> bool {
        fn field<T: PartialEq>(filter: Option<&T>, value: &T) -> bool {
            filter.is_none_or(|f| f == value)
        }
        field(self.resource_type.as_ref(), &binding.resource_type)
            && self.matches_pattern(binding)
            && field(self.principal.as_ref(), &binding.principal)
            && field(self.host.as_ref(), &binding.host)
            && field(self.operation.as_ref(), &binding.operation)
            && field(self.permission.as_ref(), &binding.permission)
    }

    fn matches_pattern(&self, binding: &AclBinding) -> bool {
        match (self.pattern, &self.resource_name) {
            (PatternFilter::Exact(pattern), _) if pattern != binding.pattern_type => false,
            (_, None) => true,
            (PatternFilter::Any | PatternFilter::Exact(_), Some(name)) => {
                *name == binding.resource_name
            }
            (PatternFilter::Match, Some(name)) => match binding.pattern_type {
                PatternType::Literal => {
                    binding.resource_name == *name || binding.resource_name == WILDCARD
                }
                PatternType::Prefixed => name.starts_with(&binding.resource_name),
            },
        }
    }
}

/// What the ACLs say about one request. The caller decides the last two cases: super users
/// are allowed regardless, and `allow.everyone.if.no.acl.found` decides
/// [`AclDecision::NoMatchingAcl`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AclDecision {
    /// An ALLOW binding matches and no DENY does.
    Allowed,
    /// A DENY binding matches, or the resource has bindings but none allows the request.
    Denied,
    /// No binding names the resource at all (for any principal, host or operation).
    NoMatchingAcl,
}

impl MetadataImage {
    /// Kafka's authorization decision for `principal` (`Type:name`) connecting from `host`
    /// doing `operation` on the resource `resource_type` `resource_name`. The bindings that
    /// count name the resource (literally, by the literal [`WILDCARD`], or by a prefix),
    /// are for the principal or [`WILDCARD_PRINCIPAL`], for the host or [`WILDCARD`], and
    /// cover the operation: any DENY of it (or of [`AclOperation::All`]) denies; otherwise
    /// an ALLOW that implies it ([`AclOperation::allow_implies`]) allows; otherwise it is
    /// denied, unless no binding names the resource at all:
    /// [`AclDecision::NoMatchingAcl`].
    pub fn acl_decision(
        &self,
        principal: &str,
        host: &str,
        operation: AclOperation,
        resource_type: ResourceType,
        resource_name: &str,
    ) -> AclDecision {
        let mut named = false;
        let mut allowed = false;
        for binding in self.acls_naming(resource_type, resource_name) {
            named = true;
            if !(binding.principal == principal || binding.principal == WILDCARD_PRINCIPAL)
                || !(binding.host == host || binding.host == WILDCARD)
            {
                continue;
            }
            match binding.permission {
                AclPermission::Deny => {
                    if binding.operation == AclOperation::All || binding.operation == operation {
                        return AclDecision::Denied;
                    }
                }
                AclPermission::Allow => allowed |= binding.operation.allow_implies(operation),
            }
        }
        match (allowed, named) {
            (true, _) => AclDecision::Allowed,
            (false, true) => AclDecision::Denied,
            (false, false) => AclDecision::NoMatchingAcl,
        }
    }

    /// The bindings [`AclBindingFilter`] `filter` matches, in binding order.
    pub fn describe_acls(&self, filter: &AclBindingFilter) -> Vec<AclBinding> {
        self.acls
            .iter()
            .filter(|b| filter.matches(b))
            .cloned()
            .collect()
    }

    /// The bindings that name the resource `resource_type` `name`
    /// ([`AclBinding::names_resource`]), found by range lookups: the literal name, the
    /// literal wildcard, and each prefix of the name.
    fn acls_naming<'a>(
        &'a self,
        resource_type: ResourceType,
        name: &'a str,
    ) -> impl Iterator<Item = &'a AclBinding> + 'a {
        let prefixes = name
            .char_indices()
            .map(|(i, c)| &name[..i + c.len_utf8()])
            .map(|prefix| (prefix, PatternType::Prefixed));
        let literals = [(name, PatternType::Literal)]
            .into_iter()
            .chain((name != WILDCARD).then_some((WILDCARD, PatternType::Literal)));
        literals
            .chain(prefixes)
            .flat_map(move |(pattern_name, pattern_type)| {
                self.acls_with_pattern(resource_type, pattern_name, pattern_type)
            })
    }

    /// The bindings whose pattern is exactly `resource_type`, `name`, `pattern_type`.
    fn acls_with_pattern<'a>(
        &'a self,
        resource_type: ResourceType,
        name: &str,
        pattern_type: PatternType,
    ) -> impl Iterator<Item = &'a AclBinding> + 'a {
        // The smallest binding with this pattern: the enums' first values, empty strings.
        let first = AclBinding {
            resource_type,
            resource_name: name.to_owned(),
            pattern_type,
            principal: String::new(),
            host: String::new(),
            operation: AclOperation::All,
            permission: AclPermission::Deny,
        };
        self.acls.range(first.clone()..).take_while(move |b| {
            b.resource_type == first.resource_type
                && b.resource_name == first.resource_name
                && b.pattern_type == first.pattern_type
        })
    }
}
