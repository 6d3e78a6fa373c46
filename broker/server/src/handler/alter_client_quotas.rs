//! AlterClientQuotas (key 49): sets and removes quotas of user, client-id, user+client-id
//! and ip entities in the cluster metadata. Each entry is checked on its own (entity
//! combination, key for its type, value > 0: INVALID_REQUEST with the reason); the valid
//! ones are committed in one metadata command (none with `validate_only`).

use std::sync::Arc;

use ironlog_metadata::quota::{ClientQuotaEntity, QuotaAlteration, QuotaEntityType};
use ironlog_metadata::MetadataCommand;
use ironlog_protocol::kafka_protocol::messages::alter_client_quotas_response::{
    EntityData, EntryData,
};
use ironlog_protocol::kafka_protocol::messages::{
    AlterClientQuotasRequest, AlterClientQuotasResponse,
};
use ironlog_protocol::ResponseError;

use super::{error_code, str_bytes};
use crate::broker::Broker;
use crate::replica_manager::ReplicaError;

const API: &str = "AlterClientQuotas";

pub async fn handle(
    broker: &Arc<Broker>,
    request: AlterClientQuotasRequest,
    _version: i16,
) -> AlterClientQuotasResponse {
    let checked: Vec<(Vec<EntityData>, Result<QuotaAlteration, String>)> = request
        .entries
        .iter()
        .map(|e| {
            let echo: Vec<EntityData> = e
                .entity
                .iter()
                .map(|d| {
                    EntityData::default()
                        .with_entity_type(d.entity_type.clone())
                        .with_entity_name(d.entity_name.clone())
                })
                .collect();
            let alteration = (|| {
                let mut parts = Vec::new();
                for d in &e.entity {
                    let t = QuotaEntityType::from_name(&d.entity_type).ok_or_else(|| {
                        format!("unknown entity type {:?}", d.entity_type.as_str())
                    })?;
                    parts.push((t, d.entity_name.as_ref().map(|n| n.to_string())));
                }
                let alteration = QuotaAlteration {
                    entity: ClientQuotaEntity::new(parts),
                    ops: e
                        .ops
                        .iter()
                        .map(|op| (op.key.to_string(), (!op.remove).then_some(op.value)))
                        .collect(),
                };
                alteration.validate()?;
                Ok(alteration)
            })();
            (echo, alteration)
        })
        .collect();
    let valid: Vec<QuotaAlteration> = checked
        .iter()
        .filter_map(|(_, a)| a.as_ref().ok().cloned())
        .collect();
    let committed = if valid.is_empty() || request.validate_only {
        Ok(())
    } else {
        let count = valid.len();
        match broker
            .cluster
            .propose(MetadataCommand::AlterClientQuotas { entries: valid })
            .await
        {
            Ok(_) => {
                tracing::info!(count, "client quotas altered");
                Ok(())
            }
            Err(e) => Err((
                ReplicaError::from(e).error_code(),
                "cannot store the quotas",
            )),
        }
    };
    let entries = checked
        .into_iter()
        .map(|(entity, alteration)| {
            let refusal = match (alteration, &committed) {
                (Err(reason), _) => Some((ResponseError::InvalidRequest, reason)),
                (Ok(_), Err((code, reason))) => Some((*code, reason.to_string())),
                (Ok(_), Ok(())) => None,
            };
            let entry = EntryData::default().with_entity(entity);
            match refusal {
                None => entry.with_error_message(None),
                Some((code, message)) => entry
                    .with_error_code(error_code(broker, API, Some(code)))
                    .with_error_message(Some(str_bytes(message))),
            }
        })
        .collect();
    AlterClientQuotasResponse::default().with_entries(entries)
}
