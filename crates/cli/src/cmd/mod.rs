//! One module per subcommand.

pub mod account;
pub mod audit;
pub mod collection;
pub mod detect_match;
pub mod export;
pub mod import;
pub mod ledger;
pub mod partner;
pub mod pattern;
pub mod policy;
pub mod scan;
pub mod serve;
pub mod sync;
pub mod validate;
