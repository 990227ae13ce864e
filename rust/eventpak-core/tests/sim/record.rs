//! A [`Storage`] that records, before every mutating operation, the state of the data dir
//! and what of it is durable; crash states are then rebuilt from those snapshots.
//!
//! Model of a crash (what a journaling file system such as ext4 or xfs can leave): bytes
//! covered by an fsync of their file survive; bytes written after a file's last fsync
//! survive as a prefix of any length (each unsynced write kept, cut or dropped, and
//! nothing after a cut one); a directory entry (a created file or folder, a rename, a
//! removal) survives only if its directory was fsynced after the change, otherwise the
//! change may or may not have happened.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use eventpak_core::io::{OsStorage, Storage};

use super::workload::{Log, SharedLog};

// Crash states are chosen with the shared generator, so a seed replays one exactly.
#[path = "../rng/mod.rs"]
mod rng;
pub use rng::Rng;

/// One file or folder as it was at a snapshot.
#[derive(Clone, Debug)]
pub struct Entry {
    /// `None` for a folder.
    pub content: Option<Vec<u8>>,
    /// Leading bytes covered by an fsync.
    pub durable_len: u64,
    /// Whether its name in its parent folder is durable.
    pub entry_durable: bool,
}

/// The data dir just before one mutating operation, and the workload log at that moment.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub entries: BTreeMap<PathBuf, Entry>,
    /// Renames not yet made durable: (from, to, what `to` held before, if anything, and
    /// whether the name `from` was durable before the rename).
    pub renames: Vec<Rename>,
    pub log: Log,
}

/// One rename not yet made durable: (from, to, what `to` held before, `from` was durable).
pub type Rename = (PathBuf, PathBuf, Option<Vec<u8>>, bool);

#[derive(Default, Debug)]
struct State {
    durable_len: HashMap<PathBuf, u64>,
    synced_names: HashMap<PathBuf, HashSet<PathBuf>>,
    renames: Vec<Rename>,
    snapshots: Vec<Snapshot>,
}

/// Records snapshots of `root` (relative paths) before every operation.
#[derive(Debug)]
pub struct RecordingStorage {
    root: PathBuf,
    log: SharedLog,
    state: Mutex<State>,
}

fn walk(dir: &Path, out: &mut Vec<(PathBuf, bool)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let is_dir = path.is_dir();
        out.push((path.clone(), is_dir));
        if is_dir {
            walk(&path, out);
        }
    }
}

impl RecordingStorage {
    /// Records the data dir `root`; the root folder itself counts as durable.
    pub fn new(root: &Path, log: SharedLog) -> Self {
        RecordingStorage { root: root.to_owned(), log, state: Mutex::default() }
    }

    /// The snapshots taken so far.
    pub fn snapshots(&self) -> Vec<Snapshot> {
        self.state.lock().unwrap().snapshots.clone()
    }

    fn rel(&self, path: &Path) -> PathBuf {
        path.strip_prefix(&self.root).unwrap_or(path).to_owned()
    }

    fn capture(&self) {
        let mut state = self.state.lock().unwrap();
        let mut found = Vec::new();
        walk(&self.root, &mut found);
        let mut entries = BTreeMap::new();
        for (path, is_dir) in found {
            let parent = path.parent().unwrap().to_owned();
            let entry_durable = state.synced_names.get(&parent).is_some_and(|names| names.contains(&path));
            let content = (!is_dir).then(|| std::fs::read(&path).unwrap());
            let durable_len = state.durable_len.get(&path).copied().unwrap_or(0);
            entries.insert(self.rel(&path), Entry { content, durable_len, entry_durable });
        }
        let renames = state
            .renames
            .iter()
            .map(|(f, t, old, durable)| (self.rel(f), self.rel(t), old.clone(), *durable))
            .collect();
        let log = self.log.lock().unwrap().clone();
        state.snapshots.push(Snapshot { entries, renames, log });
    }
}

impl Storage for RecordingStorage {
    fn write(&self, file: &File, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        self.capture();
        OsStorage.write(file, path, bytes)
    }

    fn sync(&self, file: &File, path: &Path) -> std::io::Result<()> {
        self.capture();
        OsStorage.sync(file, path)?;
        let len = file.metadata()?.len();
        self.state.lock().unwrap().durable_len.insert(path.to_owned(), len);
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        self.capture();
        OsStorage.sync_dir(dir)?;
        let names: HashSet<PathBuf> =
            std::fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
        let mut state = self.state.lock().unwrap();
        state.renames.retain(|(_, to, _, _)| to.parent() != Some(dir));
        state.synced_names.insert(dir.to_owned(), names);
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        self.capture();
        let old = std::fs::read(to).ok();
        OsStorage.rename(from, to)?;
        let mut state = self.state.lock().unwrap();
        let durable = state.durable_len.remove(from).unwrap_or(0);
        state.durable_len.insert(to.to_owned(), durable);
        // A name made durable before (a compaction's temp segment) stays if the rename is lost.
        let parent = from.parent().unwrap_or(from);
        let from_durable = state.synced_names.get(parent).is_some_and(|names| names.contains(from));
        state.renames.push((from.to_owned(), to.to_owned(), old, from_durable));
        Ok(())
    }

    fn truncate(&self, file: &File, path: &Path, len: u64) -> std::io::Result<()> {
        self.capture();
        OsStorage.truncate(file, path, len)?;
        let mut state = self.state.lock().unwrap();
        let durable = state.durable_len.entry(path.to_owned()).or_insert(0);
        *durable = (*durable).min(len);
        Ok(())
    }

    fn remove(&self, path: &Path) -> std::io::Result<()> {
        self.capture();
        OsStorage.remove(path)?;
        self.state.lock().unwrap().durable_len.remove(path);
        Ok(())
    }
}

impl Snapshot {
    /// Writes one crash state of this snapshot into `dir`, chosen by `rng`.
    pub fn materialise(&self, dir: &Path, rng: &mut Rng) {
        let mut entries = self.entries.clone();
        for (from, to, old, from_durable) in &self.renames {
            if rng.coin() {
                // The rename never reached the disk: `from` still holds the new bytes.
                if let Some(new) = entries.remove(to) {
                    let durable_len = new.content.as_ref().map_or(0, |c| c.len() as u64);
                    let entry_durable = *from_durable;
                    entries.insert(from.clone(), Entry { durable_len, entry_durable, ..new });
                }
                if let Some(old) = old {
                    let len = old.len() as u64;
                    entries.insert(
                        to.clone(),
                        Entry { content: Some(old.clone()), durable_len: len, entry_durable: true },
                    );
                }
            }
        }
        let mut vanished: Vec<PathBuf> = Vec::new();
        for (path, entry) in &entries {
            let parent_gone = vanished.iter().any(|v| path.starts_with(v));
            if parent_gone || (!entry.entry_durable && rng.coin()) {
                vanished.push(path.clone());
                continue;
            }
            let target = dir.join(path);
            match &entry.content {
                None => std::fs::create_dir_all(&target).unwrap(),
                Some(bytes) => {
                    let durable = (entry.durable_len as usize).min(bytes.len());
                    let keep = match rng.below(3) {
                        0 => bytes.len(),
                        1 => durable,
                        _ => durable + rng.below((bytes.len() - durable) as u64 + 1) as usize,
                    };
                    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
                    std::fs::write(&target, &bytes[..keep]).unwrap();
                }
            }
        }
    }
}
