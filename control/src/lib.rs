//! frp's control protocol, sans IO: the message catalogue, the frame codec, authentication
//! keys, the stream cipher, heartbeat and reconnect bookkeeping. Nothing here opens a socket
//! or reads a clock; time and randomness come in as arguments.
//!
//! # Layout
//!
//! * [`msg`]: one struct per frp 0.65.0 message and the closed [`Message`] enum.
//! * [`codec`]: the `type | i64 length | JSON` frame, pure functions plus [`MsgCodec`].
//! * [`io`]: [`read_msg`] / [`write_msg`] over any tokio stream, exactly one frame at a time.
//! * [`auth`]: privilege keys, [`TokenAuth`], run ids.
//! * [`wire_error`]: every error string frps sends to a peer.
//! * [`crypto`]: the AES-128-CFB control-connection cipher.
//! * [`heartbeat`]: ping/pong timers for both sides.
//! * [`backoff`]: frpc's login and reconnect schedules.

#![warn(missing_docs, unreachable_pub)]

pub mod auth;
pub mod backoff;
pub mod codec;
pub mod crypto;
mod error;
pub mod heartbeat;
pub mod io;
pub mod msg;
pub mod wire_error;

pub use auth::{
    generate_run_id, privilege_key, run_id, verify_privilege_key, AlwaysPass, AuthError, AuthScope,
    AuthVerifier, TokenAuth,
};
pub use backoff::{FastBackoff, FastBackoffOptions, LoginBackoff, LoginRetry};
pub use codec::{
    decode, encode, encode_to_vec, MsgCodec, HEADER_LEN, MAX_FRAME_LEN, MAX_MSG_LENGTH,
};
pub use error::ProtocolError;
pub use heartbeat::{ClientHeartbeat, ClientHeartbeatAction, ServerHeartbeat};
pub use io::{read_msg, write_loop, write_msg};
pub use msg::{
    go_arch, go_os, ClientSpec, CloseProxy, Login, LoginResp, Message, MessageType, NatHoleClient,
    NatHoleDetectBehavior, NatHoleReport, NatHoleResp, NatHoleSid, NatHoleVisitor, NewProxy,
    NewProxyResp, NewVisitorConn, NewVisitorConnResp, NewWorkConn, Ping, Pong, PortsRange,
    ReqWorkConn, StartWorkConn, StringMap, UdpAddr, UdpPacket, FRP_VERSION,
};
