//! Topic patterns: `*` stands for any run of characters (possibly empty), everything else
//! matches itself. Pools' tenant policies and templated rules' `targetTopicPattern` use them.

/// Whether `topic` matches `pattern`.
pub fn pattern_matches(pattern: &str, topic: &str) -> bool {
    glob(pattern.as_bytes(), topic.as_bytes())
}

/// Whether every topic matching `inner` also matches `outer`.
///
/// Conservative: `inner` is read as text (its `*` as a literal character, which no topic name
/// contains) and must match `outer`; each of `inner`'s wildcards then lies inside one of
/// `outer`'s, so whatever it stands for, `outer` still matches. `a.*` is within `*` and `a*`,
/// not within `*.b`.
pub fn pattern_within(inner: &str, outer: &str) -> bool {
    glob(outer.as_bytes(), inner.as_bytes())
}

/// Why a pattern is unusable: empty, or a character no topic name can hold (besides `*`).
pub fn validate_pattern(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() {
        return Err("the pattern is empty".into());
    }
    match pattern
        .chars()
        .find(|&c| !(crate::topic_name::is_topic_char(c) || c == '*'))
    {
        Some(bad) => Err(format!(
            "pattern {pattern:?} contains {bad:?}; only letters, digits, '.', '_', '-' and '*' are allowed"
        )),
        None => Ok(()),
    }
}

/// Iterative wildcard match with backtracking to the last `*` (linear in practice).
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_any_run_of_characters() {
        assert!(pattern_matches("*", "anything"));
        assert!(pattern_matches("a*b*c", "aXXbYYc"));
        assert!(!pattern_matches("a*b*c", "aXXbYY"));
        assert!(pattern_matches("logs.*", "logs."));
        assert!(!pattern_matches("exact", "exactly"));
    }

    #[test]
    fn a_pattern_is_within_another_only_when_all_its_topics_are() {
        assert!(pattern_within("logs.*", "*"));
        assert!(pattern_within("logs.*", "logs.*"));
        assert!(pattern_within("logs.app-*", "logs.*"));
        assert!(pattern_within("shop.logs.*", "shop.*"));
        assert!(!pattern_within("logs.*", "logs.app-*"));
        assert!(!pattern_within("*", "logs.*"));
        assert!(!pattern_within("a.*", "*.b"));
        assert!(pattern_within("a.*.b", "a.*"));
    }

    #[test]
    fn patterns_hold_topic_characters_and_wildcards_only() {
        assert!(validate_pattern("logs.*").is_ok());
        assert!(validate_pattern("").is_err());
        assert!(validate_pattern("logs/*").is_err());
        assert!(validate_pattern("logs.{record.app}").is_err());
    }
}
