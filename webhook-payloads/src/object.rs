//! The building blocks of every payload type: a macro that declares a JSON object with typed
//! known fields and a map of unknown fields (so that parse → serialize → parse loses nothing),
//! borrowed map keys, and lenient scalars for vendors that send numbers as strings.
//!
//! `#[serde(flatten)]` would give the same round trip but buffers every object through serde's
//! private `Content` tree, which is slower than parsing into `serde_json::Value`; the visitor the
//! macro writes matches keys directly and parses each value once, straight into its type.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};

/// A map key that borrows from the input when it has no escapes.
pub(crate) struct Key<'de>(pub(crate) Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// How a field behaves when its key is missing, and whether it is written back.
pub(crate) trait Field: Sized {
    /// The value of a field whose key is absent, or the "missing field" error.
    fn missing<E: de::Error>(name: &'static str) -> Result<Self, E>;
    /// Whether serialization skips this field.
    fn is_absent(&self) -> bool;
}

impl<T> Field for Option<T> {
    fn missing<E: de::Error>(_: &'static str) -> Result<Self, E> {
        Ok(None)
    }
    fn is_absent(&self) -> bool {
        self.is_none()
    }
}

macro_rules! required_field {
    ($($t:ty),*) => {$(
        impl Field for $t {
            fn missing<E: de::Error>(name: &'static str) -> Result<Self, E> {
                Err(E::missing_field(name))
            }
            fn is_absent(&self) -> bool {
                false
            }
        }
    )*};
}
required_field!(String, u64, serde_json::Value);

/// A value parsed leniently: integers also accepted as decimal strings or integral floats, string
/// maps also accepting numbers and booleans (written as their JSON text) and dropping `null`s.
pub(crate) struct Lenient<T>(pub(crate) T);

struct U64Visitor;
impl Visitor<'_> for U64Visitor {
    type Value = u64;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a non-negative integer (or one written as a string)")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
        // Integral floats up to 2^53 are exact; anything else cannot be trusted.
        if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= 9_007_199_254_740_992.0 {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Ok(v as u64)
        } else {
            Err(E::invalid_value(de::Unexpected::Float(v), &self))
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        v.trim()
            .parse()
            .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
    }
}

struct I64Visitor;
impl Visitor<'_> for I64Visitor {
    type Value = i64;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer (or one written as a string)")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
        if v.is_finite() && v.fract() == 0.0 && v.abs() <= 9_007_199_254_740_992.0 {
            #[allow(clippy::cast_possible_truncation)]
            Ok(v as i64)
        } else {
            Err(E::invalid_value(de::Unexpected::Float(v), &self))
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
        v.trim()
            .parse()
            .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
    }
}

impl<'de> Deserialize<'de> for Lenient<u64> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(U64Visitor).map(Lenient)
    }
}

impl<'de> Deserialize<'de> for Lenient<i64> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(I64Visitor).map(Lenient)
    }
}

macro_rules! lenient_small {
    ($($t:ty),*) => {$(
        impl<'de> Deserialize<'de> for Lenient<$t> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let v = d.deserialize_any(U64Visitor)?;
                <$t>::try_from(v).map(Lenient).map_err(|_| {
                    de::Error::invalid_value(de::Unexpected::Unsigned(v), &stringify!($t))
                })
            }
        }
    )*};
}
lenient_small!(u8, u16, u32);

impl<'de, T> Deserialize<'de> for Lenient<Option<T>>
where
    Lenient<T>: Deserialize<'de>,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self(
            Option::<Lenient<T>>::deserialize(d)?.map(|Lenient(v)| v),
        ))
    }
}

/// A string, or a number or boolean written as its JSON text, or `null` (→ `None`).
struct LenientString(Option<String>);

impl<'de> Deserialize<'de> for LenientString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = LenientString;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number, boolean or null")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(LenientString(Some(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(LenientString(Some(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(LenientString(Some(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(LenientString(Some(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(LenientString(Some(v.to_string())))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(LenientString(Some(v.to_string())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(LenientString(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(LenientString(None))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Lenient<BTreeMap<String, String>> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V(PhantomData<()>);
        impl<'de> Visitor<'de> for V {
            type Value = BTreeMap<String, String>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
                    if let LenientString(Some(v)) = map.next_value()? {
                        out.insert(k.into_owned(), v);
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(V(PhantomData)).map(Lenient)
    }
}

/// Declares a JSON object type: typed known fields, `extra` for the unknown ones, a fast
/// key-matching `Deserialize`, and a `Serialize` that writes present fields then `extra`.
///
/// `pub struct Name<'a> { ... }` declares a type that borrows from the input; its `[borrow]`
/// fields are parsed through [`Borrowed`] (no allocation for strings without escapes) and
/// `into_owned()` detaches it from the input.
///
/// Field syntax: `rust_name "jsonName": Type [lenient|borrow] [=> path]`. `lenient` parses
/// through [`Lenient`]; `=> path` maps the value with `path(&value, Option<TimestampFormat>)`
/// when written (`None`: as received).
macro_rules! json_object {
    (
        $(#[$meta:meta])*
        pub struct $name:ident<$lt:lifetime> { $($body:tt)* }
    ) => {
        $crate::object::json_object!(@emit [$(#[$meta])*] $name [<$lt>] $lt { $($body)* });
        $crate::object::json_object!(@owned $name $lt { $($body)* });
    };
    (
        $(#[$meta:meta])*
        pub struct $name:ident { $($body:tt)* }
    ) => {
        $crate::object::json_object!(@emit [$(#[$meta])*] $name [] 'de { $($body)* });
        impl $crate::object::IntoStatic for $name {
            type Static = $name;
            fn into_static(self) -> $name {
                self
            }
        }
    };
    (@owned $name:ident $lt:lifetime {
        $(
            $(#[$fmeta:meta])*
            $f:ident $key:literal : $t:ty $([$mode:ident])? $(=> $ser:path)?
        ),* $(,)?
    }) => {
        impl<$lt> $crate::object::IntoStatic for $name<$lt> {
            type Static = $name<'static>;
            fn into_static(self) -> $name<'static> {
                $name {
                    $( $f: $crate::object::IntoStatic::into_static(self.$f), )*
                    extra: self.extra,
                }
            }
        }

        impl<$lt> $name<$lt> {
            /// Detaches the value from the input it borrows (copies borrowed strings).
            pub fn into_owned(self) -> $name<'static> {
                $crate::object::IntoStatic::into_static(self)
            }
        }
    };
    (@emit [$(#[$meta:meta])*] $name:ident [$($gen:tt)*] $de:lifetime {
        $(
            $(#[$fmeta:meta])*
            $f:ident $key:literal : $t:ty $([$mode:ident])? $(=> $ser:path)?
        ),* $(,)?
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        #[non_exhaustive]
        pub struct $name $($gen)* {
            $( $(#[$fmeta])* pub $f: $t, )*
            /// Fields this crate does not know, kept verbatim and written back on serialization.
            pub extra: serde_json::Map<String, serde_json::Value>,
        }

        impl<$de> serde::Deserialize<$de> for $name $($gen)* {
            fn deserialize<D: serde::Deserializer<$de>>(d: D) -> Result<Self, D::Error> {
                struct V<$de>(std::marker::PhantomData<&$de ()>);
                impl<$de> serde::de::Visitor<$de> for V<$de> {
                    type Value = $name $($gen)*;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str(concat!("a ", stringify!($name), " object"))
                    }
                    #[allow(unused_mut)]
                    fn visit_map<A: serde::de::MapAccess<$de>>(
                        self,
                        mut map: A,
                    ) -> Result<Self::Value, A::Error> {
                        $( let mut $f: Option<$t> = None; )*
                        let mut extra = serde_json::Map::new();
                        while let Some($crate::object::Key(k)) =
                            map.next_key::<$crate::object::Key<$de>>()?
                        {
                            match &*k {
                                $( $key => {
                                    $f = Some($crate::object::json_object!(@de map, $t $(, $mode)?));
                                } )*
                                _ => {
                                    let v: serde_json::Value = map.next_value()?;
                                    extra.insert(k.into_owned(), v);
                                }
                            }
                        }
                        Ok($name {
                            $( $f: match $f {
                                Some(v) => v,
                                None => <$t as $crate::object::Field>::missing($key)?,
                            }, )*
                            extra,
                        })
                    }
                }
                d.deserialize_map(V(std::marker::PhantomData))
            }
        }

        impl $($gen)* $name $($gen)* {
            #[allow(unused_variables)]
            pub(crate) fn write_fields<M: serde::ser::SerializeMap>(
                &self,
                map: &mut M,
                format: Option<$crate::TimestampFormat>,
            ) -> Result<(), M::Error> {
                $(
                    if !$crate::object::Field::is_absent(&self.$f) {
                        $crate::object::json_object!(@ser map, $key, &self.$f, format $(, $ser)?);
                    }
                )*
                for (k, v) in &self.extra {
                    map.serialize_entry(k, v)?;
                }
                Ok(())
            }
        }

        impl<$de> $crate::fast::FastRead<$de> for $name $($gen)* {
            fn read(r: &mut $crate::fast::Reader<$de>) -> Option<Self> {
                // Vendors write the fields of an object in one order, mostly ours: each key is
                // first compared as raw text with the few fields declared after the last one
                // seen (no scan, no string match), then read and matched by name.
                #[allow(non_camel_case_types)]
                #[derive(Clone, Copy)]
                enum F { $( $f, )* }
                const ORDER: &[F] = &[ $( F::$f, )* ];
                const QUOTED: &[$crate::fast::Key] =
                    &[ $( $crate::fast::Key::new(concat!("\"", $key, "\"").as_bytes()), )* ];
                /// How many declared fields after the last one seen are tried as raw text.
                const LOOKAHEAD: usize = 4;
                $( let mut $f: Option<$t> = None; )*
                let mut extra = serde_json::Map::new();
                let mut next = 0usize;
                r.members(|r| {
                    let mut hit = None;
                    for (i, quoted) in QUOTED.iter().enumerate().skip(next).take(LOOKAHEAD) {
                        if r.key_is(quoted) {
                            hit = ORDER.get(i).copied();
                            next = i + 1;
                            break;
                        }
                    }
                    let field = match hit {
                        Some(field) => field,
                        None => {
                            let k = r.key()?;
                            match &*k {
                                $( $key => {
                                    next = F::$f as usize + 1;
                                    F::$f
                                } )*
                                _ => {
                                    let v: serde_json::Value = r.serde()?;
                                    extra.insert(k.into_owned(), v);
                                    return Some(());
                                }
                            }
                        }
                    };
                    match field {
                        $( F::$f => {
                            $f = Some($crate::object::json_object!(@fast r, $t $(, $mode)?));
                        } )*
                    }
                    Some(())
                })?;
                Some($name {
                    $( $f: match $f {
                        Some(v) => v,
                        None => <$t as $crate::object::Field>::missing::<serde_json::Error>($key).ok()?,
                    }, )*
                    extra,
                })
            }
        }

        impl $($gen)* $name $($gen)* {
            /// Writes the object as compact JSON without serde (same bytes as `Serialize`).
            #[allow(unused_variables)]
            pub(crate) fn write_json_object(
                &self,
                out: &mut Vec<u8>,
                format: Option<$crate::TimestampFormat>,
            ) {
                out.push(b'{');
                let start = out.len();
                $(
                    if !$crate::object::Field::is_absent(&self.$f) {
                        if out.len() != start {
                            out.push(b',');
                        }
                        out.extend_from_slice(concat!("\"", $key, "\":").as_bytes());
                        $crate::object::json_object!(@json out, &self.$f, format $(, $ser)?);
                    }
                )*
                for (k, v) in &self.extra {
                    if out.len() != start {
                        out.push(b',');
                    }
                    ::webhook_core::json::write_str(out, k);
                    out.push(b':');
                    ::webhook_core::json::write_value(out, v);
                }
                out.push(b'}');
            }
        }

        /// Compact JSON without serde: the same bytes as `serde_json::to_vec`, several times
        /// faster (strings are escaped eight bytes at a time).
        impl $($gen)* ::webhook_core::json::ToJson for $name $($gen)* {
            // Keys are constants without line breaks, unknown fields go through `write_value`:
            // line breaks are escaped when every field type escapes them.
            const ESCAPES_LINE_BREAKS: bool =
                true $(&& <$t as ::webhook_core::json::ToJson>::ESCAPES_LINE_BREAKS)*;

            fn write_json(&self, out: &mut Vec<u8>) {
                self.write_json_object(out, None);
            }
        }

        impl $($gen)* serde::Serialize for $name $($gen)* {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap as _;
                let mut map = s.serialize_map(None)?;
                self.write_fields(&mut map, None)?;
                map.end()
            }
        }
    };
    (@de $map:ident, $t:ty) => { $map.next_value::<$t>()? };
    (@de $map:ident, $t:ty, lenient) => { $map.next_value::<$crate::object::Lenient<$t>>()?.0 };
    (@de $map:ident, $t:ty, borrow) => { $map.next_value::<$crate::object::Borrowed<$t>>()?.0 };
    (@fast $r:ident, $t:ty) => { <$t as $crate::fast::FastRead>::read($r)? };
    (@fast $r:ident, $t:ty, lenient) => {
        <$crate::object::Lenient<$t> as $crate::fast::FastRead>::read($r)?.0
    };
    (@fast $r:ident, $t:ty, borrow) => {
        <$crate::object::Borrowed<$t> as $crate::fast::FastRead>::read($r)?.0
    };
    (@json $out:ident, $v:expr, $fmt:ident) => {
        ::webhook_core::json::ToJson::write_json($v, $out)
    };
    (@json $out:ident, $v:expr, $fmt:ident, $ser:path) => {
        ::webhook_core::json::ToJson::write_json(&$ser($v, $fmt), $out)
    };
    (@ser $map:ident, $key:expr, $v:expr, $fmt:ident) => { $map.serialize_entry($key, $v)? };
    (@ser $map:ident, $key:expr, $v:expr, $fmt:ident, $ser:path) => {
        $map.serialize_entry($key, &$ser($v, $fmt))?
    };
}
pub(crate) use json_object;

/// Implements [`webhook_core::json::ToJson`] through the type's `Serialize` (small enums and
/// scalars that are not `json_object!` types).
macro_rules! json_via_serde {
    ($($t:ty),*) => {$(
        impl ::webhook_core::json::ToJson for $t {
            // serde_json's compact output escapes every control character.
            const ESCAPES_LINE_BREAKS: bool = true;

            fn write_json(&self, out: &mut Vec<u8>) {
                let mark = out.len();
                if serde_json::to_writer(&mut *out, self).is_err() {
                    // Not reachable for these types; never leave half a value behind.
                    out.truncate(mark);
                    out.extend_from_slice(b"null");
                }
            }
        }
    )*};
}
pub(crate) use json_via_serde;

/// Implements [`Field`] for a type that must be present.
macro_rules! required {
    ($($t:ty),*) => {$(
        impl $crate::object::Field for $t {
            fn missing<E: serde::de::Error>(name: &'static str) -> Result<Self, E> {
                Err(E::missing_field(name))
            }
            fn is_absent(&self) -> bool {
                false
            }
        }
    )*};
}
pub(crate) use required;

impl<'de> Deserialize<'de> for Lenient<String> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match LenientString::deserialize(d)? {
            LenientString(Some(s)) => Ok(Self(s)),
            LenientString(None) => Err(de::Error::invalid_type(de::Unexpected::Unit, &"a string")),
        }
    }
}

impl Field for Cow<'_, str> {
    fn missing<E: de::Error>(name: &'static str) -> Result<Self, E> {
        Err(E::missing_field(name))
    }
    fn is_absent(&self) -> bool {
        false
    }
}

/// A value parsed borrowing from the input where it can: strings without escapes are
/// `Cow::Borrowed`; string maps also accept numbers and booleans (as their JSON text).
pub(crate) struct Borrowed<T>(pub(crate) T);

/// A string, borrowed when possible; numbers and booleans as their text; `null` → `None`.
pub(crate) struct LenientCowStr<'de>(pub(crate) Option<Cow<'de, str>>);

impl<'de> Deserialize<'de> for LenientCowStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LenientCowStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(LenientCowStr(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(LenientCowStr(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(LenientCowStr(Some(Cow::Owned(v))))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(LenientCowStr(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(LenientCowStr(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(LenientCowStr(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(LenientCowStr(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(LenientCowStr(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(LenientCowStr(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// A string that must be a JSON string (no number coercion), borrowed when possible.
struct StrictLenientCowStr<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for StrictLenientCowStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Key::deserialize(d).map(|Key(k)| StrictLenientCowStr(k))
    }
}

impl<'de> Deserialize<'de> for Borrowed<Cow<'de, str>> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        StrictLenientCowStr::deserialize(d).map(|s| Borrowed(s.0))
    }
}

impl<'de, T> Deserialize<'de> for Borrowed<Option<T>>
where
    Borrowed<T>: Deserialize<'de>,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self(
            Option::<Borrowed<T>>::deserialize(d)?.map(|Borrowed(v)| v),
        ))
    }
}

impl<'de> Deserialize<'de> for Borrowed<Vec<Cow<'de, str>>> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Vec<Cow<'de, str>>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of strings")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(8).min(64));
                while let Some(StrictLenientCowStr(s)) = seq.next_element()? {
                    out.push(s);
                }
                Ok(out)
            }
        }
        d.deserialize_seq(V).map(Borrowed)
    }
}

/// Converts a possibly borrowing value into one that owns its data.
pub(crate) trait IntoStatic {
    /// The owning type.
    type Static: 'static;
    /// Copies whatever is borrowed.
    fn into_static(self) -> Self::Static;
}

impl IntoStatic for Cow<'_, str> {
    type Static = Cow<'static, str>;
    fn into_static(self) -> Cow<'static, str> {
        Cow::Owned(self.into_owned())
    }
}

impl<T: IntoStatic> IntoStatic for Option<T> {
    type Static = Option<T::Static>;
    fn into_static(self) -> Self::Static {
        self.map(T::into_static)
    }
}

impl<T: IntoStatic> IntoStatic for Vec<T> {
    type Static = Vec<T::Static>;
    fn into_static(self) -> Self::Static {
        self.into_iter().map(T::into_static).collect()
    }
}

impl<T: IntoStatic> IntoStatic for Box<T> {
    type Static = Box<T::Static>;
    fn into_static(self) -> Self::Static {
        Box::new((*self).into_static())
    }
}

impl<K: IntoStatic, V: IntoStatic> IntoStatic for BTreeMap<K, V>
where
    K::Static: Ord,
{
    type Static = BTreeMap<K::Static, V::Static>;
    fn into_static(self) -> Self::Static {
        self.into_iter()
            .map(|(k, v)| (k.into_static(), v.into_static()))
            .collect()
    }
}

macro_rules! static_identity {
    ($($t:ty),*) => {$(
        impl IntoStatic for $t {
            type Static = $t;
            fn into_static(self) -> $t {
                self
            }
        }
    )*};
}
static_identity!(u64, i64, u16, u8, bool, String, serde_json::Value, serde_json::Map<String, serde_json::Value>);
