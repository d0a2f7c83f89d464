//! FNV-1a over bytes, stable across processes and builds (unlike the std
//! hasher): validators and the digests they are built from.

pub(crate) struct Fnv(u64);

impl Fnv {
    pub(crate) fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    /// Goes on from an earlier state (0: from the start).
    pub(crate) fn with(state: u64) -> Fnv {
        if state == 0 {
            Fnv::new()
        } else {
            Fnv(state)
        }
    }

    /// FNV-1a taken eight bytes at a time (then the odd bytes): the same
    /// mixing with an eighth of the multiplications.
    pub(crate) fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let word = u64::from_le_bytes(w.try_into().expect("8 bytes"));
            self.0 = (self.0 ^ word).wrapping_mul(0x0100_0000_01b3);
        }
        for &b in words.remainder() {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    pub(crate) fn finish(&self) -> u64 {
        self.0
    }
}

/// The digest of `bytes` in one call.
pub(crate) fn digest(bytes: &[u8]) -> u64 {
    let mut h = Fnv::new();
    h.write(bytes);
    h.finish()
}

/// A map for small keys that clients do not choose: FNV, not the std
/// hasher's SipHash, which costs more than the rest of a lookup.
pub(crate) type FastMap<K, V> =
    std::collections::HashMap<K, V, std::hash::BuildHasherDefault<FnvHasher>>;

#[derive(Default)]
pub(crate) struct FnvHasher(u64);

impl std::hash::Hasher for FnvHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = Fnv::with(self.0);
        h.write(bytes);
        self.0 = h.finish();
    }

    fn finish(&self) -> u64 {
        self.0
    }
}
