//! frp's flag spelling: cobra/pflag with frp's `WordSepNormalizeFunc`, under which
//! `--bind_port` and `--bind-port` name the same flag. Our clap definitions use dashes; this
//! rewrites underscores in long flag names (not in values) before clap sees them.

/// Rewrites `--a_b[=v]` to `--a-b[=v]`; everything else passes through unchanged.
pub fn normalize_args(args: impl IntoIterator<Item = String>) -> Vec<String> {
    args.into_iter()
        .map(|a| match a.strip_prefix("--") {
            Some(rest) => match rest.split_once('=') {
                Some((name, value)) => format!("--{}={value}", name.replace('_', "-")),
                None => format!("--{}", rest.replace('_', "-")),
            },
            None => a,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_long_flag_names_change() {
        let v: Vec<String> = ["frps", "--bind_port=7_0", "--log_level", "a_b", "-t", "x_y"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            normalize_args(v),
            ["frps", "--bind-port=7_0", "--log-level", "a_b", "-t", "x_y"]
        );
    }
}
