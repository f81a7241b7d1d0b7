//! `frps verify -c` / `frpc verify -c` (issue 2, item 8): frp's own example configs (v1 TOML
//! and legacy INI, copied unchanged from frp 0.65.0 `conf/` into `tests/fixtures/`) are valid
//! for each implementation, the harness's own configs are valid, and an unknown key fails
//! with a non-zero exit code and the key named in the output (frp's strict mode, the default).

use std::path::PathBuf;

use anyhow::{anyhow, ensure, Result};
use e2e::*;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/frp-0.65.0-conf")
        .join(name)
}

/// Runs verify and requires exit code 0.
async fn expect_valid(ctx: &Ctx, imp: Impl, role: Role, path: PathBuf) -> Result<()> {
    let (status, output) = ctx.verify(imp, role, &path).await?;
    ensure!(
        status.success(),
        "{role} ({imp}) verify -c {} failed ({status}):\n{output}",
        path.display()
    );
    Ok(())
}

/// Runs verify on `text` and requires a non-zero exit code and `key` in the output.
async fn expect_unknown_key(
    ctx: &Ctx,
    imp: Impl,
    role: Role,
    file: &str,
    text: &str,
    key: &str,
) -> Result<()> {
    let path = ctx.write_file(file, text)?;
    let (status, output) = ctx.verify(imp, role, &path).await?;
    ensure_failed_exit(
        status,
        &format!("{role} ({imp}) verify of a config with unknown key {key}"),
    )
    .map_err(|e| anyhow!("{e}; its output:\n{output}"))?;
    ensure_contains(
        &output,
        key,
        &format!("{role} ({imp}) verify must name the unknown key"),
    )
}

async fn verify(ctx: Ctx) -> Result<()> {
    // Both sides of a per-implementation combo are the same implementation.
    let imp = ctx.combo().frps;
    for (role, name) in [
        (Role::Frps, "frps_full_example.toml"),
        (Role::Frpc, "frpc_full_example.toml"),
        (Role::Frps, "frps_legacy_full.ini"),
        (Role::Frpc, "frpc_legacy_full.ini"),
    ] {
        expect_valid(&ctx, imp, role, fixture(name)).await?;
    }

    // What the harness writes must be valid for both implementations.
    let frps = FrpsConfig::new(7000)
        .token("t")
        .tcp_mux(false)
        .tls_force(true)
        .allow(PortSpec::Single(8000))
        .allow(PortSpec::Range(9000, 9100))
        .max_ports_per_client(3)
        .additional_scopes(&["HeartBeats", "NewWorkConns"]);
    let path = ctx.write_file("harness-frps.toml", &frps.to_toml())?;
    expect_valid(&ctx, imp, Role::Frps, path).await?;
    let frpc = FrpcConfig::new(7000)
        .token("t")
        .login_fail_exit(false)
        .tcp_mux(false)
        .tls(true, true)
        .pool_count(2)
        .additional_scopes(&["HeartBeats"])
        .proxy(
            TcpProxy::new("a", 22, 6000)
                .encrypted_compressed()
                .bandwidth_limit("1MB"),
        )
        .proxy(TcpProxy::new("b", 23, 0));
    let path = ctx.write_file("harness-frpc.toml", &frpc.to_toml())?;
    expect_valid(&ctx, imp, Role::Frpc, path).await?;

    expect_unknown_key(
        &ctx,
        imp,
        Role::Frps,
        "bad-frps.toml",
        "bindPort = 7000\nbogusServerKey = 1\n",
        "bogusServerKey",
    )
    .await?;
    expect_unknown_key(
        &ctx,
        imp,
        Role::Frpc,
        "bad-frpc.toml",
        "serverAddr = \"127.0.0.1\"\nserverPort = 7000\nfooBarKey = 3\n",
        "fooBarKey",
    )
    .await?;
    expect_unknown_key(
        &ctx,
        imp,
        Role::Frpc,
        "bad-frpc-nested.toml",
        "serverPort = 7000\ntransport.bogusNested = true\n",
        "bogusNested",
    )
    .await?;
    expect_unknown_key(
        &ctx,
        imp,
        Role::Frpc,
        "bad-frpc-proxy.toml",
        "serverPort = 7000\n\n[[proxies]]\nname = \"x\"\ntype = \"tcp\"\nlocalPort = 22\nremotePort = 6000\nunknownProxyKey = 1\n",
        "unknownProxyKey",
    )
    .await?;
    Ok(())
}

per_impl_test!(verify_configs, verify);
