//! Deterministic sampling: a rule with `sample: 0.1` copies about a tenth of the records it
//! matches, and always the same ones.
//!
//! The decision hashes the record's key (its value when it has no key): every record of a key
//! is in, or every one is out, on every router, in every version, and for every rule with the
//! same fraction. The hash is part of the format (changing it would move keys in and out):
//! FNV-1a (64 bit) of the bytes, mixed by SplitMix64's finaliser; a record is in when the top
//! 53 bits, as a fraction of 2^53, are below `sample`.

/// Whether a record with `key` (or, without key, `value`) is kept by a rule sampling `fraction`.
pub fn sampled_in(fraction: f64, key: Option<&[u8]>, value: &[u8]) -> bool {
    if fraction >= 1.0 {
        return true;
    }
    let position = (mix(fnv1a(key.unwrap_or(value))) >> 11) as f64 / (1u64 << 53) as f64;
    position < fraction
}

/// Why a `sample` value is unusable.
pub fn validate_sample(sample: Option<f64>) -> Result<(), String> {
    match sample {
        Some(fraction) if !(fraction > 0.0 && fraction <= 1.0) => Err(format!(
            "sample must be a fraction in (0, 1], got {fraction}"
        )),
        _ => Ok(()),
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_always_in_or_always_out() {
        for i in 0..1000 {
            let key = format!("user-{i}");
            let first = sampled_in(0.3, Some(key.as_bytes()), b"a");
            assert_eq!(first, sampled_in(0.3, Some(key.as_bytes()), b"b"));
        }
    }

    #[test]
    fn the_kept_share_is_the_fraction() {
        for fraction in [0.01, 0.1, 0.5, 0.9] {
            let kept = (0..20_000)
                .filter(|i| sampled_in(fraction, Some(format!("user-{i}").as_bytes()), b""))
                .count();
            let share = kept as f64 / 20_000.0;
            assert!((share - fraction).abs() < 0.02, "{fraction}: kept {share}");
        }
    }

    #[test]
    fn a_larger_fraction_keeps_every_key_a_smaller_one_keeps() {
        for i in 0..2000 {
            let key = format!("k{i}");
            if sampled_in(0.2, Some(key.as_bytes()), b"") {
                assert!(sampled_in(0.5, Some(key.as_bytes()), b""));
            }
        }
    }

    #[test]
    fn keyless_records_are_sampled_by_value_and_bad_fractions_are_refused() {
        let values: Vec<bool> = (0..100)
            .map(|i| sampled_in(0.5, None, format!("{{\"seq\": {i}}}").as_bytes()))
            .collect();
        assert!(values.contains(&true) && values.contains(&false));
        assert!(sampled_in(1.0, None, b"x"));
        for bad in [0.0, -0.5, 1.5, f64::NAN] {
            assert!(validate_sample(Some(bad)).is_err(), "{bad}");
        }
        assert!(validate_sample(Some(0.25)).is_ok() && validate_sample(None).is_ok());
    }
}
