//! Embedded SQLite store: one database file under the data directory, plus the
//! artifact folders beside it. Each table group owns a submodule with its
//! queries; the schema is the ordered list of versioned migrations in
//! [`migrations`] (`PRAGMA user_version`), which `Store::open` brings up to
//! date. State that must survive a crash is written here before it is acted on.
//!
//! Schema versions: `Store::open` migrates an older database (including one of
//! the csdci before versions, `user_version` 0) and refuses a newer one.
//! `Store::open_read_only` never migrates: it reads an older database as it is
//! when its version is at least [`migrations::OLDEST_READABLE`] (tables a later
//! version added read as empty), refuses an older one (a writing command must
//! migrate it first) and refuses a newer one.

pub mod bisect;
pub mod findings;
pub mod fix_validations;
pub mod mails;
pub mod migrations;
pub mod nights;
pub mod regressions;
pub mod runs;
pub mod series;

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
    #[error(
        "database {path} was written by a newer csdci (schema version {found}; this csdci knows versions up to {supported}): use that csdci or a newer one"
    )]
    TooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error(
        "database {path} has schema version {found}, older than this csdci reads without migrating it ({oldest}): run a writing csdci command (e.g. `csdci bisect` or `csdci run`) on this data directory once"
    )]
    TooOld {
        path: PathBuf,
        found: u32,
        oldest: u32,
    },
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
}

/// The database file in a data directory.
pub const DB_FILE: &str = "csdci.sqlite3";

/// Held (`flock`) while a process opens the database for writing: switching to
/// WAL and creating the schema happen one process at a time.
const OPEN_LOCK: &str = "csdci.sqlite3.open-lock";

/// How long opening waits for other csdci processes (the open lock, SQLite's
/// locks).
const OPEN_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The csdci database and data directory.
pub struct Store {
    conn: Connection,
    data_dir: PathBuf,
    /// The database's schema version ([`migrations::LATEST`] unless opened
    /// read-only on an older database).
    version: u32,
}

/// True for SQLite's "database is locked" / "database table is locked".
fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// `path` as an SQLite URI with `query` (`%`, `?` and `#` escaped).
fn uri(path: &Path, query: &str) -> String {
    let mut s = String::from("file:");
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => s.push_str("%25"),
            '?' => s.push_str("%3f"),
            '#' => s.push_str("%23"),
            c => s.push(c),
        }
    }
    s.push('?');
    s.push_str(query);
    s
}

impl Store {
    /// Opens (creating if needed) the store in `data_dir`. Safe to call from
    /// many processes at once on a new data directory: the first creates the
    /// schema while the others wait.
    pub fn open(data_dir: &Path) -> Result<Self, Error> {
        std::fs::create_dir_all(data_dir).map_err(|source| Error::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = data_dir.join(DB_FILE);
        let _open_lock = Self::open_lock(data_dir)?;
        let at = |source| Error::Open {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(at)?;
        // Before anything that may meet another process's lock.
        conn.busy_timeout(OPEN_WAIT).map_err(at)?;
        Self::wal(&conn).map_err(at)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(at)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(at)?;
        let store = Store {
            conn,
            data_dir: data_dir.to_path_buf(),
            version: migrations::LATEST,
        };
        store.migrate(&path).map_err(|e| match e {
            Error::Sql(source) => at(source),
            e => e,
        })?;
        Ok(store)
    }

    /// Opens the store in `data_dir` for reading only (`bisect list`, `bisect
    /// log`): creates nothing, so it works in a read-only data directory. A
    /// data directory without a database reads as an empty store. Never
    /// migrates: an older database is read as it is when still readable (see
    /// the module docs), else refused like a newer one.
    pub fn open_read_only(data_dir: &Path) -> Result<Self, Error> {
        use rusqlite::OpenFlags;
        let path = data_dir.join(DB_FILE);
        let at = |source| Error::Open {
            path: path.clone(),
            source,
        };
        if !path.exists() {
            return Self::empty(data_dir);
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let try_open = |query: &str| -> rusqlite::Result<(Connection, bool, u32)> {
            let conn = Connection::open_with_flags(uri(&path, query), flags)?;
            conn.busy_timeout(OPEN_WAIT)?;
            // One read transaction: the version and the tables seen together.
            conn.execute_batch("BEGIN")?;
            let seen = (|| -> rusqlite::Result<(bool, u32)> {
                let tables: i64 = conn.query_row(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'bisections'",
                    [],
                    |r| r.get(0),
                )?;
                Ok((tables > 0, migrations::version(&conn)?))
            })();
            let _ = conn.execute_batch("COMMIT");
            let (tables, version) = seen?;
            Ok((conn, tables, version))
        };
        let (conn, schema, version) = match try_open("mode=ro") {
            Ok(c) => c,
            // A WAL database whose directory cannot take the `-shm` file: no
            // process can be writing it, so read the file as it is.
            Err(e) if !is_busy(&e) => try_open("mode=ro&immutable=1").map_err(|_| at(e))?,
            Err(e) => return Err(at(e)),
        };
        match migrations::compat(version, migrations::OLDEST_READABLE, migrations::LATEST) {
            migrations::Compat::TooNew => {
                return Err(Error::TooNew {
                    path,
                    found: version,
                    supported: migrations::LATEST,
                });
            }
            // Another process is creating it right now: nothing stored yet.
            _ if !schema => return Self::empty(data_dir),
            migrations::Compat::TooOld => {
                return Err(Error::TooOld {
                    path,
                    found: version,
                    oldest: migrations::OLDEST_READABLE,
                });
            }
            migrations::Compat::Current | migrations::Compat::Readable => {}
        }
        Ok(Store {
            conn,
            data_dir: data_dir.to_path_buf(),
            version,
        })
    }

    /// An empty in-memory store for `data_dir` (no database there yet).
    fn empty(data_dir: &Path) -> Result<Self, Error> {
        let store = Store {
            conn: Connection::open_in_memory()?,
            data_dir: data_dir.to_path_buf(),
            version: migrations::LATEST,
        };
        store.migrate(Path::new(":memory:"))?;
        Ok(store)
    }

    /// Takes the open lock, waiting for another opener at most [`OPEN_WAIT`].
    fn open_lock(data_dir: &Path) -> Result<crate::lockfile::Lock, Error> {
        let path = data_dir.join(OPEN_LOCK);
        let deadline = std::time::Instant::now() + OPEN_WAIT;
        loop {
            match crate::lockfile::try_lock(&path) {
                Ok(Some(lock)) => return Ok(lock),
                Ok(None) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Ok(None) => {
                    return Err(Error::Lock {
                        path,
                        source: std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "another csdci process held it for 30 s while opening the database",
                        ),
                    });
                }
                Err(source) => return Err(Error::Lock { path, source }),
            }
        }
    }

    /// Switches to WAL; that needs an exclusive lock SQLite's busy handler does
    /// not always wait for, so a busy database is retried.
    fn wal(conn: &Connection) -> rusqlite::Result<()> {
        let deadline = std::time::Instant::now() + OPEN_WAIT;
        loop {
            match conn
                .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))
            {
                Ok(_) => return Ok(()),
                Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Brings the schema to [`migrations::LATEST`] and tidies what killed
    /// processes left, in one write transaction (`BEGIN IMMEDIATE` waits for
    /// other writers under the busy timeout, and holds them off between
    /// reading the schema version and writing the new one). A database of a
    /// newer csdci is refused untouched.
    fn migrate(&self, path: &Path) -> Result<(), Error> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        let done = (|| {
            match migrations::migrate(&self.conn)? {
                migrations::Migrated::TooNew(found) => {
                    return Err(Error::TooNew {
                        path: path.to_path_buf(),
                        found,
                        supported: migrations::LATEST,
                    });
                }
                migrations::Migrated::From(v) if v > 0 && v < migrations::LATEST => {
                    tracing::info!(
                        "store {}: schema migrated from version {v} to {}",
                        path.display(),
                        migrations::LATEST
                    );
                }
                migrations::Migrated::From(_) => {}
            }
            runs::mark_stale(&self.conn)?;
            Ok(())
        })();
        match done {
            Ok(()) => self.conn.execute_batch("COMMIT")?,
            Err(_) => {
                let _ = self.conn.execute_batch("ROLLBACK");
            }
        }
        done
    }

    /// The database's schema version.
    pub fn schema_version(&self) -> u32 {
        self.version
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
