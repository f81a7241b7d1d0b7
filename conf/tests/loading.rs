//! Loader behaviour: defaults, formats, templates, includes, `start`, strictness, legacy INI.

use std::path::{Path, PathBuf};

use conf::*;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn env() -> Env {
    [
        (
            "FRP_FIXTURES",
            fixture("")
                .to_string_lossy()
                .trim_end_matches('/')
                .to_string(),
        ),
        ("FRP_SERVER_ADDR", "10.1.2.3".to_string()),
        ("FRP_TEST_PORT", "7100".to_string()),
        ("FRP_TOKEN", "tok".to_string()),
        ("FRP_DOMAIN", "www.example.com".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn server(rel: &str) -> ServerConfig {
    let p = fixture(rel);
    parse_server_str(
        &std::fs::read_to_string(&p).unwrap(),
        &p.to_string_lossy(),
        &env(),
        true,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn client(rel: &str) -> ClientConfig {
    let p = fixture(rel);
    parse_client_str(
        &std::fs::read_to_string(&p).unwrap(),
        &p.to_string_lossy(),
        &env(),
        true,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn s(text: &str) -> Result<ServerConfig, ConfError> {
    parse_server_str(text, "frps.toml", &env(), true)
}

fn c(text: &str) -> Result<ClientConfig, ConfError> {
    parse_client_str(text, "frpc.toml", &env(), true)
}

#[test]
fn server_defaults_match_frp_complete() {
    let d = ServerConfig::default();
    assert_eq!(d, s("").unwrap());
    assert_eq!(d, server("valid/frps_empty.toml"));
    assert_eq!((d.bind_addr.as_str(), d.bind_port), ("0.0.0.0", 7000));
    assert_eq!(d.proxy_bind_addr, "0.0.0.0");
    assert_eq!(
        (d.kcp_bind_port, d.quic_bind_port, d.vhost_http_port),
        (0, 0, 0)
    );
    assert_eq!(d.vhost_http_timeout, 60);
    assert_eq!(d.auth.method, AuthMethod::Token);
    assert!(d.transport.tcp_mux);
    assert_eq!(d.transport.tcp_mux_keepalive_interval, 30);
    assert_eq!(d.transport.tcp_keepalive, 7200);
    assert_eq!(d.transport.max_pool_count, 5);
    assert_eq!(d.transport.heartbeat_timeout, -1);
    assert_eq!(
        d.transport.quic,
        QuicOptions {
            keepalive_period: 10,
            max_idle_timeout: 30,
            max_incoming_streams: 100_000,
            congestion: None,
        }
    );
    assert!(!d.transport.tls.force);
    assert!(d.detailed_errors_to_client);
    assert_eq!(d.user_conn_timeout, 10);
    assert_eq!(d.udp_packet_size, 1500);
    assert_eq!(d.nathole_analysis_data_reserve_hours, 168);
    assert_eq!(
        (d.web_server.addr.as_str(), d.web_server.port),
        ("127.0.0.1", 0)
    );
    assert_eq!(
        (d.log.to.as_str(), d.log.level, d.log.max_days),
        ("console", LogLevel::Info, 3)
    );
    assert_eq!(
        d.ssh_tunnel_gateway.auto_gen_private_key_path,
        "./.autogen_ssh_key"
    );
    assert!(d.port_allowed(1));
}

#[test]
fn server_completion_rules() {
    let c = s("bindAddr = \"127.0.0.1\"\nbindPort = 0\ntransport.tcpMux = false").unwrap();
    assert_eq!(c.bind_port, 7000, "0 counts as unset, as EmptyOr does");
    assert_eq!(c.proxy_bind_addr, "127.0.0.1");
    assert_eq!(c.transport.heartbeat_timeout, 90);
    let c = s("transport.heartbeatTimeout = 5\ndetailedErrorsToClient = false").unwrap();
    assert_eq!(c.transport.heartbeat_timeout, 5);
    assert!(!c.detailed_errors_to_client);
    let tls = server("valid/frps_tls_ca.toml");
    assert!(tls.transport.tls.force, "trustedCaFile forces TLS");
}

#[test]
fn client_defaults_match_frp_complete() {
    let d = c("").unwrap();
    assert_eq!(d.common, ClientCommonConfig::default());
    let t = &d.common.transport;
    assert_eq!(
        (d.common.server_addr.as_str(), d.common.server_port),
        ("0.0.0.0", 7000)
    );
    assert!(d.common.login_fail_exit);
    assert_eq!(d.common.nat_hole_stun_server, "stun.easyvoip.com:3478");
    assert_eq!(t.protocol, TransportProtocol::Tcp);
    assert_eq!((t.dial_server_timeout, t.dial_server_keepalive), (10, 7200));
    assert_eq!(t.pool_count, 1);
    assert!(t.tcp_mux);
    assert_eq!((t.heartbeat_interval, t.heartbeat_timeout), (-1, -1));
    assert!(t.tls.enable && t.tls.disable_custom_tls_first_byte);
    assert_eq!(d.common.udp_packet_size, 1500);
    let c2 = c("transport.tcpMux = false\ntransport.poolCount = 0\n[[proxies]]\nname = \"p\"\ntype = \"tcp\"\nlocalPort = 1\n[[visitors]]\nname = \"v\"\ntype = \"xtcp\"\nserverName = \"p\"\nbindPort = 1").unwrap();
    let t = &c2.common.transport;
    assert_eq!(
        (t.heartbeat_interval, t.heartbeat_timeout, t.pool_count),
        (30, 90, 1)
    );
    let b = c2.proxies[0].base();
    assert_eq!(b.local_ip, "127.0.0.1");
    assert_eq!(b.transport.bandwidth_limit_mode, BandwidthLimitMode::Client);
    assert_eq!(
        (
            b.health_check.interval_seconds,
            b.health_check.timeout_seconds,
            b.health_check.max_failed
        ),
        (10, 3, 1)
    );
    let VisitorConfig::Xtcp(x) = &c2.visitors[0] else {
        panic!()
    };
    assert_eq!(x.base.bind_addr, "127.0.0.1");
    assert_eq!(
        (
            x.protocol,
            x.max_retries_an_hour,
            x.min_retry_interval,
            x.fallback_timeout_ms
        ),
        (XtcpProtocol::Quic, 8, 90, 1000)
    );
}

#[test]
fn http_proxy_env_fallback() {
    let mut e = env();
    e.insert("http_proxy".into(), "http://proxy:3128".into());
    let cfg = parse_client_str("", "frpc.toml", &e, true).unwrap();
    assert_eq!(cfg.common.transport.proxy_url, "http://proxy:3128");
    let cfg = parse_client_str(
        "transport.proxyURL = \"socks5://x:1\"",
        "frpc.toml",
        &e,
        true,
    )
    .unwrap();
    assert_eq!(cfg.common.transport.proxy_url, "socks5://x:1");
}

#[test]
fn case_insensitive_keys_like_go() {
    let c = server("valid/frps_case_insensitive.toml");
    assert_eq!(c.bind_port, 7002);
    assert_eq!(c.transport.max_pool_count, 9);
    assert_eq!(c.web_server.port, 7500);
}

#[test]
fn yaml_and_json_forms() {
    let y = server("valid/frps_yaml.yaml");
    assert_eq!(y.bind_port, 7003);
    assert_eq!(y.transport.max_pool_count, 7, "merge key applied");
    assert_eq!(
        y.transport.tls.cert_file, "server.crt",
        "anchor from a dot key"
    );
    assert!(!y.transport.tcp_mux);
    assert_eq!(y.transport.heartbeat_timeout, 90);
    assert_eq!(
        y.allow_ports,
        vec![
            PortsRange::Range {
                start: 2000,
                end: 3000
            },
            PortsRange::Single(3001)
        ]
    );
    let j = server("valid/frps_json.json");
    assert_eq!((j.bind_addr.as_str(), j.bind_port), ("127.0.0.1", 7004));
    assert_eq!(j.proxy_bind_addr, "127.0.0.1");
    assert!(j.transport.tls.force);
    assert_eq!(
        j.auth.additional_scopes,
        vec![AuthScope::HeartBeats, AuthScope::NewWorkConns]
    );
    assert_eq!(j.tcpmux_http_connect_port, 1337);

    let cy = client("valid/frpc_yaml.yaml");
    assert_eq!(cy.common.server_addr, "10.0.0.1");
    assert_eq!(cy.common.transport.protocol, TransportProtocol::Websocket);
    assert!(!cy.common.login_fail_exit);
    assert_eq!(cy.proxies[0].proxy_type(), ProxyType::Udp);
    assert_eq!(cy.proxies[1].secret_key().unwrap().expose(), "s");
    assert_eq!(cy.visitors[0].visitor_type(), VisitorType::Sudp);
    let cj = client("valid/frpc_json.json");
    assert_eq!(cj.common.transport.protocol, TransportProtocol::Quic);
    assert_eq!(cj.common.transport.quic.keepalive_period, 5);
    assert_eq!(cj.common.transport.quic.max_idle_timeout, 30);
    assert!(!cj.common.transport.tls.enable);
    assert!(cj.common.feature_enabled(FEATURE_VIRTUAL_NET));
    let b = cj.proxies[0].base();
    assert_eq!(b.transport.bandwidth_limit.bytes(), 102_400);
    assert_eq!(b.transport.bandwidth_limit_mode, BandwidthLimitMode::Server);
    let Some(ClientPluginOptions::StaticFile(sf)) = &cj.proxies[1].base().plugin else {
        panic!()
    };
    assert_eq!(
        (sf.local_path.as_str(), sf.http_password.expose()),
        ("/srv", "p")
    );
}

#[test]
fn template_renders_env_and_ranges() {
    let cfg = client("valid/frpc_template.toml");
    assert_eq!(cfg.common.server_addr, "10.1.2.3");
    assert_eq!(cfg.common.server_port, 7100);
    assert_eq!(cfg.common.auth.token.expose(), "tok");
    let names: Vec<_> = cfg.proxies.iter().map(|p| p.name().to_string()).collect();
    assert_eq!(names, ["tcp-6000", "tcp-6001", "tcp-6002", "tcp-6010"]);
    assert_eq!(cfg.proxies[3].remote_port(), Some(16010));
    assert_eq!(cfg.proxies[3].base().local_port, 6010);
    let e = c("serverPort = {{ .Envs.FRP_TEST_PORT }\n").unwrap_err();
    assert!(matches!(e, ConfError::Template { line: 1, .. }), "{e}");
}

#[test]
fn includes_are_rendered_and_merged() {
    let cfg = client("valid/frpc_includes.toml");
    let names: Vec<_> = cfg.proxies.iter().map(|p| p.name()).collect();
    assert_eq!(names, ["main", "web"]);
    let Some((domains, _)) = cfg.proxies[1].domains() else {
        panic!()
    };
    assert_eq!(domains, ["www.example.com"]);
    assert_eq!(cfg.visitors.len(), 1);
    assert_eq!(cfg.visitors[0].base().server_name, "main");
}

#[test]
fn start_filters_by_unprefixed_name() {
    let cfg = client("valid/frpc_start.toml");
    let names: Vec<_> = cfg.proxies.iter().map(|p| p.name()).collect();
    assert_eq!(names, ["u.a"]);
    assert_eq!(cfg.visitors.len(), 1);
    let VisitorConfig::Xtcp(x) = &cfg.visitors[0] else {
        panic!()
    };
    assert_eq!(x.base.name, "u.va");
    assert_eq!(x.base.server_name, "u.a");
    assert_eq!(x.fallback_to, "u.vb");
}

#[test]
fn token_source_is_resolved() {
    let cfg = server("valid/frps_tokensource.toml");
    assert_eq!(cfg.auth.token.expose(), "token-from-file");
    assert!(cfg.auth.token_source.is_none());
    assert_eq!(format!("{:?}", cfg.auth.token), "***");
}

#[test]
fn legacy_ini_conversion() {
    let s = server("valid/frps_legacy_min.ini");
    assert_eq!(s.bind_port, 7100, "legacy files are rendered too");
    assert!(!s.transport.tcp_mux);
    assert_eq!(s.transport.heartbeat_timeout, 90);
    assert_eq!(s.auth.token.expose(), "abc # not a comment");
    assert_eq!(s.auth.additional_scopes, vec![AuthScope::HeartBeats]);
    assert_eq!(s.web_server.addr, "0.0.0.0");
    assert_eq!(s.web_server.tls.as_ref().unwrap().cert_file, "a.crt");
    let c = client("valid/frpc_legacy_range.ini");
    assert_eq!(c.common.server_addr, "10.1.2.3");
    assert_eq!(
        c.common.metadatas.get("team").map(String::as_str),
        Some("infra")
    );
    let names: Vec<_> = c.proxies.iter().map(|p| p.name()).collect();
    assert_eq!(names, ["me.ssh", "me.web_0", "me.web_1"]);
    assert_eq!(c.proxies[2].remote_port(), Some(18001));
    assert!(c.proxies[2].base().transport.use_encryption);
    assert_eq!(c.visitors[0].base().server_name, "me.ssh");
}

#[test]
fn strict_and_lenient_unknown_keys() {
    let text = "bindPort = 7000\nbogus = 1\n[transport]\nnope = 2";
    match s(text) {
        Err(ConfError::UnknownKeys { keys, .. }) => assert_eq!(keys, ["bogus", "transport.nope"]),
        other => panic!("{other:?}"),
    }
    let ok = parse_server_str(text, "frps.toml", &env(), false).unwrap();
    assert_eq!(ok.bind_port, 7000);
    let e = c("[[proxies]]\nname = \"a\"\ntype = \"tcp\"\nlocalPort = 1\nhealthCheck.typo = 1")
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "frpc.toml: unknown key proxies[0].healthCheck.typo"
    );
}

#[test]
fn validation_reports_every_problem() {
    let e = c("[[proxies]]\nname = \"a\"\ntype = \"http\"\n[[proxies]]\nname = \"a\"\ntype = \"tcp\"\nlocalPort = 1\n[[visitors]]\nname = \"v\"\ntype = \"stcp\"").unwrap_err();
    let ConfError::Invalid { problems, .. } = &e else {
        panic!("{e}")
    };
    let keys: Vec<_> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "proxies[\"a\"].localPort",
            "proxies[\"a\"].customDomains",
            "proxies[\"a\"]",
            "visitors[\"v\"].serverName",
            "visitors[\"v\"].bindPort"
        ]
    );
}

#[test]
fn server_side_proxy_checks() {
    let srv = s("subDomainHost = \"frps.com\"\nvhostHTTPPort = 80").unwrap();
    let cfg = c("[[proxies]]\nname = \"w\"\ntype = \"http\"\nlocalPort = 80\nsubdomain = \"a.b\"\n[[proxies]]\nname = \"s\"\ntype = \"https\"\nlocalPort = 1\ncustomDomains = [\"x.com\"]\n[[proxies]]\nname = \"d\"\ntype = \"http\"\nlocalPort = 1\ncustomDomains = [\"a.frps.com\"]").unwrap();
    assert_eq!(
        validate_proxy_for_server(&cfg.proxies[0], &srv).unwrap_err(),
        "'.' and '*' are not supported in subdomain"
    );
    assert_eq!(
        validate_proxy_for_server(&cfg.proxies[1], &srv).unwrap_err(),
        "type [https] not supported when vhost https port is not set"
    );
    assert_eq!(
        validate_proxy_for_server(&cfg.proxies[2], &srv).unwrap_err(),
        "custom domain [a.frps.com] should not belong to subdomain host [frps.com]"
    );
}

#[test]
fn serializes_to_frp_json_shape() {
    let cfg = client("valid/shared/frpc_full_example.toml");
    let v = serde_json::to_value(&cfg).unwrap();
    assert_eq!(v["serverPort"], 7000);
    assert_eq!(v["proxies"][0]["type"], "tcp");
    assert_eq!(v["proxies"][0]["localIP"], "127.0.0.1");
    assert_eq!(v["proxies"][0]["transport"]["bandwidthLimit"], "1MB");
    assert_eq!(v["proxies"][6]["plugin"]["type"], "unix_domain_socket");
    // Round trip through JSON gives the same model (names already prefixed, so no user).
    let mut v2 = v.clone();
    v2["user"] = "".into();
    let back = parse_client_str(&v2.to_string(), "frpc.json", &env(), true).unwrap();
    assert_eq!(back.proxies, cfg.proxies);
    assert_eq!(back.visitors.len(), cfg.visitors.len());
    let srv = ServerConfig::default();
    let back = parse_server_str(
        &serde_json::to_string(&srv).unwrap(),
        "frps.json",
        &env(),
        true,
    )
    .unwrap();
    assert_eq!(back, srv);
}

#[test]
fn missing_file_is_io_error() {
    let e = load_server_config(Path::new("/nonexistent/frps.toml"), true).unwrap_err();
    assert!(matches!(e, ConfError::Io { .. }));
    assert!(e.to_string().starts_with("/nonexistent/frps.toml: "));
}

proptest::proptest! {
    #[test]
    fn loader_never_panics(text in ".{0,300}") {
        let _ = parse_server_str(&text, "x.toml", &env(), true);
        let _ = parse_client_str(&text, "x.toml", &env(), false);
    }
}

#[test]
fn includes_relative_to_config_dir_from_a_real_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("conf.d")).unwrap();
    std::fs::write(
        dir.path().join("conf.d/extra.ini"),
        "[extra]\nlocal_port = {{ .Envs.HOME_PORT_NOT_SET }}\nremote_port = 7\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("frpc.ini"),
        "[common]\nincludes = conf.d/*.ini\n[main]\nlocal_port = 22\n",
    )
    .unwrap();
    // The include's template yields "<no value>", which go-ini style parsing ignores (warned).
    let e = load_client_config(&dir.path().join("frpc.ini"), true).unwrap_err();
    assert!(
        e.to_string().contains("proxies[\"extra\"].localPort"),
        "{e}"
    );
    std::fs::write(
        dir.path().join("conf.d/extra.ini"),
        "[extra]\nlocal_port = 8\n",
    )
    .unwrap();
    let cfg = load_client_config(&dir.path().join("frpc.ini"), true).unwrap();
    let names: Vec<_> = cfg.proxies.iter().map(|p| p.name()).collect();
    assert_eq!(names, ["main", "extra"]);

    std::fs::write(
        dir.path().join("conf.d/p.toml"),
        "[[proxies]]\nname = \"inc\"\ntype = \"tcp\"\nlocalPort = 5\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("frpc.toml"),
        "includes = [\"conf.d/*.toml\"]\n",
    )
    .unwrap();
    let cfg = load_client_config(&dir.path().join("frpc.toml"), true).unwrap();
    assert_eq!(cfg.proxies[0].name(), "inc");
}

#[test]
fn frp_rs_transport_extensions() {
    let cfg = c("transport.protocol = \"kcp\"\ntransport.kcp.tuning = \"fast\"\ntransport.quic.congestion = \"cubic\"\n")
        .unwrap();
    assert_eq!(cfg.common.transport.kcp.tuning, KcpTuning::Fast);
    assert_eq!(
        cfg.common.transport.quic.congestion,
        Some(QuicCongestion::Cubic)
    );
    let srv = s("kcpBindPort = 7000\ntransport.kcp.tuning = \"compat\"\ntransport.quic.congestion = \"bbr\"\n").unwrap();
    assert_eq!(srv.transport.kcp.tuning, KcpTuning::Compat);
    assert_eq!(srv.transport.quic.congestion, Some(QuicCongestion::Bbr));
    // Unset: frp's behaviour, and nothing extra in frp's JSON shape.
    let plain = c("").unwrap();
    assert_eq!(plain.common.transport.kcp.tuning, KcpTuning::Fast);
    assert_eq!(plain.common.transport.quic.congestion, None);
    let json = serde_json::to_value(&plain.common.transport).unwrap();
    assert!(json.get("kcp").is_none());
    assert!(json["quic"].get("congestion").is_none());
    // A bad value names the key.
    let err = c("transport.kcp.tuning = \"turbo\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("transport.kcp.tuning"), "{err}");
    let err = c("transport.quic.congestion = \"vegas\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("transport.quic.congestion"), "{err}");
}
