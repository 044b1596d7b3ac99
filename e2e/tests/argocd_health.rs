//! Runs the Argo CD health check of SplitRule against its test cases, in Argo CD's own format
//! (`health_test.yaml` + `testdata/`), with a real Lua 5.4 interpreter.

use std::path::PathBuf;

use mlua::{Lua, LuaSerdeExt, SerializeOptions};
use streamsplit_e2e::repo_root;

fn customization_dir() -> PathBuf {
    repo_root().join("argocd/resource_customizations/streamsplit.io/SplitRule")
}

/// Evaluates the script the way Argo CD does: `obj` is the resource, the chunk returns `hs`.
fn health(script: &str, resource: &serde_json::Value) -> (String, String) {
    let lua = Lua::new();
    // Argo CD hands Lua a table without JSON nulls: absent fields are nil.
    let options = SerializeOptions::new()
        .serialize_none_to_null(false)
        .serialize_unit_to_null(false);
    let obj = lua.to_value_with(resource, options).unwrap();
    lua.globals().set("obj", obj).unwrap();
    let hs: mlua::Table = lua.load(script).eval().unwrap();
    (hs.get("status").unwrap(), hs.get("message").unwrap())
}

#[test]
fn health_script_passes_its_argo_cd_test_cases() {
    let dir = customization_dir();
    let script = std::fs::read_to_string(dir.join("health.lua")).unwrap();
    let cases: serde_json::Value =
        serde_norway::from_str(&std::fs::read_to_string(dir.join("health_test.yaml")).unwrap())
            .unwrap();
    let cases = cases["tests"].as_array().unwrap();
    assert!(cases.len() >= 5);
    let mut statuses = std::collections::BTreeSet::new();
    for case in cases {
        let input = case["inputPath"].as_str().unwrap();
        let resource: serde_json::Value =
            serde_norway::from_str(&std::fs::read_to_string(dir.join(input)).unwrap()).unwrap();
        let (status, message) = health(&script, &resource);
        assert_eq!(
            status,
            case["healthStatus"]["status"].as_str().unwrap(),
            "{input}"
        );
        assert_eq!(
            message,
            case["healthStatus"]["message"].as_str().unwrap(),
            "{input}"
        );
        statuses.insert(status);
    }
    assert_eq!(
        statuses.into_iter().collect::<Vec<_>>(),
        ["Degraded", "Healthy", "Progressing"]
    );
}

#[test]
fn argocd_cm_snippet_carries_the_tested_script() {
    let script = std::fs::read_to_string(customization_dir().join("health.lua")).unwrap();
    let patch: serde_json::Value = serde_norway::from_str(
        &std::fs::read_to_string(repo_root().join("argocd/argocd-cm-patch.yaml")).unwrap(),
    )
    .unwrap();
    let embedded = patch["data"]["resource.customizations.health.streamsplit.io_SplitRule"]
        .as_str()
        .unwrap();
    assert_eq!(embedded, script);
}
