//! TODO(helper): dissect
