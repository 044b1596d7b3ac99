//! The broker that requires TLS and SASL/SCRAM (`e2e/kafka/secure-up.sh`), with its test CA,
//! a second CA that did not sign it, and one user's credentials as files, the way a Secret
//! mounted into a pod provides them.

use std::path::PathBuf;
use std::sync::OnceLock;

use crate::Broker;

const ADDRESS_ENV: &str = "STREAMSPLIT_TEST_SECURE_KAFKA";
const DIR_ENV: &str = "STREAMSPLIT_TEST_SECURE_KAFKA_DIR";

/// A running TLS + SASL broker and its credential files.
pub struct SecureKafka {
    /// Test helpers' handle, configured with the good credentials.
    pub broker: Broker,
    /// Where `ca.pem`, `wrong-ca.pem`, `sasl-username` and `sasl-password` are.
    pub dir: PathBuf,
}

impl SecureKafka {
    /// The shared secure broker (`STREAMSPLIT_TEST_SECURE_KAFKA(_DIR)` if set, else the one
    /// `secure-up.sh` starts). Panics with the reason when there is none: no silent skips.
    pub fn shared() -> &'static SecureKafka {
        static SECURE: OnceLock<SecureKafka> = OnceLock::new();
        SECURE.get_or_init(|| match Self::start() {
            Ok(secure) => secure,
            Err(error) => panic!("no TLS/SASL broker for the tests: {error:#}"),
        })
    }

    fn start() -> anyhow::Result<SecureKafka> {
        let from_env = |name| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let (address, dir) = match (from_env(ADDRESS_ENV), from_env(DIR_ENV)) {
            (Some(address), Some(dir)) => (address, dir),
            _ => (
                crate::run_up_script("e2e/kafka/secure-up.sh", ADDRESS_ENV)?,
                crate::run_up_script("e2e/kafka/secure-up.sh", DIR_ENV)?,
            ),
        };
        let dir = PathBuf::from(dir);
        let mut broker = Broker::at(address);
        broker.properties = client_properties(&dir, &dir.join("ca.pem"))?;
        Ok(SecureKafka { broker, dir })
    }

    /// The test CA's certificate.
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A CA that did not sign the broker's certificate.
    pub fn wrong_ca(&self) -> PathBuf {
        self.dir.join("wrong-ca.pem")
    }

    /// The user's password (what no output may ever contain).
    pub fn password(&self) -> String {
        std::fs::read_to_string(self.dir.join("sasl-password"))
            .map(|p| p.trim().to_string())
            .unwrap_or_default()
    }

    /// Flags for the router or operator, as the chart passes them: non-secret settings in a
    /// properties file, username and password read from their own files. `ca` picks the CA and
    /// `password_file` the password.
    pub fn flags(
        &self,
        work: &std::path::Path,
        ca: &std::path::Path,
        password_file: &std::path::Path,
    ) -> Vec<String> {
        let properties = work.join("kafka-client.properties");
        let text = format!(
            "# TLS and SASL, as mounted from a Secret\nsecurity.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\nssl.ca.location={}\n",
            ca.display()
        );
        // Best effort: a failure shows as the router's own "cannot read" error.
        let _ = std::fs::write(&properties, text);
        vec![
            "--kafka-properties-file".into(),
            properties.display().to_string(),
            "--kafka-property-file".into(),
            format!("sasl.username={}", self.dir.join("sasl-username").display()),
            "--kafka-property-file".into(),
            format!("sasl.password={}", password_file.display()),
        ]
    }

    /// The right password's file.
    pub fn password_file(&self) -> PathBuf {
        self.dir.join("sasl-password")
    }
}

fn client_properties(
    dir: &std::path::Path,
    ca: &std::path::Path,
) -> anyhow::Result<Vec<(String, String)>> {
    let read = |name: &str| -> anyhow::Result<String> {
        Ok(std::fs::read_to_string(dir.join(name))?.trim().to_string())
    };
    Ok(vec![
        ("security.protocol".into(), "SASL_SSL".into()),
        ("sasl.mechanism".into(), "SCRAM-SHA-512".into()),
        ("ssl.ca.location".into(), ca.display().to_string()),
        ("sasl.username".into(), read("sasl-username")?),
        ("sasl.password".into(), read("sasl-password")?),
    ])
}
