//! [`StringMap`]: the string→string map of Sysdig's `labels` and `content.fields`, borrowing
//! from the body and keeping the sender's order.
//!
//! A small vector of pairs rather than a `BTreeMap`: these maps hold a few dozen entries, are
//! built once per event and read a few times, and a B-tree's node allocations and key
//! comparisons were an eighth of the parse time. Lookups scan linearly (from the end, so a key
//! sent twice resolves to its last value, as with a map insert); inserting never scans, so a
//! hostile body with many keys costs linear time.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::object::{Borrowed, IntoStatic, Key, LenientCowStr};

/// An order-preserving string→string map (Sysdig `labels`, `content.fields`).
///
/// ```
/// use webhook_payloads::sysdig::StringMap;
/// let mut m = StringMap::new();
/// m.insert("host.hostName", "node-1");
/// m.insert("kubernetes.pod.name", "web-0");
/// assert_eq!(m.get("host.hostName"), Some("node-1"));
/// assert_eq!(m.len(), 2);
/// assert_eq!(m.keys().collect::<Vec<_>>(), ["host.hostName", "kubernetes.pod.name"]);
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct StringMap<'a> {
    entries: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> StringMap<'a> {
    /// An empty map.
    pub fn new() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// The value of `key` (the last one if the sender repeated the key).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| &**v)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key` to `value`, replacing an earlier value in place.
    pub fn insert(&mut self, key: impl Into<Cow<'a, str>>, value: impl Into<Cow<'a, str>>) {
        let (key, value) = (key.into(), value.into());
        match self.entries.iter_mut().rev().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    /// Appends an entry without looking for an earlier one (parsing: a repeated key keeps both
    /// entries, and lookups find the last, as with the serde path).
    pub(crate) fn push(&mut self, key: Cow<'a, str>, value: Cow<'a, str>) {
        if self.entries.capacity() == 0 {
            self.entries.reserve(16);
        }
        self.entries.push((key, value));
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries in the sender's order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (&**k, &**v))
    }

    /// The keys in the sender's order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| &**k)
    }

    /// Detaches the map from the body it borrows.
    pub fn into_owned(self) -> StringMap<'static> {
        self.into_static()
    }
}

impl fmt::Debug for StringMap<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<'a, K: Into<Cow<'a, str>>, V: Into<Cow<'a, str>>> FromIterator<(K, V)> for StringMap<'a> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut m = Self::new();
        for (k, v) in iter {
            m.insert(k, v);
        }
        m
    }
}

impl<'a> IntoIterator for StringMap<'a> {
    type Item = (Cow<'a, str>, Cow<'a, str>);
    type IntoIter = std::vec::IntoIter<Self::Item>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl IntoStatic for StringMap<'_> {
    type Static = StringMap<'static>;
    fn into_static(self) -> StringMap<'static> {
        StringMap {
            entries: self
                .entries
                .into_iter()
                .map(|(k, v)| (k.into_static(), v.into_static()))
                .collect(),
        }
    }
}

impl Serialize for StringMap<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.entries.len()))?;
        for (k, v) in &self.entries {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// Compact JSON without serde (the same bytes as `Serialize`).
impl webhook_core::json::ToJson for StringMap<'_> {
    const ESCAPES_LINE_BREAKS: bool = true;

    fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        for (i, (k, v)) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            webhook_core::json::write_str(out, k);
            out.push(b':');
            webhook_core::json::write_str(out, v);
        }
        out.push(b'}');
    }
}

struct MapVisitor;

impl<'de> Visitor<'de> for MapVisitor {
    type Value = StringMap<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of strings")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(16).min(64));
        while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
            // Numbers and booleans are kept as their text; `null` entries are dropped.
            if let LenientCowStr(Some(v)) = map.next_value()? {
                entries.push((k, v));
            }
        }
        Ok(StringMap { entries })
    }
}

/// Strings borrowed where possible; numbers and booleans as their JSON text; `null`s dropped.
impl<'de> Deserialize<'de> for StringMap<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(MapVisitor)
    }
}

impl<'de> Deserialize<'de> for Borrowed<StringMap<'de>> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        StringMap::deserialize(d).map(Borrowed)
    }
}
