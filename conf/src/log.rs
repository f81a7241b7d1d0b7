//! `log.*`: where and how verbosely frps/frpc log (frp `pkg/config/v1/common.go` `LogConfig`).

use serde::{Deserialize, Serialize};

use crate::decode::empty_default;
use crate::defaults;

/// Log levels frp accepts (`validation.SupportedLogLevels`); `""` means `info`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LogLevel {
    /// `trace`.
    #[serde(rename = "trace")]
    Trace,
    /// `debug`.
    #[serde(rename = "debug")]
    Debug,
    /// `info` (default).
    #[default]
    #[serde(rename = "info")]
    Info,
    /// `warn`.
    #[serde(rename = "warn")]
    Warn,
    /// `error`.
    #[serde(rename = "error")]
    Error,
}

impl LogLevel {
    /// frp's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// `log` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogConfig {
    /// `log.to`: `"console"` or a file path. Default `console`.
    #[serde(rename = "to", default)]
    pub to: String,
    /// `log.level`. Default `info`.
    #[serde(
        rename = "level",
        default,
        deserialize_with = "empty_default::deserialize"
    )]
    pub level: LogLevel,
    /// `log.maxDays`: days of rotated files to keep. Default 3.
    #[serde(rename = "maxDays", default)]
    pub max_days: u32,
    /// `log.disablePrintColor`: no colours on the console.
    #[serde(rename = "disablePrintColor", default)]
    pub disable_print_color: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        let mut c = Self {
            to: String::new(),
            level: LogLevel::Info,
            max_days: 0,
            disable_print_color: false,
        };
        c.complete();
        c
    }
}

impl LogConfig {
    /// frp `LogConfig.Complete`.
    pub fn complete(&mut self) {
        defaults::or_str(&mut self.to, defaults::LOG_TO);
        defaults::or_num(&mut self.max_days, defaults::LOG_MAX_DAYS);
    }
}
