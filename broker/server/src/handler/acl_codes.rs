//! Kafka's ACL wire codes to and from the metadata's ACL model, shared by CreateAcls,
//! DescribeAcls and DeleteAcls.

use ironlog_metadata::acl::{
    AclBinding, AclBindingFilter, AclOperation, AclPermission, PatternFilter, PatternType,
    ResourceType,
};

/// The binding a CreateAcls creation names, or why it can't be one.
pub fn binding(
    resource_type: i8,
    resource_name: &str,
    pattern_type: i8,
    principal: &str,
    host: &str,
    operation: i8,
    permission: i8,
) -> Result<AclBinding, String> {
    let binding = AclBinding {
        resource_type: ResourceType::from_code(resource_type)
            .ok_or_else(|| format!("resource type {resource_type} cannot be stored"))?,
        resource_name: resource_name.to_string(),
        pattern_type: PatternType::from_code(pattern_type).ok_or_else(|| {
            format!("pattern type {pattern_type} cannot be stored (LITERAL or PREFIXED)")
        })?,
        principal: principal.to_string(),
        host: host.to_string(),
        operation: AclOperation::from_code(operation)
            .ok_or_else(|| format!("operation {operation} cannot be stored"))?,
        permission: AclPermission::from_code(permission).ok_or_else(|| {
            format!("permission type {permission} cannot be stored (DENY or ALLOW)")
        })?,
    };
    binding.validate()?;
    Ok(binding)
}

/// The filter a DescribeAcls or DeleteAcls filter names, or why it can't be one.
pub fn filter(
    resource_type: i8,
    resource_name: Option<&str>,
    pattern_type: i8,
    principal: Option<&str>,
    host: Option<&str>,
    operation: i8,
    permission: i8,
) -> Result<AclBindingFilter, String> {
    Ok(AclBindingFilter {
        resource_type: ResourceType::filter_from_code(resource_type)
            .ok_or_else(|| format!("unknown resource type filter {resource_type}"))?,
        resource_name: resource_name.map(str::to_string),
        pattern: PatternFilter::from_code(pattern_type)
            .ok_or_else(|| format!("unknown pattern type filter {pattern_type}"))?,
        principal: principal.map(str::to_string),
        host: host.map(str::to_string),
        operation: AclOperation::filter_from_code(operation)
            .ok_or_else(|| format!("unknown operation filter {operation}"))?,
        permission: AclPermission::filter_from_code(permission)
            .ok_or_else(|| format!("unknown permission type filter {permission}"))?,
    })
}
