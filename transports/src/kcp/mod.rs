//! KCP over UDP with kcp-go's FEC framing (frp-protocol.md §11). Work in progress.
