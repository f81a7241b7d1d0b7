//! Decoding a JSON value tree into the typed model the way frp's Go `encoding/json` does.
//!
//! frp turns TOML and YAML into JSON and decodes that (`pkg/config/load.go`). We do the same:
//! every format becomes a [`serde_json::Value`], then [`decode`] drives the model's derived
//! `Deserialize` impls through our own [`serde::Deserializer`] over that tree. Owning the
//! deserializer gives us three Go behaviours serde lacks, without `flatten` or `serde_ignored`:
//!
//! * **Case-insensitive keys.** Go matches a JSON key to a struct field exactly first, then
//!   case-insensitively. In `deserialize_struct` we see the field list and rename keys that
//!   differ only by case, so `BindPort = 7000` works as it does in frps. Map-typed fields
//!   (`metadatas`, `featureGates`, ...) are never folded.
//! * **Unknown keys with their full path.** Keys matching no field are removed and recorded
//!   (e.g. `proxies[0].transport.useEncrypton`); strict mode turns them into an error.
//! * **Error paths.** A type error is reported with the key path where it happened.
//!
//! JSON `null` (YAML `key:` with no value) on a struct field is treated as absent, as Go's
//! decoder leaves the field untouched.

use std::cell::RefCell;
use std::fmt;

use serde::de::value::StringDeserializer;
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};
use serde::forward_to_deserialize_any;
use serde_json::{Map, Value};

/// A decode failure with the key path where it happened.
#[derive(Debug)]
pub(crate) struct DecodeError {
    pub(crate) path: Option<String>,
    pub(crate) msg: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for DecodeError {}

impl de::Error for DecodeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DecodeError {
            path: None,
            msg: msg.to_string(),
        }
    }
}

impl DecodeError {
    fn at(mut self, path: &str) -> Self {
        if self.path.is_none() && !path.is_empty() {
            self.path = Some(path.to_string());
        }
        self
    }
}

/// Collects unknown keys met while decoding one document.
#[derive(Debug, Default)]
pub(crate) struct Unknown {
    keys: RefCell<Vec<String>>,
}

impl Unknown {
    pub(crate) fn push(&self, key: String) {
        self.keys.borrow_mut().push(key);
    }

    pub(crate) fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.keys.borrow_mut())
    }
}

/// Joins a parent path and a key.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Go's `encoding/json` key folding (close enough: Unicode lower-casing).
pub(crate) fn fold_eq(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b) || (!a.is_ascii() && a.to_lowercase() == b.to_lowercase())
}

/// Finds the canonical field name `key` refers to: exact match first, then case-folded.
pub(crate) fn match_field(fields: &[&'static str], key: &str) -> Option<&'static str> {
    fields
        .iter()
        .find(|f| **f == key)
        .or_else(|| fields.iter().find(|f| fold_eq(f, key)))
        .copied()
}

/// Decodes `value` (found at `path`) into `T`, recording unknown keys in `unknown`.
pub(crate) fn decode<T: DeserializeOwned>(
    value: Value,
    path: &str,
    unknown: &Unknown,
) -> Result<T, DecodeError> {
    T::deserialize(ValueDe {
        value,
        path: path.to_string(),
        unknown,
    })
    .map_err(|e| e.at(path))
}

/// The JSON field names of a struct deriving `Deserialize` (without `flatten`), as serde sees
/// them; used to split one proxy object between the shared base and the per-type part.
pub(crate) fn struct_fields<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(FieldProbe(&mut fields));
    fields
}

struct FieldProbe<'a>(&'a mut &'static [&'static str]);

impl<'de> de::Deserializer<'de> for FieldProbe<'_> {
    type Error = de::value::Error;

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("field probe"))
    }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("field probe"))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

struct ValueDe<'u> {
    value: Value,
    path: String,
    unknown: &'u Unknown,
}

impl<'de, 'u> de::Deserializer<'de> for ValueDe<'u> {
    type Error = DecodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match self.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    visitor.visit_u64(u)
                } else if let Some(i) = n.as_i64() {
                    visitor.visit_i64(i)
                } else {
                    visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => visitor.visit_string(s),
            Value::Array(items) => {
                let mut seq = SeqDe {
                    items: items.into_iter().enumerate(),
                    path: self.path,
                    unknown: self.unknown,
                };
                visitor.visit_seq(&mut seq)
            }
            Value::Object(map) => visitor.visit_map(MapDe::new(map, self.path, self.unknown)),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match self.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        match self.value {
            Value::String(s) => {
                let de: StringDeserializer<DecodeError> = s.into_deserializer();
                visitor.visit_enum(de)
            }
            other => Err(de::Error::invalid_type(unexpected(&other), &visitor)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        let map = match self.value {
            Value::Object(map) => map,
            other => return Err(de::Error::invalid_type(unexpected(&other), &visitor)),
        };
        let mut out = Map::new();
        for (key, value) in map {
            if value.is_null() {
                continue;
            }
            match match_field(fields, &key) {
                Some(canon) if canon == key => {
                    out.insert(key, value);
                }
                Some(canon) => {
                    // An exact spelling elsewhere in the object wins over a folded one.
                    if !out.contains_key(canon) {
                        out.insert(canon.to_string(), value);
                    }
                }
                None => self.unknown.push(join(&self.path, &key)),
            }
        }
        visitor.visit_map(MapDe::new(out, self.path, self.unknown))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

fn unexpected(v: &Value) -> de::Unexpected<'_> {
    match v {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(b) => de::Unexpected::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => de::Unexpected::Unsigned(u),
            (_, Some(i), _) => de::Unexpected::Signed(i),
            (_, _, Some(f)) => de::Unexpected::Float(f),
            _ => de::Unexpected::Other("number"),
        },
        Value::String(s) => de::Unexpected::Str(s),
        Value::Array(_) => de::Unexpected::Seq,
        Value::Object(_) => de::Unexpected::Map,
    }
}

struct SeqDe<'u> {
    items: std::iter::Enumerate<std::vec::IntoIter<Value>>,
    path: String,
    unknown: &'u Unknown,
}

impl<'de> SeqAccess<'de> for SeqDe<'_> {
    type Error = DecodeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DecodeError> {
        let Some((i, value)) = self.items.next() else {
            return Ok(None);
        };
        let path = format!("{}[{i}]", self.path);
        seed.deserialize(ValueDe {
            value,
            path: path.clone(),
            unknown: self.unknown,
        })
        .map(Some)
        .map_err(|e| e.at(&path))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct MapDe<'u> {
    iter: serde_json::map::IntoIter,
    pending: Option<(String, Value)>,
    path: String,
    unknown: &'u Unknown,
}

impl<'u> MapDe<'u> {
    fn new(map: Map<String, Value>, path: String, unknown: &'u Unknown) -> Self {
        Self {
            iter: map.into_iter(),
            pending: None,
            path,
            unknown,
        }
    }
}

impl<'de> MapAccess<'de> for MapDe<'_> {
    type Error = DecodeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DecodeError> {
        let Some((key, value)) = self.iter.next() else {
            return Ok(None);
        };
        let de: StringDeserializer<DecodeError> = key.clone().into_deserializer();
        let path = join(&self.path, &key);
        let k = seed.deserialize(de).map_err(|e| e.at(&path))?;
        self.pending = Some((key, value));
        Ok(Some(k))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, DecodeError> {
        let Some((key, value)) = self.pending.take() else {
            return Err(de::Error::custom("value requested before key"));
        };
        let path = join(&self.path, &key);
        seed.deserialize(ValueDe {
            value,
            path: path.clone(),
            unknown: self.unknown,
        })
        .map_err(|e| e.at(&path))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// Serde helpers for frp's "empty string means default" enums (`bandwidthLimitMode = ""`,
/// `auth.method = ""`, `transport.protocol = ""`, `log.level = ""`).
pub(crate) mod empty_default {
    use serde::{Deserialize, Deserializer};

    /// Deserializes `T` from a string, mapping `""` to `T::default()`.
    pub(crate) fn deserialize<'de, D, T>(d: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: Default + Deserialize<'de>,
    {
        let s = String::deserialize(d)?;
        if s.is_empty() {
            return Ok(T::default());
        }
        T::deserialize(serde::de::value::StringDeserializer::<D::Error>::new(s))
    }
}

/// Serde helper: `""` becomes `None` (`proxyProtocolVersion = ""`, `healthCheck.type = ""`).
pub(crate) mod empty_none {
    use serde::{Deserialize, Deserializer};

    /// Deserializes `Option<T>` from a string, mapping `""` to `None`.
    pub(crate) fn deserialize<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        let s = String::deserialize(d)?;
        if s.is_empty() {
            return Ok(None);
        }
        T::deserialize(serde::de::value::StringDeserializer::<D::Error>::new(s)).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Inner {
        #[serde(rename = "maxPoolCount", default)]
        max_pool_count: u32,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Outer {
        #[serde(rename = "bindPort", default)]
        bind_port: u16,
        #[serde(rename = "transport", default)]
        transport: Option<Inner>,
        #[serde(rename = "metadatas", default)]
        metadatas: std::collections::BTreeMap<String, String>,
    }

    #[test]
    fn folds_case_and_records_unknown() {
        let u = Unknown::default();
        let v = serde_json::json!({"BINDPORT": 7001, "bogus": 1,
            "transport": {"maxpoolcount": 3, "x": 1}, "metadatas": {"Keep": "me"}});
        let o: Outer = decode(v, "", &u).unwrap();
        assert_eq!(o.bind_port, 7001);
        assert_eq!(o.transport.unwrap().max_pool_count, 3);
        assert_eq!(o.metadatas.get("Keep").map(String::as_str), Some("me"));
        assert_eq!(
            u.take(),
            vec!["bogus".to_string(), "transport.x".to_string()]
        );
    }

    #[test]
    fn exact_beats_folded() {
        let u = Unknown::default();
        let v = serde_json::json!({"bindport": 1, "bindPort": 2});
        let o: Outer = decode(v, "", &u).unwrap();
        assert_eq!(o.bind_port, 2);
    }

    #[test]
    fn error_has_path() {
        let u = Unknown::default();
        let v = serde_json::json!({"transport": {"maxPoolCount": "x"}});
        let e = decode::<Outer>(v, "", &u).unwrap_err();
        assert_eq!(e.path.as_deref(), Some("transport.maxPoolCount"));
        assert_eq!(e.msg, "invalid type: string \"x\", expected u32");
    }

    #[test]
    fn probe_lists_fields() {
        assert_eq!(
            struct_fields::<Outer>(),
            &["bindPort", "transport", "metadatas"]
        );
    }
}
