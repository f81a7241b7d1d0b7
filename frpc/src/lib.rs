//! frpc library
