//! The example between two sites (see the test file's doc).
