//! The committed CRDs are exactly what the operator generates from its Rust types.

use std::process::Command;

fn assert_committed(kind: &str) {
    let output = Command::new(env!("CARGO_BIN_EXE_streamsplit-operator"))
        .args(["crdgen", kind])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let path = format!("{}/../crds/{kind}.yaml", env!("CARGO_MANIFEST_DIR"));
    let committed = std::fs::read_to_string(&path).unwrap();
    assert!(
        committed == String::from_utf8(output.stdout).unwrap(),
        "crds/{kind}.yaml is stale: run `cargo run -p streamsplit-operator -- crdgen {kind} > crds/{kind}.yaml`"
    );
}

#[test]
fn committed_splitrule_crd_matches_crdgen_output() {
    assert_committed("splitrule");
}

#[test]
fn committed_routerpool_crd_matches_crdgen_output() {
    assert_committed("routerpool");
}
