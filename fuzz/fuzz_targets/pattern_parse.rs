//! Any text: parsing never panics, and whatever parses prints to a canonical form that parses
//! back to the same tree and is a fixed point of printing.
#![no_main]

use kizuna_pattern::Pattern;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(p) = Pattern::parse(text) else {
        return;
    };
    let printed = p.to_string();
    let again = Pattern::parse(&printed).expect("the canonical form parses");
    assert_eq!(again.ast(), p.ast(), "round trip of {text:?} via {printed:?}");
    assert_eq!(again.to_string(), printed);
    let _ = p.explain().to_string();
});
