//! Every operation on the ERP's directories (inbox, outbox, error, archive) and the state
//! directory goes through here. Those directories are writable by other accounts, so nothing
//! in them is trusted: a [`Dir`] is a directory handle opened once, and every name is resolved
//! relative to it with `openat`/`renameat`/`linkat`, never following a symlink (`O_NOFOLLOW`,
//! `AT_SYMLINK_NOFOLLOW`). Files are opened non-blocking and checked with `fstat` on the handle
//! actually opened, so a symlink, FIFO or device is refused, never read or written through.
//! New files are created with `O_CREAT|O_EXCL|O_NOFOLLOW` and an explicit mode (whatever the
//! umask); moves never replace an existing name; a private subdirectory (the inbox's processing
//! area) must be a real directory owned by the daemon with no access for others, checked each
//! time it is opened. The state directory must belong to the daemon's user and be writable by no
//! one else ([`state_dir_problem`]: refused at start, with the command that fixes it), and what
//! is in it is made private ([`make_private`]: files 0600, directories 0700).

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, RenameFlags, CWD};

/// Mode of the files the daemon writes for the ERP (850s, 997s, archive copies, reason files).
pub const FILE_MODE: u32 = 0o640;
/// Mode of the directories the daemon creates for itself (state, processing area).
pub const PRIVATE_DIR_MODE: u32 = 0o700;
/// Mode of the directories it creates under the ERP's trees (archive days, error).
pub const SHARED_DIR_MODE: u32 = 0o750;

/// What a directory entry is, from `lstat` (a symlink is a symlink, never its target).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Regular,
    Directory,
    Symlink,
    Fifo,
    Socket,
    Device,
    Unknown,
}

impl Kind {
    fn of(t: FileType) -> Kind {
        match t {
            FileType::RegularFile => Kind::Regular,
            FileType::Directory => Kind::Directory,
            FileType::Symlink => Kind::Symlink,
            FileType::Fifo => Kind::Fifo,
            FileType::Socket => Kind::Socket,
            FileType::CharacterDevice | FileType::BlockDevice => Kind::Device,
            _ => Kind::Unknown,
        }
    }

    /// For reason files and logs: "a symlink", "a FIFO", ….
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Regular => "a regular file",
            Kind::Directory => "a directory",
            Kind::Symlink => "a symlink",
            Kind::Fifo => "a FIFO",
            Kind::Socket => "a socket",
            Kind::Device => "a device",
            Kind::Unknown => "an unknown kind of file",
        }
    }
}

/// What `lstat` says of an entry: enough to tell whether it changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub kind: Kind,
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    /// Modification time in nanoseconds since the epoch.
    pub mtime_ns: i128,
    pub uid: u32,
    pub mode: u32,
    pub nlink: u64,
}

impl Meta {
    fn of(st: &rustix::fs::Stat) -> Meta {
        Meta {
            kind: Kind::of(FileType::from_raw_mode(st.st_mode)),
            dev: st.st_dev,
            ino: st.st_ino,
            size: u64::try_from(st.st_size).unwrap_or(0),
            mtime_ns: i128::from(st.st_mtime) * 1_000_000_000 + i128::from(st.st_mtime_nsec),
            uid: st.st_uid,
            mode: st.st_mode & 0o7777,
            nlink: st.st_nlink,
        }
    }

    /// Same file, same length, same mtime.
    pub fn same_content(&self, other: &Meta) -> bool {
        self.dev == other.dev
            && self.ino == other.ino
            && self.size == other.size
            && self.mtime_ns == other.mtime_ns
    }
}

/// Why a name could not be opened as a regular file.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// A symlink, FIFO, socket, device or directory: refused, never followed or read.
    #[error("not a regular file ({})", .0.describe())]
    NotRegular(Kind),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// A configured directory (inbox, outbox, error, archive, state): the admin's path, trusted as
/// a whole (its parents must not be writable by others), opened afresh for each round of work
/// so that a directory the admin replaces or restores is picked up without a restart. What is
/// *inside* it is reached only through the [`Dir`] handle, never by path.
#[derive(Debug, Clone)]
pub struct Root {
    path: PathBuf,
}

impl Root {
    /// Creates the directory with `mode` if it is absent and checks that it opens.
    pub fn create(path: &Path, mode: u32) -> io::Result<Root> {
        Dir::open(path, mode)?;
        Ok(Root {
            path: path.to_path_buf(),
        })
    }

    /// An ERP directory, which must exist: never created (a mistyped path would otherwise
    /// receive files nobody reads). The error names the path.
    pub fn existing(path: &Path) -> io::Result<Root> {
        Dir::open_existing(path)?;
        Ok(Root {
            path: path.to_path_buf(),
        })
    }

    /// A handle on the directory as it is now (never created here).
    pub fn open(&self) -> io::Result<Dir> {
        Dir::open_existing(&self.path)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A directory handle; every operation is relative to it.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    /// For messages only: never used to reach a file.
    path: PathBuf,
}

fn io_err(e: rustix::io::Errno) -> io::Error {
    io::Error::from_raw_os_error(e.raw_os_error())
}

fn name_ok(name: &OsStr) -> io::Result<()> {
    let b = name.as_bytes();
    if b.is_empty() || b == b"." || b == b".." || b.contains(&b'/') || b.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a plain file name",
        ));
    }
    Ok(())
}

impl Dir {
    /// Opens (creating it if absent, with `mode`) a configured directory. The configured path
    /// is the admin's and is trusted; what is inside it is not.
    pub fn open(path: &Path, mode: u32) -> io::Result<Dir> {
        let created = !path.exists();
        if created {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(mode)
                .create(path)?;
        }
        let d = Dir::open_existing(path)?;
        if created {
            // The mode asked for, whatever the umask.
            rustix::fs::fchmod(d.fd(), Mode::from_raw_mode(mode)).map_err(io_err)?;
        }
        Ok(d)
    }

    /// Opens a configured directory as it is now (never creating it).
    pub fn open_existing(path: &Path) -> io::Result<Dir> {
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| {
            io::Error::new(
                io_err(e).kind(),
                format!(
                    "cannot open directory {}: {}",
                    crate::text::escape(&path.to_string_lossy()),
                    io_err(e)
                ),
            )
        })?;
        Ok(Dir {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// The path it was opened as, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `path/name`, for messages.
    pub fn display(&self, name: &OsStr) -> String {
        crate::text::escape(&self.path.join(name).to_string_lossy())
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// A subdirectory, created with `mode` when absent; a symlink in its place is refused.
    pub fn sub(&self, name: &str, mode: u32) -> io::Result<Dir> {
        name_ok(OsStr::new(name))?;
        let created = match rustix::fs::mkdirat(self.fd(), name, Mode::from_raw_mode(mode)) {
            Ok(()) => true,
            Err(rustix::io::Errno::EXIST) => false,
            Err(e) => return Err(io_err(e)),
        };
        let fd = rustix::fs::openat(
            self.fd(),
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR => io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is not a directory", self.display(OsStr::new(name))),
            ),
            e => io_err(e),
        })?;
        if created {
            // The mode asked for, whatever the umask.
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode)).map_err(io_err)?;
        }
        Ok(Dir {
            fd,
            path: self.path.join(name),
        })
    }

    /// A chain of subdirectories written `inbound/2026/11/29`, each created when absent and
    /// opened like [`Dir::sub`] (a symlink or `..` anywhere in the chain is refused).
    pub fn sub_path(&self, rel: &str, mode: u32) -> io::Result<Dir> {
        let mut parts = rel.split('/');
        let mut d = self.sub(parts.next().unwrap_or_default(), mode)?;
        for p in parts {
            d = d.sub(p, mode)?;
        }
        Ok(d)
    }

    /// A chain of existing subdirectories (`outbound/2026/11/29`), opened like [`Dir::sub`] but
    /// never created: for reading what the daemon wrote (the console).
    pub fn existing_sub_path(&self, rel: &str) -> io::Result<Dir> {
        let mut d: Option<Dir> = None;
        for name in rel.split('/') {
            name_ok(OsStr::new(name))?;
            let parent = d.as_ref().unwrap_or(self);
            let fd = rustix::fs::openat(
                parent.fd(),
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(io_err)?;
            d = Some(Dir {
                fd,
                path: parent.path.join(name),
            });
        }
        d.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty path"))
    }

    /// A subdirectory only the daemon may use (the processing area): created 0700 when absent;
    /// refused unless it is a real directory owned by the daemon's user. One of ours that is
    /// open to others (made by an older version under a loose umask) is closed to 0700.
    /// Checked every time it is opened.
    pub fn private_sub(&self, name: &str) -> io::Result<Dir> {
        let d = self.sub(name, PRIVATE_DIR_MODE)?;
        let st = rustix::fs::fstat(d.fd()).map_err(io_err)?;
        let me = my_uid();
        if st.st_uid != me {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} belongs to uid {}, not to the daemon (uid {me})",
                    crate::text::escape(&d.path.to_string_lossy()),
                    st.st_uid,
                ),
            ));
        }
        if st.st_mode & 0o077 != 0 {
            rustix::fs::fchmod(d.fd(), Mode::from_raw_mode(PRIVATE_DIR_MODE)).map_err(io_err)?;
            tracing::warn!(dir = %crate::text::escape(&d.path.to_string_lossy()), mode = format!("{:o}", st.st_mode & 0o7777), "A private directory was open to others; now 0700.");
        }
        Ok(d)
    }

    /// The directory's entries (without `.` and `..`), sorted by name.
    pub fn names(&self) -> io::Result<Vec<OsString>> {
        let mut dir = rustix::fs::Dir::read_from(self.fd()).map_err(io_err)?;
        let mut out = Vec::new();
        for entry in dir.by_ref() {
            let entry = entry.map_err(io_err)?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            out.push(OsStr::from_bytes(name).to_os_string());
        }
        out.sort();
        Ok(out)
    }

    /// The day directories of a dated tree (`outbound/`, `inbound/`, … under the archive) as
    /// `YYYY/MM/DD`, oldest first: real directories whose names are all digits, three levels
    /// deep (a symlink in their place is not one, and is never followed).
    pub fn days(&self) -> io::Result<Vec<String>> {
        let mut days = Vec::new();
        for y in self.digit_subdirs()? {
            let year = self.existing_sub_path(&y)?;
            for m in year.digit_subdirs()? {
                let month = year.existing_sub_path(&m)?;
                for d in month.digit_subdirs()? {
                    days.push(format!("{y}/{m}/{d}"));
                }
            }
        }
        Ok(days)
    }

    /// Names of the real subdirectories that are all digits (`2026`, `11`, `29`), sorted.
    fn digit_subdirs(&self) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for name in self.names()? {
            let Some(s) = name.to_str() else { continue };
            if !s.is_empty()
                && s.bytes().all(|b| b.is_ascii_digit())
                && self.lstat(&name).is_ok_and(|m| m.kind == Kind::Directory)
            {
                out.push(s.to_string());
            }
        }
        Ok(out)
    }

    /// Removes the empty subdirectory `name` (a real directory only: a symlink in its place is
    /// refused, never followed).
    pub fn remove_dir(&self, name: &OsStr) -> io::Result<()> {
        name_ok(name)?;
        rustix::fs::unlinkat(self.fd(), name, AtFlags::REMOVEDIR).map_err(io_err)
    }

    /// Removes the subdirectory `name` and everything in it (the archive's retention): each
    /// entry is removed itself, so a symlink inside goes and its target stays; a subdirectory is
    /// opened without following a symlink and emptied the same way, at most `depth` levels
    /// down (deeper ones stay, and so does `name`). What was removed, counted.
    pub fn remove_tree(&self, name: &str, depth: usize) -> io::Result<Removed> {
        let dir = self.existing_sub_path(name)?;
        let mut removed = Removed::default();
        for entry in dir.names()? {
            let meta = dir.lstat(&entry)?;
            match meta.kind {
                Kind::Directory if depth > 0 => {
                    let sub = entry.to_str().ok_or_else(|| {
                        io::Error::new(io::ErrorKind::InvalidData, "not a UTF-8 name")
                    })?;
                    removed.add(dir.remove_tree(sub, depth - 1)?);
                }
                Kind::Directory => {
                    return Err(io::Error::new(
                        io::ErrorKind::DirectoryNotEmpty,
                        format!("{} is nested too deep", dir.display(&entry)),
                    ))
                }
                kind => {
                    dir.unlink(&entry)?;
                    if kind == Kind::Regular {
                        removed.files += 1;
                        removed.bytes += meta.size;
                    } else {
                        removed.other += 1;
                    }
                }
            }
        }
        self.remove_dir(OsStr::new(name))?;
        removed.dirs += 1;
        Ok(removed)
    }

    /// `lstat` of an entry: a symlink is reported as one.
    pub fn lstat(&self, name: &OsStr) -> io::Result<Meta> {
        name_ok(name)?;
        rustix::fs::statat(self.fd(), name, AtFlags::SYMLINK_NOFOLLOW)
            .map(|st| Meta::of(&st))
            .map_err(io_err)
    }

    /// Opens an entry for reading only if it is a regular file: never follows a symlink, never
    /// blocks on a FIFO, and checks the handle it got (`fstat`), not the name.
    pub fn open_regular(&self, name: &OsStr) -> Result<(File, Meta), OpenError> {
        name_ok(name)?;
        let fd = match rustix::fs::openat(
            self.fd(),
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::LOOP) => return Err(OpenError::NotRegular(Kind::Symlink)),
            Err(e) => return Err(OpenError::Io(io_err(e))),
        };
        let meta = Meta::of(&rustix::fs::fstat(&fd).map_err(io_err)?);
        if meta.kind != Kind::Regular {
            return Err(OpenError::NotRegular(meta.kind));
        }
        Ok((File::from(fd), meta))
    }

    /// Creates a new file (never an existing name, never through a symlink) with `mode`,
    /// whatever the umask.
    pub fn create_new(&self, name: &OsStr, mode: u32) -> io::Result<File> {
        name_ok(name)?;
        let fd = rustix::fs::openat(
            self.fd(),
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
        )
        .map_err(io_err)?;
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode)).map_err(io_err)?;
        Ok(File::from(fd))
    }

    /// Gives the open file `file` the name `name` here (a hard link to exactly that inode, so
    /// a swapped temp name cannot redirect it). Fails with `AlreadyExists` if the name is taken.
    pub fn link_file(&self, file: &File, tmp_name: &OsStr, name: &OsStr) -> io::Result<()> {
        name_ok(name)?;
        let proc_path = format!("/proc/self/fd/{}", file.as_raw_fd());
        match rustix::fs::linkat(
            CWD,
            proc_path.as_str(),
            self.fd(),
            name,
            AtFlags::SYMLINK_FOLLOW,
        ) {
            Ok(()) => Ok(()),
            Err(rustix::io::Errno::NOENT) if !Path::new("/proc/self/fd").exists() => {
                // No /proc: link by name, after checking the name is still our file.
                let ours = Meta::of(&rustix::fs::fstat(file).map_err(io_err)?);
                let now = self.lstat(tmp_name)?;
                if now.kind != Kind::Regular || now.dev != ours.dev || now.ino != ours.ino {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{} was replaced while being written",
                            self.display(tmp_name)
                        ),
                    ));
                }
                rustix::fs::linkat(self.fd(), tmp_name, self.fd(), name, AtFlags::empty())
                    .map_err(io_err)
            }
            Err(e) => Err(io_err(e)),
        }
    }

    /// Renames `from` here to `to` in `dest` without replacing anything there; a symlink is
    /// moved as the symlink itself.
    pub fn rename_noreplace(&self, from: &OsStr, dest: &Dir, to: &OsStr) -> io::Result<()> {
        name_ok(from)?;
        name_ok(to)?;
        match rustix::fs::renameat_with(self.fd(), from, dest.fd(), to, RenameFlags::NOREPLACE) {
            Ok(()) => Ok(()),
            Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {
                // A filesystem without RENAME_NOREPLACE: check, then rename (the race is
                // against the daemon itself only: nobody else writes under our unique names).
                match dest.lstat(to) {
                    Ok(_) => Err(io::Error::from(io::ErrorKind::AlreadyExists)),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        rustix::fs::renameat(self.fd(), from, dest.fd(), to).map_err(io_err)
                    }
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(io_err(e)),
        }
    }

    /// Renames `from` to `to`, both here, replacing `to` (the daemon's own archive copies).
    pub fn rename_replace(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
        name_ok(from)?;
        name_ok(to)?;
        rustix::fs::renameat(self.fd(), from, self.fd(), to).map_err(io_err)
    }

    /// Moves entry `name` into `dest` as `wanted`, or `wanted.1`, `wanted.2`, … when taken;
    /// never replaces. Across filesystems a regular file is copied (synced) and removed; any
    /// other kind of entry is never copied. Returns the name it got. `dest` is not synced.
    pub fn move_unique(&self, name: &OsStr, dest: &Dir, wanted: &OsStr) -> io::Result<OsString> {
        for n in 0..10_000u32 {
            let candidate = if n == 0 {
                wanted.to_os_string()
            } else {
                let mut c = wanted.to_os_string();
                c.push(format!(".{n}"));
                c
            };
            match self.rename_noreplace(name, dest, &candidate) {
                Ok(()) => return Ok(candidate),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) if e.raw_os_error() == Some(rustix::io::Errno::XDEV.raw_os_error()) => {
                    let (mut src, _) = self.open_regular(name).map_err(|e| match e {
                        OpenError::Io(e) => e,
                        other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
                    })?;
                    let mut out = match dest.create_new(&candidate, FILE_MODE) {
                        Ok(f) => f,
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                        Err(e) => return Err(e),
                    };
                    io::copy(&mut src, &mut out)?;
                    out.sync_all()?;
                    dest.sync()?;
                    self.unlink(name)?;
                    return Ok(candidate);
                }
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other(format!(
            "no free name for {} in {}",
            crate::text::escape(&wanted.to_string_lossy()),
            crate::text::escape(&dest.path.to_string_lossy())
        )))
    }

    /// Removes an entry (the entry itself, never a symlink's target).
    pub fn unlink(&self, name: &OsStr) -> io::Result<()> {
        name_ok(name)?;
        rustix::fs::unlinkat(self.fd(), name, AtFlags::empty()).map_err(io_err)
    }

    /// fsync the directory, so renames and links in it are durable.
    pub fn sync(&self) -> io::Result<()> {
        rustix::fs::fsync(self.fd()).map_err(io_err)
    }

    /// Writes a new file `name` (never an existing one) with `mode` and fsyncs it.
    pub fn write_new(&self, name: &OsStr, bytes: &[u8], mode: u32) -> io::Result<()> {
        let mut f = self.create_new(name, mode)?;
        f.write_all(bytes)?;
        f.sync_all()
    }

    /// The first half of writing `name` atomically (the daemon's own archive copies): `bytes`
    /// written under a fresh hidden temp name for `name`, not synced, for a batch that syncs
    /// its files at once ([`sync_files`]) and then renames each ([`Dir::rename_replace`]). The
    /// temp name and the open file; nothing is left on error.
    pub fn write_temp(&self, name: &OsStr, bytes: &[u8]) -> io::Result<(OsString, File)> {
        name_ok(name)?;
        let tmp = random_temp_name(name);
        let mut f = self.create_new(&tmp, FILE_MODE)?;
        if let Err(e) = f.write_all(bytes) {
            let _ = self.unlink(&tmp);
            return Err(e);
        }
        Ok((tmp, f))
    }
}

/// Makes the data and metadata of every file in `files` durable, as an fsync of each would:
/// with two or more, one `syncfs` per filesystem they are on (one journal commit for a whole
/// batch of new files instead of one each) where the kernel reports writeback errors through
/// it (Linux 5.8 and later); otherwise, or when `syncfs` is refused (unsupported, or filtered
/// out), an fsync each.
pub fn sync_files(files: &[&File]) -> io::Result<()> {
    if files.len() >= 2 && syncfs_reports_errors() {
        let mut devices = Vec::new();
        let mut refused = false;
        for f in files {
            let dev = rustix::fs::fstat(f).map_err(io_err)?.st_dev;
            if devices.contains(&dev) {
                continue;
            }
            devices.push(dev);
            match rustix::fs::syncfs(f) {
                Ok(()) => {}
                // Not implemented here, or refused by a system-call filter (the unit's
                // `SystemCallErrorNumber=EPERM`): fsync each file instead.
                Err(
                    rustix::io::Errno::NOSYS
                    | rustix::io::Errno::OPNOTSUPP
                    | rustix::io::Errno::INVAL
                    | rustix::io::Errno::PERM,
                ) => {
                    refused = true;
                    break;
                }
                Err(e) => return Err(io_err(e)),
            }
        }
        if !refused {
            return Ok(());
        }
    }
    for f in files {
        f.sync_all()?;
    }
    Ok(())
}

/// Whether this kernel's `syncfs` returns the writeback errors it meets (Linux 5.8 and later;
/// before, it could answer success for data that never reached the disk).
fn syncfs_reports_errors() -> bool {
    static REPORTS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *REPORTS.get_or_init(|| {
        let release = rustix::system::uname();
        kernel_at_least(&release.release().to_string_lossy(), (5, 8))
    })
}

/// Whether a kernel release string (`6.1.0-18-amd64`) is `min` or later; false when unreadable.
fn kernel_at_least(release: &str, min: (u32, u32)) -> bool {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= min,
        _ => false,
    }
}

/// What [`Dir::remove_tree`] removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    /// Regular files, and their bytes.
    pub files: u64,
    pub bytes: u64,
    /// Symlinks and other entries that are neither files nor directories (removed themselves).
    pub other: u64,
    /// Directories, the removed one included.
    pub dirs: u64,
}

impl Removed {
    pub fn add(&mut self, other: Removed) {
        self.files += other.files;
        self.bytes += other.bytes;
        self.other += other.other;
        self.dirs += other.dirs;
    }
}

/// A secret kept in the state directory that makes the outbox's temp names unguessable but
/// the same across restarts (the temp file's link count is the delivery receipt, so a retry
/// must find it again).
#[derive(Clone)]
pub struct TempKey([u8; 32]);

impl std::fmt::Debug for TempKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TempKey(…)")
    }
}

impl TempKey {
    const FILE: &'static str = "temp-names.key";

    /// Reads the key from `state`, creating it (0600, synced) on first start.
    pub fn load_or_create(state: &Dir) -> io::Result<TempKey> {
        let name = OsStr::new(Self::FILE);
        match state.open_regular(name) {
            Ok((mut f, meta)) => {
                let mut key = [0u8; 32];
                if meta.uid != my_uid() || meta.size != 32 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{} is not a 32-byte file owned by the daemon",
                            state.display(name)
                        ),
                    ));
                }
                f.read_exact(&mut key)?;
                Ok(TempKey(key))
            }
            Err(OpenError::Io(e)) if e.kind() == io::ErrorKind::NotFound => {
                let key: [u8; 32] = rand::random();
                state.write_new(name, &key, 0o600)?;
                state.sync()?;
                Ok(TempKey(key))
            }
            Err(OpenError::Io(e)) => Err(e),
            Err(e) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", state.display(name)),
            )),
        }
    }

    /// A key for tests and tools that never look for receipts across runs.
    pub fn random() -> TempKey {
        TempKey(rand::random())
    }

    /// `.NAME.<16 hex>.tmp`, the same for the same name under the same key.
    pub fn temp_name(&self, name: &str) -> OsString {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(self.0);
        h.update([0u8]);
        h.update(name.as_bytes());
        let tag: String = h.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        OsString::from(format!(".{name}.{tag}.tmp"))
    }
}

/// `s` made safe as part of a file name: only `A-Z a-z 0-9 . _ -`, no `..`, no leading dot, at
/// most 80 characters, never empty.
pub fn safe_name(s: &str) -> String {
    let safe: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect::<String>()
        .replace("..", "__");
    let safe = safe.trim_start_matches('.').to_string();
    if safe.is_empty() {
        "PO".to_string()
    } else {
        safe
    }
}

/// Reads at most `limit` bytes of `file`; `None` when it holds more (the caller refuses it).
pub fn read_limited(file: &mut File, limit: u64) -> io::Result<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Ok(None);
    }
    Ok(Some(bytes))
}

/// The first `limit` bytes of a file, and whether there was more.
pub fn read_prefix(file: &mut File, limit: u64) -> io::Result<(Vec<u8>, bool)> {
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    let more = bytes.len() as u64 > limit;
    bytes.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok((bytes, more))
}

/// Whether the daemon can create, write and remove a file in the existing directory `dir` (the
/// connection test): a hidden, unguessable name created exclusively, synced, then removed.
/// Never creates the directory itself.
pub fn probe_writable(dir: &Path) -> io::Result<()> {
    let d = Dir::open_existing(dir)?;
    let name = random_temp_name(OsStr::new("edi-bridge-check"));
    d.write_new(&name, b"edi-bridge check\n", FILE_MODE)?;
    d.unlink(&name)
}

/// Whether the outbox's way of delivering works in `dir` (the connection test): a hidden temp
/// file is created, synced and hard-linked to a second hidden name exactly as an 850 is linked
/// to its final name (so both names are on one filesystem and it supports hard links), the
/// directory synced, then both names removed. Nothing visible to the ERP ever appears.
pub fn probe_link(dir: &Path) -> io::Result<()> {
    let d = Dir::open_existing(dir)?;
    let tmp = random_temp_name(OsStr::new("edi-bridge-check"));
    let final_name = random_temp_name(OsStr::new("edi-bridge-check-final"));
    let mut file = d.create_new(&tmp, FILE_MODE)?;
    let linked = file
        .write_all(b"edi-bridge check\n")
        .and_then(|()| file.sync_all())
        .and_then(|()| d.link_file(&file, &tmp, &final_name))
        .and_then(|()| d.sync());
    let removed_final = match &linked {
        Ok(()) => d.unlink(&final_name),
        Err(_) => Ok(()),
    };
    let removed_tmp = d.unlink(&tmp);
    linked.and(removed_final).and(removed_tmp)
}

/// `.NAME.<random>.tmp`: a temp name nobody can guess before it exists.
pub fn random_temp_name(name: &OsStr) -> OsString {
    let mut s = OsString::from(".");
    s.push(name);
    s.push(format!(".{:016x}.tmp", rand::random::<u64>()));
    s
}

/// The metadata of an open file.
pub fn meta_of(file: &File) -> io::Result<Meta> {
    rustix::fs::fstat(file)
        .map(|st| Meta::of(&st))
        .map_err(io_err)
}

/// The longest file name Linux filesystems take (`NAME_MAX`).
const NAME_MAX: usize = 255;

/// The suffix of a reason file's name.
pub const REASON_SUFFIX: &str = ".reason.txt";

/// The name of the reason file beside `name` in the error directory: `NAME.reason.txt`, or,
/// when that would be longer than a file name may be, the name's first 200 bytes, `~`, 16 hex
/// digits of its SHA-256 and `.reason.txt` (the same for the same name, always; the reason file
/// names the file in full).
pub fn reason_name(name: &OsStr) -> OsString {
    let bytes = name.as_bytes();
    // Room for a `.N` a collision adds before the suffix.
    if bytes.len() + REASON_SUFFIX.len() + 4 <= NAME_MAX {
        let mut n = name.to_os_string();
        n.push(REASON_SUFFIX);
        return n;
    }
    use sha2::Digest;
    let mut cut = 200;
    if let Ok(text) = std::str::from_utf8(bytes) {
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
    }
    let tag: String = sha2::Sha256::digest(bytes)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut n = OsStr::from_bytes(&bytes[..cut]).to_os_string();
    n.push(format!("~{tag}{REASON_SUFFIX}"));
    n
}

/// Why the state directory at `path` is unsafe to use, with the command that fixes it, or
/// `None` when it is safe (or absent: it is then created 0700). It must belong to the daemon's
/// user and be writable by no one else: another local user could otherwise rename or replace the
/// store, the admin socket or the outbox's temp-name key.
pub fn state_dir_problem(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let shown = crate::text::escape(&path.to_string_lossy());
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(e) => return Some(format!("cannot inspect the state directory {shown}: {e}")),
    };
    if !meta.is_dir() {
        return Some(format!("the state directory {shown} is not a directory"));
    }
    let me = my_uid();
    if meta.uid() != me {
        return Some(format!(
            "the state directory {shown} belongs to uid {}, not to the daemon's user (uid {me}): another user could replace the store, the admin socket or the outbox's temp-name key; give it to the daemon's user: chown {me} {shown}",
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
            (true, true) => "its group and others",
            (true, false) => "its group",
            _ => "others",
        };
        return Some(format!(
            "the state directory {shown} is writable by {who} (mode {mode:04o}): another local user could rename or replace the store, the admin socket or the outbox's temp-name key; close it: chmod 700 {shown}"
        ));
    }
    None
}

/// Makes everything the daemon owns under the state directory private: files (and the admin
/// socket) 0600, directories 0700, without following symlinks. Returns how many entries were
/// tightened.
pub fn make_private(path: &Path) -> io::Result<usize> {
    fn walk(d: &Dir, me: u32, depth: u32) -> io::Result<usize> {
        let mut tightened = 0;
        for name in d.names()? {
            let Ok(meta) = d.lstat(&name) else { continue };
            if meta.uid != me {
                continue;
            }
            match meta.kind {
                Kind::Directory if depth < 8 => {
                    let Some(text) = name.to_str() else { continue };
                    let sub = d.existing_sub_path(text)?;
                    if meta.mode & 0o077 != 0 {
                        rustix::fs::fchmod(sub.fd(), Mode::from_raw_mode(PRIVATE_DIR_MODE))
                            .map_err(io_err)?;
                        tightened += 1;
                    }
                    tightened += walk(&sub, me, depth + 1)?;
                }
                Kind::Regular | Kind::Socket if meta.mode & 0o077 != 0 => {
                    rustix::fs::chmodat(
                        d.fd(),
                        &name,
                        Mode::from_raw_mode(0o600),
                        AtFlags::empty(),
                    )
                    .map_err(io_err)?;
                    tightened += 1;
                }
                _ => {}
            }
        }
        Ok(tightened)
    }
    let d = Dir::open_existing(path)?;
    walk(&d, my_uid(), 0)
}

/// Sets the process umask to 077, so that what is created without an explicit mode (the
/// store's files) is private. Everything written for the ERP has its mode set explicitly.
pub fn private_umask() {
    rustix::process::umask(Mode::from_raw_mode(0o077));
}

/// The daemon's own user id (files it trusts as its own receipts must be owned by it).
pub fn my_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn os(s: &str) -> &OsStr {
        OsStr::new(s)
    }

    #[test]
    fn a_reason_file_name_fits_whatever_the_name() {
        use std::os::unix::ffi::OsStrExt as _;
        assert_eq!(reason_name(os("a.855")), os("a.855.reason.txt"));
        let long = "é".repeat(120) + ".855";
        let r = reason_name(os(&long));
        assert!(r.len() <= 255 - 4, "{r:?}");
        assert!(r.to_str().unwrap().ends_with(REASON_SUFFIX));
        assert!(r.to_str().unwrap().starts_with(&"é".repeat(100)));
        assert_eq!(r, reason_name(os(&long)), "the same every time");
        assert_ne!(r, reason_name(os(&("é".repeat(120) + ".856"))));
        let raw = OsStr::from_bytes(&[0xff; 255]);
        assert!(reason_name(raw).len() <= 255);
        let t = tempfile::tempdir().unwrap();
        let d = Dir::open(t.path(), PRIVATE_DIR_MODE).unwrap();
        d.write_new(&reason_name(os(&long)), b"why", FILE_MODE)
            .unwrap();
    }

    #[test]
    fn a_state_directory_open_to_others_is_named_with_its_fix() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("state");
        assert_eq!(state_dir_problem(&p), None, "absent: created 0700");
        std::fs::create_dir(&p).unwrap();
        for (m, ok) in [
            (0o700, true),
            (0o750, true),
            (0o755, true),
            (0o770, false),
            (0o757, false),
        ] {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m)).unwrap();
            match state_dir_problem(&p) {
                None => assert!(ok, "{m:o}"),
                Some(problem) => {
                    assert!(!ok, "{m:o}: {problem}");
                    assert!(
                        problem.contains(&format!("chmod 700 {}", p.display())),
                        "{problem}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_symlink_is_never_opened_or_created_through() {
        let t = tempfile::tempdir().unwrap();
        let secret = t.path().join("secret");
        std::fs::write(&secret, b"top secret").unwrap();
        let d = Dir::open(&t.path().join("inbox"), SHARED_DIR_MODE).unwrap();
        std::os::unix::fs::symlink(&secret, t.path().join("inbox/link")).unwrap();
        assert!(matches!(
            d.open_regular(os("link")),
            Err(OpenError::NotRegular(Kind::Symlink))
        ));
        assert_eq!(d.lstat(os("link")).unwrap().kind, Kind::Symlink);
        // Creating at a planted symlink fails instead of writing through it.
        assert!(d.create_new(os("link"), FILE_MODE).is_err());
        assert_eq!(std::fs::read(&secret).unwrap(), b"top secret");
        // Moving it moves the symlink itself.
        let err = Dir::open(&t.path().join("error"), SHARED_DIR_MODE).unwrap();
        let got = d.move_unique(os("link"), &err, os("link")).unwrap();
        assert_eq!(got, os("link"));
        assert!(std::fs::symlink_metadata(t.path().join("error/link"))
            .unwrap()
            .file_type()
            .is_symlink());
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let t = tempfile::tempdir().unwrap();
        let d = Dir::open(t.path(), SHARED_DIR_MODE).unwrap();
        rustix::fs::mkfifoat(d.fd(), "pipe", Mode::from_raw_mode(0o644)).unwrap();
        assert!(matches!(
            d.open_regular(os("pipe")),
            Err(OpenError::NotRegular(Kind::Fifo))
        ));
    }

    #[test]
    fn new_files_get_their_mode_whatever_the_umask() {
        let t = tempfile::tempdir().unwrap();
        let d = Dir::open(t.path(), SHARED_DIR_MODE).unwrap();
        d.write_new(os("a.850"), b"x", FILE_MODE).unwrap();
        let mode = std::fs::metadata(t.path().join("a.850"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o640);
        assert!(
            d.write_new(os("a.850"), b"y", FILE_MODE).is_err(),
            "never replaces"
        );
    }

    #[test]
    fn a_private_directory_must_be_ours_and_closed() {
        let t = tempfile::tempdir().unwrap();
        let d = Dir::open(t.path(), SHARED_DIR_MODE).unwrap();
        let p = t.path().join(".processing");
        d.private_sub(".processing").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&p), 0o700);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o777)).unwrap();
        d.private_sub(".processing").unwrap();
        assert_eq!(mode(&p), 0o700, "closed again");
        if my_uid() == 0 {
            // Someone else's directory (only root can make one here).
            rustix::fs::chown(&p, Some(rustix::fs::Uid::from_raw(65534)), None).unwrap();
            assert!(d.private_sub(".processing").is_err(), "not ours");
        }
        std::fs::remove_dir(&p).unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), &p).unwrap();
        assert!(
            d.private_sub(".processing").is_err(),
            "a symlink is refused"
        );
    }

    #[test]
    fn link_file_links_the_open_inode_and_never_replaces() {
        let t = tempfile::tempdir().unwrap();
        let d = Dir::open(t.path(), SHARED_DIR_MODE).unwrap();
        let tmp = random_temp_name(os("a.850"));
        let mut f = d.create_new(&tmp, FILE_MODE).unwrap();
        f.write_all(b"850").unwrap();
        // Someone moves the temp file away and plants a symlink at its name: the link still
        // names our bytes, never the symlink's target.
        std::fs::rename(t.path().join(&tmp), t.path().join("stolen")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", t.path().join(&tmp)).unwrap();
        d.link_file(&f, &tmp, os("a.850")).unwrap();
        assert_eq!(std::fs::read(t.path().join("a.850")).unwrap(), b"850");
        let e = d.link_file(&f, &tmp, os("a.850")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        // Removed outright: linking fails rather than naming anything else.
        let tmp2 = random_temp_name(os("b.850"));
        let f2 = d.create_new(&tmp2, FILE_MODE).unwrap();
        d.unlink(&tmp2).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", t.path().join(&tmp2)).unwrap();
        assert!(d.link_file(&f2, &tmp2, os("b.850")).is_err());
        assert!(std::fs::symlink_metadata(t.path().join("b.850")).is_err());
    }

    #[test]
    fn names_that_leave_the_directory_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let d = Dir::open(t.path(), SHARED_DIR_MODE).unwrap();
        for bad in ["..", ".", "a/b", ""] {
            assert!(d.lstat(os(bad)).is_err(), "{bad}");
            assert!(d.create_new(os(bad), FILE_MODE).is_err(), "{bad}");
        }
        // A chain of subdirectories: made when absent, never through `..` or a symlink.
        let day = d.sub_path("inbound/2026/11/29", SHARED_DIR_MODE).unwrap();
        assert_eq!(day.path(), t.path().join("inbound/2026/11/29"));
        assert!(d.sub_path("inbound/../../etc", SHARED_DIR_MODE).is_err());
        std::os::unix::fs::symlink("/etc", t.path().join("inbound/2027")).unwrap();
        assert!(d.sub_path("inbound/2027/01", SHARED_DIR_MODE).is_err());
    }

    #[test]
    fn read_limited_refuses_what_is_too_big() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("f"), vec![b'x'; 100]).unwrap();
        let d = Dir::open(t.path(), SHARED_DIR_MODE).unwrap();
        let (mut f, _) = d.open_regular(os("f")).unwrap();
        assert!(read_limited(&mut f, 99).unwrap().is_none());
        let (mut f, _) = d.open_regular(os("f")).unwrap();
        assert_eq!(read_limited(&mut f, 100).unwrap().unwrap().len(), 100);
    }

    #[test]
    fn kernel_releases_are_compared_by_major_and_minor() {
        assert!(kernel_at_least("6.1.0-18-amd64", (5, 8)));
        assert!(kernel_at_least("5.8.0", (5, 8)));
        assert!(kernel_at_least("5.10.209-1", (5, 8)));
        assert!(!kernel_at_least("5.4.0-150-generic", (5, 8)));
        assert!(!kernel_at_least("4.18.0-553.el8_10.x86_64", (5, 8)));
        assert!(!kernel_at_least("", (5, 8)));
        assert!(!kernel_at_least("linux", (5, 8)));
    }

    #[test]
    fn a_batch_of_temp_files_is_synced_then_named() {
        let t = tempfile::tempdir().unwrap();
        let d = Dir::open(t.path(), 0o750).unwrap();
        let shm = Path::new("/dev/shm");
        let other = tempfile::tempdir_in(if shm.is_dir() { shm } else { t.path() }).unwrap();
        let o = Dir::open(other.path(), 0o750).unwrap();
        let mut temps = Vec::new();
        for (dir, name) in [(&d, "a"), (&d, "b"), (&o, "c")] {
            let (tmp, f) = dir.write_temp(os(name), name.as_bytes()).unwrap();
            assert!(tmp.to_str().unwrap().starts_with(&format!(".{name}.")));
            temps.push((dir, name, tmp, f));
        }
        let files: Vec<&File> = temps.iter().map(|(_, _, _, f)| f).collect();
        sync_files(&files).unwrap();
        sync_files(&[]).unwrap();
        sync_files(&files[..1]).unwrap();
        for (dir, name, tmp, _) in &temps {
            dir.rename_replace(tmp, os(name)).unwrap();
            assert_eq!(
                std::fs::read(dir.path().join(name)).unwrap(),
                name.as_bytes()
            );
        }
        assert!(
            matches!(d.write_temp(os("../x"), b"x"), Err(e) if e.kind() == io::ErrorKind::InvalidInput)
        );
        assert_eq!(d.names().unwrap().len(), 2, "nothing left behind");
    }
}
