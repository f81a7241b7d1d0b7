//! frps library
