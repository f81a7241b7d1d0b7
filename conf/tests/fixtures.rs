//! Every fixture under `tests/fixtures/{valid,invalid,divergent}` is accepted / rejected by
//! us, and — when the real frp 0.65.0 binaries are present in `.cache/frp-0.65.0/` — by
//! `frps verify` / `frpc verify` the same way (divergent: frp accepts, we reject on purpose;
//! see `fixtures/divergent/README.md`).

use std::path::{Path, PathBuf};
use std::process::Command;

use conf::{parse_client_str, parse_server_str, ConfError, Env};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Template data shared by our loader and the frp binaries.
fn test_env() -> Vec<(&'static str, String)> {
    vec![
        ("FRP_FIXTURES", fixtures().to_string_lossy().into_owned()),
        ("FRP_SERVER_ADDR", "10.1.2.3".into()),
        ("FRP_TEST_PORT", "7100".into()),
        ("FRP_TOKEN", "tok".into()),
        ("FRP_DOMAIN", "www.example.com".into()),
    ]
}

fn env_map() -> Env {
    let mut env = conf::process_env();
    env.remove("http_proxy");
    env.extend(test_env().into_iter().map(|(k, v)| (k.to_string(), v)));
    env
}

fn files(dir: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(fixtures().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            (name.starts_with("frps_") || name.starts_with("frpc_"))
                && ["toml", "yaml", "json", "ini"]
                    .iter()
                    .any(|ext| p.extension().is_some_and(|e| e == *ext))
        })
        .collect();
    out.sort();
    out
}

fn is_server(p: &Path) -> bool {
    p.file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("frps_")
}

fn ours(p: &Path) -> Result<(), ConfError> {
    let text = std::fs::read_to_string(p).unwrap();
    let name = p.to_string_lossy();
    if is_server(p) {
        parse_server_str(&text, &name, &env_map(), true).map(drop)
    } else {
        parse_client_str(&text, &name, &env_map(), true).map(drop)
    }
}

/// Whether the real binary accepts `p`. A missing binary fails the test: the interop checks
/// must never be skipped silently (run `scripts/fetch-frp.sh`).
fn frp_accepts(p: &Path) -> bool {
    let dir = std::env::var_os("FRP_BIN_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.cache/frp-0.65.0"));
    let bin = dir.join(if is_server(p) { "frps" } else { "frpc" });
    assert!(
        bin.exists(),
        "frp 0.65.0 binary {} is missing: run scripts/fetch-frp.sh",
        bin.display()
    );
    // frp resolves relative `includes` against the working directory: run it from the
    // fixture's directory so both sides see the same files.
    let out = Command::new(bin)
        .args(["verify", "-c"])
        .arg(p.file_name().unwrap())
        .current_dir(p.parent().unwrap())
        .env_remove("http_proxy")
        .envs(test_env())
        .output()
        .unwrap();
    out.status.success()
}

#[test]
fn valid_fixtures_load() {
    let all = [files("valid"), files("valid/shared")].concat();
    assert!(all.len() >= 15);
    for p in all {
        if let Err(e) = ours(&p) {
            panic!("{} should load: {e}", p.display());
        }
    }
}

#[test]
fn invalid_fixtures_fail_with_clear_errors() {
    let expected: &[(&str, &str)] = &[
        ("frpc_annotation_key.toml", "annotation key -bad key is invalid"),
        ("frpc_bad_protocol.toml", "transport.protocol: unknown variant `sctp`"),
        ("frpc_bad_proxy_type.toml", "proxies[0].type: unknown proxy type: \"ftp\""),
        ("frpc_bad_yaml.yaml", "YAML"),
        ("frpc_bandwidth_mode.toml", "proxies[0].transport.bandwidthLimitMode: unknown variant `both`"),
        ("frpc_bandwidth_unit.toml", "proxies[0].transport.bandwidthLimit: bandwidth \"10GB\": unit not support"),
        ("frpc_health_http_no_path.toml", "proxies[\"t\"].healthCheck.path: health check path should not be empty"),
        ("frpc_heartbeat.toml", "transport.heartbeatTimeout: heartbeat timeout should not less than heartbeat interval"),
        ("frpc_http_no_domain.toml", "subdomain and custom domains should not be both empty"),
        ("frpc_include_missing_dir.toml", "includes: directory of no-such-dir/*.toml cannot be read"),
        ("frpc_legacy_bad_role.ini", "proxy x role should be 'server' or 'visitor'"),
        ("frpc_legacy_bad_type.ini", "invalid type [ftp]"),
        ("frpc_plugin_missing_field.toml", "plugin static_file: localPath is required"),
        ("frpc_proxy_protocol_version.toml", "proxies[0].transport.proxyProtocolVersion: unknown variant `v3`"),
        ("frpc_proxy_type_missing.toml", "proxies[0].type: unknown proxy type: \"\""),
        ("frpc_tcpmux_bad_multiplexer.toml", "proxies[0].multiplexer: unknown variant `sni`"),
        ("frpc_unknown_plugin.toml", "proxies[0].plugin.type: unknown plugin type: ftp_proxy"),
        ("frpc_unknown_plugin_key.toml", "unknown key proxies[0].plugin.user"),
        ("frpc_unknown_proxy_key.toml", "unknown key proxies[0].remotPort"),
        ("frpc_virtualnet_no_gate.toml", "virtualNet.address: VirtualNet feature is not enabled"),
        ("frpc_visitor_no_bind_port.toml", "visitors[\"v\"].bindPort: bind port is required"),
        ("frpc_visitor_no_server_name.toml", "visitors[\"v\"].serverName: server name is required"),
        ("frpc_xtcp_visitor_protocol.toml", "visitors[0].protocol: unknown variant `tcp`"),
        ("frps_bad_auth_method.toml", "auth.method: unknown variant `password`"),
        ("frps_bad_log_level.toml", "log.level: unknown variant `verbose`"),
        ("frps_bad_plugin_op.toml", "httpPlugins[0].ops[1]: unknown variant `Logout`"),
        ("frps_bad_scope.json", "auth.additionalScopes[1]: unknown variant `Pings`"),
        ("frps_bad_template.toml", "frps_bad_template.toml:2: template: unterminated quoted string"),
        ("frps_bad_toml_json.json", "invalid JSON"),
        ("frps_bad_type.toml", "frps_bad_type.toml: transport.maxPoolCount: invalid type: string \"x\", expected u32"),
        ("frps_port_out_of_range.toml", "vhostHTTPPort: invalid value: integer `70000`, expected u16"),
        ("frps_tokensource_bad_type.toml", "auth.tokenSource.type: unknown variant `env`"),
        ("frps_tokensource_missing.toml", "auth.tokenSource: failed to resolve auth.tokenSource: failed to read file /nonexistent/frp-token-file"),
        ("frps_unknown_key.toml", "frps_unknown_key.toml: unknown key bindPorts"),
        ("frps_unknown_nested_key.yaml", "unknown key transport.tls.forse"),
        ("frps_webserver_tls_no_key.toml", "webServer.tls.keyFile: must be specified when tls is enabled"),
    ];
    let all = files("invalid");
    assert_eq!(
        all.len(),
        expected.len(),
        "every invalid fixture has an expectation"
    );
    for p in all {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let err = match ours(&p) {
            Ok(()) => panic!("{name} should be rejected"),
            Err(e) => e.to_string(),
        };
        let want = expected
            .iter()
            .find(|(f, _)| *f == name)
            .unwrap_or_else(|| panic!("no expectation for {name}: {err}"))
            .1;
        assert!(
            err.contains(want),
            "{name}: {err:?} does not contain {want:?}"
        );
        assert!(
            err.contains(&name),
            "{name}: error does not name the file: {err}"
        );
    }
}

#[test]
fn divergent_fixtures_are_rejected() {
    let all = files("divergent");
    assert_eq!(all.len(), 5);
    for p in all {
        assert!(ours(&p).is_err(), "{} should be rejected", p.display());
    }
}

#[test]
fn real_frp_binaries_agree() {
    let mut checked = 0;
    for (dir, frp_should_accept) in [
        ("valid", true),
        ("valid/shared", true),
        ("invalid", false),
        ("divergent", true),
    ] {
        for p in files(dir) {
            let accepted = frp_accepts(&p);
            assert_eq!(accepted, frp_should_accept, "frp verify on {}", p.display());
            checked += 1;
        }
    }
    assert!(checked > 50);
}
