//! A key-value store kept in a file across restarts, as `spin up` keeps its default store in
//! SQLite (`.spin/sqlite_key_value.db`). The host's store stays in memory; after every request
//! that wrote, the whole store is written to a temporary file and renamed over the old one, so a
//! crash leaves either the old or the new contents, never half of each.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use test_host::KvStore;

/// The file's format tag, checked on load.
const FORMAT: &str = "apc-serve-store/1";

/// Why the store file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreFileError {
    /// Reading or writing failed.
    #[error("store file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not one this program wrote.
    #[error("store file {path} is not an apc-serve store ({why}); move it away to start empty")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
}

/// On disk: text values as they are, other values in hex.
#[derive(serde::Serialize, serde::Deserialize)]
struct OnDisk {
    format: String,
    #[serde(default)]
    text: BTreeMap<String, String>,
    #[serde(default)]
    hex: BTreeMap<String, String>,
}

/// A store file bound to a store.
#[derive(Debug)]
pub struct StoreFile {
    path: PathBuf,
    /// The store's write count at the last save: nothing to write while it is unchanged.
    saved_writes: Mutex<u64>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| text.get(i..i + 2).and_then(|p| u8::from_str_radix(p, 16).ok())).collect()
}

impl StoreFile {
    /// Loads `path` into `store` (a missing file is an empty store) and returns the binding and
    /// how many keys were loaded.
    pub fn open(path: &Path, store: &KvStore) -> Result<(Self, usize), StoreFileError> {
        let io = |source| StoreFileError::Io { path: path.to_path_buf(), source };
        let format = |why: String| StoreFileError::Format { path: path.to_path_buf(), why };
        let mut loaded = 0;
        match std::fs::read(path) {
            Ok(bytes) => {
                let disk: OnDisk = serde_json::from_slice(&bytes).map_err(|e| format(e.to_string()))?;
                if disk.format != FORMAT {
                    return Err(format(format!("format {:?}, expected {FORMAT:?}", disk.format)));
                }
                for (key, value) in disk.text {
                    store.set(key, value.into_bytes());
                    loaded += 1;
                }
                for (key, value) in disk.hex {
                    let bytes = unhex(&value).ok_or_else(|| format(format!("key {key:?} has a bad hex value")))?;
                    store.set(key, bytes);
                    loaded += 1;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        let file = Self { path: path.to_path_buf(), saved_writes: Mutex::new(store.counts().writes()) };
        Ok((file, loaded))
    }

    /// Writes the store out if a guest wrote to it since the last save; `Ok(false)` when
    /// there was nothing to write.
    pub fn save_if_changed(&self, store: &KvStore) -> Result<bool, StoreFileError> {
        let mut saved = self.saved_writes.lock().unwrap_or_else(|p| p.into_inner());
        let writes = store.counts().writes();
        if writes == *saved {
            return Ok(false);
        }
        self.save(store)?;
        *saved = writes;
        Ok(true)
    }

    /// Writes the whole store to a temporary file beside the target, then renames it over.
    pub fn save(&self, store: &KvStore) -> Result<(), StoreFileError> {
        let io = |source| StoreFileError::Io { path: self.path.clone(), source };
        let mut disk = OnDisk { format: FORMAT.to_string(), text: BTreeMap::new(), hex: BTreeMap::new() };
        for (key, value) in store.values() {
            match String::from_utf8(value) {
                Ok(text) => disk.text.insert(key, text),
                Err(e) => disk.hex.insert(key, hex(e.as_bytes())),
            };
        }
        let json = serde_json::to_vec_pretty(&disk).map_err(|e| io(std::io::Error::other(e)))?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        std::fs::write(&tmp, json).map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("apc-serve-store-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join("nested/store.json")
    }

    #[test]
    fn round_trips_text_and_binary_values() {
        let path = temp_path("round");
        let store = KvStore::new();
        let (file, loaded) = StoreFile::open(&path, &store).unwrap();
        assert_eq!(loaded, 0, "a missing file is an empty store");
        store.set("v1:cap:a:1", b"{\"state\":\"succeeded\"}".to_vec());
        store.set("v1:azure", vec![0u8, 255, 16]);
        file.save(&store).unwrap();

        let again = KvStore::new();
        let (_, loaded) = StoreFile::open(&path, &again).unwrap();
        assert_eq!(loaded, 2);
        assert_eq!(again.values(), store.values());
        assert!(!path.with_extension("json.tmp").exists(), "the temporary file is renamed away");
    }

    #[test]
    fn nothing_is_written_without_a_guest_write() {
        let path = temp_path("unchanged");
        let store = KvStore::new();
        let (file, _) = StoreFile::open(&path, &store).unwrap();
        // `KvStore::set` from the host is not a guest write: nothing to save.
        store.set("k", b"v".to_vec());
        assert!(!file.save_if_changed(&store).unwrap());
        assert!(!path.exists());
    }

    #[test]
    fn a_foreign_file_is_refused_by_name() {
        let path = temp_path("foreign");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"{\"format\":\"other\"}").unwrap();
        let err = StoreFile::open(&path, &KvStore::new()).unwrap_err().to_string();
        assert!(err.contains("not an apc-serve store") && err.contains("\"other\""), "{err}");
        std::fs::write(&path, b"not json").unwrap();
        assert!(matches!(StoreFile::open(&path, &KvStore::new()), Err(StoreFileError::Format { .. })));
        std::fs::write(&path, format!("{{\"format\":\"{FORMAT}\",\"hex\":{{\"k\":\"zz\"}}}}")).unwrap();
        assert!(StoreFile::open(&path, &KvStore::new()).unwrap_err().to_string().contains("bad hex"));
    }

    #[test]
    fn hex_round_trip() {
        assert_eq!(unhex(&hex(&[0, 1, 0xab, 0xff])).unwrap(), vec![0, 1, 0xab, 0xff]);
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("g0"), None);
    }
}
