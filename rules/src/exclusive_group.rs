//! Exclusive groups: rules of one namespace naming the same `exclusiveGroup` behave like one
//! `if / else if` chain. A record goes to the first matching active rule of the group, in
//! evaluation order (tier, then namespace/name); the group's later matches are excluded and
//! counted (`streamsplit_rule_excluded_total`), not copied.
//!
//! Exclusion comes before sampling and rate limits: the first match claims the record even when
//! its own sample or limit then leaves it out. A rule that fails on a record claims nothing, so
//! the next match of its group still gets it (and the failure goes to the exception topic).
//! Shadow rules take no part: they neither claim nor are excluded.

use std::collections::HashMap;

use crate::rule_id::RuleId;

/// Longest group name (a Kubernetes label value's limit, so it can label metrics and objects).
pub const MAX_GROUP_LEN: usize = 63;

/// Why a group name is unusable: 1 to 63 lowercase letters, digits and '-', starting and ending
/// with a letter or digit.
pub fn validate_group(group: Option<&str>) -> Result<(), String> {
    let Some(group) = group else {
        return Ok(());
    };
    let legal = !group.is_empty()
        && group.len() <= MAX_GROUP_LEN
        && group
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !group.starts_with('-')
        && !group.ends_with('-');
    if legal {
        Ok(())
    } else {
        Err(format!(
            "exclusiveGroup {group:?} must be 1 to {MAX_GROUP_LEN} lowercase letters, digits and '-', starting and ending with a letter or digit"
        ))
    }
}

/// Each rule's group as a small number, so evaluation compares integers.
#[derive(Debug, Default)]
pub struct GroupIds {
    ids: HashMap<(String, String), u32>,
}

impl GroupIds {
    /// The number of `rule`'s group (groups are scoped by namespace).
    pub fn id(&mut self, rule: &RuleId, group: &str) -> u32 {
        let next = self.ids.len() as u32;
        *self
            .ids
            .entry((rule.namespace.clone(), group.to_string()))
            .or_insert(next)
    }

    /// Whether any rule has a group.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Splits `matches` (in evaluation order) into the matches kept and those their group excludes.
/// `group_of` gives a rule's group, `None` for rules outside any group and for shadow rules.
pub fn exclude(
    matches: &mut Vec<usize>,
    excluded: &mut Vec<usize>,
    group_of: impl Fn(usize) -> Option<u32>,
) {
    let mut claimed: Vec<u32> = Vec::new();
    matches.retain(|&index| match group_of(index) {
        None => true,
        Some(group) if claimed.contains(&group) => {
            excluded.push(index);
            false
        }
        Some(group) => {
            claimed.push(group);
            true
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_match_of_each_group_keeps_the_record() {
        let groups = [Some(0), None, Some(0), Some(1), Some(1), Some(0)];
        let mut matches = vec![0, 1, 2, 3, 4, 5];
        let mut excluded = Vec::new();
        exclude(&mut matches, &mut excluded, |i| groups[i]);
        assert_eq!(matches, [0, 1, 3]);
        assert_eq!(excluded, [2, 4, 5]);
    }

    #[test]
    fn groups_are_scoped_by_namespace() {
        let mut ids = GroupIds::default();
        let a = ids.id(&RuleId::new(Some("shop"), "a"), "g");
        let b = ids.id(&RuleId::new(Some("shop"), "b"), "g");
        let c = ids.id(&RuleId::new(Some("ads"), "c"), "g");
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn group_names_are_label_values() {
        assert!(validate_group(Some("payments-by-region")).is_ok());
        assert!(validate_group(None).is_ok());
        for bad in ["", "Upper", "-lead", "trail-", "has space", &"a".repeat(64)] {
            assert!(validate_group(Some(bad)).is_err(), "{bad:?}");
        }
    }
}
