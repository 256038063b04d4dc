//! Test support shared by the integration tests of `tweed-io`: each test file uses the parts it needs.
#![allow(dead_code, unreachable_pub)]

pub mod netns;
