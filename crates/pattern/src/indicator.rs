//! The check every ingest path applies to indicators: a `pattern_type: stix` pattern must parse.

/// Why an indicator's `pattern` is unacceptable, for the pattern types this crate knows.
///
/// Only `stix` patterns are parsed (with the default [`crate::Limits`], so a hostile pattern is
/// rejected here rather than stored); other pattern types (`yara`, `sigma`, `snort`, ...) are
/// passed through, since STIX lets indicators carry them opaquely. The signature fits
/// `kizuna_stix::validate_object_with`, so every ingest path (TAXII POST, `kizuna import`,
/// `kizuna validate`) applies the same rule.
pub fn check_indicator_pattern(
    pattern: &str,
    pattern_type: &str,
    pattern_version: Option<&str>,
) -> Result<(), String> {
    if pattern_type != "stix" {
        return Ok(());
    }
    if let Some(v) = pattern_version
        && !matches!(v, "2.0" | "2.1")
    {
        return Err(format!(
            "pattern_version {v:?} is not a STIX patterning version this hub evaluates (2.0, 2.1)"
        ));
    }
    crate::Pattern::parse(pattern)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stix_and_passes_other_types() {
        assert!(
            check_indicator_pattern("[ipv4-addr:value = '198.51.100.1']", "stix", None).is_ok()
        );
        assert!(check_indicator_pattern("[ipv4-addr:value = ", "stix", Some("2.1")).is_err());
        assert!(check_indicator_pattern("rule x { condition: true }", "yara", None).is_ok());
        assert!(check_indicator_pattern("[x:y = 1]", "stix", Some("9.9")).is_err());
    }
}
