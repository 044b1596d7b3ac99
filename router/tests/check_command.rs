//! `streamsplit-router check` judges rules exactly as the operator and the router do: the same
//! sandbox, the same time budget, and typos in a manifest are errors.

mod common;

use std::process::Command;

use common::*;

fn check(dir: &std::path::Path) -> (bool, String) {
    let output = Command::new(router_bin())
        .arg("check")
        .arg(dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[test]
fn hostile_rules_fail_check_with_their_reason() {
    let work = tempfile::tempdir().unwrap();
    write_rule(work.path(), "sleepy", "sleep(3); true", "t", "");
    write_rule(
        work.path(),
        "slow",
        r#"for i in 0..1000 { let s = ""; s.pad(1000000, "x"); } true"#,
        "t",
        "  tests:\n    - {name: any, record: {}, expect: match}\n",
    );
    write_rule(work.path(), "fine", "record.id == 1", "t", "");
    let (ok, text) = check(work.path());
    assert!(!ok, "{text}");
    let line = |name: &str| {
        text.lines()
            .find(|l| l.contains(&format!("test/{name}")))
            .unwrap_or_else(|| panic!("{text}"))
            .to_string()
    };
    assert!(line("sleepy").starts_with("FAIL") && line("sleepy").contains("CompileError"));
    assert!(line("slow").starts_with("FAIL") && line("slow").contains("Timeout"));
    assert!(line("fine").starts_with("ok"));
}

#[test]
fn a_typo_in_a_manifest_is_an_error_naming_the_key() {
    let work = tempfile::tempdir().unwrap();
    write_rule(work.path(), "typo", "true", "t", "  teir: critical\n");
    let (ok, text) = check(work.path());
    assert!(!ok);
    assert!(text.contains("unknown field spec.teir"), "{text}");
}
