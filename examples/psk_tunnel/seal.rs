//! The sealed datagram: ChaCha20-Poly1305 under a pre-shared key, in place in the caller's buffer.
//!
//! ```text
//! 0        4                12                      len - 16      len
//! | sender | counter        | ciphertext of the IP packet | tag    |
//! | u32 BE | u64 BE         |                              | 16 B   |
//! ```
//!
//! The nonce is the header itself (sender id then counter, 12 bytes), so two nodes sharing a key never use the
//! same nonce as long as their ids differ and each counts up from 0; the header is also the AAD, so a changed id or
//! counter fails authentication like a changed byte of ciphertext. Sealing and opening work on one `&mut [u8]`
//! laid out as above (the caller leaves room for the header in front and the tag behind the packet): no copy, no
//! allocation.
//!
//! A [`Sender`] numbers what one node seals; a [`Receiver`] opens what one peer sealed: it refuses another
//! sender's id (a datagram reflected back at its own sealer would otherwise authenticate), then a replay, before
//! spending a decryption, and slides its [`ReplayWindow`] only once the datagram authenticated. Both take `&self`
//! (an atomic counter, a window behind a mutex held for a few instructions), so they can be shared by threads.

use core::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce, Tag};

use crate::window::ReplayWindow;

/// Bytes of the header: the sender id and the counter, which together are the nonce.
pub(crate) const HEADER_LEN: usize = 12;
/// Bytes of the Poly1305 tag at the end.
pub(crate) const TAG_LEN: usize = 16;
/// What sealing adds to an IP packet.
pub(crate) const OVERHEAD: usize = HEADER_LEN + TAG_LEN;
/// Hex digits of a key (32 bytes).
pub(crate) const KEY_HEX_LEN: usize = 64;

/// Why a key cannot be had.
#[derive(Debug)]
pub(crate) enum KeyError {
    /// Not 64 characters (surrounding whitespace aside).
    Length {
        /// How many there were.
        actual: usize,
    },
    /// A character that is not a hex digit, at this position.
    NotHex {
        /// Its index (in characters of the trimmed text).
        at: usize,
    },
    /// The key file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Length { actual } => write!(f, "a key is {KEY_HEX_LEN} hex digits, not {actual} characters"),
            Self::NotHex { at } => write!(f, "a key is hex digits only: character {at} is not one"),
            Self::Read { path, source } => write!(f, "cannot read the key file {}: {source}", path.display()),
        }
    }
}

impl std::error::Error for KeyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The pre-shared key, ready to seal and open (its Debug form does not show it).
#[derive(Clone)]
pub(crate) struct Key(ChaCha20Poly1305);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Key {
    /// A key from its 32 bytes.
    #[must_use]
    pub(crate) fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self(ChaCha20Poly1305::new(bytes.into()))
    }

    /// A key from 64 hex digits (either case; whitespace around them is ignored, as a file's last newline is).
    ///
    /// # Errors
    /// [`KeyError::Length`], [`KeyError::NotHex`].
    pub(crate) fn from_hex(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        if text.len() != KEY_HEX_LEN {
            return Err(KeyError::Length { actual: text.chars().count() });
        }
        let mut bytes = [0u8; 32];
        let digits = text.as_bytes();
        for (i, byte) in bytes.iter_mut().enumerate() {
            let digit = |at: usize| char::from(digits[at]).to_digit(16).ok_or(KeyError::NotHex { at });
            // Two hex digits make a byte: the value is below 256.
            #[allow(clippy::cast_possible_truncation)]
            let value = (digit(2 * i)? * 16 + digit(2 * i + 1)?) as u8;
            *byte = value;
        }
        Ok(Self::from_bytes(&bytes))
    }

    /// A key from a file holding its 64 hex digits.
    ///
    /// # Errors
    /// [`KeyError::Read`], then as [`from_hex`](Self::from_hex).
    pub(crate) fn from_file(path: &Path) -> Result<Self, KeyError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| KeyError::Read { path: path.to_path_buf(), source })?;
        Self::from_hex(&text)
    }

    /// Seals `datagram` in place: writes the header, encrypts `datagram[HEADER_LEN..len - TAG_LEN]` (the packet)
    /// and writes the tag. `false` when the datagram is shorter than [`OVERHEAD`] (nothing is written).
    #[must_use]
    pub(crate) fn seal(&self, sender: u32, counter: u64, datagram: &mut [u8]) -> bool {
        let Some(body_end) = datagram.len().checked_sub(TAG_LEN).filter(|&e| e >= HEADER_LEN) else {
            return false;
        };
        let (head, rest) = datagram.split_at_mut(HEADER_LEN);
        head[..4].copy_from_slice(&sender.to_be_bytes());
        head[4..].copy_from_slice(&counter.to_be_bytes());
        let (body, tag) = rest.split_at_mut(body_end - HEADER_LEN);
        // The only failure of this AEAD is a message longer than 256 GiB, which no buffer is.
        match self.0.encrypt_in_place_detached(Nonce::from_slice(head), head, body) {
            Ok(t) => {
                tag.copy_from_slice(&t);
                true
            }
            Err(_) => false,
        }
    }

    /// Opens a datagram sealed under this key in place: on success `datagram[HEADER_LEN..len - TAG_LEN]` is the
    /// packet. On failure the body is left as it was (the tag is checked before anything is decrypted).
    ///
    /// # Errors
    /// [`Reject::Truncated`], [`Reject::Unauthenticated`].
    pub(crate) fn open(&self, datagram: &mut [u8]) -> Result<Header, Reject> {
        let header = Header::parse(datagram)?;
        let body_end = datagram.len() - TAG_LEN;
        let (head, rest) = datagram.split_at_mut(HEADER_LEN);
        let (body, tag) = rest.split_at_mut(body_end - HEADER_LEN);
        self.0
            .decrypt_in_place_detached(Nonce::from_slice(head), head, body, Tag::from_slice(tag))
            .map_err(|_| Reject::Unauthenticated)?;
        Ok(header)
    }
}

/// The header of a sealed datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Header {
    /// The sealer's id.
    pub sender: u32,
    /// Its counter for this datagram.
    pub counter: u64,
}

impl Header {
    /// The header of a datagram long enough to be a sealed one (an empty packet at least).
    ///
    /// # Errors
    /// [`Reject::Truncated`] when it is shorter than [`OVERHEAD`].
    pub(crate) fn parse(datagram: &[u8]) -> Result<Self, Reject> {
        if datagram.len() < OVERHEAD {
            return Err(Reject::Truncated);
        }
        let mut id = [0u8; 4];
        let mut counter = [0u8; 8];
        id.copy_from_slice(&datagram[..4]);
        counter.copy_from_slice(&datagram[4..HEADER_LEN]);
        Ok(Self { sender: u32::from_be_bytes(id), counter: u64::from_be_bytes(counter) })
    }
}

/// Why a datagram is not delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Reject {
    /// Shorter than a header and a tag.
    Truncated,
    /// Sealed by another id than the peer's.
    WrongSender,
    /// A counter seen already, or too old for the window.
    Replayed,
    /// The tag does not match: another key, or changed on the way.
    Unauthenticated,
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Truncated => "shorter than a sealed datagram",
            Self::WrongSender => "sealed by another sender id",
            Self::Replayed => "replayed or too old",
            Self::Unauthenticated => "failed authentication",
        })
    }
}

impl std::error::Error for Reject {}

/// What one node seals: its id and its next counter.
#[derive(Debug)]
pub(crate) struct Sender {
    id: u32,
    next: AtomicU64,
}

impl Sender {
    /// A sender of this id, counting from 0.
    #[must_use]
    pub(crate) const fn new(id: u32) -> Self {
        Self { id, next: AtomicU64::new(0) }
    }

    /// Its id.
    #[must_use]
    pub(crate) const fn id(&self) -> u32 {
        self.id
    }

    /// Seals `datagram` (laid out as [`Key::seal`] says) with the next counter; returns that counter, or `None`
    /// when the datagram is too short or the counters are spent (no nonce is ever used twice).
    pub(crate) fn seal(&self, key: &Key, datagram: &mut [u8]) -> Option<u64> {
        if datagram.len() < OVERHEAD {
            return None;
        }
        // A counter is only ever handed out once, whatever threads seal at the same time; u64::MAX is never
        // handed out, and the receiver never accepts it.
        let counter = self.next.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| c.checked_add(1)).ok()?;
        key.seal(self.id, counter, datagram).then_some(counter)
    }
}

/// What one node opens from one peer: the peer's id and the counters seen from it.
#[derive(Debug)]
pub(crate) struct Receiver {
    peer: u32,
    window: Mutex<ReplayWindow>,
}

impl Receiver {
    /// A receiver of what `peer` seals.
    #[must_use]
    pub(crate) const fn new(peer: u32) -> Self {
        Self { peer, window: Mutex::new(ReplayWindow::new()) }
    }

    /// The peer's id.
    #[must_use]
    pub(crate) const fn peer(&self) -> u32 {
        self.peer
    }

    /// Opens `datagram` in place (see [`Key::open`]) if it is the peer's, authentic and new; returns its header.
    ///
    /// # Errors
    /// [`Reject`]: each reason leaves the window as it was.
    pub(crate) fn open(&self, key: &Key, datagram: &mut [u8]) -> Result<Header, Reject> {
        let header = Header::parse(datagram)?;
        if header.sender != self.peer {
            return Err(Reject::WrongSender);
        }
        if !self.window().check(header.counter) {
            return Err(Reject::Replayed);
        }
        key.open(datagram)?;
        // Checked again: another thread may have accepted the same counter while this one decrypted.
        if self.window().accept(header.counter) { Ok(header) } else { Err(Reject::Replayed) }
    }

    fn window(&self) -> std::sync::MutexGuard<'_, ReplayWindow> {
        // The window is valid whatever a panicking holder left half done: each of its methods leaves it whole.
        self.window.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
