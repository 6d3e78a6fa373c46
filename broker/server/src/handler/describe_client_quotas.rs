//! DescribeClientQuotas (key 48): the quotas of the entities matching the filter's
//! components (entity type with an exact name, the default entity, or any), `strict`
//! meaning no other entity types. A filter that can't be read answers INVALID_REQUEST.

use std::sync::Arc;

use ironlog_metadata::quota::{QuotaEntityType, QuotaFilterComponent, QuotaMatch};
use ironlog_protocol::kafka_protocol::messages::describe_client_quotas_response::{
    EntityData, EntryData, ValueData,
};
use ironlog_protocol::kafka_protocol::messages::{
    DescribeClientQuotasRequest, DescribeClientQuotasResponse,
};
use ironlog_protocol::ResponseError;

use super::{error_code, str_bytes};
use crate::broker::Broker;

const API: &str = "DescribeClientQuotas";

/// Kafka's match types.
const MATCH_EXACT: i8 = 0;
const MATCH_DEFAULT: i8 = 1;
const MATCH_ANY: i8 = 2;

pub fn handle(
    broker: &Arc<Broker>,
    request: DescribeClientQuotasRequest,
    _version: i16,
) -> DescribeClientQuotasResponse {
    let components: Result<Vec<_>, String> = request
        .components
        .iter()
        .map(|c| {
            let entity_type = QuotaEntityType::from_name(&c.entity_type)
                .ok_or_else(|| format!("unknown entity type {:?}", c.entity_type.as_str()))?;
            let matching = match (c.match_type, &c._match) {
                (MATCH_EXACT, Some(name)) => QuotaMatch::Exact(name.to_string()),
                (MATCH_DEFAULT, _) => QuotaMatch::Default,
                (MATCH_ANY, _) => QuotaMatch::Any,
                (other, _) => return Err(format!("invalid match type {other}")),
            };
            Ok(QuotaFilterComponent {
                entity_type,
                matching,
            })
        })
        .collect();
    let image = broker.replicas.metadata();
    let found = components.and_then(|c| image.describe_client_quotas(&c, request.strict));
    match found {
        Err(reason) => DescribeClientQuotasResponse::default()
            .with_error_code(error_code(broker, API, Some(ResponseError::InvalidRequest)))
            .with_error_message(Some(str_bytes(reason)))
            .with_entries(None),
        Ok(entries) => DescribeClientQuotasResponse::default().with_entries(Some(
            entries
                .into_iter()
                .map(|(entity, quotas)| {
                    EntryData::default()
                        .with_entity(
                            entity
                                .parts
                                .iter()
                                .map(|(t, name)| {
                                    EntityData::default()
                                        .with_entity_type(str_bytes(t.name()))
                                        .with_entity_name(name.clone().map(str_bytes))
                                })
                                .collect(),
                        )
                        .with_values(
                            quotas
                                .iter()
                                .map(|(key, value)| {
                                    ValueData::default()
                                        .with_key(str_bytes(key.clone()))
                                        .with_value(value.get())
                                })
                                .collect(),
                        )
                })
                .collect(),
        )),
    }
}
