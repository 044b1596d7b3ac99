//! librdkafka client properties from the command line and from files, shared by the operator
//! and the router so both treat credentials the same way: a secret (a SASL password, a key
//! passphrase) is read from a file mounted from a Kubernetes Secret, never passed as a flag,
//! where it would be visible in `/proc/<pid>/cmdline` to anything in the pod.

use std::path::{Path, PathBuf};

use thiserror::Error;

/// Why client properties could not be read.
#[derive(Debug, Error)]
pub enum PropertiesError {
    /// A flag value is not `key=value`.
    #[error("expected key=value, got {0:?}")]
    NotKeyValue(String),
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line of a properties file is not `key=value` (the value is not shown: it may be secret).
    #[error("{path} line {line}: expected key=value")]
    BadLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
    },
}

/// Parses a `key=value` flag (`--kafka-property`).
pub fn parse_property(text: &str) -> Result<(String, String), PropertiesError> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.to_string()))
        }
        _ => Err(PropertiesError::NotKeyValue(text.to_string())),
    }
}

/// Reads a properties file: `key=value` lines; blank lines and lines starting with `#` or `!`
/// are ignored; whitespace around keys and values is trimmed.
pub fn read_properties_file(path: &Path) -> Result<Vec<(String, String)>, PropertiesError> {
    let text = std::fs::read_to_string(path).map_err(|source| PropertiesError::Unreadable {
        path: path.to_path_buf(),
        source,
    })?;
    let mut properties = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        match line.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => {
                properties.push((key.trim().to_string(), value.trim().to_string()))
            }
            _ => {
                return Err(PropertiesError::BadLine {
                    path: path.to_path_buf(),
                    line: index + 1,
                })
            }
        }
    }
    Ok(properties)
}

/// Resolves a `key=path` flag (`--kafka-property-file`): the property's value is the file's
/// content without its trailing newline, as in a Secret mounted as a volume.
pub fn read_property_file(flag: &str) -> Result<(String, String), PropertiesError> {
    let (key, path) = parse_property(flag)?;
    let path = PathBuf::from(path);
    let value = std::fs::read_to_string(&path)
        .map_err(|source| PropertiesError::Unreadable { path, source })?;
    let value = value.strip_suffix('\n').unwrap_or(&value);
    let value = value.strip_suffix('\r').unwrap_or(value);
    Ok((key, value.to_string()))
}

/// All client properties of a process, in the order they apply (later wins): flags, then
/// properties files, then single-property files.
pub fn collect(
    flags: &[(String, String)],
    files: &[PathBuf],
    property_files: &[String],
) -> Result<Vec<(String, String)>, PropertiesError> {
    let mut properties = flags.to_vec();
    for file in files {
        properties.extend(read_properties_file(file)?);
    }
    for flag in property_files {
        properties.push(read_property_file(flag)?);
    }
    Ok(properties)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_supply_values_and_errors_never_show_them() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("client.properties");
        std::fs::write(
            &file,
            "# SASL\nsasl.mechanism = SCRAM-SHA-512\n\nsasl.password=p=ss\n",
        )
        .unwrap();
        let password = dir.path().join("password");
        std::fs::write(&password, "hunter2\n").unwrap();
        let properties = collect(
            &[("client.id".into(), "x".into())],
            std::slice::from_ref(&file),
            &[format!("sasl.username={}", password.display())],
        )
        .unwrap();
        assert_eq!(
            properties,
            [
                ("client.id".to_string(), "x".to_string()),
                ("sasl.mechanism".into(), "SCRAM-SHA-512".into()),
                ("sasl.password".into(), "p=ss".into()),
                ("sasl.username".into(), "hunter2".into()),
            ]
        );

        std::fs::write(&file, "sasl.password hunter2\n").unwrap();
        let error = read_properties_file(&file).unwrap_err().to_string();
        assert!(
            error.contains("line 1") && !error.contains("hunter2"),
            "{error}"
        );
        let error = read_property_file("sasl.password=/nonexistent/password")
            .unwrap_err()
            .to_string();
        assert!(error.contains("/nonexistent/password"), "{error}");
    }
}
