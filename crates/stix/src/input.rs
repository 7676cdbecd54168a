//! Splitting input text into STIX objects: a bundle, a TAXII envelope, a single object, a JSON
//! array of objects, or JSON lines (one object or bundle per line; any whitespace-separated
//! sequence of JSON values is accepted).
//!
//! The text is scanned once into borrowed raw slices (`serde_json::value::RawValue`), and each
//! object is then parsed into a `serde_json::Value` from its own slice. That keeps the raw bytes of
//! every object available for free (the store keeps them verbatim), gives every object a line and
//! column for reports, and never builds a `Value` for a whole bundle: a bundle of a million objects
//! costs one object at a time with [`for_each_object`]. serde_json's recursion limit (128) bounds
//! nesting depth, so hostile input cannot exhaust the stack.

use std::fmt;

use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;
use thiserror::Error;

/// Where an object was found in the input text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// 1-based line of the object's opening brace.
    pub line: usize,
    /// 1-based column (in bytes) of the object's opening brace.
    pub column: usize,
    /// The object's position in its bundle's `objects` or in its JSON array, if it was in one.
    pub index: Option<usize>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)?;
        if let Some(i) = self.index {
            write!(f, ", object [{i}]")?;
        }
        Ok(())
    }
}

/// One object of the input.
#[derive(Debug, Clone)]
pub struct InputObject<'a> {
    /// The parsed object (property order preserved).
    pub value: Value,
    /// The object's JSON text exactly as it appears in the input.
    pub raw: &'a str,
    /// Where it was found.
    pub location: Location,
}

/// Input that cannot be split into objects.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum InputError {
    /// The text is not JSON.
    #[error("malformed JSON at line {line}, column {column}: {message}")]
    Json {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// serde_json's description.
        message: String,
    },
    /// The JSON is well formed but is not a STIX object, bundle or array of objects.
    #[error("line {line}, column {column}: {message}")]
    Structure {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
}

/// Reads every object of `text` (see the module documentation for the accepted forms). Objects
/// come in input order; elements that are not JSON objects are passed on too, so that validation
/// reports them.
pub fn read_objects(text: &str) -> Result<Vec<InputObject<'_>>, InputError> {
    let mut out = Vec::new();
    for_each_object(text, |o| out.push(o))?;
    Ok(out)
}

/// Like [`read_objects`], but hands each object to `f` as soon as it is parsed, so that only one
/// object is in memory at a time. On error, the objects before the error have been delivered.
pub fn for_each_object<'a>(
    text: &'a str,
    mut f: impl FnMut(InputObject<'a>),
) -> Result<(), InputError> {
    let mut lines = LineIndex::new(text);
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<&RawValue>();
    for item in &mut stream {
        let top = item.map_err(|e| json_error(&e, (1, 1)))?;
        let start = lines.position(offset(text, top.get()));
        match top.get().as_bytes().first() {
            Some(b'[') => {
                let items: Vec<&RawValue> =
                    serde_json::from_str(top.get()).map_err(|e| json_error(&e, start))?;
                for (i, raw) in items.into_iter().enumerate() {
                    f(object(text, &mut lines, raw, Some(i))?);
                }
            }
            Some(b'{') => {
                let probe: Probe<'_> =
                    serde_json::from_str(top.get()).map_err(|e| json_error(&e, start))?;
                let is_bundle = probe.ty.is_some_and(|t| t.get() == "\"bundle\"");
                // A TAXII envelope (`{"more": …, "objects": [...]}`) has no type and no id.
                let is_envelope = probe.ty.is_none()
                    && probe.id.is_none()
                    && probe.objects.is_some_and(|o| o.get().starts_with('['));
                if is_bundle || is_envelope {
                    let members = if is_bundle {
                        bundle_objects(&probe, start)?
                    } else {
                        list_members(&probe, start)?
                    };
                    for (i, raw) in members.into_iter().enumerate() {
                        f(object(text, &mut lines, raw, Some(i))?);
                    }
                } else {
                    f(object(text, &mut lines, top, None)?);
                }
            }
            _ => {
                return Err(InputError::Structure {
                    line: start.0,
                    column: start.1,
                    message: "expected a STIX object, a bundle or a JSON array of objects".into(),
                });
            }
        }
    }
    Ok(())
}

fn object<'a>(
    text: &'a str,
    lines: &mut LineIndex<'a>,
    raw: &'a RawValue,
    index: Option<usize>,
) -> Result<InputObject<'a>, InputError> {
    let (line, column) = lines.position(offset(text, raw.get()));
    let value = serde_json::from_str(raw.get()).map_err(|e| json_error(&e, (line, column)))?;
    Ok(InputObject {
        value,
        raw: raw.get(),
        location: Location {
            line,
            column,
            index,
        },
    })
}

/// The bundle envelope (§8): `id` is `bundle--<UUID>` and `objects` a list.
fn bundle_objects<'a>(
    probe: &Probe<'a>,
    (line, column): (usize, usize),
) -> Result<Vec<&'a RawValue>, InputError> {
    let structure = |message: String| InputError::Structure {
        line,
        column,
        message,
    };
    let id: Option<String> = probe.id.and_then(|r| serde_json::from_str(r.get()).ok());
    match id.as_deref().map(crate::StixId::parse) {
        Some(Ok(id)) if id.object_type() == "bundle" => {}
        Some(Ok(_)) | Some(Err(_)) | None => {
            return Err(structure(
                "a bundle's id must be a string of the form bundle--<UUID>".into(),
            ));
        }
    }
    list_members(probe, (line, column))
}

/// The members of the `objects` list of a bundle or TAXII envelope.
fn list_members<'a>(
    probe: &Probe<'a>,
    (line, column): (usize, usize),
) -> Result<Vec<&'a RawValue>, InputError> {
    let Some(objects) = probe.objects else {
        return Ok(Vec::new());
    };
    serde_json::from_str(objects.get()).map_err(|e| InputError::Structure {
        line,
        column,
        message: format!("objects must be a list of objects: {e}"),
    })
}

/// The byte offset of `part`, a slice borrowed from `text`.
fn offset(text: &str, part: &str) -> usize {
    (part.as_ptr() as usize).saturating_sub(text.as_ptr() as usize)
}

/// A serde_json error inside a slice that starts at `(line, column)` of the whole text.
fn json_error(e: &serde_json::Error, (line, column): (usize, usize)) -> InputError {
    let (l, c) = (e.line(), e.column());
    let message = e.to_string();
    // serde_json appends " at line L column C" relative to the slice; the absolute position is
    // reported separately.
    let message = match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message,
    };
    InputError::Json {
        line: line + l.saturating_sub(1),
        column: if l <= 1 {
            column + c.saturating_sub(1)
        } else {
            c
        },
        message,
    }
}

/// Turns byte offsets into line and column, walking forward from the last position asked for:
/// objects are asked for in input order, so the whole text is scanned once.
struct LineIndex<'a> {
    text: &'a [u8],
    at: usize,
    line: usize,
    line_start: usize,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text: text.as_bytes(),
            at: 0,
            line: 1,
            line_start: 0,
        }
    }

    fn position(&mut self, offset: usize) -> (usize, usize) {
        if offset < self.at {
            self.at = 0;
            self.line = 1;
            self.line_start = 0;
        }
        let end = offset.min(self.text.len());
        for (i, b) in self.text[self.at..end].iter().enumerate() {
            if *b == b'\n' {
                self.line += 1;
                self.line_start = self.at + i + 1;
            }
        }
        self.at = end;
        (self.line, end - self.line_start + 1)
    }
}

/// The few top-level members that tell a bundle from an object, read without building a `Value`.
/// Written by hand rather than derived so that duplicate or odd members are left to validation.
struct Probe<'a> {
    ty: Option<&'a RawValue>,
    id: Option<&'a RawValue>,
    objects: Option<&'a RawValue>,
}

impl<'de: 'a, 'a> de::Deserialize<'de> for Probe<'a> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Probe<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<Probe<'a>, M::Error> {
                let mut p = Probe {
                    ty: None,
                    id: None,
                    objects: None,
                };
                while let Some(key) = m.next_key::<std::borrow::Cow<'de, str>>()? {
                    match key.as_ref() {
                        "type" => p.ty = Some(m.next_value()?),
                        "id" => p.id = Some(m.next_value()?),
                        "objects" => p.objects = Some(m.next_value()?),
                        _ => {
                            m.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(p)
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f";

    #[test]
    fn splits_every_form() {
        let one = format!(r#"{{"type":"indicator","id":"{ID}"}}"#);
        assert_eq!(read_objects(&one).unwrap().len(), 1);
        let bundle = format!(
            "{{\"type\":\"bundle\",\"id\":\"bundle--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f\",\n\"objects\":[\n{one},\n  {one}]}}"
        );
        let objs = read_objects(&bundle).unwrap();
        assert_eq!(objs.len(), 2);
        assert_eq!(
            objs[1].location,
            Location {
                line: 4,
                column: 3,
                index: Some(1)
            }
        );
        assert_eq!(objs[1].raw, one);
        let arr = format!("[{one}, {one}, 7]");
        assert_eq!(read_objects(&arr).unwrap().len(), 3);
        let jsonl = format!("{one}\n{bundle}\n\n{one}\n");
        let objs = read_objects(&jsonl).unwrap();
        assert_eq!(objs.len(), 4);
        assert_eq!(objs[3].location.line, 7);
        assert!(read_objects("  \n").unwrap().is_empty());
        let envelope = format!(r#"{{"more": false, "objects": [{one}, {one}]}}"#);
        assert_eq!(read_objects(&envelope).unwrap().len(), 2);
    }

    #[test]
    fn reports_positions() {
        let text = format!("{{\"type\":\"indicator\",\"id\":\"{ID}\"}}\n{{\"type\": tru}}\n");
        match read_objects(&text) {
            Err(InputError::Json { line, column, .. }) => assert_eq!((line, column), (2, 13)),
            other => panic!("{other:?}"),
        }
        match read_objects("\n 42") {
            Err(InputError::Structure { line, column, .. }) => assert_eq!((line, column), (2, 2)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            read_objects(r#"{"type":"bundle","id":"nope","objects":[]}"#),
            Err(InputError::Structure { .. })
        ));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(read_objects(&deep), Err(InputError::Json { .. })));
        let deep_obj = format!(
            r#"{{"type":"x-a","x_deep":{}{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert!(matches!(
            read_objects(&deep_obj),
            Err(InputError::Json { .. })
        ));
    }
}
