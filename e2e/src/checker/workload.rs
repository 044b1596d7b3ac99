//! The checker's rules and records.
//!
//! Every record has a unique key (`id-N`), which every copy and exception record keeps (a
//! truncated exception record keeps its first KiB), so a copy is always traced to its record.

use std::path::Path;

/// The checker's rules as SplitRule manifests (namespace `checker`): one target topic per rule,
/// so a copy on a topic names the rule that asked for it.
pub struct RuleSpec {
    /// Rule name.
    pub name: &'static str,
    /// Rhai condition.
    pub condition: &'static str,
    /// `critical`, `standard` or `best-effort`.
    pub tier: &'static str,
    /// Extra spec lines (mode, suspend).
    pub extra: &'static str,
}

/// The rule mix: overlapping matches across all tiers, a shadow and a suspended rule, and a
/// rule that errors on some records.
pub const RULES: [RuleSpec; 7] = [
    RuleSpec {
        name: "crit-a",
        condition: r#"record.kind == "a""#,
        tier: "critical",
        extra: "",
    },
    RuleSpec {
        name: "std-ab",
        condition: r#"record.kind == "a" || record.kind == "b""#,
        tier: "standard",
        extra: "",
    },
    RuleSpec {
        name: "std-level",
        condition: "record.level >= 3",
        tier: "standard",
        extra: "",
    },
    RuleSpec {
        name: "be-c",
        condition: r#"record.kind == "c""#,
        tier: "best-effort",
        extra: "",
    },
    RuleSpec {
        name: "shadow-all",
        condition: "true",
        tier: "standard",
        extra: "  mode: shadow\n",
    },
    RuleSpec {
        name: "suspended-all",
        condition: "true",
        tier: "standard",
        extra: "  suspend: true\n",
    },
    RuleSpec {
        name: "err-n",
        condition: "record.n.len() > 5",
        tier: "standard",
        extra: "",
    },
];

/// One record of the workload.
#[derive(Clone, Debug)]
pub struct WorkloadRecord {
    /// Unique key, `id-N`.
    pub key: String,
    /// Value bytes (JSON or deliberately malformed).
    pub value: Vec<u8>,
}

/// A workload: its rules' topics and how its records are made.
#[derive(Clone, Debug)]
pub struct Workload {
    /// Prefix of every topic name of this run.
    pub prefix: String,
    /// Namespace of the rules (`checker` unless a scenario runs them through the apiserver).
    pub namespace: String,
    /// One in this many records is malformed (0: none).
    pub malformed_every: u64,
    /// Size of the oversized records (0: none), larger than the router's producer limit.
    pub oversized_bytes: usize,
}

impl Workload {
    /// A workload whose topics start with `prefix`.
    pub fn new(prefix: &str) -> Self {
        Workload {
            prefix: prefix.to_string(),
            namespace: "checker".to_string(),
            malformed_every: 20,
            oversized_bytes: 0,
        }
    }

    /// The target topic of a rule.
    pub fn topic(&self, rule: &str) -> String {
        format!("{}.{rule}", self.prefix)
    }

    /// The target topics of every rule.
    pub fn topics(&self) -> Vec<String> {
        RULES.iter().map(|r| self.topic(r.name)).collect()
    }

    /// The rule of a target topic, `namespace/name`.
    pub fn rule_of(&self, topic: &str) -> Option<String> {
        RULES
            .iter()
            .find(|r| self.topic(r.name) == topic)
            .map(|r| format!("{}/{}", self.namespace, r.name))
    }

    /// The tier of a target topic.
    pub fn tier_of(&self, topic: &str) -> Option<&'static str> {
        RULES
            .iter()
            .find(|r| self.topic(r.name) == topic)
            .map(|r| r.tier)
    }

    /// Writes the rules as one manifest file into `dir`.
    pub fn write_rules(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let mut yaml = String::new();
        for rule in &RULES {
            yaml.push_str(&format!(
                "apiVersion: streamsplit.io/v1alpha1\nkind: SplitRule\nmetadata: {{name: {}, namespace: {}}}\nspec:\n  condition: '{}'\n  targetTopic: {}\n  tier: {}\n{}---\n",
                rule.name,
                self.namespace,
                rule.condition,
                self.topic(rule.name),
                rule.tier,
                rule.extra
            ));
        }
        std::fs::write(dir.join("checker-rules.yaml"), yaml)
    }

    /// Record number `n`.
    pub fn record(&self, n: u64) -> WorkloadRecord {
        let key = format!("id-{n}");
        let malformed = self.malformed_every > 0 && n % self.malformed_every == 1;
        let value = if malformed {
            self.malformed(n / self.malformed_every)
        } else {
            let kind = ["a", "b", "c", "d"][(n % 4) as usize];
            let n_field = if n % 7 == 0 {
                "5".to_string()
            } else {
                format!("\"n{n}\"")
            };
            format!(
                r#"{{"id": {n}, "kind": "{kind}", "level": {}, "n": {n_field}}}"#,
                n % 5
            )
            .into_bytes()
        };
        WorkloadRecord { key, value }
    }

    /// The malformed kinds, in turn: not JSON, invalid UTF-8, a JSON array, an empty value,
    /// JSON null, nesting deeper than the decoder allows, and (when enabled) an object larger
    /// than the router may produce.
    fn malformed(&self, turn: u64) -> Vec<u8> {
        let kinds = if self.oversized_bytes > 0 { 7 } else { 6 };
        match turn % kinds {
            0 => b"not json at all".to_vec(),
            1 => vec![b'{', 0xff, 0xfe, b'}'],
            2 => b"[1, 2, 3]".to_vec(),
            3 => Vec::new(),
            4 => b"null".to_vec(),
            5 => format!("{}1{}", "[".repeat(300), "]".repeat(300)).into_bytes(),
            _ => format!(
                r#"{{"kind": "a", "level": 4, "n": "big", "blob": "{}"}}"#,
                "x".repeat(self.oversized_bytes)
            )
            .into_bytes(),
        }
    }
}
