//! Embedded SQLite store: one database file under the data directory, plus the
//! artifact folders beside it. Each table group owns a submodule with its schema;
//! `Store::open` creates them all. State that must survive a crash is written
//! here before it is acted on.

pub mod bisect;
pub mod runs;

use std::path::{Path, PathBuf};

use rusqlite::Connection;

/// Store errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open database {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open lock file {path}: {source}")]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
}

/// The csdci database and data directory.
pub struct Store {
    conn: Connection,
    data_dir: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the store in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, Error> {
        std::fs::create_dir_all(data_dir).map_err(|source| Error::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = data_dir.join("csdci.sqlite3");
        let conn = Connection::open(&path).map_err(|source| Error::Open {
            path: path.clone(),
            source,
        })?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let store = Store {
            conn,
            data_dir: data_dir.to_path_buf(),
        };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&self) -> Result<(), Error> {
        // Each table group adds its schema function here.
        runs::migrate(&self.conn)?;
        bisect::migrate(&self.conn)?;
        Ok(())
    }

    /// The SQLite connection.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The default data directory: `$XDG_DATA_HOME/csdci` (`~/.local/share/csdci`).
    pub fn default_dir() -> PathBuf {
        dirs::data_dir()
            .unwrap_or_else(|| PathBuf::from("."))
            .join("csdci")
    }
}
