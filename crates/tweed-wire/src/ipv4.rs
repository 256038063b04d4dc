//! TODO(helper): ipv4
