//! Helpers shared by the controller's integration tests.

pub mod int_reports;
