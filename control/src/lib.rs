//! frp's control protocol, sans IO: the message catalogue, the frame codec, authentication
//! keys and the stream cipher. Nothing here opens a socket or reads a clock; time and
//! randomness come in as arguments.

pub mod crypto;
