//! "Test Integration": one test event to one endpoint, outside the queue and retries
//! ([`Sender::test_integration`]).

use std::time::SystemTime;

use webhook_core::Event;

use super::driver;
use super::endpoint::EndpointConfig;
use super::registry::{AuditAction, AuditTarget};
use super::{Sender, TEST_BODY_LIMIT, TestIntegrationError, TestReport};
use crate::token::AuthorizedSendError;
use crate::transport::{RequestTimeout, SharedTransport};

impl Sender {
    /// Sends a test event to the endpoint named `endpoint` (Sysdig "Test Integration",
    /// Soveren "send test event") and reports status, latency and the response.
    ///
    /// The event is `{"type":"webhook.test","id":...,"timestamp":...,"endpoint":...}`, encoded
    /// like real deliveries (a one-element JSON array for a JSON-array endpoint), through the
    /// endpoint's request builder (auth, signature with the current time, custom headers) and
    /// token provider (refreshed once on a 401), over the endpoint's transport. It bypasses
    /// the queue, retries and health: the answer is returned whatever its status.
    ///
    /// # Errors
    /// See [`TestIntegrationError`].
    pub async fn test_integration(
        &self,
        endpoint: &str,
    ) -> Result<TestReport, TestIntegrationError> {
        let shared = self
            .find(endpoint)
            .ok_or_else(|| TestIntegrationError::UnknownEndpoint(endpoint.to_owned()))?;
        let (cfg, transport) = {
            let p = shared.published();
            (p.cfg.clone(), p.transport.clone())
        };
        let ep = TestTarget {
            cfg: &cfg,
            transport: &transport,
        };
        let wall = SystemTime::now();
        let secs = wall
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let id = format!("test_{:016x}", driver::random_u64());
        let payload = serde_json::json!({
            "type": "webhook.test",
            "id": id,
            "timestamp": secs,
            "endpoint": &*ep.cfg.name,
        });
        let event = Event::builder(id.as_str(), "webhook.test")
            .serialize(&payload)
            .map_err(|e| TestIntegrationError::Encode(e.to_string()))?;
        // Encoded as real deliveries are: the endpoint's encoding, and gzip when it compresses.
        let body = ep
            .cfg
            .endpoint
            .encode(std::slice::from_ref(&event))
            .map_err(|e| TestIntegrationError::Encode(e.to_string()))?;
        let mut request = ep
            .cfg
            .endpoint
            .request(&id, &body, wall)
            .map_err(|e| TestIntegrationError::Request(e.to_string()))?;
        if let Some(t) = ep.cfg.request_timeout {
            request.extensions_mut().insert(RequestTimeout(t));
        }
        let started = tokio::time::Instant::now();
        let response = match &ep.cfg.tokens {
            Some(tokens) => tokens
                .send(ep.transport, request)
                .await
                .map_err(|e| match e {
                    AuthorizedSendError::Token(e) => TestIntegrationError::Token(e),
                    AuthorizedSendError::Transport(e) => TestIntegrationError::Transport(e),
                })?,
            None => ep.transport.send(request).await?,
        };
        let latency = started.elapsed();
        let status = response.status();
        let headers = response.headers().clone();
        let full = response.body();
        let body_truncated = response.is_body_truncated() || full.len() > TEST_BODY_LIMIT;
        let body = full.slice(..full.len().min(TEST_BODY_LIMIT));
        tracing::info!(endpoint = %ep.cfg.name, status = status.as_u16(), latency_ms = latency.as_millis() as u64, "test integration");
        // Sysdig's rule: a passing test enables an untested endpoint.
        if status.is_success() {
            self.mark_tested(&shared);
        }
        self.inner.audit.record(
            "test_integration",
            AuditTarget::Endpoint(shared.name.clone()),
            AuditAction::Tested {
                status: status.as_u16(),
                passed: status.is_success(),
            },
            Vec::new(),
        );
        self.inner.persist_registry();
        Ok(TestReport {
            status,
            latency,
            headers,
            body,
            body_truncated,
        })
    }
}

/// The configuration and transport `test_integration` uses.
struct TestTarget<'a> {
    cfg: &'a EndpointConfig,
    transport: &'a SharedTransport,
}
