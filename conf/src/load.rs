//! Loading: file → template → format detection → model → completion → validation
//! (frp `pkg/config/load.go` `LoadServerConfig` / `LoadClientConfig`).
//!
//! Order, as frp does it:
//! 1. Legacy INI is detected on the raw text (parses as INI and has `[common]`); it is rendered
//!    with the legacy template (no extra functions) and converted by `legacy`.
//! 2. Otherwise the whole file is rendered with the template, then read as TOML if it parses,
//!    else JSON if it starts with `{`, else YAML (merge keys applied; top-level keys starting
//!    with `.` dropped, so they can hold anchors).
//! 3. frpc `includes`: each glob's directory part is taken relative to the config file's
//!    directory (frp uses the working directory; absolute patterns behave the same), its file
//!    name part matches files there, in name order. Each file is rendered and decoded; only its
//!    proxies and visitors are used. Then `start` filters by un-prefixed name.
//! 4. `auth.tokenSource` is resolved, defaults are completed, and the result is validated;
//!    every problem is reported at once.
//!
//! Strict mode turns unknown keys into [`ConfError::UnknownKeys`]; otherwise they are logged.
//! Keys match frp's JSON names exactly or case-insensitively, as Go's decoder does.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::auth::resolve_token_source;
use crate::client::{decode_client, ClientConfig};
use crate::decode::{decode, DecodeError, Unknown};
use crate::error::{ConfError, Problem};
use crate::legacy;
use crate::server::ServerConfig;
use crate::template::{self, Env};
use crate::validate;

/// The process environment as template data (frp `GetValues`).
pub fn process_env() -> Env {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// Loads, completes and validates an frps configuration file.
pub fn load_server_config(path: &Path, strict: bool) -> Result<ServerConfig, ConfError> {
    let text = read(path)?;
    parse_server_str(&text, &path.to_string_lossy(), &process_env(), strict)
}

/// Loads, completes and validates an frpc configuration file, with `includes` merged and
/// `start` applied.
pub fn load_client_config(path: &Path, strict: bool) -> Result<ClientConfig, ConfError> {
    let text = read(path)?;
    parse_client_str(&text, &path.to_string_lossy(), &process_env(), strict)
}

/// [`load_server_config`] on text: `name` is used in messages, `env` is the template data.
pub fn parse_server_str(
    text: &str,
    name: &str,
    env: &Env,
    strict: bool,
) -> Result<ServerConfig, ConfError> {
    let file = PathBuf::from(name);
    let mut cfg = if legacy::is_legacy_ini(text) {
        tracing::warn!(file = %name, "ini format is deprecated, please use toml/yaml/json");
        let rendered = template::render_legacy(text, env).map_err(|e| template_err(&file, e))?;
        let mut warnings = Vec::new();
        let cfg = legacy::server_config(&rendered, &mut warnings).map_err(|p| invalid(&file, p))?;
        log_warnings(name, &warnings);
        cfg
    } else {
        let value = to_value(text, &file, env)?;
        decode_checked::<ServerConfig>(value, &file, strict)?
    };
    resolve_token_source(
        cfg.auth.method,
        &mut cfg.auth.token,
        &mut cfg.auth.token_source,
    )
    .map_err(|e| invalid(&file, vec![Problem::new("auth.tokenSource", e)]))?;
    cfg.complete();
    validate::check_server(&cfg).map_err(|p| invalid(&file, p))?;
    Ok(cfg)
}

/// [`load_client_config`] on text: `name` is used in messages and, when it is a path, its
/// directory anchors relative `includes`; `env` is the template data (and `http_proxy`).
pub fn parse_client_str(
    text: &str,
    name: &str,
    env: &Env,
    strict: bool,
) -> Result<ClientConfig, ConfError> {
    let file = PathBuf::from(name);
    let base_dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut cfg = if legacy::is_legacy_ini(text) {
        tracing::warn!(file = %name, "ini format is deprecated, please use toml/yaml/json");
        legacy_client(text, &file, &base_dir, env)?
    } else {
        let value = to_value(text, &file, env)?;
        let mut cfg = decode_client_checked(value, &file, strict)?;
        for pattern in cfg.common.includes.clone() {
            for inc in include_files(&base_dir, &pattern, &file)? {
                let text = read(&inc)?;
                let value = to_value(&text, &inc, env)?;
                let extra = decode_client_checked(value, &inc, strict)?;
                cfg.proxies.extend(extra.proxies);
                cfg.visitors.extend(extra.visitors);
            }
        }
        let start = &cfg.common.start;
        if !start.is_empty() {
            cfg.proxies.retain(|p| start.iter().any(|s| s == p.name()));
            cfg.visitors.retain(|v| start.iter().any(|s| s == v.name()));
        }
        cfg
    };
    let auth = &mut cfg.common.auth;
    resolve_token_source(auth.method, &mut auth.token, &mut auth.token_source)
        .map_err(|e| invalid(&file, vec![Problem::new("auth.tokenSource", e)]))?;
    cfg.common.complete();
    if cfg.common.transport.proxy_url.is_empty() {
        if let Some(p) = env.get("http_proxy") {
            cfg.common.transport.proxy_url = p.clone();
        }
    }
    let user = cfg.common.user.clone();
    cfg.proxies.iter_mut().for_each(|p| p.complete(&user));
    cfg.visitors.iter_mut().for_each(|v| v.complete(&user));
    let warnings = validate::check_client(&cfg).map_err(|p| invalid(&file, p))?;
    log_warnings(name, &warnings);
    Ok(cfg)
}

fn legacy_client(
    text: &str,
    file: &Path,
    base_dir: &Path,
    env: &Env,
) -> Result<ClientConfig, ConfError> {
    let rendered = template::render_legacy(text, env).map_err(|e| template_err(file, e))?;
    let mut ini = legacy::Ini::parse(&rendered, true).map_err(|e| syntax(file, e))?;
    let mut warnings = Vec::new();
    let common = legacy::client_common(&ini, &mut warnings).map_err(|p| invalid(file, p))?;
    // frp appends every included file (rendered) to the main text before reading sections.
    for pattern in &common.includes {
        for inc in include_files(base_dir, pattern, file)? {
            let inc_text = read(&inc)?;
            let rendered =
                template::render_legacy(&inc_text, env).map_err(|e| template_err(&inc, e))?;
            let extra = legacy::Ini::parse(&rendered, true).map_err(|e| syntax(&inc, e))?;
            for section in extra.sections {
                let target = ini.section_mut(&section.name);
                for (k, v) in section.keys {
                    target.set(&k, v);
                }
            }
        }
    }
    let (proxies, visitors) =
        legacy::client_proxies(ini, &common.start, &mut warnings).map_err(|p| invalid(file, p))?;
    log_warnings(&file.to_string_lossy(), &warnings);
    Ok(ClientConfig {
        common,
        proxies,
        visitors,
    })
}

fn read(path: &Path) -> Result<String, ConfError> {
    std::fs::read_to_string(path).map_err(|source| ConfError::Io {
        file: path.to_path_buf(),
        source,
    })
}

fn log_warnings(file: &str, warnings: &[String]) {
    for w in warnings {
        tracing::warn!(file = %file, "{w}");
    }
}

fn template_err(file: &Path, e: template::TemplateError) -> ConfError {
    ConfError::Template {
        file: file.to_path_buf(),
        line: e.line,
        reason: e.reason,
    }
}

fn syntax(file: &Path, reason: impl Into<String>) -> ConfError {
    ConfError::Syntax {
        file: file.to_path_buf(),
        reason: reason.into(),
    }
}

fn invalid(file: &Path, problems: Vec<Problem>) -> ConfError {
    ConfError::Invalid {
        file: file.to_path_buf(),
        problems,
    }
}

fn field_err(file: &Path, e: DecodeError) -> ConfError {
    ConfError::Field {
        file: file.to_path_buf(),
        key: e.path.unwrap_or_default(),
        reason: e.msg,
    }
}

fn check_unknown(unknown: &Unknown, file: &Path, strict: bool) -> Result<(), ConfError> {
    let keys = unknown.take();
    if keys.is_empty() {
        return Ok(());
    }
    if strict {
        return Err(ConfError::UnknownKeys {
            file: file.to_path_buf(),
            keys,
        });
    }
    for k in keys {
        tracing::warn!(file = %file.display(), key = %k, "ignoring unknown key");
    }
    Ok(())
}

fn decode_checked<T: serde::de::DeserializeOwned>(
    value: Value,
    file: &Path,
    strict: bool,
) -> Result<T, ConfError> {
    let unknown = Unknown::default();
    let out = decode::<T>(value, "", &unknown).map_err(|e| field_err(file, e))?;
    check_unknown(&unknown, file, strict)?;
    Ok(out)
}

fn decode_client_checked(
    value: Value,
    file: &Path,
    strict: bool,
) -> Result<ClientConfig, ConfError> {
    let unknown = Unknown::default();
    let out = decode_client(value, &unknown).map_err(|e| field_err(file, e))?;
    check_unknown(&unknown, file, strict)?;
    Ok(out)
}

/// Renders `text` and turns it into a JSON value the way frp's `LoadConfigure` picks a format.
fn to_value(text: &str, file: &Path, env: &Env) -> Result<Value, ConfError> {
    let rendered = template::render(text, env).map_err(|e| template_err(file, e))?;
    parse_document(&rendered).map_err(|e| syntax(file, e))
}

/// TOML if it parses, else JSON if it starts with `{`, else YAML.
pub(crate) fn parse_document(text: &str) -> Result<Value, String> {
    let toml_err = match text.parse::<toml::Table>() {
        Ok(table) => return serde_json::to_value(table).map_err(|e| e.to_string()),
        Err(e) => e,
    };
    if text.trim_start().starts_with('{') {
        return serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"));
    }
    let mut yaml: serde_yaml::Value = serde_yaml::from_str(text)
        .map_err(|e| format!("neither TOML ({}) nor YAML ({e})", toml_err.message()))?;
    yaml.apply_merge()
        .map_err(|e| format!("invalid YAML merge: {e}"))?;
    match &mut yaml {
        serde_yaml::Value::Mapping(m) => {
            m.retain(|k, _| !k.as_str().is_some_and(|k| k.starts_with('.')));
        }
        serde_yaml::Value::Null => return Ok(Value::Object(Default::default())),
        // A scalar means the text was neither TOML nor a YAML document: report TOML's view.
        _ => return Err(format!("invalid TOML: {toml_err}")),
    }
    serde_json::to_value(yaml).map_err(|e| format!("invalid YAML: {e}"))
}

/// Files matching one `includes` pattern: directory part relative to `base_dir`, glob on the
/// file name (frp `LoadAdditionalClientConfigs`).
fn include_files(base_dir: &Path, pattern: &str, file: &Path) -> Result<Vec<PathBuf>, ConfError> {
    let p = Path::new(pattern);
    let dir = base_dir.join(p.parent().unwrap_or_else(|| Path::new("")));
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let glob = glob::Pattern::new(name).map_err(|e| {
        invalid(
            file,
            vec![Problem::new(
                "includes",
                format!("bad pattern {pattern:?}: {e}"),
            )],
        )
    })?;
    let entries = std::fs::read_dir(if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        &dir
    })
    .map_err(|e| {
        invalid(
            file,
            vec![Problem::new(
                "includes",
                format!("directory of {pattern} cannot be read: {e}"),
            )],
        )
    })?;
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| !t.is_dir()))
        .filter(|e| e.file_name().to_str().is_some_and(|n| glob.matches(n)))
        .map(|e| e.path())
        .collect();
    out.sort();
    Ok(out)
}
