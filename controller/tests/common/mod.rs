//! Helpers shared by the controller's integration tests.

pub mod certs;
pub mod int_reports;
