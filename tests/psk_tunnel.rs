//! examples/psk_tunnel: its sealed format, replay window and encapsulation, tested here as modules of this crate
//! (an example's own tests are not run by `cargo test`), the encapsulation in two tweed nodes in process, and the
//! example itself between two sites in network namespaces.
#![allow(unreachable_pub)]

#[path = "../examples/psk_tunnel/encap.rs"]
mod encap;
#[path = "../examples/psk_tunnel/seal.rs"]
mod seal;
#[path = "../examples/psk_tunnel/window.rs"]
mod window;

#[cfg(target_os = "linux")]
#[path = "../crates/tweed-io/tests/common/mod.rs"]
mod common;

#[cfg(target_os = "linux")]
#[path = "psk_tunnel/netns.rs"]
mod netns;
#[cfg(target_os = "linux")]
#[path = "psk_tunnel/no_alloc.rs"]
mod no_alloc;
#[path = "psk_tunnel/node.rs"]
mod node;
#[path = "psk_tunnel/replay.rs"]
mod replay;
#[path = "psk_tunnel/sealing.rs"]
mod sealing;
