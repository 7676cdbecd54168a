//! The STIX 2.1 model as Kizuna needs it: identifiers, timestamps, TLP markings and validation.
//!
//! # Design
//!
//! Kizuna is a hub: it must keep every object exactly as received (custom properties,
//! extensions and all) and still enforce the specification and the markings on everything that
//! passes through. So this crate does not deserialise objects into a typed struct per SDO, which
//! would drop or reorder what it does not know. Objects stay `serde_json::Value` (the bytes are kept
//! by the store), and this crate offers:
//!
//! - newtypes that are parsed once and then trusted: [`StixId`], [`Timestamp`], [`Tlp`];
//! - [`ObjectMeta`], the few properties every object is indexed by (id, version, marking);
//! - [`read_objects`] and [`for_each_object`], which split input text (a bundle, a TAXII
//!   envelope, one object, a JSON array or JSON lines) into objects with their raw text and
//!   location, one object in memory at a time for the streaming form;
//! - [`validate_object`], the full set of rules of STIX 2.1 for every object type (SDOs, SROs,
//!   SCOs, language content, marking definitions, extension definitions, custom objects), reporting
//!   every problem with the object id and the JSON path of the property. Pattern grammar is the
//!   `pattern` crate's, plugged in through [`validate_object_with`]; whether references resolve
//!   is the store's. `docs/stix.md` lists the rules and the deliberate differences from the OASIS
//!   stix2-validator.
//!
//! It never does I/O, never spawns threads and has no async code: the pattern engine, the
//! detectors and the store all build on it.

mod error;
mod id;
mod input;
mod object;
mod timestamp;
mod tlp;
mod validate;

pub use error::{IdError, TimestampError, TlpError};
pub use id::{StixId, check_type_name};
pub use input::{InputError, InputObject, Location, for_each_object, read_objects};
pub use object::ObjectMeta;
pub use timestamp::Timestamp;
pub use tlp::{TLP1_MARKING_IDS, TLP2_EXTENSION_ID, TLP2_MARKING_IDS, Tlp, effective_tlp};
pub use validate::{
    META_TYPES, ObjectKind, PatternChecker, Problem, SCO_TYPES, SDO_TYPES, SRO_TYPES,
    validate_object, validate_object_with,
};
