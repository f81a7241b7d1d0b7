//! frp's websocket transport (frp-protocol.md §12): an HTTP/1.1 upgrade on `/~!frp`,
//! then a byte stream carried in websocket frames.
//!
//! * [`frame`] — pure frame-header codec and masking.
//! * [`handshake`] — the upgrade, client ([`client_handshake`]) and server
//!   ([`server_handshake`]).
//! * [`stream`] — [`WsStream`], the upgraded connection as `AsyncRead + AsyncWrite`.
//!
//! Where it sits: frpc `websocket`: `TCP → WS → [0x17] → [TLS] → [yamux]`; frpc `wss`:
//! `TCP → TLS → WS → [yamux]`. frps only speaks plain ws on `bindPort` (wss is
//! terminated by a proxy in front of it), and runs its TLS check inside the websocket.

pub mod frame;
pub mod handshake;
pub mod stream;

pub use handshake::{client_handshake, server_handshake, WEBSOCKET_PATH};
pub use stream::{Role, WsStream};

#[cfg(test)]
mod tests;
