//! Reading Prometheus text exposition in tests: find a sample by name and labels.

/// One sample line.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Metric name (with `_total`, `_count`, ... suffixes as exposed).
    pub name: String,
    /// Label pairs.
    pub labels: Vec<(String, String)>,
    /// Value.
    pub value: f64,
}

/// Parses every sample of a text exposition.
pub fn parse_samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let value: f64 = value.parse().ok()?;
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, parse_labels(rest.trim_end_matches('}'))),
                None => (series, Vec::new()),
            };
            Some(Sample {
                name: name.to_string(),
                labels,
                value,
            })
        })
        .collect()
}

fn parse_labels(text: &str) -> Vec<(String, String)> {
    let mut labels = Vec::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let Some(end) = after.find('"') else { break };
        labels.push((
            key.trim_start_matches(',').to_string(),
            after[..end].to_string(),
        ));
        rest = &after[end + 1..];
    }
    labels
}

/// The value of the sample named `name` whose labels include all of `labels`.
pub fn sample_value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    parse_samples(text).into_iter().find_map(|s| {
        let matches = s.name == name
            && labels
                .iter()
                .all(|(k, v)| s.labels.iter().any(|(sk, sv)| sk == k && sv == v));
        matches.then_some(s.value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_samples_by_labels_in_any_order() {
        let text = "# HELP x y\nx_total{b=\"2\",a=\"1\"} 5\nplain 3\n";
        assert_eq!(
            sample_value(text, "x_total", &[("a", "1"), ("b", "2")]),
            Some(5.0)
        );
        assert_eq!(sample_value(text, "x_total", &[("a", "2")]), None);
        assert_eq!(sample_value(text, "plain", &[]), Some(3.0));
    }
}
