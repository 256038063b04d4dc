//! The etcd members a store talks to: one client per endpoint, calls sent to the member that answered last, and
//! on to the next one when it does not answer, as etcd's own clients do. A member that is down costs one refused
//! connection (or one request timeout, when it does not refuse), not the lease.

use core::future::Future;
use core::sync::atomic::Ordering;
use core::time::Duration;
use std::sync::PoisonError;

use etcd_client::{Client, ConnectOptions};

use super::Inner;
use crate::store::StoreError;

/// gRPC's Cancelled (1), Unknown (2), DeadlineExceeded (4) and Unavailable (14): the member is away, or lost its
/// leader; another member may answer.
fn is_unavailable(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
        etcd_client::Error::GRpcStatus(s) => matches!(i32::from(s.code()), 1 | 2 | 4 | 14),
        _ => false,
    }
}

impl Inner {
    pub(super) fn unavailable(&self, context: &str, message: impl ToString) -> StoreError {
        StoreError::Unavailable {
            context: format!("{context} (etcd at {})", self.endpoints.join(",")),
            message: message.to_string(),
        }
    }

    /// Drops member `i`'s client, so the next call to it connects again.
    pub(super) fn forget(&self, i: usize) {
        if let Some(c) = self.clients.lock().unwrap_or_else(PoisonError::into_inner).get_mut(i) {
            *c = None;
        }
    }

    /// After member `i` failed: the next calls start at the one after it (unless another call moved on already).
    pub(super) fn fail_over(&self, i: usize) {
        self.forget(i);
        let n = self.endpoints.len().max(1);
        let _ = self.current.compare_exchange(i, (i + 1) % n, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// Member `i`'s client, connecting when there is none.
    pub(super) async fn client(&self, i: usize) -> Result<Client, StoreError> {
        if let Some(Some(c)) = self.clients.lock().unwrap_or_else(PoisonError::into_inner).get(i) {
            return Ok(c.clone());
        }
        let endpoint = self.endpoints.get(i).cloned().unwrap_or_default();
        let options = ConnectOptions::new()
            .with_connect_timeout(self.options.connect_timeout)
            .with_timeout(self.options.request_timeout)
            .with_keep_alive(Duration::from_secs(10), self.options.request_timeout)
            // A member cut off from its leader ends our watch instead of holding it silently.
            .with_require_leader(true);
        let client = match tokio::time::timeout(
            self.options.connect_timeout,
            Client::connect([endpoint], Some(options)),
        )
        .await
        {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(self.unavailable("connecting", e)),
            Err(_) => return Err(self.unavailable("connecting", "timed out")),
        };
        if let Some(slot) = self.clients.lock().unwrap_or_else(PoisonError::into_inner).get_mut(i) {
            *slot = Some(client.clone());
        }
        Ok(client)
    }

    /// Runs one request with the request deadline on the member that answered last, then on each other member in
    /// turn while they are away; the answer, and which member gave it.
    ///
    /// A request that timed out may have happened: every write is guarded by a revision, so one sent again finds
    /// the guard failed and is read and decided again.
    pub(super) async fn call_at<T, F, Fut>(&self, context: &str, f: F) -> Result<(T, usize), StoreError>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let n = self.endpoints.len().max(1);
        let first = self.current.load(Ordering::SeqCst) % n;
        let mut last = self.unavailable(context, "no endpoint");
        for k in 0..n {
            let i = (first + k) % n;
            let client = match self.client(i).await {
                Ok(c) => c,
                Err(e) => {
                    self.fail_over(i);
                    last = e;
                    continue;
                }
            };
            match tokio::time::timeout(self.options.request_timeout, f(client)).await {
                Ok(Ok(t)) => {
                    self.current.store(i, Ordering::SeqCst);
                    return Ok((t, i));
                }
                Ok(Err(e)) if is_unavailable(&e) => {
                    self.fail_over(i);
                    last = self.unavailable(context, e);
                }
                Ok(Err(e)) => {
                    return Err(StoreError::Io { context: format!("etcd: {context}"), message: e.to_string() });
                }
                Err(_) => {
                    self.fail_over(i);
                    last = self.unavailable(context, format!("no answer within {:?}", self.options.request_timeout));
                }
            }
        }
        Err(last)
    }

    /// [`Inner::call_at`], without saying where.
    pub(super) async fn call<T, F, Fut>(&self, context: &str, f: F) -> Result<T, StoreError>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        self.call_at(context, f).await.map(|(t, _)| t)
    }
}
