//! Operator metrics and the HTTP endpoint serving `/metrics` and `/healthz`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// Every metric the operator exports, registered in one registry.
pub struct Metrics {
    pub registry: Registry,
    pub reconciles: IntCounterVec,
    pub failures: IntCounterVec,
    pub duration: HistogramVec,
    pub broker_restarts: IntCounter,
    pub topic_operations: IntCounterVec,
    pub leader: IntGauge,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let reconciles = IntCounterVec::new(
            Opts::new(
                "ironlog_operator_reconciles_total",
                "Reconciles started, by resource kind",
            ),
            &["kind"],
        )?;
        let failures = IntCounterVec::new(
            Opts::new(
                "ironlog_operator_reconcile_failures_total",
                "Reconciles that failed, by kind and reason",
            ),
            &["kind", "reason"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "ironlog_operator_reconcile_duration_seconds",
                "Reconcile duration",
            )
            .buckets(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            &["kind"],
        )?;
        let broker_restarts = IntCounter::new(
            "ironlog_operator_broker_restarts_total",
            "Broker pods restarted to roll a change",
        )?;
        let topic_operations = IntCounterVec::new(
            Opts::new(
                "ironlog_operator_topic_operations_total",
                "Kafka admin operations on topics",
            ),
            &["operation"],
        )?;
        let leader = IntGauge::new(
            "ironlog_operator_leader",
            "1 while this replica holds the leader lease",
        )?;
        registry.register(Box::new(reconciles.clone()))?;
        registry.register(Box::new(failures.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(broker_restarts.clone()))?;
        registry.register(Box::new(topic_operations.clone()))?;
        registry.register(Box::new(leader.clone()))?;
        Ok(Self {
            registry,
            reconciles,
            failures,
            duration,
            broker_restarts,
            topic_operations,
            leader,
        })
    }

    /// Counts a reconcile of `kind` and observes its duration when the guard drops.
    pub fn reconcile_timer(&self, kind: &'static str) -> ReconcileTimer<'_> {
        self.reconciles.with_label_values(&[kind]).inc();
        ReconcileTimer {
            metrics: self,
            kind,
            start: Instant::now(),
        }
    }

    /// Text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metric families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    }
}

pub struct ReconcileTimer<'a> {
    metrics: &'a Metrics,
    kind: &'static str,
    start: Instant,
}

impl Drop for ReconcileTimer<'_> {
    fn drop(&mut self) {
        self.metrics
            .duration
            .with_label_values(&[self.kind])
            .observe(self.start.elapsed().as_secs_f64());
    }
}

fn respond(req: &Request<hyper::body::Incoming>, metrics: &Metrics) -> Response<Full<Bytes>> {
    let (status, body) = match req.uri().path() {
        "/metrics" => (StatusCode::OK, metrics.render()),
        "/healthz" | "/readyz" => (StatusCode::OK, "ok\n".to_string()),
        _ => (StatusCode::NOT_FOUND, "not found\n".to_string()),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp
}

/// Serves `/metrics` and `/healthz` until the process exits.
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "serving /metrics and /healthz");
    loop {
        let (stream, _) = listener.accept().await?;
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let resp = respond(&req, &metrics);
                async move { Ok::<_, Infallible>(resp) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await
            {
                tracing::debug!(error = %e, "metrics connection ended with an error");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_reconcile_counters_and_histogram() {
        let m = Metrics::new().unwrap();
        drop(m.reconcile_timer("KafkaCluster"));
        m.failures
            .with_label_values(&["KafkaCluster", "kube"])
            .inc();
        let text = m.render();
        assert!(
            text.contains("ironlog_operator_reconciles_total{kind=\"KafkaCluster\"} 1"),
            "{text}"
        );
        assert!(text.contains(
            "ironlog_operator_reconcile_failures_total{kind=\"KafkaCluster\",reason=\"kube\"} 1"
        ));
        assert!(text.contains(
            "ironlog_operator_reconcile_duration_seconds_count{kind=\"KafkaCluster\"} 1"
        ));
    }
}
