//! TODO(helper): vxlan
