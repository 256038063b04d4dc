//! The counters structs of tweed-io: `#[non_exhaustive]` (a new counter is not a breaking change), readable
//! fields, and a `merge` that sums several workers' counters into one view.

/// Defines a struct of `u64` counters with `Default`, `merge` and `+=`.
macro_rules! counters {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* pub $field:ident: u64,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct $name {
            $($(#[$fmeta])* pub $field: u64,)*
        }

        impl $name {
            /// Adds `other`'s counts to these (saturating): several workers' counters summed into one view.
            pub fn merge(&mut self, other: &Self) {
                $(self.$field = self.$field.saturating_add(other.$field);)*
            }
        }

        impl core::ops::AddAssign<&$name> for $name {
            fn add_assign(&mut self, other: &Self) {
                self.merge(other);
            }
        }
    };
}

pub(crate) use counters;

#[cfg(test)]
mod tests {
    use crate::{DriverStats, UdpStats};

    /// Two workers' counters sum field by field, saturating; `+=` is the same.
    #[test]
    fn counters_merge() {
        let a = DriverStats { rounds: 3, wake_timer: 1, tx_pod: 10, ports_closed: u64::MAX, ..DriverStats::default() };
        let b = DriverStats { rounds: 4, wake_io: 2, tx_pod: 5, ports_closed: 1, ..DriverStats::default() };
        let mut sum = a;
        sum.merge(&b);
        let want = DriverStats {
            rounds: 7,
            wake_io: 2,
            wake_timer: 1,
            tx_pod: 15,
            ports_closed: u64::MAX,
            ..DriverStats::default()
        };
        assert_eq!(sum, want);
        let mut again = a;
        again += &b;
        assert_eq!(again, want);
        let mut u = UdpStats { rx: 1, tx_dropped: 2, ..UdpStats::default() };
        u += &UdpStats { rx: 2, tx: 7, ..UdpStats::default() };
        assert_eq!(u, UdpStats { rx: 3, tx: 7, tx_dropped: 2, ..UdpStats::default() });
    }
}
