//! TODO(helper): arp
