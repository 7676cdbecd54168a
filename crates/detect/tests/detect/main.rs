//! The crate's one integration test binary: the mail corpus, the log samples and the matcher,
//! each driven by `testdata/` with expectations written by hand.

mod equivalence;
mod logs;
mod mail;
mod matcher;
mod reduce;
mod robust;
mod stream;
mod valid;
