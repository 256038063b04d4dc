//! Acquiring, renewing and releasing leases: transactions guarded by the revision the leases were read at.

use core::net::Ipv4Addr;
use core::time::Duration;
use std::time::SystemTime;

use etcd_client::{Compare, CompareOp, PutOptions, Txn, TxnOp};
use ipnet::Ipv4Net;

use super::{ATTEMPTS, Entry, Inner, Read, from_ms, overlaps, prefix_end, rev, ttl_ms};
use crate::lease::{Lease, LeaseAttrs};
use crate::store::{StoreError, to_ms};

impl Inner {
    /// Deletes `entry` (and its expiration key) if it is unchanged; true when it was.
    async fn delete_if_unchanged(&self, subnet: &Ipv4Net, entry: &Entry) -> Result<bool, StoreError> {
        let txn = Txn::new()
            .when([Compare::mod_revision(entry.key.clone(), CompareOp::Equal, entry.mod_revision)])
            .and_then([TxnOp::delete(entry.key.clone(), None), TxnOp::delete(self.expiration_key(subnet), None)]);
        let resp = self
            .call("deleting a lease", |mut c| {
                let txn = txn.clone();
                async move { c.txn(txn).await }
            })
            .await?;
        if resp.succeeded() {
            self.wrote(resp.header().map_or(0, |h| h.revision()));
            self.revoke(entry.lease_id).await;
        }
        Ok(resp.succeeded())
    }

    /// Revokes an etcd lease no key uses any more; best effort (it expires by itself otherwise).
    async fn revoke(&self, lease_id: i64) {
        if lease_id != 0 {
            let _ = self.call("revoking a lease", |mut c| async move { c.lease_revoke(lease_id).await }).await;
        }
    }

    /// Writes a lease for `subnet`, guarded by "nothing under `subnets/` changed since `read`". `created` is the
    /// creation revision of the lease renewed, if any.
    async fn write_lease(
        &self,
        read: &Read,
        subnet: Ipv4Net,
        attrs: &LeaseAttrs,
        ttl: Duration,
        now: SystemTime,
        created: Option<u64>,
    ) -> Result<Option<Lease>, StoreError> {
        // etcd's TTLs are whole seconds: round up, so etcd never drops a lease before its expiration.
        let secs = i64::try_from(ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0)).unwrap_or(i64::MAX).max(1);
        let grant = self.call("granting an etcd lease", |mut c| async move { c.lease_grant(secs, None).await }).await?;
        let lease_id = grant.id();
        let expires_ms = to_ms(now).saturating_add(ttl_ms(ttl));
        let dir = self.layout.subnets_dir();
        let txn = Txn::new()
            .when([Compare::mod_revision(dir.clone(), CompareOp::Less, read.revision + 1).with_range(prefix_end(&dir))])
            .and_then([
                TxnOp::put(
                    self.layout.subnet_key(&subnet),
                    attrs.to_json(),
                    Some(PutOptions::new().with_lease(lease_id)),
                ),
                TxnOp::put(
                    self.expiration_key(&subnet),
                    expires_ms.to_string(),
                    Some(PutOptions::new().with_lease(lease_id)),
                ),
            ]);
        let resp = match self
            .call("writing a lease", |mut c| {
                let txn = txn.clone();
                async move { c.txn(txn).await }
            })
            .await
        {
            Ok(r) => r,
            Err(e) => {
                self.revoke(lease_id).await;
                return Err(e);
            }
        };
        if !resp.succeeded() {
            self.revoke(lease_id).await;
            return Ok(None);
        }
        let revision = resp.header().map_or(0, |h| h.revision());
        self.wrote(revision);
        let created = created.unwrap_or(rev(revision));
        Ok(Some(Lease { subnet, attrs: attrs.clone(), expiration: from_ms(expires_ms), created }))
    }

    pub(super) async fn acquire(
        &self,
        subnet: Ipv4Net,
        attrs: &LeaseAttrs,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<Lease, StoreError> {
        let subnet = subnet.trunc();
        for _ in 0..ATTEMPTS {
            let read = self.read().await?;
            if let Some((held, e)) = read.leases.iter().find(|(held, _)| overlaps(held, &subnet)) {
                return Err(StoreError::Taken { subnet, held: *held, holder: e.attrs.public_ip });
            }
            if let Some(lease) = self.write_lease(&read, subnet, attrs, ttl, now, None).await? {
                return Ok(lease);
            }
        }
        Err(self.unavailable("acquiring a lease", format!("the leases kept changing {ATTEMPTS} times in a row")))
    }

    pub(super) async fn renew(
        &self,
        subnet: Ipv4Net,
        attrs: &LeaseAttrs,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<Lease, StoreError> {
        let subnet = subnet.trunc();
        for _ in 0..ATTEMPTS {
            let read = self.read().await?;
            if let Some((held, e)) = read
                .leases
                .iter()
                .find(|(held, e)| overlaps(held, &subnet) && (**held != subnet || e.attrs.public_ip != attrs.public_ip))
            {
                return Err(StoreError::Taken { subnet, held: *held, holder: e.attrs.public_ip });
            }
            let old = read.leases.get(&subnet).map(|e| (e.lease_id, e.created));
            if let Some(lease) = self.write_lease(&read, subnet, attrs, ttl, now, old.map(|o| o.1)).await? {
                if let Some((old, _)) = old {
                    self.revoke(old).await;
                }
                return Ok(lease);
            }
        }
        Err(self.unavailable("renewing a lease", format!("the leases kept changing {ATTEMPTS} times in a row")))
    }

    pub(super) async fn release(&self, subnet: Ipv4Net, public_ip: Ipv4Addr) -> Result<(), StoreError> {
        let subnet = subnet.trunc();
        for _ in 0..ATTEMPTS {
            let read = self.read().await?;
            match read.leases.get(&subnet) {
                None => return Ok(()),
                Some(e) if e.attrs.public_ip != public_ip => {
                    return Err(StoreError::Taken { subnet, held: subnet, holder: e.attrs.public_ip });
                }
                Some(e) => {
                    if self.delete_if_unchanged(&subnet, e).await? {
                        return Ok(());
                    }
                }
            }
        }
        Err(self.unavailable("releasing a lease", format!("the lease kept changing {ATTEMPTS} times in a row")))
    }
}
