//! The open-file limit: one socket is one file, so a load generator holding
//! thousands of sockets raises its soft limit to the hard one before starting.

/// The soft and hard `RLIMIT_NOFILE` after raising the soft one as far as allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileLimit {
    pub soft: u64,
    pub hard: u64,
}

/// Raises the soft open-file limit to the hard one.
pub fn raise_open_files() -> std::io::Result<FileLimit> {
    let soft = rlimit::increase_nofile_limit(u64::MAX)?;
    let (_, hard) = rlimit::Resource::NOFILE.get()?;
    Ok(FileLimit { soft, hard })
}
