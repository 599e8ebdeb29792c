//! The node's one embedded ACID store: a [redb] database at
//! `<data_dir>/node.redb`.
//!
//! Everything that must survive a restart lives here (DESIGN.md, "Full
//! node"): the WebRTC certificate, the peerstore with its bans, and later the
//! mempool, blocks and state. Each module that owns data defines its own
//! tables as `pub(crate) const` [`TableDefinition`]s next to the code that
//! uses them, and reaches the database through [`Store::database`]. This
//! module owns only the small `meta` table (string key → bytes).
//!
//! Commits are durable: redb's default [`redb::Durability::Immediate`] is
//! kept, so once a write transaction's `commit()` returns, the data is on
//! disk and survives a crash or a kill at any later moment. redb holds an
//! exclusive lock on the file, so a second process (or a second open in the
//! same process) gets [`StoreError::InUse`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableDatabase, TableDefinition, TableError};

/// The file name of the store inside the data directory.
pub const STORE_FILE: &str = "node.redb";

/// The `meta` table: small named values (string key → bytes).
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new(META_TABLE);
const META_TABLE: &str = "meta";

/// Errors of the store. Every one names the database file and what was being done.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database is locked by another open handle.
    #[error(
        "another tiernet-node process is using {path} (the store is locked); stop that process, \
         or give this one another data directory"
    )]
    InUse {
        /// The database file.
        path: PathBuf,
    },
    /// The directory that should hold the database could not be created.
    #[error("cannot create the directory {path} for the store: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The database could not be opened or created.
    #[error("cannot open the store {path}: {source}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// What redb said.
        source: redb::DatabaseError,
    },
    /// A read or write on a table failed.
    #[error("store {path}: {op} on table `{table}` failed: {source}")]
    Db {
        /// The database file.
        path: PathBuf,
        /// The operation, such as `"put_meta"`.
        op: &'static str,
        /// The table's name.
        table: &'static str,
        /// What redb said.
        source: Box<redb::Error>,
    },
    /// A record could not be encoded for writing.
    #[error("store {path}: cannot encode the record `{key}` for table `{table}`: {source}")]
    Encode {
        /// The database file.
        path: PathBuf,
        /// The table's name.
        table: &'static str,
        /// The record's key, readable.
        key: String,
        /// What the encoder said.
        source: serde_json::Error,
    },
}

/// The node's store. Cheap to clone: clones share one open database, which
/// is closed (and its lock released) when the last clone is dropped.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
    path: Arc<Path>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the database at `path`, creating it (and its parent
    /// directories) if it does not exist.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::CreateDir {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let db = Database::create(path).map_err(|source| match source {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse {
                path: path.to_path_buf(),
            },
            source => StoreError::Open {
                path: path.to_path_buf(),
                source,
            },
        })?;
        Ok(Store {
            db: Arc::new(db),
            path: Arc::from(path),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The database, for modules that define their own tables. Write
    /// transactions are durable when `commit()` returns (see the module docs).
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// A [`StoreError::Db`] naming this store's path, the operation and the table.
    pub fn error(&self, op: &'static str, table: &'static str, source: impl Into<redb::Error>) -> StoreError {
        StoreError::Db {
            path: self.path.to_path_buf(),
            op,
            table,
            source: Box::new(source.into()),
        }
    }

    /// The value stored under `key` in the `meta` table, if any.
    pub fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        const OP: &str = "get_meta";
        let table_name = META_TABLE;
        let txn = self.db.begin_read().map_err(|e| self.error(OP, table_name, e))?;
        let table = match txn.open_table(META) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(self.error(OP, table_name, e)),
        };
        let value = table.get(key).map_err(|e| self.error(OP, table_name, e))?;
        Ok(value.map(|guard| guard.value().to_vec()))
    }

    /// Stores `value` under `key` in the `meta` table (replacing any old
    /// value), durably.
    pub fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        const OP: &str = "put_meta";
        let table_name = META_TABLE;
        let txn = self.db.begin_write().map_err(|e| self.error(OP, table_name, e))?;
        {
            let mut table = txn.open_table(META).map_err(|e| self.error(OP, table_name, e))?;
            table.insert(key, value).map_err(|e| self.error(OP, table_name, e))?;
        }
        txn.commit().map_err(|e| self.error(OP, table_name, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_survives_close_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join(STORE_FILE);
        {
            let store = Store::open(&path).unwrap();
            assert_eq!(store.get_meta("k").unwrap(), None);
            store.put_meta("k", b"v1").unwrap();
            store.put_meta("k", b"v2").unwrap();
            store.put_meta("other", b"").unwrap();
            assert_eq!(store.get_meta("k").unwrap().as_deref(), Some(&b"v2"[..]));
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.path(), path);
        assert_eq!(store.get_meta("k").unwrap().as_deref(), Some(&b"v2"[..]));
        assert_eq!(store.get_meta("other").unwrap().as_deref(), Some(&b""[..]));
        assert_eq!(store.get_meta("missing").unwrap(), None);
    }

    #[test]
    fn second_open_says_the_store_is_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STORE_FILE);
        let store = Store::open(&path).unwrap();
        let err = Store::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::InUse { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("another tiernet-node process is using"), "{msg}");
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        // A clone shares the open database; the lock goes with the last one.
        let clone = store.clone();
        drop(store);
        assert!(Store::open(&path).is_err());
        drop(clone);
        Store::open(&path).unwrap();
    }

    #[test]
    fn a_file_that_is_not_a_database_is_an_open_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STORE_FILE);
        std::fs::write(&path, b"this is not a redb database, not at all, no").unwrap();
        let err = Store::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
        assert!(err.to_string().contains(&path.display().to_string()));
    }
}
