//! Keys of a settings file that are not settings are refused with their name, like unknown
//! fields in the API: a typo (`listn = …`) would otherwise be ignored and its default used.
//!
//! Only the file is checked, against the keys of the built-in defaults (`default.toml`) and the
//! optional settings that have no default. The environment is not: any `HOOKRELAY_*` variable
//! that is not a setting (`HOOKRELAY_TEST_POSTGRES_URL`, `HOOKRELAY_CONFIG`) stays allowed.

use std::collections::BTreeSet;
use std::path::Path;

use figment::providers::{Format, Toml};
use figment::value::Dict;
use figment::Figment;

use super::{ConfigError, DEFAULTS};

/// Settings without a built-in value (absent means "not set"), so not in `default.toml`.
pub(super) const OPTIONAL_KEYS: &[&str] = &[
    "admin_key",
    "master_key",
    "admin_password",
    "require_https",
    "log_format",
];

/// Every setting a file may hold.
pub(super) fn known_keys() -> BTreeSet<String> {
    let defaults: Dict = Figment::from(Toml::string(DEFAULTS))
        .extract()
        .expect("the built-in defaults are valid TOML");
    defaults
        .into_keys()
        .chain(OPTIONAL_KEYS.iter().map(|k| k.to_string()))
        .collect()
}

/// The top-level keys of the TOML file at `path`, as written.
pub(super) fn file_keys(path: &Path) -> Result<Vec<String>, ConfigError> {
    let dict: Dict = Figment::from(Toml::file_exact(path))
        .extract()
        .map_err(|e| ConfigError(e.to_string()))?;
    Ok(dict.into_keys().collect())
}

/// Refuses the first key of the file at `path` that is not a setting, naming it and the file.
pub(super) fn check_file_keys(path: &Path) -> Result<(), ConfigError> {
    let known = known_keys();
    let unknown = file_keys(path)?
        .into_iter()
        .find(|k| !known.contains(k.as_str()));
    match unknown {
        None => Ok(()),
        Some(key) => {
            let hint = suggestion(&key, &known)
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            Err(ConfigError(format!(
                "unknown setting `{key}` in {}{hint}",
                path.display()
            )))
        }
    }
}

/// The known key closest to `key` when it looks like a typo of it (a few edits away).
fn suggestion<'a>(key: &str, known: &'a BTreeSet<String>) -> Option<&'a str> {
    let lower = key.to_lowercase();
    known
        .iter()
        .map(|k| (edit_distance(&lower, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.as_str())
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            let next = (row[j + 1] + 1).min(row[j] + 1).min(prev + cost);
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;

    fn write(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
        let path = dir.path().join("hookrelay.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API returns its own large error type
    fn unknown_keys_in_the_file_are_refused_with_their_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            &dir,
            "listn = \"127.0.0.1:9000\"\ndelivery_timeout_ms = 2000\n",
        );
        figment::Jail::expect_with(|_| {
            let e = Config::load(Some(&path)).unwrap_err().to_string();
            assert_eq!(
                e,
                format!(
                    "configuration: unknown setting `listn` in {} (did you mean `listen`?)",
                    path.display()
                )
            );
            Ok(())
        });
        // No suggestion when nothing is close; tables are keys like any other.
        let path = write(&dir, "[server]\nport = 8080\n");
        let e = check_file_keys(&path).unwrap_err().to_string();
        assert!(e.contains("unknown setting `server` in"), "{e}");
        assert!(!e.contains("did you mean"), "{e}");
        // Case matters: the settings are lower case.
        let path = write(&dir, "LISTEN = \"127.0.0.1:9000\"\n");
        let e = check_file_keys(&path).unwrap_err().to_string();
        assert!(
            e.contains("`LISTEN`") && e.contains("did you mean `listen`?"),
            "{e}"
        );
        let path = write(&dir, "worker_concurency = 4\n");
        let e = check_file_keys(&path).unwrap_err().to_string();
        assert!(e.contains("did you mean `worker_concurrency`?"), "{e}");
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn known_and_optional_keys_pass_and_the_environment_is_not_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            &dir,
            "listen = \"127.0.0.1:9000\"\nrequire_https = false\nlog_format = \"json\"\nadmin_email = \"ops@example.com\"\n",
        );
        figment::Jail::expect_with(|jail| {
            // Variables that are not settings (the tests' own) do not stop the service.
            jail.set_env("HOOKRELAY_TEST_SOMETHING_ELSE", "1");
            let c = Config::load(Some(&path)).unwrap();
            assert_eq!(c.listen.to_string(), "127.0.0.1:9000");
            assert_eq!(c.log_format, Some(super::super::LogFormat::Json));
            Ok(())
        });
    }

    #[test]
    fn a_file_that_is_not_toml_is_refused_with_figments_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "listen = \n");
        let e = check_file_keys(&path).unwrap_err().to_string();
        assert!(e.starts_with("configuration: "), "{e}");
        let missing = dir.path().join("nope.toml");
        assert!(check_file_keys(&missing).is_err());
    }

    /// deploy/config/{dev,staging,prod}.toml parse with the real loader, are of their profile,
    /// and list every setting: each key of default.toml set, each optional one at least shown
    /// commented out (`# key = …`), so a new setting is not forgotten there.
    #[test]
    fn example_configs_parse_and_list_every_setting() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/config");
        let defaults: Dict = Figment::from(Toml::string(DEFAULTS)).extract().unwrap();
        for profile in ["dev", "staging", "prod"] {
            let path = dir.join(format!("{profile}.toml"));
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            check_file_keys(&path).unwrap_or_else(|e| panic!("{e}"));
            // The master key comes from the environment (prod requires one).
            let fig = Config::figment(Some(&path)).merge(figment::providers::Serialized::default(
                "master_key",
                crate::secrets::Keyring::generate_key(),
            ));
            let config =
                Config::from_figment(fig).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(
                format!("{:?}", config.env).to_lowercase(),
                profile,
                "{} sets env = \"{profile}\"",
                path.display()
            );
            let set: BTreeSet<String> = file_keys(&path).unwrap().into_iter().collect();
            for key in defaults.keys() {
                assert!(
                    set.contains(key),
                    "{} does not set `{key}` (every setting of default.toml is listed, documented, in each example)",
                    path.display()
                );
            }
            for key in OPTIONAL_KEYS {
                assert!(
                    set.contains(*key) || text.contains(&format!("\n# {key} = ")),
                    "{} does not mention the optional setting `{key}`",
                    path.display()
                );
            }
            // Documented: a comment right above every setting.
            let lines: Vec<&str> = text.lines().collect();
            for (i, line) in lines.iter().enumerate() {
                let Some((key, _)) = line.split_once(" = ") else {
                    continue;
                };
                let key = key.trim_start_matches("# ");
                if set.contains(key) || OPTIONAL_KEYS.contains(&key) {
                    assert!(
                        i.checked_sub(1).is_some_and(|j| lines[j].starts_with("# ")),
                        "{}: `{key}` has no comment above it",
                        path.display()
                    );
                }
            }
        }
    }

    #[test]
    fn suggestions() {
        let known = known_keys();
        assert!(known.contains("listen") && known.contains("master_key"));
        assert_eq!(suggestion("databse_url", &known), Some("database_url"));
        assert_eq!(suggestion("retention_day", &known), Some("retention_days"));
        assert_eq!(suggestion("colour", &known), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
