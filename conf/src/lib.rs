//! frp 0.65.0's v1 configuration for both sides, as a library: model, loader, template
//! renderer and validation. No tokio, no IO beyond reading configuration files.
mod auth;
mod client;
mod decode;
mod defaults;
mod error;
mod log;
mod plugin;
mod proxy;
mod server;
pub mod template;
mod transport;
pub mod types;
mod visitor;
mod web;
