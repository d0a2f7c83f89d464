//! Process-wide index cache, bounded in bytes, keyed by source identity.
//! A file whose size or modification time changed is indexed again.
//! Callers that ask for one uncached index at once share a single build.

use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::{Condvar, Mutex};

use crate::error::{Error, Result};
use crate::fnv::FastMap;
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
    map: FastMap<SourceKey, Entry>,
    /// Builds under way, by the identity (key and version) they index.
    building: FastMap<SourceIdentity, Arc<Build>>,
    capacity: usize,
    used: usize,
    clock: u64,
    hits: u64,
    misses: u64,
}

/// One index build under way. Callers for the same identity wait for its
/// outcome instead of reading the source again: blocked on it, or, for hosts
/// with an event loop, registered by a token they get back when it ends.
#[derive(Default)]
struct Build {
    state: Mutex<BuildState>,
    done: Condvar,
}

#[derive(Default)]
struct BuildState {
    outcome: Option<Result<Arc<MediaIndex>>>,
    /// Tokens of the host's waiting requests.
    waiters: Vec<usize>,
}

/// A build a caller leads or has joined, without blocking (see
/// `IndexCache::lookup`). A leader that goes without running it ends it
/// with an error, so that no one waits for it forever.
pub struct Pending<'c> {
    cache: &'c IndexCache,
    build: Arc<Build>,
    identity: SourceIdentity,
    lead: bool,
    ran: AtomicBool,
}

/// What `IndexCache::lookup` found.
pub enum Lookup<'c> {
    Cached(Arc<MediaIndex>),
    /// Not cached: a build to lead (run with `IndexCache::lead`) or the one
    /// under way, joined.
    Pending(Pending<'c>),
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if self.lead && !self.ran.load(Ordering::Acquire) {
            self.cache.forget(&self.identity, &self.build);
            self.build.finish(Err(Error::Io(io::Error::other(
                "the index build was given up before it ran",
            ))));
        }
    }
}

impl Pending<'_> {
    /// Whether this caller must run the build.
    pub fn leads(&self) -> bool {
        self.lead
    }

    /// What the build indexes: a source, or a source's view.
    pub fn identity(&self) -> &SourceIdentity {
        &self.identity
    }

    /// The outcome, once the build has ended.
    pub fn outcome(&self) -> Option<Result<Arc<MediaIndex>>> {
        self.build.state.lock().outcome.as_ref().map(|o| match o {
            Ok(index) => Ok(Arc::clone(index)),
            Err(e) => Err(e.duplicate()),
        })
    }

    /// Registers a waiting request's token, handed back by `take_waiters`
    /// once the build has ended. False, with nothing registered, when it has
    /// ended already.
    pub fn add_waiter(&self, token: usize) -> bool {
        let mut state = self.build.state.lock();
        if state.outcome.is_some() {
            return false;
        }
        state.waiters.push(token);
        true
    }

    /// Forgets a token (a request that went away).
    pub fn remove_waiter(&self, token: usize) {
        self.build.state.lock().waiters.retain(|&t| t != token);
    }

    /// Up to `max` tokens of the requests that waited, taken off the list.
    pub fn take_waiters(&self, max: usize) -> Vec<usize> {
        let mut state = self.build.state.lock();
        let n = state.waiters.len().min(max);
        state.waiters.drain(..n).collect()
    }
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
/// outside the lock, so a slow scan does not hold up other threads; callers
/// that want an index while it is being built wait for that build.
pub struct IndexCache {
    inner: Mutex<Inner>,
}

impl IndexCache {
    pub fn new(capacity: usize) -> IndexCache {
        IndexCache {
            inner: Mutex::new(Inner {
                map: FastMap::default(),
                building: FastMap::default(),
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
    ///
    /// While one call builds an identity's index, other calls for the same
    /// identity wait for it and share its outcome: the index, or a copy of
    /// its error. A failure is not retried by the waiters (it belongs to the
    /// same bytes, so a retry would fail alike after another scan) and is not
    /// cached: the next call builds again. A build that panics wakes its
    /// waiters with an I/O error and panics on in its own caller.
    pub fn get_or_build(
        &self,
        identity: &SourceIdentity,
        build: impl FnOnce() -> Result<MediaIndex>,
    ) -> Result<Arc<MediaIndex>> {
        match self.lookup(identity) {
            Lookup::Cached(index) => Ok(index),
            Lookup::Pending(p) if p.lead => self.lead(&p, build),
            Lookup::Pending(p) => p.build.wait(),
        }
    }

    /// Without blocking or reading: the cached index for this identity, or
    /// the build of it, which the caller leads when none is under way and
    /// joins otherwise. Sources without a key are never cached: each call
    /// leads a build of its own.
    pub fn lookup(&self, identity: &SourceIdentity) -> Lookup<'_> {
        let pending = |build: Arc<Build>, lead: bool| {
            Lookup::Pending(Pending {
                cache: self,
                build,
                identity: identity.clone(),
                lead,
                ran: AtomicBool::new(false),
            })
        };
        let Some(key) = &identity.key else {
            return pending(Arc::default(), true);
        };
        let mut inner = self.inner.lock();
        if let Some(index) = inner.hit(key, identity) {
            return Lookup::Cached(index);
        }
        inner.misses += 1;
        match inner.building.get(identity) {
            Some(build) => pending(Arc::clone(build), false),
            None => {
                let build = Arc::new(Build::default());
                inner.building.insert(identity.clone(), Arc::clone(&build));
                pending(build, true)
            }
        }
    }

    /// Runs a build the caller leads (blocking), caches its index and hands
    /// its outcome to the callers that joined it.
    pub fn lead(
        &self,
        pending: &Pending,
        build: impl FnOnce() -> Result<MediaIndex>,
    ) -> Result<Arc<MediaIndex>> {
        if !pending.lead {
            return Err(Error::InvalidArgument(
                "this caller joined the build: it does not run it".into(),
            ));
        }
        if pending.ran.swap(true, Ordering::AcqRel) {
            return Err(Error::InvalidArgument("this build has run already".into()));
        }
        let identity = &pending.identity;
        let built = panic::catch_unwind(AssertUnwindSafe(build)).map(|r| r.map(Arc::new));
        self.forget(identity, &pending.build);
        if let (Some(key), Ok(Ok(index))) = (&identity.key, &built) {
            self.inner.lock().insert(key, identity, Arc::clone(index));
        }
        match built {
            Ok(outcome) => {
                pending.build.finish(match &outcome {
                    Ok(index) => Ok(Arc::clone(index)),
                    Err(e) => Err(e.duplicate()),
                });
                outcome
            }
            Err(payload) => {
                pending.build.finish(Err(Error::Io(io::Error::other(
                    "building the index panicked in another thread",
                ))));
                panic::resume_unwind(payload)
            }
        }
    }

    /// Takes `build` off the list of builds under way (if it is still the
    /// one listed for this identity).
    fn forget(&self, identity: &SourceIdentity, build: &Arc<Build>) {
        let mut inner = self.inner.lock();
        if inner
            .building
            .get(identity)
            .is_some_and(|b| Arc::ptr_eq(b, build))
        {
            inner.building.remove(identity);
        }
    }

    /// The cached index for this identity, without building one: `None`
    /// when it is not cached or still being built. Counts a hit when found;
    /// a miss is counted by the call that goes on to build.
    pub fn get(&self, identity: &SourceIdentity) -> Option<Arc<MediaIndex>> {
        let key = identity.key.as_ref()?;
        self.inner.lock().hit(key, identity)
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

impl Build {
    fn finish(&self, outcome: Result<Arc<MediaIndex>>) {
        self.state.lock().outcome = Some(outcome);
        self.done.notify_all();
    }

    /// Blocks until the build has finished and returns its outcome.
    fn wait(&self) -> Result<Arc<MediaIndex>> {
        let mut state = self.state.lock();
        loop {
            match &state.outcome {
                Some(Ok(index)) => return Ok(Arc::clone(index)),
                Some(Err(e)) => return Err(e.duplicate()),
                None => self.done.wait(&mut state),
            }
        }
    }
}

impl Inner {
    /// The entry for `key` if it holds this version, marked as used.
    fn hit(&mut self, key: &SourceKey, identity: &SourceIdentity) -> Option<Arc<MediaIndex>> {
        self.clock += 1;
        let now = self.clock;
        let e = self.map.get_mut(key)?;
        if e.size != identity.size || e.mtime_ns != identity.mtime_ns {
            return None;
        }
        e.last_used = now;
        let index = Arc::clone(&e.index);
        self.hits += 1;
        Some(index)
    }

    /// Stores a new index for `key`, replacing any other version, and
    /// evicts down to the budget.
    fn insert(&mut self, key: &SourceKey, identity: &SourceIdentity, index: Arc<MediaIndex>) {
        let cost = index.cost_bytes() + std::mem::size_of::<Entry>() + 64;
        self.clock += 1;
        let entry = Entry {
            size: identity.size,
            mtime_ns: identity.mtime_ns,
            index,
            cost,
            last_used: self.clock,
        };
        if let Some(old) = self.map.insert(key.clone(), entry) {
            self.used -= old.cost;
        }
        self.used += cost;
        self.evict();
    }

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
    use crate::media::Media;
    use crate::source::{ByteSource, MemorySource};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Barrier;
    use std::time::Duration;

    fn tiny_flv() -> Vec<u8> {
        let mut out = Vec::new();
        crate::format::flv::tag::write_stream_header(&mut out, false, true);
        crate::format::flv::tag::write_tag(&mut out, 9, 0, &[0x12, 0, 0]);
        out
    }

    #[test]
    fn builds_joined_without_blocking_share_one_outcome_and_a_given_up_one_ends() {
        let cache = IndexCache::new(1 << 20);
        let source = MemorySource::named(tiny_flv(), "pending");
        let id = source.identity();
        let Lookup::Pending(lead) = cache.lookup(&id) else {
            panic!("nothing is cached yet")
        };
        let Lookup::Pending(join) = cache.lookup(&id) else {
            panic!("the build is under way")
        };
        assert!(lead.leads() && !join.leads());
        assert!(join.add_waiter(7));
        assert!(cache.lead(&join, || MediaIndex::build(&source)).is_err());
        assert!(join.outcome().is_none());
        cache.lead(&lead, || MediaIndex::build(&source)).unwrap();
        assert!(
            cache.lead(&lead, || MediaIndex::build(&source)).is_err(),
            "runs once"
        );
        assert_eq!(lead.take_waiters(8), vec![7]);
        assert!(!join.add_waiter(8), "ended");
        assert!(join.outcome().unwrap().is_ok());
        assert!(matches!(cache.lookup(&id), Lookup::Cached(_)));

        // A leader that gives up ends the build for those who joined it, and
        // the next caller leads a new one.
        let other = MemorySource::named(tiny_flv(), "given-up");
        let id = other.identity();
        let Lookup::Pending(lead) = cache.lookup(&id) else {
            panic!()
        };
        let Lookup::Pending(join) = cache.lookup(&id) else {
            panic!()
        };
        drop(lead);
        assert!(join.outcome().is_some_and(|o| o.is_err()));
        let again = cache.lookup(&id);
        assert!(
            matches!(&again, Lookup::Pending(p) if p.leads()),
            "nothing was built"
        );
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

    /// A named source whose every read sleeps, so that a build takes long
    /// enough for the other threads to arrive while it runs.
    struct SlowSource {
        bytes: MemorySource,
        reads: AtomicUsize,
    }

    impl SlowSource {
        fn new(bytes: Vec<u8>, name: &str) -> SlowSource {
            SlowSource {
                bytes: MemorySource::named(bytes, name),
                reads: AtomicUsize::new(0),
            }
        }
    }

    impl ByteSource for SlowSource {
        fn size(&self) -> u64 {
            self.bytes.size()
        }

        fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(100));
            self.bytes.read_at(offset, buf)
        }

        fn identity(&self) -> SourceIdentity {
            self.bytes.identity()
        }
    }

    const THREADS: usize = 8;

    /// Runs `open` on THREADS threads released at once; their results.
    fn at_once<T: Send>(open: impl Fn() -> T + Sync) -> Vec<T> {
        let start = Barrier::new(THREADS);
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|_| {
                    s.spawn(|| {
                        start.wait();
                        open()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    }

    #[test]
    fn threads_opening_one_slow_source_at_once_build_once() {
        let cache = IndexCache::new(1 << 20);
        let src = Arc::new(SlowSource::new(tiny_flv(), "slow"));
        let media = at_once(|| {
            let source: Arc<dyn ByteSource> = src.clone();
            Media::with_cache(source, &cache).unwrap()
        });
        let first = media[0].index();
        assert!(media.iter().all(|m| std::ptr::eq(m.index(), first)));
        // As many reads as one build of the same bytes makes alone.
        let alone = SlowSource::new(tiny_flv(), "alone");
        MediaIndex::build(&alone).unwrap();
        assert_eq!(
            src.reads.load(Ordering::SeqCst),
            alone.reads.load(Ordering::SeqCst)
        );
        let stats = cache.stats();
        assert_eq!(stats.entries, 1);
        assert_eq!(stats.hits + stats.misses, THREADS as u64);
    }

    #[test]
    fn waiters_share_one_build_even_without_a_cache() {
        let cache = IndexCache::new(0);
        let src = SlowSource::new(tiny_flv(), "uncached");
        let builds = AtomicUsize::new(0);
        let indexes = at_once(|| {
            cache.get_or_build(&src.identity(), || {
                builds.fetch_add(1, Ordering::SeqCst);
                MediaIndex::build(&src)
            })
        });
        assert_eq!(builds.load(Ordering::SeqCst), 1);
        let first = indexes[0].as_ref().unwrap();
        assert!(indexes
            .iter()
            .all(|i| Arc::ptr_eq(i.as_ref().unwrap(), first)));
        assert_eq!(cache.stats().entries, 0);
    }

    #[test]
    fn a_failed_build_gives_its_waiters_its_error_and_is_not_cached() {
        let cache = IndexCache::new(1 << 20);
        let src = SlowSource::new(b"not a video, just text".to_vec(), "junk");
        let builds = AtomicUsize::new(0);
        let build = || {
            builds.fetch_add(1, Ordering::SeqCst);
            MediaIndex::build(&src)
        };
        let results = at_once(|| cache.get_or_build(&src.identity(), build));
        assert_eq!(builds.load(Ordering::SeqCst), 1);
        let messages: Vec<String> = results
            .into_iter()
            .map(|r| match r {
                Err(e @ Error::UnsupportedFormat(_)) => e.to_string(),
                other => panic!("want the build's error, got {:?}", other.map(|_| ())),
            })
            .collect();
        assert!(messages.iter().all(|m| *m == messages[0]));
        // Not cached: the next call builds again.
        assert!(cache.get_or_build(&src.identity(), build).is_err());
        assert_eq!(builds.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_build_that_panics_wakes_its_waiters_and_the_next_call_builds() {
        let cache = IndexCache::new(1 << 20);
        let src = SlowSource::new(tiny_flv(), "panics");
        let builds = AtomicUsize::new(0);
        let results = at_once(|| {
            panic::catch_unwind(AssertUnwindSafe(|| {
                cache.get_or_build(&src.identity(), || {
                    builds.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(300));
                    panic!("index build bug")
                })
            }))
        });
        assert_eq!(builds.load(Ordering::SeqCst), 1);
        let panicked = results.iter().filter(|r| r.is_err()).count();
        let waited = results
            .iter()
            .filter(|r| matches!(r, Ok(Err(Error::Io(_)))))
            .count();
        assert_eq!((panicked, waited), (1, THREADS - 1));
        let index = cache.get_or_build(&src.identity(), || MediaIndex::build(&src));
        assert!(index.is_ok());
        assert_eq!(cache.stats().entries, 1);
    }

    #[test]
    fn get_finds_only_what_is_cached() {
        let cache = IndexCache::new(1 << 20);
        let src = MemorySource::named(tiny_flv(), "lookup");
        let id = src.identity();
        assert!(cache.get(&id).is_none());
        let built = cache.get_or_build(&id, || MediaIndex::build(&src)).unwrap();
        assert!(Arc::ptr_eq(&cache.get(&id).unwrap(), &built));
        let mut other_version = id.clone();
        other_version.size += 1;
        assert!(cache.get(&other_version).is_none());
        assert!(cache
            .get(&MemorySource::new(tiny_flv()).identity())
            .is_none());
        assert_eq!((cache.stats().hits, cache.stats().misses), (1, 1));
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
