//! frpc config templates and includes (issue 2, item 4): `{{ .Envs.X }}` values, a `range`
//! over `parseNumberRange` generating proxies, and `includes` adding a proxy from `conf.d/`.

use anyhow::{Context, Result};
use e2e::ports::{free_port_range, free_ports};
use e2e::*;

const TOKEN: &str = "template-token";

/// The main frpc config: Go `text/template` syntax, rendered by frpc before parsing.
const FRPC_TEMPLATE: &str = r#"serverAddr = "127.0.0.1"
serverPort = {{ .Envs.FRP_E2E_SERVER_PORT }}
auth.token = "{{ .Envs.FRP_E2E_TOKEN }}"
includes = ["./conf.d/*.toml"]

{{ range $_, $v := parseNumberRange .Envs.FRP_E2E_PORTS }}
[[proxies]]
name = "range-{{ $v }}"
type = "tcp"
localIP = "127.0.0.1"
localPort = {{ $.Envs.FRP_E2E_LOCAL_PORT }}
remotePort = {{ $v }}
{{ end }}
"#;

async fn template_and_includes(ctx: Ctx) -> Result<()> {
    let echo = EchoServer::start().await?;
    let frps = ctx
        .start_frps(|port| FrpsConfig::new(port).token(TOKEN))
        .await?;
    // Three consecutive ports ("a-b" syntax) plus one single port (",c" syntax).
    let start = free_port_range(3)?;
    let singles = free_ports(2)?;
    let (single, included) = (singles[0], singles[1]);
    let range = format!("{start}-{},{single}", start + 2);

    ctx.write_file(
        "conf.d/extra.toml",
        &format!(
            "[[proxies]]\nname = \"included\"\ntype = \"tcp\"\nlocalIP = \"127.0.0.1\"\n\
             localPort = {}\nremotePort = {included}\n",
            echo.port()
        ),
    )?;
    // Not matched by the glob: must be ignored (it would not parse).
    ctx.write_file("conf.d/notes.txt", "this is [not toml\n")?;
    let main = ctx.write_file("frpc.toml", FRPC_TEMPLATE)?;
    let envs = vec![
        ("FRP_E2E_SERVER_PORT".to_owned(), frps.port().to_string()),
        ("FRP_E2E_TOKEN".to_owned(), TOKEN.to_owned()),
        ("FRP_E2E_PORTS".to_owned(), range.clone()),
        ("FRP_E2E_LOCAL_PORT".to_owned(), echo.port().to_string()),
    ];
    let frpc = ctx.start_frpc_file(&main, envs)?;

    let mut remotes: Vec<u16> = (start..start + 3).collect();
    remotes.push(single);
    remotes.push(included);
    for port in remotes {
        wait_tunnel(port, TUNNEL_TIMEOUT, &[&frps, &frpc])
            .await
            .with_context(|| {
                format!("proxy on remote port {port} (range {range:?}, included {included})")
            })?;
    }
    Ok(())
}

interop_test!(template_range_includes, template_and_includes);
