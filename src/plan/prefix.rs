//! The bytes a plan sends before its file range: built for the request, or
//! a part of a head shared by every request for the file (a virtual file's
//! head), which is not copied per request.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// Prefix bytes of a plan. Reads as a byte slice.
#[derive(Clone)]
pub struct Prefix(Repr);

#[derive(Clone)]
enum Repr {
    /// Bytes the library holds for the life of the process.
    Static(&'static [u8]),
    /// Built for one plan; streams and exchanges share it.
    Owned(Arc<Vec<u8>>),
    /// `bytes[skip..]`, with the digest of all of `bytes`.
    Shared {
        bytes: Arc<[u8]>,
        skip: usize,
        digest: u64,
    },
}

impl Prefix {
    pub fn empty() -> Prefix {
        Prefix(Repr::Static(&[]))
    }

    /// Bytes that live as long as the process.
    pub fn from_static(bytes: &'static [u8]) -> Prefix {
        Prefix(Repr::Static(bytes))
    }

    /// The part of a shared head from `skip` on (`skip` ≤ its length).
    pub(crate) fn shared(bytes: &Arc<[u8]>, skip: usize, digest: u64) -> Prefix {
        debug_assert!(skip <= bytes.len());
        Prefix(Repr::Shared {
            bytes: Arc::clone(bytes),
            skip,
            digest,
        })
    }

    /// For validators: the shared head's digest and where this part starts.
    pub(crate) fn shared_digest(&self) -> Option<(u64, usize)> {
        match &self.0 {
            Repr::Static(_) | Repr::Owned(_) => None,
            Repr::Shared { skip, digest, .. } => Some((*digest, *skip)),
        }
    }
}

impl Deref for Prefix {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            Repr::Static(b) => b,
            Repr::Owned(v) => v,
            Repr::Shared { bytes, skip, .. } => &bytes[*skip..],
        }
    }
}

impl From<Vec<u8>> for Prefix {
    fn from(v: Vec<u8>) -> Prefix {
        Prefix(Repr::Owned(Arc::new(v)))
    }
}

impl PartialEq for Prefix {
    fn eq(&self, other: &Prefix) -> bool {
        **self == **other
    }
}

impl Eq for Prefix {}

impl PartialEq<Vec<u8>> for Prefix {
    fn eq(&self, other: &Vec<u8>) -> bool {
        **self == other[..]
    }
}

impl PartialEq<[u8]> for Prefix {
    fn eq(&self, other: &[u8]) -> bool {
        **self == *other
    }
}

impl fmt::Debug for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.0 {
            Repr::Static(_) => "static",
            Repr::Owned(_) => "owned",
            Repr::Shared { .. } => "shared",
        };
        write!(f, "Prefix({kind}, {} bytes)", self.len())
    }
}
