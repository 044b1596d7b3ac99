//! The committed CRD is exactly what the operator generates from the shared spec types.

use std::process::Command;

#[test]
fn committed_crd_matches_crdgen_output() {
    let output = Command::new(env!("CARGO_BIN_EXE_streamsplit-operator"))
        .arg("crdgen")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../crds/splitrule.yaml"
    ))
    .unwrap();
    assert!(
        committed == String::from_utf8(output.stdout).unwrap(),
        "crds/splitrule.yaml is stale: run `cargo run -p streamsplit-operator -- crdgen > crds/splitrule.yaml`"
    );
}
