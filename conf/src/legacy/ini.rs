//! A small INI reader with the `gopkg.in/ini.v1` behaviours frp's legacy loader relies on
//! (`pkg/config/legacy/*.go` load with `IgnoreInlineComment` and `AllowBooleanKeys`).
//!
//! * `#` / `;` start comment lines; there are no inline comments (`a = b # c` keeps `# c`).
//! * `key = value` or `key: value`; the first `=` or `:` splits; keys and values are trimmed;
//!   a value wrapped in matching `"`, `'` or `` ` `` quotes is unwrapped; a trailing `\`
//!   continues the value on the next line.
//! * A line with no delimiter is a boolean key (`true`) when allowed, else an error.
//! * Keys before the first section belong to `DEFAULT`. Repeated sections merge; a repeated
//!   key keeps its first position and takes the last value.

/// One section: its name and keys in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Section {
    pub(crate) name: String,
    pub(crate) keys: Vec<(String, String)>,
}

impl Section {
    /// The value of `key`, if present.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.keys
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Sets `key` (in place when present).
    pub(crate) fn set(&mut self, key: &str, value: String) {
        match self.keys.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.keys.push((key.to_string(), value)),
        }
    }

    /// Keys starting with `prefix`, with the prefix removed (frp `GetMapWithoutPrefix`).
    pub(crate) fn with_prefix(&self, prefix: &str) -> Vec<(String, String)> {
        self.keys
            .iter()
            .filter_map(|(k, v)| k.strip_prefix(prefix).map(|k| (k.to_string(), v.clone())))
            .collect()
    }
}

/// A parsed INI document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Ini {
    pub(crate) sections: Vec<Section>,
}

/// Name of the implicit first section.
pub(crate) const DEFAULT_SECTION: &str = "DEFAULT";

impl Ini {
    /// The section called `name`.
    pub(crate) fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// The section called `name`, created at the end if missing.
    pub(crate) fn section_mut(&mut self, name: &str) -> &mut Section {
        let idx = match self.sections.iter().position(|s| s.name == name) {
            Some(i) => i,
            None => {
                self.sections.push(Section {
                    name: name.to_string(),
                    keys: Vec::new(),
                });
                self.sections.len() - 1
            }
        };
        &mut self.sections[idx]
    }

    /// Parses `text`; `bool_keys` allows delimiter-less keys.
    pub(crate) fn parse(text: &str, bool_keys: bool) -> Result<Ini, String> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut ini = Ini::default();
        let mut current = DEFAULT_SECTION.to_string();
        let mut lines = text.lines().enumerate();
        while let Some((idx, raw)) = lines.next() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(inner) = line.strip_prefix('[') {
                let Some(end) = inner.find(']') else {
                    return Err(format!("line {}: unclosed section: {line}", idx + 1));
                };
                current = inner[..end].trim().to_string();
                if current.is_empty() {
                    return Err(format!("line {}: empty section name", idx + 1));
                }
                ini.section_mut(&current);
                continue;
            }
            let (key, mut value) = match line.find(['=', ':']) {
                Some(i) => (unquote(line[..i].trim()), line[i + 1..].trim().to_string()),
                None if bool_keys => (unquote(line), "true".to_string()),
                None => {
                    return Err(format!(
                        "line {}: key-value delimiter not found: {line}",
                        idx + 1
                    ))
                }
            };
            while value.ends_with('\\') {
                value.pop();
                match lines.next() {
                    Some((_, next)) => value.push_str(next.trim()),
                    None => break,
                }
            }
            if key.is_empty() {
                return Err(format!("line {}: empty key", idx + 1));
            }
            ini.section_mut(&current).set(&key, unquote(&value));
        }
        Ok(ini)
    }
}

fn unquote(s: &str) -> String {
    for q in ['"', '\'', '`'] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return s[1..s.len() - 1].to_string();
        }
    }
    s.to_string()
}

/// go-ini's boolean spellings (`key.Bool()`); `None` for anything else.
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" | "YES" | "yes" | "Yes" | "y" | "ON" | "on"
        | "On" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" | "NO" | "no" | "No" | "n" | "OFF"
        | "off" | "Off" => Some(false),
        _ => None,
    }
}

/// go-ini's `Strings(",")`: split on commas, trim, drop empties.
pub(crate) fn parse_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_keys_and_quirks() {
        let ini = Ini::parse(
            "top = 1\n[common]\n; c\n# c\nserver_addr = 1.2.3.4 # not a comment\nport: 7000\nq = \"quoted\"\nflag\n[a]\nx=1\n[common]\nport = 7001\nlong = a\\\n b\n",
            true,
        )
        .unwrap();
        assert_eq!(ini.section(DEFAULT_SECTION).unwrap().get("top"), Some("1"));
        let c = ini.section("common").unwrap();
        assert_eq!(c.get("server_addr"), Some("1.2.3.4 # not a comment"));
        assert_eq!(c.get("port"), Some("7001"));
        assert_eq!(c.get("q"), Some("quoted"));
        assert_eq!(c.get("flag"), Some("true"));
        assert_eq!(c.get("long"), Some("ab"));
        assert_eq!(
            ini.sections
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>(),
            ["DEFAULT", "common", "a"]
        );
        assert!(Ini::parse("[common]\nflag\n", false).is_err());
        assert!(Ini::parse("[common\n", true).is_err());
    }

    #[test]
    fn lists_and_bools() {
        assert_eq!(parse_list("a, b,,c "), ["a", "b", "c"]);
        assert_eq!(parse_bool("Yes"), Some(true));
        assert_eq!(parse_bool("off"), Some(false));
        assert_eq!(parse_bool("maybe"), None);
    }
}
