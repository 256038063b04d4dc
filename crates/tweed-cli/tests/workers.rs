//! Placeholder: claimed by helper STEER for the two-worker reordering test (filled in when wip/agent has workers).
