//! The embedded files (under `assets/`, no build step) with their content types.
//! ETags are hashes computed at compile time, so they change with the bytes.

/// One embedded file.
pub struct Asset {
    /// The name under `/ui/` (the page itself is served at `/`).
    pub file: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
    hash: u64,
}

impl Asset {
    const fn new(file: &'static str, content_type: &'static str, body: &'static [u8]) -> Self {
        Self { file, content_type, body, hash: fnv1a(body) }
    }

    /// A strong ETag for these bytes.
    pub fn etag(&self) -> String {
        format!("\"{:016x}\"", self.hash)
    }
}

pub const INDEX: Asset =
    Asset::new("index.html", "text/html; charset=utf-8", include_bytes!("assets/index.html"));

/// Everything served under `/ui/`.
pub const ASSETS: [Asset; 3] = [
    Asset::new("app.js", "text/javascript; charset=utf-8", include_bytes!("assets/app.js")),
    Asset::new("style.css", "text/css; charset=utf-8", include_bytes!("assets/style.css")),
    Asset::new("icon.svg", "image/svg+xml", include_bytes!("assets/icon.svg")),
];

/// FNV-1a, 64 bit: enough to tell versions of a file apart, and `const`.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}
