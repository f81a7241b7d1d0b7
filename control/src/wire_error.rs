//! Every error string frps puts on the wire (`LoginResp.error`, `NewProxyResp.error`,
//! `Pong.error`, `StartWorkConn.error`, `NewVisitorConnResp.error`).
//!
//! These strings are part of the wire contract: frpc logs them and users grep for them, so
//! they are copied character for character from frp 0.65.0 and kept here in one place.
//! Whether frps sends the detailed text or only a summary depends on its
//! `detailedErrorsToClient` setting (default true); see [`response_error`].

/// `VerifyLogin` failure (`pkg/auth/token.go`).
pub const LOGIN_TOKEN_MISMATCH: &str = "token in login doesn't match token from configuration";
/// `VerifyPing` failure with the `HeartBeats` scope (`pkg/auth/token.go`).
pub const PING_TOKEN_MISMATCH: &str = "token in heartbeat doesn't match token from configuration";
/// `VerifyNewWorkConn` failure with the `NewWorkConns` scope (`pkg/auth/token.go`).
pub const NEW_WORK_CONN_TOKEN_MISMATCH: &str =
    "token in NewWorkConn doesn't match token from configuration";

/// Summary in `LoginResp.error` when details are hidden (`server/service.go`).
pub const REGISTER_CONTROL_SUMMARY: &str = "register control error";
/// Summary in `Pong.error` when details are hidden (`server/control.go handlePing`).
pub const INVALID_PING_SUMMARY: &str = "invalid ping";
/// Summary in `StartWorkConn.error` when details are hidden (`server/service.go`).
pub const INVALID_NEW_WORK_CONN_SUMMARY: &str = "invalid NewWorkConn";
/// Summary in `NewVisitorConnResp.error` when details are hidden (`server/service.go`).
pub const REGISTER_VISITOR_CONN_SUMMARY: &str = "register visitor conn error";

/// Login accepted by auth but the control could not be created (`server/service.go`); frp
/// deliberately hides the cause.
pub const CREATE_CONTROLLER_FAILED: &str = "unexpected error when creating new controller";
/// `maxPortsPerClient` exceeded (`server/control.go RegisterProxy`).
pub const EXCEED_MAX_PORTS_PER_CLIENT: &str = "exceed the max_ports_per_client";
/// Port manager: port in use by another proxy (`server/ports/ports.go`).
pub const PORT_ALREADY_USED: &str = "port already used";
/// Port manager: port outside `allowPorts` (`server/ports/ports.go`).
pub const PORT_NOT_ALLOWED: &str = "port not allowed";
/// Port manager: port cannot be bound (`server/ports/ports.go`).
pub const PORT_UNAVAILABLE: &str = "port unavailable";
/// Port manager: no free port to pick (`server/ports/ports.go`).
pub const NO_AVAILABLE_PORT: &str = "no available port";
/// Unknown proxy type (`server/proxy/proxy.go`).
pub const PROXY_TYPE_NOT_SUPPORTED: &str = "proxy type not support";
/// http proxy while `vhostHTTPPort` is 0 (`pkg/config/v1/validation/proxy.go`).
pub const HTTP_NOT_SUPPORTED: &str = "type [http] not supported when vhost http port is not set";
/// https proxy while `vhostHTTPSPort` is 0 (`pkg/config/v1/validation/proxy.go`).
pub const HTTPS_NOT_SUPPORTED: &str = "type [https] not supported when vhost https port is not set";
/// tcpmux proxy while `tcpmuxHTTPConnectPort` is 0 (`pkg/config/v1/validation/proxy.go`).
pub const TCPMUX_NOT_SUPPORTED: &str = "tcpmux with multiplexer httpconnect not supported because this feature is not enabled in server";
/// `subdomain` without `subDomainHost` (`pkg/config/v1/validation/proxy.go`).
pub const SUBDOMAIN_NOT_SUPPORTED: &str =
    "subdomain is not supported because this feature is not enabled in server";
/// `subdomain` containing `.` or `*` (`pkg/config/v1/validation/proxy.go`).
pub const SUBDOMAIN_INVALID: &str = "'.' and '*' are not supported in subdomain";
/// Duplicate vhost route (`pkg/util/vhost/router.go`).
pub const ROUTER_CONFIG_CONFLICT: &str = "router config conflict";
/// xtcp proxy registered on frps (`server/proxy/xtcp.go`) when NAT hole punching is off.
pub const XTCP_NOT_SUPPORTED: &str = "xtcp is not supported in frps";

/// A group member with another `groupKey` than the group's first member (`server/group/group.go`).
pub const GROUP_AUTH_FAILED: &str = "group auth failed";
/// A group member with another bind address than the group's (`server/group/group.go`).
pub const GROUP_PARAMS_INVALID: &str = "group params invalid";
/// A group member asking for another `remotePort` than the group's (`server/group/group.go`).
pub const GROUP_DIFFERENT_PORT: &str = "group should have same remote port";

/// Summary in `NewProxyResp.error` when details are hidden (`server/control.go`).
pub fn new_proxy_summary(proxy_name: &str) -> String {
    format!("new proxy [{proxy_name}] error")
}

/// Duplicate proxy name in one control (`server/control.go RegisterProxy`).
pub fn proxy_already_exists(proxy_name: &str) -> String {
    format!("proxy [{proxy_name}] already exists")
}

/// Proxy name used by another client (`server/proxy/proxy.go`).
pub fn proxy_name_in_use(proxy_name: &str) -> String {
    format!("proxy name [{proxy_name}] is already in use")
}

/// Unknown run id on a work or visitor connection (`server/service.go`).
pub fn no_control_for_run_id(run_id: &str) -> String {
    format!("no client control found for run id [{run_id}]")
}

/// Explicit remote port could not be taken (`server/proxy/udp.go`; tcp returns the bare
/// port-manager error).
pub fn acquire_port_error(port: i64, cause: &str) -> String {
    format!("acquire port {port} error: {cause}")
}

/// Unknown tcpmux multiplexer (`server/proxy/tcpmux.go`).
pub fn unknown_multiplexer(multiplexer: &str) -> String {
    format!("unknown multiplexer [{multiplexer}]")
}

/// Visitor for a proxy that is not registered (`server/visitor/visitor.go`).
pub fn visitor_listener_missing(proxy_name: &str) -> String {
    format!("custom listener for [{proxy_name}] doesn't exist")
}

/// Visitor `sign_key` mismatch (`server/visitor/visitor.go`).
pub fn visitor_auth_failed(proxy_name: &str) -> String {
    format!("visitor connection of [{proxy_name}] auth failed")
}

/// Visitor user not in `allowUsers` (`server/visitor/visitor.go`).
pub fn visitor_user_not_allowed(proxy_name: &str, visitor_user: &str) -> String {
    format!("visitor connection of [{proxy_name}] user [{visitor_user}] not allowed")
}

/// xtcp visitor for an unknown proxy (`pkg/nathole/controller.go`).
pub fn xtcp_server_missing(proxy_name: &str) -> String {
    format!("xtcp server for [{proxy_name}] doesn't exist")
}

/// xtcp visitor `sign_key` mismatch (`pkg/nathole/controller.go`).
pub fn xtcp_auth_failed(proxy_name: &str) -> String {
    format!("xtcp connection of [{proxy_name}] auth failed")
}

/// frp's `util.GenerateResponseErrorString`: the detailed error when
/// `detailedErrorsToClient` is on, else the fixed summary.
pub fn response_error(summary: &str, detail: &str, detailed: bool) -> String {
    if detailed { detail } else { summary }.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_or_detail() {
        assert_eq!(
            response_error(REGISTER_CONTROL_SUMMARY, LOGIN_TOKEN_MISMATCH, false),
            "register control error"
        );
        assert_eq!(
            response_error(REGISTER_CONTROL_SUMMARY, LOGIN_TOKEN_MISMATCH, true),
            LOGIN_TOKEN_MISMATCH
        );
        assert_eq!(new_proxy_summary("u1.t1"), "new proxy [u1.t1] error");
    }
}
