//! TODO(helper): udp
