//! extender
