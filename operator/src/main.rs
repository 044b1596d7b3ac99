//! streamsplit operator. Reconciliation of SplitRules lands with its own issue; until then the
//! binary only reports its version so packaging and images can already refer to it.

fn main() {
    println!("streamsplit-operator {}", env!("CARGO_PKG_VERSION"));
}
