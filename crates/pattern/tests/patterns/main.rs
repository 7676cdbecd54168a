//! The crate's one integration test binary: data-driven cases from `testdata/patterns/`,
//! printer round trips, and differential testing against stix2-matcher.

mod cases;
mod differential;
mod engine;
mod generator;
mod reference;
