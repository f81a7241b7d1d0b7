//! frp's own example configs (/work/shared/frp-0.65.0-conf) load unchanged in strict mode and
//! yield their values.

use std::path::{Path, PathBuf};

use conf::*;

fn shared(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/frp-0.65.0-conf")
        .join(name);
    if p.exists() {
        p
    } else {
        // Checked-in copies, for machines without /work/shared.
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/valid/shared")
            .join(name)
    }
}

#[test]
fn frps_full_example_toml() {
    let c = load_server_config(&shared("frps_full_example.toml"), true).unwrap();
    assert_eq!(c.bind_addr, "0.0.0.0");
    assert_eq!(c.bind_port, 7000);
    assert_eq!(c.kcp_bind_port, 7000);
    assert_eq!(c.quic_bind_port, 0);
    assert_eq!(c.proxy_bind_addr, "0.0.0.0");
    assert_eq!(c.transport.max_pool_count, 5);
    assert!(c.transport.tcp_mux);
    assert_eq!(c.transport.heartbeat_timeout, -1);
    assert!(!c.transport.tls.force);
    assert_eq!((c.vhost_http_port, c.vhost_https_port), (80, 443));
    assert_eq!(c.vhost_http_timeout, 60);
    assert_eq!(c.web_server.addr, "127.0.0.1");
    assert_eq!(c.web_server.port, 7500);
    assert_eq!(c.web_server.user, "admin");
    assert_eq!(c.web_server.password.expose(), "admin");
    assert!(c.enable_prometheus);
    assert_eq!(c.log.to, "./frps.log");
    assert_eq!(c.log.level, LogLevel::Info);
    assert_eq!(c.log.max_days, 3);
    assert!(c.detailed_errors_to_client);
    assert_eq!(c.auth.method, AuthMethod::Token);
    assert_eq!(c.auth.token.expose(), "12345678");
    assert_eq!(
        c.allow_ports,
        vec![
            PortsRange::Range {
                start: 2000,
                end: 3000
            },
            PortsRange::Single(3001),
            PortsRange::Single(3003),
            PortsRange::Range {
                start: 4000,
                end: 50000
            },
        ]
    );
    assert!(c.port_allowed(2500) && c.port_allowed(3003) && !c.port_allowed(3002));
    assert_eq!(c.sub_domain_host, "frps.com");
    assert_eq!(c.udp_packet_size, 1500);
    assert_eq!(c.nathole_analysis_data_reserve_hours, 168);
    assert_eq!(c.user_conn_timeout, 10);
    assert_eq!(c.http_plugins.len(), 2);
    assert_eq!(c.http_plugins[0].name, "user-manager");
    assert_eq!(c.http_plugins[0].addr, "127.0.0.1:9000");
    assert_eq!(c.http_plugins[0].ops, vec![HttpPluginOp::Login]);
    assert_eq!(c.http_plugins[1].ops, vec![HttpPluginOp::NewProxy]);
    assert_eq!(
        c.ssh_tunnel_gateway.auto_gen_private_key_path,
        "./.autogen_ssh_key"
    );
}

#[test]
fn frps_legacy_ini() {
    let c = load_server_config(&shared("frps_legacy_full.ini"), true).unwrap();
    assert_eq!(c.bind_port, 7000);
    assert_eq!(c.kcp_bind_port, 7000);
    assert_eq!((c.vhost_http_port, c.vhost_https_port), (80, 443));
    // Legacy dashboard_addr default/value is 0.0.0.0.
    assert_eq!(c.web_server.addr, "0.0.0.0");
    assert_eq!(c.web_server.port, 7500);
    assert_eq!(c.web_server.password.expose(), "admin");
    assert!(c.web_server.tls.is_none());
    assert!(c.enable_prometheus);
    assert_eq!(c.log.to, "./frps.log");
    assert_eq!(c.auth.token.expose(), "12345678");
    assert!(c.auth.additional_scopes.is_empty());
    assert_eq!(c.allow_ports.len(), 4);
    assert!(c.port_allowed(45000) && !c.port_allowed(3002));
    assert_eq!(c.transport.max_pool_count, 5);
    assert_eq!(c.sub_domain_host, "frps.com");
    assert_eq!(c.http_plugins.len(), 2);
    assert_eq!(c.http_plugins[0].name, "user-manager");
    assert_eq!(c.http_plugins[0].path, "/handler");
    assert_eq!(c.http_plugins[1].ops, vec![HttpPluginOp::NewProxy]);
    assert_eq!(c.transport.heartbeat_timeout, -1);
    assert_eq!(c.nathole_analysis_data_reserve_hours, 168);
}

#[test]
fn frpc_full_example_toml() {
    let c = load_client_config(&shared("frpc_full_example.toml"), true).unwrap();
    let common = &c.common;
    assert_eq!(common.user, "your_name");
    assert_eq!(common.server_addr, "0.0.0.0");
    assert_eq!(common.server_port, 7000);
    assert!(common.login_fail_exit);
    assert_eq!(common.log.to, "./frpc.log");
    assert_eq!(common.auth.token.expose(), "12345678");
    assert_eq!(common.web_server.port, 7400);
    assert_eq!(common.transport.pool_count, 5);
    assert_eq!(common.transport.protocol, TransportProtocol::Tcp);
    assert_eq!(common.transport.connect_server_local_ip, "0.0.0.0");
    assert!(common.transport.tls.enable);
    assert!(common.transport.tls.disable_custom_tls_first_byte);
    assert_eq!(common.transport.heartbeat_interval, -1);
    assert_eq!(common.nat_hole_stun_server, "stun.easyvoip.com:3478");
    assert_eq!(
        common.metadatas.get("var1").map(String::as_str),
        Some("abc")
    );
    assert_eq!(c.proxies.len(), 18);
    assert_eq!(c.visitors.len(), 3);

    let ssh = c.proxy("your_name.ssh").unwrap();
    assert_eq!(ssh.proxy_type(), ProxyType::Tcp);
    assert_eq!(ssh.remote_port(), Some(6001));
    let b = ssh.base();
    assert_eq!((b.local_ip.as_str(), b.local_port), ("127.0.0.1", 22));
    assert_eq!(b.transport.bandwidth_limit.bytes(), 1 << 20);
    assert_eq!(b.transport.bandwidth_limit.as_str(), "1MB");
    assert_eq!(b.transport.bandwidth_limit_mode, BandwidthLimitMode::Client);
    assert_eq!(b.load_balancer.group, "test_group");
    assert_eq!(b.load_balancer.group_key.expose(), "123456");
    assert_eq!(b.health_check.check_type, Some(HealthCheckType::Tcp));
    assert_eq!(b.health_check.max_failed, 3);
    assert_eq!(
        b.annotations.get("prefix/key2").map(String::as_str),
        Some("value2")
    );

    let ProxyConfig::Http(web01) = c.proxy("your_name.web01").unwrap() else {
        panic!()
    };
    assert_eq!(web01.subdomain, "web01");
    assert_eq!(web01.custom_domains, ["web01.yourdomain.com"]);
    assert_eq!(web01.locations, ["/", "/pic"]);
    assert_eq!(web01.http_password.expose(), "admin");
    assert_eq!(
        web01
            .request_headers
            .set
            .get("x-from-where")
            .map(String::as_str),
        Some("frp")
    );
    assert_eq!(
        web01.response_headers.set.get("foo").map(String::as_str),
        Some("bar")
    );
    assert_eq!(web01.base.health_check.path, "/status");
    assert_eq!(web01.base.health_check.http_headers[0].name, "x-from-where");

    let web02 = c.proxy("your_name.web02").unwrap();
    assert_eq!(
        web02.base().transport.proxy_protocol_version,
        Some(ProxyProtocolVersion::V2)
    );
    let ProxyConfig::TcpMux(mux) = c.proxy("your_name.tcpmuxhttpconnect").unwrap() else {
        panic!()
    };
    assert_eq!(mux.multiplexer, TcpMultiplexer::HttpConnect);

    let uds = c.proxy("your_name.plugin_unix_domain_socket").unwrap();
    let Some(ClientPluginOptions::UnixDomainSocket(o)) = &uds.base().plugin else {
        panic!()
    };
    assert_eq!(o.unix_path, "/var/run/docker.sock");
    let h2h = c.proxy("your_name.plugin_https2http").unwrap();
    let Some(ClientPluginOptions::Https2Http(o)) = &h2h.base().plugin else {
        panic!()
    };
    assert_eq!(o.local_addr, "127.0.0.1:80");
    assert!(o.enable_http2);
    assert_eq!(
        o.request_headers
            .set
            .get("x-from-where")
            .map(String::as_str),
        Some("frp")
    );

    let ProxyConfig::Xtcp(p2p) = c.proxy("your_name.p2p_tcp").unwrap() else {
        panic!()
    };
    assert_eq!(p2p.allow_users, ["user1", "user2"]);
    assert_eq!(p2p.secret_key.expose(), "abcdefg");
    assert_eq!(
        p2p.nat_traversal,
        Some(NatTraversalConfig {
            disable_assisted_addrs: false
        })
    );
    let vnet = c.proxy("your_name.vnet-server").unwrap();
    assert!(matches!(
        vnet.base().plugin,
        Some(ClientPluginOptions::VirtualNet(_))
    ));

    let v = c.visitor("your_name.secret_tcp_visitor").unwrap();
    assert_eq!(v.base().server_name, "your_name.secret_tcp");
    assert_eq!(v.base().bind_port, 9000);
    let VisitorConfig::Xtcp(x) = c.visitor("your_name.p2p_tcp_visitor").unwrap() else {
        panic!()
    };
    assert_eq!(x.base.server_name, "user1.p2p_tcp");
    assert_eq!(x.protocol, XtcpProtocol::Quic);
    assert_eq!(x.max_retries_an_hour, 8);
    assert_eq!(x.fallback_timeout_ms, 1000);
    let vv = c.visitor("your_name.vnet-visitor").unwrap();
    assert_eq!(vv.base().bind_port, -1);
    let Some(VisitorPluginOptions::VirtualNet(o)) = &vv.base().plugin else {
        panic!()
    };
    assert_eq!(o.destination_ip, "100.86.0.1");
}

#[test]
fn frpc_legacy_ini() {
    let c = load_client_config(&shared("frpc_legacy_full.ini"), true).unwrap();
    let common = &c.common;
    assert_eq!(common.user, "your_name");
    assert_eq!(common.server_port, 7000);
    assert_eq!(common.auth.method, AuthMethod::Token);
    assert_eq!(common.auth.token.expose(), "12345678");
    assert_eq!(common.web_server.addr, "127.0.0.1");
    assert_eq!(common.web_server.port, 7400);
    assert_eq!(common.transport.pool_count, 5);
    assert_eq!(common.transport.connect_server_local_ip, "0.0.0.0");
    assert!(common.transport.tls.enable);
    assert_eq!(
        common.metadatas.get("var1").map(String::as_str),
        Some("123")
    );
    // 11 + 1 + 11 range:udp_port + 16 range:tcp_port ... counted below by name.
    assert!(c.proxy("your_name.tcp_port_0").is_some());
    assert_eq!(
        c.proxy("your_name.tcp_port_16").unwrap().remote_port(),
        Some(6028)
    );
    assert!(c.proxy("your_name.tcp_port_17").is_none());
    assert_eq!(
        c.proxy("your_name.udp_port_10").unwrap().proxy_type(),
        ProxyType::Udp
    );
    let ssh = c.proxy("your_name.ssh").unwrap();
    assert_eq!(ssh.base().transport.bandwidth_limit.bytes(), 1 << 20);
    assert_eq!(ssh.base().health_check.interval_seconds, 10);
    assert_eq!(
        ssh.base().metadatas.get("var2").map(String::as_str),
        Some("234")
    );
    let ProxyConfig::Http(web01) = c.proxy("your_name.web01").unwrap() else {
        panic!()
    };
    assert_eq!(web01.locations, ["/", "/pic"]);
    assert_eq!(
        web01
            .request_headers
            .set
            .get("X-From-Where")
            .map(String::as_str),
        Some("frp")
    );
    assert_eq!(web01.base.health_check.path, "/status");
    assert!(web01.base.transport.use_compression);
    let sock = c.proxy("your_name.plugin_socks5").unwrap();
    let Some(ClientPluginOptions::Socks5(o)) = &sock.base().plugin else {
        panic!()
    };
    assert_eq!((o.username.as_str(), o.password.expose()), ("abc", "abc"));
    let ProxyConfig::Xtcp(p2p) = c.proxy("your_name.p2p_tcp").unwrap() else {
        panic!()
    };
    assert_eq!(p2p.allow_users, ["user1", "user2"]);
    assert_eq!(c.visitors.len(), 2);
    let v = c.visitor("your_name.p2p_tcp_visitor").unwrap();
    assert_eq!(v.base().server_name, "user1.p2p_tcp");
    assert_eq!(
        c.visitor("your_name.secret_tcp_visitor")
            .unwrap()
            .base()
            .server_name,
        "your_name.secret_tcp"
    );
    let ProxyConfig::TcpMux(mux) = c.proxy("your_name.tcpmuxhttpconnect").unwrap() else {
        panic!()
    };
    assert_eq!(mux.custom_domains, ["tunnel1"]);
}
