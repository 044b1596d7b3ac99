//! Mirrors a ConfigMap into a directory the way the kubelet does, until killed:
//!
//!   streamsplit-project NAMESPACE CONFIGMAP DIR
//!
//! Used by the demo to feed a router process the operator's bundle (no pods run here).

use std::process::ExitCode;

use streamsplit_e2e::Cluster;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [namespace, name, dir] = args.as_slice() else {
        eprintln!("usage: streamsplit-project NAMESPACE CONFIGMAP DIR");
        return ExitCode::from(2);
    };
    match Cluster::shared().project_configmap(namespace, name, std::path::Path::new(dir)) {
        Ok(_projection) => loop {
            std::thread::park();
        },
        Err(error) => {
            eprintln!("streamsplit-project: {error:#}");
            ExitCode::from(1)
        }
    }
}
