//! What the admin's commands read from files the admin names (samples, test cases, an archive
//! of 850s, webhooks, a mapping to learn onto): one error type for reading them, naming the
//! path, so a caller can tell a missing directory from a malformed file.

use std::path::{Path, PathBuf};

use crate::ingram::order::DecodeError;

/// Why an admin's input could not be used.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A file or directory that cannot be read.
    #[error("cannot read {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// A webhook file that is not JSON.
    #[error("malformed json: {0}")]
    Json(serde_json::Error),
    /// A webhook the mapping cannot decode.
    #[error("{0}")]
    Webhook(DecodeError),
    /// A TOML file that does not parse.
    #[error("{}: {error}", path.display())]
    Toml {
        path: PathBuf,
        error: Box<toml::de::Error>,
    },
    /// A TOML table that cannot be written back out.
    #[error("{}: cannot write it out again: {error}", path.display())]
    TomlOut {
        path: PathBuf,
        error: toml::ser::Error,
    },
    /// A directory without any of the files asked for.
    #[error("{}: {what}", path.display())]
    Nothing { path: PathBuf, what: &'static str },
}

impl InputError {
    /// The error for `path` failing to read, for `map_err`.
    pub fn reading(path: &Path) -> impl Fn(std::io::Error) -> InputError + '_ {
        move |error| InputError::Read {
            path: path.to_path_buf(),
            error,
        }
    }
}

/// The whole of the file at `path`.
pub fn read(path: &Path) -> Result<Vec<u8>, InputError> {
    std::fs::read(path).map_err(InputError::reading(path))
}

/// The files of `dir`, sorted by name (subdirectories and hidden files skipped).
pub fn files_in(dir: &Path) -> Result<Vec<PathBuf>, InputError> {
    let entries = std::fs::read_dir(dir).map_err(InputError::reading(dir))?;
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    Ok(files)
}
