//! Kafka's ACL authorizer (`--authorizer acl`), on the ACL bindings in the cluster metadata.
//!
//! Off (the default), every request is allowed, as with Kafka without `authorizer.class.name`.
//! On, a request is allowed when its principal is a super user (`--super-users`), else as
//! the bindings decide ([`ironlog_metadata::MetadataImage::acl_decision`]: a matching DENY
//! wins; ALLOW of Read, Write, Delete or Alter implies Describe, of AlterConfigs implies
//! DescribeConfigs), else, for a resource no binding names at all, as
//! `--allow-everyone-if-no-acl-found` says (default: denied).
//!
//! [`Access`] is one request's view: its principal, its client's address and the metadata
//! image as the request started. Handlers ask it before touching a resource and answer
//! Kafka's code for a refusal (TOPIC_AUTHORIZATION_FAILED, GROUP_AUTHORIZATION_FAILED,
//! CLUSTER_AUTHORIZATION_FAILED); a topic the principal may not describe is answered as if
//! it did not exist where Kafka does so (Metadata for all topics, topic ids).

use std::sync::Arc;

use ironlog_metadata::acl::{
    AclBinding, AclDecision, AclOperation, AclPermission, PatternType, ResourceType,
    CLUSTER_RESOURCE_NAME, WILDCARD, WILDCARD_PRINCIPAL,
};
use ironlog_metadata::MetadataImage;

use crate::broker::Broker;
use crate::config::security::SecurityConfig;
use crate::net::session::Session;

/// One request's authorization context.
pub struct Access {
    enabled: bool,
    allow_if_no_acl: bool,
    superuser: bool,
    principal: String,
    host: String,
    image: Arc<MetadataImage>,
}

impl Access {
    /// The request's context; with the authorizer off, nothing is looked up (this runs for
    /// every request, Produce and Fetch included).
    pub fn new(broker: &Broker, session: &Session) -> Access {
        if !broker.config.security.authorizer {
            return Access::unrestricted();
        }
        let principal = session.principal().to_string();
        Access::with(
            &broker.config.security,
            principal,
            session.peer.ip().to_string(),
            broker.replicas.metadata(),
        )
    }

    pub fn with(
        security: &SecurityConfig,
        principal: String,
        host: String,
        image: Arc<MetadataImage>,
    ) -> Access {
        Access {
            enabled: security.authorizer,
            allow_if_no_acl: security.allow_everyone_if_no_acl_found,
            superuser: security.super_users.contains(&principal),
            principal,
            host,
            image,
        }
    }

    /// Everything allowed: the authorizer is off.
    pub fn unrestricted() -> Access {
        Access {
            enabled: false,
            allow_if_no_acl: true,
            superuser: true,
            principal: "User:ANONYMOUS".into(),
            host: String::new(),
            image: Arc::default(),
        }
    }

    pub fn principal(&self) -> &str {
        &self.principal
    }

    /// Whether `operation` on the resource is allowed.
    pub fn allows(&self, operation: AclOperation, resource: ResourceType, name: &str) -> bool {
        if !self.enabled || self.superuser {
            return true;
        }
        let allowed =
            match self
                .image
                .acl_decision(&self.principal, &self.host, operation, resource, name)
            {
                AclDecision::Allowed => true,
                AclDecision::Denied => false,
                AclDecision::NoMatchingAcl => self.allow_if_no_acl,
            };
        if !allowed {
            tracing::debug!(principal = %self.principal, host = %self.host,
                operation = operation.name(), resource = resource.name(), name,
                "request refused by the authorizer");
        }
        allowed
    }

    pub fn topic(&self, operation: AclOperation, topic: &str) -> bool {
        self.allows(operation, ResourceType::Topic, topic)
    }

    pub fn group(&self, operation: AclOperation, group: &str) -> bool {
        self.allows(operation, ResourceType::Group, group)
    }

    pub fn cluster(&self, operation: AclOperation) -> bool {
        self.allows(operation, ResourceType::Cluster, CLUSTER_RESOURCE_NAME)
    }

    /// Kafka's rule for creating a topic: CREATE on the cluster, or on the topic.
    pub fn may_create_topic(&self, topic: &str) -> bool {
        self.cluster(AclOperation::Create) || self.topic(AclOperation::Create, topic)
    }

    /// Kafka's rule for an idempotent producer (KIP-679): IDEMPOTENT_WRITE on the cluster,
    /// or WRITE on any topic.
    pub fn may_write_idempotently(&self) -> bool {
        if self.cluster(AclOperation::IdempotentWrite) || !self.enabled || self.superuser {
            return true;
        }
        // Kafka's authorizeByResourceType: some ALLOW of WRITE on topics for this principal
        // and host, and no DENY of WRITE on every topic.
        let mine = |b: &&AclBinding| {
            b.resource_type == ResourceType::Topic
                && matches!(b.operation, AclOperation::Write | AclOperation::All)
                && (b.principal == self.principal || b.principal == WILDCARD_PRINCIPAL)
                && (b.host == WILDCARD || b.host == self.host)
        };
        let denied_everywhere = self.image.acls.iter().filter(mine).any(|b| {
            b.permission == AclPermission::Deny
                && b.pattern_type == PatternType::Literal
                && b.resource_name == WILDCARD
        });
        !denied_everywhere
            && self
                .image
                .acls
                .iter()
                .filter(mine)
                .any(|b| b.permission == AclPermission::Allow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironlog_metadata::MetadataCommand;

    fn security(authorizer: bool) -> SecurityConfig {
        SecurityConfig {
            authorizer,
            super_users: vec!["User:admin".into()],
            ..SecurityConfig::default()
        }
    }

    fn image(acls: Vec<AclBinding>) -> Arc<MetadataImage> {
        let mut image = MetadataImage::new("c".into());
        image.apply(&MetadataCommand::CreateAcls { acls });
        Arc::new(image)
    }

    fn allow(principal: &str, op: AclOperation, name: &str, pattern: PatternType) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: name.into(),
            pattern_type: pattern,
            principal: principal.into(),
            host: "*".into(),
            operation: op,
            permission: AclPermission::Allow,
        }
    }

    #[test]
    fn off_allows_everything_on_denies_without_acls() {
        let img = image(vec![]);
        let off = Access::with(
            &security(false),
            "User:bob".into(),
            "1.2.3.4".into(),
            img.clone(),
        );
        assert!(off.topic(AclOperation::Write, "t"));
        let on = Access::with(
            &security(true),
            "User:bob".into(),
            "1.2.3.4".into(),
            img.clone(),
        );
        assert!(!on.topic(AclOperation::Write, "t"));
        assert!(!on.cluster(AclOperation::Describe));
        let admin = Access::with(&security(true), "User:admin".into(), "1.2.3.4".into(), img);
        assert!(admin.topic(AclOperation::Write, "t"));
        assert!(admin.cluster(AclOperation::Alter));
    }

    #[test]
    fn prefixed_write_grants_its_prefix_and_idempotence() {
        let img = image(vec![allow(
            "User:bob",
            AclOperation::Write,
            "orders-",
            PatternType::Prefixed,
        )]);
        let bob = Access::with(&security(true), "User:bob".into(), "h".into(), img.clone());
        assert!(bob.topic(AclOperation::Write, "orders-eu"));
        assert!(bob.topic(AclOperation::Describe, "orders-eu"));
        assert!(!bob.topic(AclOperation::Write, "order"));
        assert!(!bob.topic(AclOperation::Read, "orders-eu"));
        assert!(bob.may_write_idempotently());
        let eve = Access::with(&security(true), "User:eve".into(), "h".into(), img);
        assert!(!eve.may_write_idempotently());
    }
}
