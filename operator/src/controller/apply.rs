//! Server-side apply of the built objects, and discovery of what the API server offers.

use std::fmt::Debug;

use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::build::Capabilities;
use super::{kube_err, Error, FIELD_MANAGER};

/// Server-side applies `obj` with the operator's field manager, taking ownership of conflicting
/// fields (the operator is the only writer of what it builds).
pub async fn apply<K>(client: &Client, obj: &K) -> Result<K, Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Serialize
        + DeserializeOwned
        + Clone
        + Debug,
{
    let ns = obj.namespace().ok_or(Error::MissingNamespace)?;
    let name = obj.name_any();
    Api::<K>::namespaced(client.clone(), &ns)
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(obj),
        )
        .await
        .map_err(kube_err(format!("applying {} {ns}/{name}", K::kind(&()))))
}

/// The PodDisruptionBudget resource for the served API version.
pub fn pdb_resource(caps: Capabilities) -> ApiResource {
    let version = if caps.pdb_v1 { "v1" } else { "v1beta1" };
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("policy", version, "PodDisruptionBudget"),
        "poddisruptionbudgets",
    )
}

/// Applies the PDB as `policy/v1`, or as `policy/v1beta1` (same fields) on servers before 1.21.
pub async fn apply_pdb(
    client: &Client,
    caps: Capabilities,
    pdb: &PodDisruptionBudget,
) -> Result<(), Error> {
    let ns = pdb.namespace().ok_or(Error::MissingNamespace)?;
    let name = pdb.name_any();
    let ar = pdb_resource(caps);
    let mut value = serde_json::to_value(pdb).map_err(|source| Error::Serialize {
        what: "PodDisruptionBudget",
        source,
    })?;
    value["apiVersion"] = serde_json::Value::String(ar.api_version.clone());
    Api::<DynamicObject>::namespaced_with(client.clone(), &ns, &ar)
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&value),
        )
        .await
        .map_err(kube_err(format!(
            "applying PodDisruptionBudget ({}) {ns}/{name}",
            ar.api_version
        )))?;
    Ok(())
}

/// Asks the API server what it serves instead of assuming a Kubernetes version.
pub async fn discover_capabilities(client: &Client) -> Result<Capabilities, Error> {
    let pdb_v1 = match client.list_api_group_resources("policy/v1").await {
        Ok(list) => list
            .resources
            .iter()
            .any(|r| r.name == "poddisruptionbudgets"),
        Err(kube::Error::Api(resp)) if resp.code == 404 => false,
        Err(e) => return Err(kube_err("discovering policy/v1")(e)),
    };
    let info = client
        .apiserver_version()
        .await
        .map_err(kube_err("reading the API server version"))?;
    let minor: u32 = info
        .minor
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or(0);
    let major: u32 = info.major.parse().unwrap_or(1);
    // persistentVolumeClaimRetentionPolicy: beta and on by default from 1.27. An older server
    // rejects the unknown field under server-side apply, so it is only sent when known.
    let pvc_retention_policy = major > 1 || minor >= 27;
    Ok(Capabilities {
        pdb_v1,
        pvc_retention_policy,
    })
}

/// Writes `status` to the status subresource of the namespaced object `name` (a merge patch
/// under the operator's field manager). `what` names the object in errors.
pub async fn patch_status<K, S>(
    api: &Api<K>,
    name: &str,
    status: &S,
    what: String,
) -> Result<(), Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
    S: Serialize,
{
    api.patch_status(
        name,
        &PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        },
        &Patch::Merge(serde_json::json!({ "status": status })),
    )
    .await
    .map_err(kube_err(format!("writing status of {what}")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pdb_resource_follows_capabilities() {
        let old = pdb_resource(Capabilities {
            pdb_v1: false,
            pvc_retention_policy: false,
        });
        assert_eq!(old.api_version, "policy/v1beta1");
        assert_eq!(old.plural, "poddisruptionbudgets");
        assert_eq!(pdb_resource(Capabilities::MODERN).api_version, "policy/v1");
    }
}
