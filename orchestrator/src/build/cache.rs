//! Content-addressed cache of built kernels, keyed by (source tree id, final
//! .config hash, compiler version). An entry holds `vmlinux`, `bzImage` when the
//! build made one, the `modules_install` output and a manifest; it is written to
//! a staging folder and renamed into place, so a reader never sees half an entry.
//! A second cache, keyed by (tree id, compiler, fragments), remembers the final
//! .config so a cache hit needs neither a checkout nor `make`.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What identifies a kernel build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheKey {
    /// `git rev-parse <commit>^{tree}`.
    pub tree_id: String,
    /// sha256 of the final .config.
    pub config_hash: String,
    /// First line of `gcc --version`.
    pub compiler: String,
}

impl CacheKey {
    /// The entry's directory name.
    pub fn digest(&self) -> String {
        sha256_hex(
            format!(
                "kernel\0{}\0{}\0{}",
                self.tree_id, self.config_hash, self.compiler
            )
            .as_bytes(),
        )
    }
}

/// The manifest stored with each entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The key the entry was stored under.
    pub key: CacheKey,
    /// sha256 over vmlinux and every module file (see [`artifact_id`]).
    pub artifact_id: String,
    /// `make kernelrelease`, the `lib/modules/<release>` folder name.
    pub release: String,
    /// Commit the entry was first built from.
    pub commit: String,
    /// Seconds the build took.
    pub build_seconds: f64,
    /// When it was stored (RFC 3339).
    pub created: String,
}

/// A cache entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The entry's folder.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
}

impl Entry {
    /// The uncompressed kernel (QEMU boots it directly through PVH).
    pub fn vmlinux(&self) -> PathBuf {
        self.dir.join("vmlinux")
    }
    /// The compressed kernel, when the build made one.
    pub fn bzimage(&self) -> Option<PathBuf> {
        let p = self.dir.join("bzImage");
        p.exists().then_some(p)
    }
    /// The `INSTALL_MOD_PATH` folder (holds `lib/modules/<release>`).
    pub fn modules(&self) -> PathBuf {
        self.dir.join("modules")
    }
    /// The final .config.
    pub fn config(&self) -> PathBuf {
        self.dir.join("config")
    }
    /// The build log.
    pub fn build_log(&self) -> PathBuf {
        self.dir.join("build.log")
    }
}

/// The kernel and config caches under `<data-dir>/cache`.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

/// Hex sha256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Cache {
    /// The cache in `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        Cache {
            root: data_dir.join("cache"),
        }
    }

    fn kernels(&self) -> PathBuf {
        self.root.join("kernels")
    }

    /// Looks an entry up; a folder without a readable manifest is no entry.
    pub fn lookup(&self, key: &CacheKey) -> Option<Entry> {
        let dir = self.kernels().join(key.digest());
        let text = std::fs::read_to_string(dir.join("manifest.json")).ok()?;
        let manifest: Manifest = serde_json::from_str(&text).ok()?;
        (manifest.key == *key && dir.join("vmlinux").is_file()).then_some(Entry { dir, manifest })
    }

    /// A fresh staging folder to fill before [`Cache::commit`].
    pub fn staging(&self) -> std::io::Result<PathBuf> {
        let dir = self.kernels().join(format!(
            ".staging-{}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// Writes the manifest into `staging` and renames it into place.
    pub fn commit(&self, staging: &Path, manifest: Manifest) -> std::io::Result<Entry> {
        let json = serde_json::to_string_pretty(&manifest).map_err(std::io::Error::other)?;
        std::fs::write(staging.join("manifest.json"), json)?;
        let dir = self.kernels().join(manifest.key.digest());
        if dir.exists() {
            // Another build stored the same kernel first; keep that one.
            std::fs::remove_dir_all(staging)?;
        } else {
            std::fs::rename(staging, &dir)?;
        }
        Ok(Entry { dir, manifest })
    }

    /// Removes staging folders left by killed builds.
    pub fn clean_staging(&self) {
        if let Ok(rd) = std::fs::read_dir(self.kernels()) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with(".staging-") {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }

    fn config_path(&self, key: &str) -> PathBuf {
        self.root.join("configs").join(format!("{key}.config"))
    }

    /// The final .config remembered for a config key, if any.
    pub fn config(&self, key: &str) -> Option<String> {
        std::fs::read_to_string(self.config_path(key)).ok()
    }

    /// Remembers the final .config for a config key.
    pub fn store_config(&self, key: &str, text: &str) -> std::io::Result<()> {
        let path = self.config_path(key);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, text)?;
        std::fs::rename(tmp, path)
    }
}

/// The key of the config cache: what decides the final .config.
pub fn config_key(tree_id: &str, compiler: &str, fragments: &[crate::kconfig::Fragment]) -> String {
    let mut h = Sha256::new();
    h.update(b"config\0");
    h.update(tree_id.as_bytes());
    h.update(b"\0");
    h.update(compiler.as_bytes());
    for f in fragments {
        h.update(b"\0fragment\0");
        h.update(f.text.as_bytes());
    }
    hex::encode(h.finalize())
}

fn hash_file(h: &mut Sha256, path: &Path) -> std::io::Result<()> {
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        h.update(&buf[..n]);
    }
}

fn walk(dir: &Path, base: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let ft = e.file_type()?;
        let p = e.path();
        if ft.is_dir() {
            walk(&p, base, out)?;
        } else if ft.is_file() {
            out.push(p.strip_prefix(base).unwrap_or(&p).to_path_buf());
        }
    }
    Ok(())
}

/// sha256 over vmlinux and every regular file under `modules` (sorted by path,
/// each preceded by its relative path). Two builds with the same id are the same
/// kernel: bisection treats a commit whose id equals its parent's as a no-op.
pub fn artifact_id(vmlinux: &Path, modules: &Path) -> std::io::Result<String> {
    let mut h = Sha256::new();
    h.update(b"vmlinux\0");
    hash_file(&mut h, vmlinux)?;
    let mut files = Vec::new();
    if modules.is_dir() {
        walk(modules, modules, &mut files)?;
    }
    files.sort();
    for rel in files {
        h.update(b"\0file\0");
        h.update(rel.to_string_lossy().as_bytes());
        h.update(b"\0");
        hash_file(&mut h, &modules.join(&rel))?;
    }
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CacheKey {
        CacheKey {
            tree_id: "t".into(),
            config_hash: "c".into(),
            compiler: "gcc 12".into(),
        }
    }

    #[test]
    fn commit_then_lookup() {
        let d = tempfile::tempdir().unwrap();
        let cache = Cache::new(d.path());
        assert!(cache.lookup(&key()).is_none());
        let st = cache.staging().unwrap();
        std::fs::write(st.join("vmlinux"), b"kernel").unwrap();
        std::fs::create_dir_all(st.join("modules/lib/modules/6.12")).unwrap();
        std::fs::write(st.join("modules/lib/modules/6.12/a.ko"), b"m").unwrap();
        let id = artifact_id(&st.join("vmlinux"), &st.join("modules")).unwrap();
        let m = Manifest {
            key: key(),
            artifact_id: id.clone(),
            release: "6.12".into(),
            commit: "abc".into(),
            build_seconds: 1.0,
            created: "now".into(),
        };
        cache.commit(&st, m).unwrap();
        let e = cache.lookup(&key()).unwrap();
        assert_eq!(e.manifest.artifact_id, id);
        assert!(e.vmlinux().is_file());
        let mut other = key();
        other.config_hash = "d".into();
        assert!(cache.lookup(&other).is_none());
    }

    #[test]
    fn artifact_id_depends_on_module_content_and_name() {
        let d = tempfile::tempdir().unwrap();
        let v = d.path().join("vmlinux");
        std::fs::write(&v, b"k").unwrap();
        let m = d.path().join("m");
        std::fs::create_dir_all(&m).unwrap();
        std::fs::write(m.join("a.ko"), b"1").unwrap();
        let a = artifact_id(&v, &m).unwrap();
        assert_eq!(a, artifact_id(&v, &m).unwrap());
        std::fs::write(m.join("a.ko"), b"2").unwrap();
        let b = artifact_id(&v, &m).unwrap();
        assert_ne!(a, b);
        std::fs::rename(m.join("a.ko"), m.join("b.ko")).unwrap();
        assert_ne!(b, artifact_id(&v, &m).unwrap());
    }
}
