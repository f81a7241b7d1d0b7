//! The real `frps::run` and `frpc::run` on turmoil's simulated network, through the `Net` seam,
//! with frp's default transport (TLS + yamux): a user on a third host reaches a backend on a
//! fourth through a tcp proxy. Proves the seam carries everything; the fault scenarios build on it.

use std::time::Duration;

use sim::TurmoilNet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

const FRPS_TOML: &str = r#"
bindPort = 7000
auth.token = "sim"
"#;

const FRPC_TOML: &str = r#"
serverAddr = "frps"
serverPort = 7000
auth.token = "sim"
loginFailExit = false

[[proxies]]
name = "echo"
type = "tcp"
localIP = "backend"
localPort = 9000
remotePort = 6000
transport.useEncryption = true
transport.useCompression = true
"#;

#[test]
fn tcp_proxy_round_trip_on_simulated_network() -> turmoil::Result {
    let mut sim = turmoil::Builder::new()
        .simulation_duration(Duration::from_secs(60))
        .build();
    let env = conf::Env::new();

    sim.host("backend", || async {
        let listener = turmoil::net::TcpListener::bind("0.0.0.0:9000").await?;
        loop {
            let (mut conn, _) = listener.accept().await?;
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if conn.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
    });

    let frps_cfg = conf::parse_server_str(FRPS_TOML, "frps.toml", &env, true)?;
    sim.host("frps", move || {
        let cfg = frps_cfg.clone();
        async move {
            frps::run(cfg, TurmoilNet::default(), CancellationToken::new()).await?;
            Ok(())
        }
    });

    let frpc_cfg = conf::parse_client_str(FRPC_TOML, "frpc.toml", &env, true)?;
    sim.host("frpc", move || {
        let cfg = frpc_cfg.clone();
        async move {
            frpc::run(cfg, TurmoilNet::default(), CancellationToken::new()).await?;
            Ok(())
        }
    });

    sim.client("user", async {
        // The proxy appears once frpc has logged in; retry until it does.
        let conn = loop {
            match turmoil::net::TcpStream::connect(("frps", 6000)).await {
                Ok(c) => break c,
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        let data: Vec<u8> = (0..256 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
        let (mut rd, mut wr) = conn.into_split();
        let send = async {
            wr.write_all(&data).await?;
            Ok::<_, std::io::Error>(())
        };
        let mut back = vec![0u8; data.len()];
        let recv = rd.read_exact(&mut back);
        let (sent, got) = tokio::join!(send, recv);
        sent?;
        got?;
        assert!(back == data, "echoed bytes differ");
        Ok(())
    });

    sim.run()
}
