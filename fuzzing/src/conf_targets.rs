//! `conf_toml` and `conf_template`: config loading (`conf::parse_server_str`,
//! `conf::parse_client_str`) and the Go-template renderer (`conf::template`) on arbitrary
//! text.

use std::time::{Duration, Instant};

use conf::template::{self, Env};

/// Longest a render or a parse may take on fuzz-sized input before it counts as a hang:
/// the renderer caps its work (steps and output size), so anything slower is a bug.
const SLOW: Duration = Duration::from_secs(5);
/// Extra parse time allowed per byte of the rendered document: a template may legitimately
/// expand to thousands of proxies (`range parseNumberRange "2000-6002"`, found by the fuzzer
/// at ~2 s under ASan), and loading is linear in that; a superlinear blowup still trips it.
const SLOW_PER_RENDERED_BYTE: Duration = Duration::from_micros(50);

fn env() -> Env {
    [("FRP_PORT", "7000"), ("NAME", "fuzz"), ("EMPTY", "")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Renders `data` (as UTF-8) with the v1 and the legacy function sets. Properties: no
/// panic, bounded time, a text without `{{` renders to itself, and rendering is
/// deterministic.
pub fn conf_template(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let env = env();
    let start = Instant::now();
    let v1 = template::render(text, &env);
    let legacy = template::render_legacy(text, &env);
    assert!(start.elapsed() < SLOW, "render took {:?}", start.elapsed());
    if !text.contains("{{") {
        assert_eq!(v1.as_deref(), Ok(text), "text without actions changed");
        assert_eq!(legacy.as_deref(), Ok(text), "text without actions changed");
    }
    if let Ok(out) = &v1 {
        assert_eq!(
            template::render(text, &env).as_ref(),
            Ok(out),
            "rendering is not deterministic"
        );
    }
}

/// Parses `data` (as UTF-8) as an frps and as an frpc config, strict and lenient.
/// Properties: no panic and bounded time. Inputs that would make the loader read files
/// (`includes`, `auth.tokenSource`) are skipped: the fuzzer must not read the machine's
/// files, and the config is trusted local input anyway.
pub fn conf_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let env = env();
    let Some(rendered_len) = rendered_len_if_no_files(text, &env) else {
        return;
    };
    let start = Instant::now();
    for strict in [true, false] {
        let _ = conf::parse_server_str(text, "fuzz.toml", &env, strict);
        let _ = conf::parse_client_str(text, "fuzz.toml", &env, strict);
    }
    let limit = SLOW + SLOW_PER_RENDERED_BYTE * u32::try_from(rendered_len).unwrap_or(u32::MAX);
    assert!(
        start.elapsed() < limit,
        "parse of {rendered_len} rendered bytes took {:?}",
        start.elapsed()
    );
}

/// The length of the longest rendering of `text`, or `None` if loading it could read a
/// file: a key spelling `includes` or `tokenSource` (compared as the loader does,
/// case-insensitively, and also with `_`/`-` removed) in the rendered document, as TOML,
/// YAML, JSON or INI.
fn rendered_len_if_no_files(text: &str, env: &Env) -> Option<usize> {
    let mut rendered = vec![text.to_string()];
    for r in [
        template::render(text, env),
        template::render_legacy(text, env),
    ] {
        match r {
            Ok(r) if !rendered.contains(&r) => rendered.push(r),
            _ => {}
        }
    }
    let reads = rendered.iter().any(|t| {
        let lower = t.to_ascii_lowercase();
        // INI keys are bare words on their own line; cheap and conservative.
        if lower.contains("includes") || lower.contains("token_source") {
            return true;
        }
        documents(t).iter().any(has_file_key)
    });
    (!reads).then(|| rendered.iter().map(String::len).max().unwrap_or(0))
}

/// `t` as a JSON value in every format the loader might read it as.
fn documents(t: &str) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    if let Ok(table) = t.parse::<toml::Table>() {
        out.extend(serde_json::to_value(table).ok());
    }
    if let Ok(mut yaml) = serde_yaml::from_str::<serde_yaml::Value>(t) {
        if yaml.apply_merge().is_ok() {
            out.extend(serde_json::to_value(yaml).ok());
        }
    }
    out.extend(serde_json::from_str::<serde_json::Value>(t).ok());
    out
}

fn is_file_key(k: &str) -> bool {
    let k: String = k
        .chars()
        .filter(|c| !matches!(c, '_' | '-'))
        .flat_map(char::to_lowercase)
        .collect();
    k.contains("include") || k.contains("tokensource")
}

fn has_file_key(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Object(m) => m.iter().any(|(k, v)| is_file_key(k) || has_file_key(v)),
        serde_json::Value::Array(a) => a.iter().any(has_file_key),
        _ => false,
    }
}
