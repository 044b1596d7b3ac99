//! Router pool names become part of Kubernetes object names (`streamsplit-rules-<pool>`), so
//! they must be DNS-1123 labels short enough for that prefix.

/// Longest pool name: 63 (DNS label) minus the default ConfigMap prefix `streamsplit-rules-`.
pub const MAX_POOL_NAME_LEN: usize = 45;

/// Checks a pool name: 1..=45 chars of `[a-z0-9-]`, starting and ending alphanumeric.
pub fn validate_pool_name(name: &str) -> Result<(), String> {
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let valid_ends = name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if name.is_empty() || name.len() > MAX_POOL_NAME_LEN || !valid_chars || !valid_ends {
        return Err(format!(
            "router pool {name:?} must be 1 to {MAX_POOL_NAME_LEN} lowercase letters, digits or '-', starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_dns_labels_only() {
        assert!(validate_pool_name("default").is_ok());
        assert!(validate_pool_name("eu-west-1").is_ok());
        assert!(validate_pool_name("Default").is_err());
        assert!(validate_pool_name("-x").is_err());
        assert!(validate_pool_name("").is_err());
        assert!(validate_pool_name(&"a".repeat(46)).is_err());
    }
}
