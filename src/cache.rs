//! Process-wide index cache, bounded in bytes, keyed by source identity.
//! A file whose size or modification time changed is indexed again.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use crate::error::Result;
use crate::index::MediaIndex;
use crate::source::{SourceIdentity, SourceKey};

/// Default budget: room for the indexes of thousands of feature-length files.
pub const DEFAULT_CAPACITY: usize = 64 * 1024 * 1024;

struct Entry {
    size: u64,
    mtime_ns: i64,
    index: Arc<MediaIndex>,
    cost: usize,
    last_used: u64,
}

struct Inner {
    map: HashMap<SourceKey, Entry>,
    capacity: usize,
    used: usize,
    clock: u64,
    hits: u64,
    misses: u64,
}

/// Counters, for hosts that expose them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub entries: usize,
    pub bytes: usize,
    pub capacity: usize,
    pub hits: u64,
    pub misses: u64,
}

/// A least-recently-used map from source identity to index. Building happens
/// outside the lock, so a slow scan does not hold up other threads.
pub struct IndexCache {
    inner: Mutex<Inner>,
}

impl IndexCache {
    pub fn new(capacity: usize) -> IndexCache {
        IndexCache {
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                capacity,
                used: 0,
                clock: 0,
                hits: 0,
                misses: 0,
            }),
        }
    }

    /// The cache every `Media::open` shares.
    pub fn global() -> &'static IndexCache {
        static GLOBAL: OnceLock<IndexCache> = OnceLock::new();
        GLOBAL.get_or_init(|| IndexCache::new(DEFAULT_CAPACITY))
    }

    /// The cached index for this identity, or a new one from `build`.
    pub fn get_or_build(
        &self,
        identity: &SourceIdentity,
        build: impl FnOnce() -> Result<MediaIndex>,
    ) -> Result<Arc<MediaIndex>> {
        let Some(key) = &identity.key else {
            return Ok(Arc::new(build()?));
        };
        {
            let mut inner = self.inner.lock();
            inner.clock += 1;
            let now = inner.clock;
            if let Some(e) = inner.map.get_mut(key) {
                if e.size == identity.size && e.mtime_ns == identity.mtime_ns {
                    e.last_used = now;
                    let index = Arc::clone(&e.index);
                    inner.hits += 1;
                    return Ok(index);
                }
            }
            inner.misses += 1;
        }
        let index = Arc::new(build()?);
        let cost = index.cost_bytes() + std::mem::size_of::<Entry>() + 64;
        let mut inner = self.inner.lock();
        inner.clock += 1;
        let entry = Entry {
            size: identity.size,
            mtime_ns: identity.mtime_ns,
            index: Arc::clone(&index),
            cost,
            last_used: inner.clock,
        };
        if let Some(old) = inner.map.insert(key.clone(), entry) {
            inner.used -= old.cost;
        }
        inner.used += cost;
        inner.evict();
        Ok(index)
    }

    /// Changes the budget; entries over it are evicted now. 0 disables caching.
    pub fn set_capacity(&self, capacity: usize) {
        let mut inner = self.inner.lock();
        inner.capacity = capacity;
        inner.evict();
    }

    pub fn clear(&self) {
        let mut inner = self.inner.lock();
        inner.map.clear();
        inner.used = 0;
    }

    pub fn stats(&self) -> CacheStats {
        let inner = self.inner.lock();
        CacheStats {
            entries: inner.map.len(),
            bytes: inner.used,
            capacity: inner.capacity,
            hits: inner.hits,
            misses: inner.misses,
        }
    }
}

impl Inner {
    /// Drops least recently used entries until the budget holds.
    fn evict(&mut self) {
        while self.used > self.capacity {
            let Some(oldest) = self
                .map
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(e) = self.map.remove(&oldest) {
                self.used -= e.cost;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{ByteSource, MemorySource};

    fn tiny_flv() -> Vec<u8> {
        let mut out = Vec::new();
        crate::format::flv::tag::write_stream_header(&mut out, false, true);
        crate::format::flv::tag::write_tag(&mut out, 9, 0, &[0x12, 0, 0]);
        out
    }

    #[test]
    fn hits_misses_versions_and_eviction() {
        let cache = IndexCache::new(1 << 20);
        let src = MemorySource::named(tiny_flv(), "a");
        let id = src.identity();
        let mut builds = 0;
        for _ in 0..3 {
            cache
                .get_or_build(&id, || {
                    builds += 1;
                    MediaIndex::build(&src)
                })
                .unwrap();
        }
        assert_eq!(builds, 1);
        assert_eq!(cache.stats().hits, 2);
        // A new version of the same key is built again and replaces the old.
        let mut changed = id.clone();
        changed.mtime_ns += 1;
        cache
            .get_or_build(&changed, || {
                builds += 1;
                MediaIndex::build(&src)
            })
            .unwrap();
        assert_eq!(builds, 2);
        assert_eq!(cache.stats().entries, 1);
        cache.set_capacity(0);
        assert_eq!(cache.stats().entries, 0);
        assert_eq!(cache.stats().bytes, 0);
    }

    #[test]
    fn anonymous_sources_are_not_cached() {
        let cache = IndexCache::new(1 << 20);
        let src = MemorySource::new(tiny_flv());
        cache
            .get_or_build(&src.identity(), || MediaIndex::build(&src))
            .unwrap();
        assert_eq!(cache.stats().entries, 0);
    }
}
