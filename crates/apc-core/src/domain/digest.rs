//! Short digests: in capture names (the window's hash), store keys and event ids.

use sha2::{Digest, Sha256};

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 16 hex digits of SHA-256: the short, `/`-free digests used in keys.
pub fn hash16(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes())[..8])
}
