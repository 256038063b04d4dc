//! tweed's Linux edges: TAP/TUN devices, AF_PACKET ports, batched UDP sockets, and the driver that runs a
//! [`tweed_overlay::Node`] over them.
#![cfg_attr(not(target_os = "linux"), allow(unused))]
