//! InitProducerId (key 22): hands idempotent producers a cluster-unique producer id.
//! Transactional producers (a transactional id) are refused: transactions are not
//! implemented.

use std::sync::Arc;

use ironlog_protocol::kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse};
use ironlog_protocol::ResponseError;

use super::error_code;
use crate::authorizer::Access;
use crate::broker::Broker;

const API: &str = "InitProducerId";

pub async fn handle(
    broker: &Arc<Broker>,
    access: &Access,
    request: InitProducerIdRequest,
    _version: i16,
) -> InitProducerIdResponse {
    let mut response = InitProducerIdResponse::default()
        .with_producer_id((-1).into())
        .with_producer_epoch(-1);
    if request.transactional_id.is_some() {
        response.error_code = error_code(
            broker,
            API,
            Some(ResponseError::TransactionalIdAuthorizationFailed),
        );
        return response;
    }
    // KIP-679: IDEMPOTENT_WRITE on the cluster, or WRITE on some topic.
    if !access.may_write_idempotently() {
        response.error_code =
            error_code(broker, API, Some(ResponseError::ClusterAuthorizationFailed));
        return response;
    }
    match broker.allocate_producer_id().await {
        Ok(id) => {
            response.producer_id = id.into();
            response.producer_epoch = 0;
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot allocate a producer id");
            response.error_code =
                error_code(broker, API, Some(ResponseError::CoordinatorNotAvailable));
        }
    }
    response
}
