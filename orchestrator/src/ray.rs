//! ray
