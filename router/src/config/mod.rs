//! Rules from the operator's bundle in a mounted config directory, hot-swapped while routing,
//! with a local fallback copy of the last good bundle.

pub mod fallback;
pub mod reloader;
pub mod watcher;

pub use reloader::Reloader;
