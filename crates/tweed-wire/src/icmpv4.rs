//! TODO(helper): icmpv4
