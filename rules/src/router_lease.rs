//! The Lease each router renews to tell the operator which bundle it has live (roll-out
//! acknowledgement). Shared so that the router writes exactly what the operator reads.
//!
//! One Lease per router, named [`lease_name`] of its identity, in the operator's namespace:
//! `spec.holderIdentity` is the router, `spec.renewTime` + `spec.leaseDurationSeconds` say how long
//! the report holds, the [`POOL_LABEL`] label names the pool and the [`VERSION_ANNOTATION`]
//! annotation the live bundle version (empty while the router has no rules).

/// Label naming the pool of a router's Lease (the operator watches by it).
pub const POOL_LABEL: &str = "streamsplit.io/router-pool";
/// Annotation carrying the bundle version the router has live.
pub const VERSION_ANNOTATION: &str = "streamsplit.io/bundle-version";
/// How many renewal periods a report holds: a router that misses two renewals in a row is
/// reported as gone.
pub const PERIODS_PER_LEASE: u32 = 3;

/// The Lease name of a router: `streamsplit-router-<identity>`, made a legal object name
/// (lower case, `[a-z0-9.-]`, at most 253 characters, alphanumeric at both ends).
pub fn lease_name(identity: &str) -> String {
    let cleaned: String = identity
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let mut name = format!("streamsplit-router-{}", cleaned.trim_matches(['-', '.']));
    name.truncate(253);
    name.trim_end_matches(['-', '.']).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_names_are_legal_object_names() {
        assert_eq!(
            lease_name("router-default-7d9f-x2"),
            "streamsplit-router-router-default-7d9f-x2"
        );
        assert_eq!(lease_name("Host_Name:1"), "streamsplit-router-host-name-1");
        assert_eq!(lease_name("-odd-"), "streamsplit-router-odd");
        let long = lease_name(&"a".repeat(400));
        assert_eq!(long.len(), 253);
    }
}
