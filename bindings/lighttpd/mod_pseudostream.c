/*
 * mod_pseudostream: HTTP pseudostreaming of FLV and MP4 files for lighttpd
 * ("movie.flv?start=...", "movie.mp4?start=12.5&end=30"), answered by
 * libpseudostream.
 *
 * The library decides the whole answer (ps_exchange): status, headers,
 * body and its pacing, for every method. This module moves bytes: it
 * hands over the request, lends the stat cache's descriptor of the file,
 * writes the library's headers and turns the body's pieces into memory
 * chunks (copies) and file chunks (sendfile) of the request's write queue.
 *
 * A paced body goes out as the library allows: when it says wait, the
 * response takes its place in a queue of deadlines, and one timerfd per
 * lighttpd process, in its event loop, puts each connection back on the
 * job list when its next piece is due (HTTP/1.1 and HTTP/2 alike).
 *
 * Indexing a file the library has not indexed yet reads it (seconds for a
 * long FLV not in the page cache). The library's cache hands each such
 * request the build of that file version: the request that leads it runs
 * it on a thread and is resumed by an eventfd in lighttpd's event loop;
 * the others wait as the build's waiters and are resumed with it (one
 * thread per file, not per request).
 */

#include "first.h"

#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/types.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base.h"
#include "buffer.h"
#include "array.h"
#include "chunk.h"
#include "configfile.h"
#include "fdevent.h"
#include "http_chunk.h"
#include "http_header.h"
#include "http_kv.h"
#include "log.h"
#include "plugin.h"
#include "request.h"
#include "stat_cache.h"

#include <pseudostream.h>


/* a response queues no more while this much waits for the socket */
#define PS_QUEUE_HIGH  (256 * 1024)
/* body pieces asked for at once */
#define PS_BATCH       32
#define PS_PREFIX      "pseudostream."
#define PS_PREFIX_LEN  (sizeof(PS_PREFIX) - 1)


typedef struct {
    const array *extensions;
} plugin_config;

/* Library options for one set of matching conditional blocks. */
typedef struct {
    uint64_t *matched;
    ps_options *options;
} options_entry;

typedef struct handler_ctx handler_ctx;

/*
 * Paced responses waiting for their next piece, in a binary min-heap by
 * deadline. One timerfd, set to the earliest deadline, wakes them all: a
 * waiting response costs no descriptor of its own.
 */
typedef struct {
    handler_ctx **heap;
    uint32_t used;
    uint32_t size;
    fdnode *timer;              /* a timerfd, made on the first wait */
    uint64_t armed_us;          /* its deadline; 0 when it is not set */
    server *srv;                /* the process's, for the index builds too */
} wake_queue;

typedef struct {
    PLUGIN_DATA;
    plugin_config defaults;
    plugin_config conf;
    config_plugin_keys_t *cpk;  /* the library's keys, as directives */
    char *names;                /* their text */
    uint64_t *matched;          /* the request's blocks, one bit each */
    uint32_t nwords;
    options_entry *options;
    uint32_t noptions;
    wake_queue wakes;
} plugin_data;

/* One request the library answers. */
struct handler_ctx {
    ps_exchange *x;
    const ps_options *options;
    stat_cache_entry *sce;      /* a reference held: its fd is lent to x */
    int answered;
    uint64_t left;              /* body bytes not queued yet */
    ps_build *build;            /* the file's index build, until opened */
    int waiting;                /* for the build to end */
    int done_fd;                /* the leader's: its thread's eventfd, */
    fdnode *built;              /* registered until the thread is done */
    int gone;                   /* the leader's request left first */
    connection *con;
    wake_queue *wakes;
    uint64_t wake_us;           /* CLOCK_MONOTONIC, when it is next due */
    uint32_t wake_slot;         /* 1 + its place in the heap; 0: not there */
};


static uint64_t
ps_monotonic_us (void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}


/* ---------------------------------------------------------- settings -- */

INIT_FUNC(mod_pseudostream_init) {
    return ck_calloc(1, sizeof(plugin_data));
}


FREE_FUNC(mod_pseudostream_free) {
    plugin_data * const p = p_d;
    wake_queue * const q = &p->wakes;
    if (q->timer) {
        /* the event loop runs no more: closed now, not scheduled */
        const int fd = q->timer->fd;
        fdevent_fdnode_event_del(q->srv->ev, q->timer);
        fdevent_unregister(q->srv->ev, q->timer);
        close(fd);
        --q->srv->cur_fds;
    }
    free(q->heap);
    for (uint32_t i = 0; i < p->noptions; ++i) {
        ps_options_free(p->options[i].options);
        free(p->options[i].matched);
    }
    free(p->options);
    free(p->matched);
    free(p->cpk);
    free(p->names);
}


static void
mod_pseudostream_merge_config (plugin_config * const pconf,
                               const config_plugin_value_t *cpv)
{
    for (; -1 != cpv->k_id; ++cpv) {
        if (0 == cpv->k_id) /* pseudostream.extensions */
            pconf->extensions = cpv->v.a;
    }
}


static void
mod_pseudostream_patch_config (request_st * const r, plugin_data * const p)
{
    p->conf = p->defaults;
    memset(p->matched, 0, p->nwords * sizeof(*p->matched));
    for (int i = 1, used = p->nconfig; i < used; ++i) {
        if (config_check_cond(r, (uint32_t)p->cvlist[i].k_id)) {
            mod_pseudostream_merge_config(&p->conf,
                                          p->cvlist + p->cvlist[i].v.u2[0]);
            p->matched[i / 64] |= (uint64_t)1 << (i % 64);
        }
    }
}


static void
mod_pseudostream_add_key (plugin_data * const p, uint32_t * const n,
                          char ** const at, const char *name, size_t len,
                          const int wide, const int hyphens)
{
    config_plugin_keys_t * const k = p->cpk + (*n)++;
    char * const s = *at;
    memcpy(s, PS_PREFIX, PS_PREFIX_LEN);
    for (size_t i = 0; i < len; ++i)
        s[PS_PREFIX_LEN + i] = (hyphens && name[i] == '_') ? '-' : name[i];
    s[PS_PREFIX_LEN + len] = '\0';
    *at += PS_PREFIX_LEN + len + 1;
    k->k = s;
    k->klen = (uint8_t)(PS_PREFIX_LEN + len);
    /* lighttpd's older form: ("start" => "pos"), one pair per parameter */
    k->ktype = (len == 6 && 0 == memcmp(name, "params", 6))
      ? T_CONFIG_ARRAY_KVSTRING
      : T_CONFIG_STRING;
    k->scope = wide ? T_CONFIG_SCOPE_SERVER : T_CONFIG_SCOPE_CONNECTION;
}


/*
 * The directives: pseudostream.extensions (the module's own), then every
 * key and alias the library lists ("name | alias: what it takes", one per
 * line), as written and with '-' for '_' as lighttpd's names are spelt.
 * Keys the library calls process-wide are server scope.
 */

static int
mod_pseudostream_keys (plugin_data * const p)
{
    size_t len = 0;
    ps_options_describe(NULL, 0, &len);
    char * const text = ck_malloc(len + 1);
    if (PS_OK != ps_options_describe(text, len + 1, &len)) {
        free(text);
        return -1;
    }
    uint32_t names = 1;
    for (const char *s = text; *s; ++s) names += (*s == '|' || *s == '\n');
    p->cpk = ck_calloc(2 + 2 * names, sizeof(*p->cpk));
    p->names = ck_malloc(2 * (names * (PS_PREFIX_LEN + 1) + len) + 64);

    char *at = p->names;
    uint32_t n = 0;
    p->cpk[n].k = "pseudostream.extensions";
    p->cpk[n].klen = sizeof("pseudostream.extensions") - 1;
    p->cpk[n].ktype = T_CONFIG_ARRAY_VLIST;
    p->cpk[n++].scope = T_CONFIG_SCOPE_CONNECTION;

    for (char *line = text, *next; *line; line = next) {
        char * const end = strchr(line, '\n');
        next = end ? end + 1 : line + strlen(line);
        if (end) *end = '\0';
        char * const colon = strchr(line, ':');
        if (NULL == colon) continue;
        const int wide = NULL != strstr(colon, "process-wide");
        for (char *name = line; name < colon; ) {
            char *stop = memchr(name, '|', (size_t)(colon - name));
            if (NULL == stop) stop = colon;
            char *a = name, *b = stop;
            while (a < b && *a == ' ') ++a;
            while (b > a && b[-1] == ' ') --b;
            if (b > a) {
                mod_pseudostream_add_key(p, &n, &at, a, (size_t)(b - a),
                                         wide, 0);
                if (memchr(a, '_', (size_t)(b - a)))
                    mod_pseudostream_add_key(p, &n, &at, a, (size_t)(b - a),
                                             wide, 1);
            }
            name = stop + 1;
        }
    }
    free(text);
    p->cpk[n].ktype = T_CONFIG_UNSET; /* the end */
    return 0;
}


/*
 * Sets a block's values on `o` by the library's keys; process-wide keys
 * only when `wide` (once, at startup). `errh`: where to say what is wrong.
 */

static int
mod_pseudostream_apply (const plugin_data * const p, ps_options * const o,
                        const config_plugin_value_t *cpv, const int wide,
                        log_error_st * const errh)
{
    for (; -1 != cpv->k_id; ++cpv) {
        const config_plugin_keys_t * const k = p->cpk + cpv->k_id;
        if (0 == cpv->k_id) continue; /* extensions */
        const int server_wide = k->scope == T_CONFIG_SCOPE_SERVER;
        if (server_wide && !wide) continue;
        ps_options * const target = server_wide ? NULL : o;
        const char * const key = k->k + PS_PREFIX_LEN;
        ps_status st = PS_OK;
        if (k->ktype == T_CONFIG_ARRAY_KVSTRING) {
            buffer * const tb = buffer_init();
            for (uint32_t i = 0; st == PS_OK && i < cpv->v.a->used; ++i) {
                const data_string * const ds =
                  (const data_string *)cpv->v.a->data[i];
                buffer_copy_string_len(tb, BUF_PTR_LEN(&ds->key));
                buffer_append_string_len(tb, CONST_STR_LEN("="));
                buffer_append_string_len(tb, BUF_PTR_LEN(&ds->value));
                st = ps_options_set(target, "param", tb->ptr);
            }
            buffer_free(tb);
        }
        else
            st = ps_options_set(target, key, buffer_is_blank(cpv->v.b)
                                             ? "" : cpv->v.b->ptr);
        if (st != PS_OK) {
            if (errh)
                log_error(errh, __FILE__, __LINE__, "%s: %s", k->k,
                          ps_last_error());
            return -1;
        }
    }
    return 0;
}


/* a block's values, or nothing (the global block may have none) */

static const config_plugin_value_t *
mod_pseudostream_block (const plugin_data * const p, int i)
{
    if (i >= p->nconfig || (0 == i && !p->cvlist[0].v.u2[1])) return NULL;
    return p->cvlist + p->cvlist[i].v.u2[0];
}


SETDEFAULTS_FUNC(mod_pseudostream_set_defaults) {
    plugin_data * const p = p_d;
    if (0 != mod_pseudostream_keys(p)) {
        log_error(srv->errh, __FILE__, __LINE__,
          "pseudostream: no key list from the library: %s", ps_last_error());
        return HANDLER_ERROR;
    }
    if (!config_plugin_values_init(srv, p, p->cpk, "mod_pseudostream"))
        return HANDLER_ERROR;

    /* a pseudostream.* name the library does not know is a mistake */
    for (uint32_t u = 0; u < srv->config_context->used; ++u) {
        const array * const ca =
          ((const data_config *)srv->config_context->data[u])->value;
        for (uint32_t j = 0; j < ca->used; ++j) {
            const buffer * const k = &ca->data[j]->key;
            int known = strncmp(k->ptr, PS_PREFIX, PS_PREFIX_LEN) != 0;
            for (uint32_t i = 0; !known && p->cpk[i].k; ++i)
                known = 0 == strcmp(p->cpk[i].k, k->ptr);
            if (known) continue;
            ps_options *o = NULL;
            const data_unset * const du = ca->data[j];
            const char * const v = du->type == TYPE_STRING
              ? ((const data_string *)du)->value.ptr : NULL;
            const int library_knows = v && PS_OK == ps_options_new(&o)
              && PS_OK == ps_options_set(o, k->ptr + PS_PREFIX_LEN, v);
            ps_options_free(o);
            log_error(srv->errh, __FILE__, __LINE__,
              "%s: unknown key (%s)", k->ptr, library_knows
              ? "write it in lowercase, with '-' or '_' between words"
              : ps_last_error());
            return HANDLER_ERROR;
        }
    }

    /* every block checked on top of the global one, as a request sees it */
    const config_plugin_value_t * const global = mod_pseudostream_block(p, 0);
    for (int i = 0; i < p->nconfig; ++i) {
        const config_plugin_value_t * const cpv = mod_pseudostream_block(p, i);
        ps_options *o = NULL;
        if (NULL == cpv) continue;
        int rc = PS_OK == ps_options_new(&o) ? 0 : -1;
        if (0 == rc && i > 0 && global)
            rc = mod_pseudostream_apply(p, o, global, 0, NULL);
        if (0 == rc)
            rc = mod_pseudostream_apply(p, o, cpv, 1, srv->errh);
        ps_options_free(o);
        if (0 != rc) return HANDLER_ERROR;
    }

    p->wakes.srv = srv;
    p->nwords = ((uint32_t)p->nconfig + 64) / 64;
    p->matched = ck_calloc(p->nwords, sizeof(*p->matched));
    if (global) mod_pseudostream_merge_config(&p->defaults, global);
    return HANDLER_GO_ON;
}


/* the options of the request's blocks: made once per set, then shared */

static const ps_options *
mod_pseudostream_options (request_st * const r, plugin_data * const p)
{
    const size_t bytes = p->nwords * sizeof(*p->matched);
    for (uint32_t i = 0; i < p->noptions; ++i) {
        if (0 == memcmp(p->options[i].matched, p->matched, bytes))
            return p->options[i].options;
    }

    ps_options *o = NULL;
    int rc = PS_OK == ps_options_new(&o) ? 0 : -1;
    for (int i = 0; 0 == rc && i < p->nconfig; ++i) {
        const config_plugin_value_t * const cpv = mod_pseudostream_block(p, i);
        if (cpv && (0 == i || (p->matched[i / 64] >> (i % 64) & 1)))
            rc = mod_pseudostream_apply(p, o, cpv, 0, NULL);
    }
    if (0 != rc) {
        log_error(r->conf.errh, __FILE__, __LINE__,
          "pseudostream settings refused: %s", ps_last_error());
        ps_options_free(o);
        return NULL;
    }

    if (0 == (p->noptions & 7))
        ck_realloc_u32((void **)&p->options, p->noptions, 8,
                       sizeof(*p->options));
    p->options[p->noptions].matched = ck_malloc(bytes);
    memcpy(p->options[p->noptions].matched, p->matched, bytes);
    p->options[p->noptions].options = o;
    return p->options[p->noptions++].options;
}


/* ------------------------------------------------------ wake queue -- */

static void
wake_queue_place (wake_queue * const q, const uint32_t i,
                  handler_ctx * const hctx)
{
    q->heap[i] = hctx;
    hctx->wake_slot = i + 1;
}


/* moves heap[i] up or down to where its deadline belongs */

static void
wake_queue_sift (wake_queue * const q, uint32_t i)
{
    handler_ctx * const hctx = q->heap[i];
    while (i > 0) {
        const uint32_t parent = (i - 1) / 2;
        if (q->heap[parent]->wake_us <= hctx->wake_us) break;
        wake_queue_place(q, i, q->heap[parent]);
        i = parent;
    }
    for (;;) {
        uint32_t child = 2 * i + 1;
        if (child >= q->used) break;
        if (child + 1 < q->used
            && q->heap[child + 1]->wake_us < q->heap[child]->wake_us)
            ++child;
        if (hctx->wake_us <= q->heap[child]->wake_us) break;
        wake_queue_place(q, i, q->heap[child]);
        i = child;
    }
    wake_queue_place(q, i, hctx);
}


/* the timer may still be set for it: a wake with nothing due is harmless */

static void
wake_queue_remove (wake_queue * const q, handler_ctx * const hctx)
{
    if (0 == hctx->wake_slot) return;
    const uint32_t i = hctx->wake_slot - 1;
    hctx->wake_slot = 0;
    handler_ctx * const last = q->heap[--q->used];
    if (last != hctx) {
        q->heap[i] = last;
        wake_queue_sift(q, i);
    }
}


/* sets the timer to the earliest deadline, unless it is set to it already */

static int
wake_queue_arm (wake_queue * const q)
{
    if (0 == q->used) return 0;
    const uint64_t due = q->heap[0]->wake_us;
    if (due == q->armed_us) return 0;
    struct itimerspec its;
    memset(&its, 0, sizeof(its));
    its.it_value.tv_sec = (time_t)(due / 1000000u);
    its.it_value.tv_nsec = (long)(due % 1000000u) * 1000;
    if (0 != timerfd_settime(q->timer->fd, TFD_TIMER_ABSTIME, &its, NULL))
        return -1;
    q->armed_us = due;
    return 0;
}


static handler_t
mod_pseudostream_wake_due (void *ctx, int revents)
{
    wake_queue * const q = ctx;
    uint64_t expirations;
    UNUSED(revents);
    while (read(q->timer->fd, &expirations, sizeof(expirations)) > 0) ;
    q->armed_us = 0; /* it fired: set no more */

    const uint64_t now = ps_monotonic_us();
    while (q->used && q->heap[0]->wake_us <= now) {
        handler_ctx * const due = q->heap[0];
        wake_queue_remove(q, due);
        joblist_append(due->con);
    }
    if (0 != wake_queue_arm(q)) {
        /* nothing would wake the rest: they go on now, and ask again */
        log_perror(q->srv->errh, __FILE__, __LINE__, "timerfd_settime()");
        while (q->used) {
            handler_ctx * const next = q->heap[0];
            wake_queue_remove(q, next);
            joblist_append(next->con);
        }
    }
    return HANDLER_FINISHED;
}


/* puts the connection back on the job list at `due_us` (CLOCK_MONOTONIC) */

static int
wake_queue_set (wake_queue * const q, handler_ctx * const hctx,
                const uint64_t due_us, log_error_st * const errh)
{
    if (NULL == q->timer) {
        const int fd = timerfd_create(CLOCK_MONOTONIC,
                                      TFD_NONBLOCK | TFD_CLOEXEC);
        if (fd < 0) {
            log_perror(errh, __FILE__, __LINE__, "timerfd_create()");
            return -1;
        }
        ++q->srv->cur_fds;
        q->timer = fdevent_register(q->srv->ev, fd,
                                    mod_pseudostream_wake_due, q);
        fdevent_fdnode_event_set(q->srv->ev, q->timer, FDEVENT_IN);
    }

    if (0 == hctx->wake_slot) {
        if (q->used == q->size) {
            q->size = q->size ? q->size * 2 : 64;
            q->heap = realloc(q->heap, q->size * sizeof(*q->heap));
            force_assert(q->heap);
        }
        q->heap[q->used++] = hctx;
        hctx->wake_slot = q->used;
    }
    hctx->wake_us = due_us;
    wake_queue_sift(q, hctx->wake_slot - 1);

    if (0 != wake_queue_arm(q)) {
        log_perror(errh, __FILE__, __LINE__, "timerfd_settime()");
        wake_queue_remove(q, hctx);
        return -1;
    }
    return 0;
}


/* ------------------------------------------------------ index builds -- */

/* a leader whose thread still reads is freed when the thread is done */

static void
handler_ctx_free (handler_ctx * const hctx)
{
    if (hctx->built) {
        hctx->gone = 1;
        return;
    }
    if (hctx->waiting) ps_build_remove_waiter(hctx->build, hctx);
    if (hctx->wakes) wake_queue_remove(hctx->wakes, hctx);
    ps_exchange_free(hctx->x); /* before the descriptor it was lent */
    ps_build_free(hctx->build);
    if (hctx->sce) stat_cache_entry_refchg(hctx->sce, -1);
    free(hctx);
}


static void *
mod_pseudostream_index_thread (void *arg)
{
    const handler_ctx * const hctx = arg;
    const uint64_t one = 1;
    /* its outcome, index or error, reaches every request of the build */
    ps_build_run(hctx->build, hctx->sce->fd);
    while (write(hctx->done_fd, &one, sizeof(one)) < 0 && errno == EINTR) ;
    return NULL;
}


/* the leader's thread is done: the build's requests go on */

static handler_t
mod_pseudostream_indexed (void *ctx, int revents)
{
    handler_ctx * const hctx = ctx;
    server * const srv = hctx->wakes->srv;
    void *tokens[16];
    size_t n = 0;
    uint64_t count;
    UNUSED(revents);

    if (read(hctx->done_fd, &count, sizeof(count)) < 0 && errno == EAGAIN)
        return HANDLER_FINISHED; /* not yet */
    fdevent_fdnode_event_del(srv->ev, hctx->built);
    fdevent_sched_close(srv->ev, hctx->built);
    hctx->built = NULL;

    do { /* the waiters: those that left have been removed */
        if (PS_OK != ps_build_take_waiters(hctx->build, tokens, 16, &n))
            break;
        for (size_t i = 0; i < n; ++i) {
            handler_ctx * const waiter = tokens[i];
            waiter->waiting = 0;
            joblist_append(waiter->con);
        }
    } while (n);

    hctx->waiting = 0;
    if (hctx->gone)
        handler_ctx_free(hctx);
    else
        joblist_append(hctx->con);
    return HANDLER_FINISHED;
}


/*
 * The file's index is not cached: the request leads the library's build
 * of that file version, on a thread, or waits for the one under way.
 */

static void
mod_pseudostream_build (request_st * const r, handler_ctx * const hctx)
{
    uint32_t leads = 0, added = 0;
    pthread_t thread;
    ps_build_leads(hctx->build, &leads);
    if (!leads) {
        ps_build_add_waiter(hctx->build, hctx, &added);
        hctx->waiting = (int)added; /* 0: it has just ended */
        return;
    }

    hctx->done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (hctx->done_fd >= 0
        && 0 == pthread_create(&thread, NULL, mod_pseudostream_index_thread,
                               hctx)) {
        server * const srv = hctx->wakes->srv;
        pthread_detach(thread);
        hctx->waiting = 1;
        ++srv->cur_fds;
        hctx->built = fdevent_register(srv->ev, hctx->done_fd,
                                       mod_pseudostream_indexed, hctx);
        fdevent_fdnode_event_set(srv->ev, hctx->built, FDEVENT_IN);
        return;
    }

    log_error(r->conf.errh, __FILE__, __LINE__,
      "no eventfd or thread to index %s: indexed in the event loop",
      r->physical.path.ptr);
    if (hctx->done_fd >= 0) close(hctx->done_fd);
    /* just made by this request: no other has joined it yet */
    ps_build_run(hctx->build, hctx->sce->fd);
}


/* ---------------------------------------------------------- requests -- */

/*
 * Queues the body's pieces as far as the library allows now, a batch at a
 * time, and sets the timer when it says wait. Called when the answer is
 * decided and each time lighttpd runs the request while writing it.
 */

static handler_t
mod_pseudostream_send (request_st * const r, handler_ctx * const hctx)
{
    ps_piece pieces[PS_BATCH];
    r->resp_body_started = 1; /* the header goes now */
    for (;;) {
        size_t n;
        uint64_t wait_us;
        uint32_t state;

        /* a slow client: the connection calls again as the queue drains */
        if (chunkqueue_length(&r->write_queue) >= PS_QUEUE_HIGH)
            return HANDLER_WAIT_FOR_EVENT;

        if (PS_OK != ps_exchange_pieces(hctx->x, ps_monotonic_us(), pieces,
                                        PS_BATCH, &n, &wait_us, &state)) {
            log_error(r->conf.errh, __FILE__, __LINE__,
              "ps_exchange_pieces() for %s failed: %s",
              r->physical.path.ptr, ps_last_error());
            return HANDLER_ERROR;
        }
        if (state == PS_FILL_DONE) {
            r->resp_body_finished = 1;
            return HANDLER_FINISHED;
        }
        if (state == PS_FILL_WAIT) {
            /* queued while data remains: HTTP/2 calls only on events */
            if (wait_us > 86400000000ull) wait_us = 86400000000ull;
            return 0 == wake_queue_set(hctx->wakes, hctx,
                                       ps_monotonic_us() + wait_us,
                                       r->conf.errh)
              ? HANDLER_WAIT_FOR_EVENT
              : HANDLER_ERROR;
        }
        for (size_t i = 0; i < n; ++i) {
            const ps_piece * const piece = pieces + i;
            if (piece->data && r->resp_send_chunked) /* no Content-Length */
                http_chunk_append_mem(r, (const char *)piece->data,
                                      (size_t)piece->length);
            else if (piece->data)
                /* copied as is: http_chunk would spill large ones to disk */
                chunkqueue_append_mem(&r->write_queue,
                                      (const char *)piece->data,
                                      (size_t)piece->length);
            else if (hctx->sce && hctx->sce->fd >= 0)
                http_chunk_append_file_ref_range(r, hctx->sce,
                                                 (off_t)piece->offset,
                                                 (off_t)piece->length);
            else {
                log_error(r->conf.errh, __FILE__, __LINE__,
                  "a file piece of %s without its descriptor",
                  r->physical.path.ptr);
                return HANDLER_ERROR;
            }
            hctx->left -= piece->length < hctx->left ? piece->length
                                                      : hctx->left;
        }
        if (0 == hctx->left) { /* all queued: no need to ask for the end */
            r->resp_body_finished = 1;
            return HANDLER_FINISHED;
        }
    }
}


/*
 * The library's decision, written: status, its headers and no others,
 * and the body. Its reason goes to the error log for what needs the
 * administrator (403, 415, 500), for clients' mistakes and files served
 * as stored only with debug.log-request-handling.
 */

static handler_t
mod_pseudostream_answer (request_st * const r, handler_ctx * const hctx)
{
    ps_exchange_info info;
    const char *detail = NULL;
    hctx->answered = 1;
    if (PS_OK != ps_exchange_respond(hctx->x, hctx->options)
        || PS_OK != ps_exchange_get_info(hctx->x, &info)) {
        log_error(r->conf.errh, __FILE__, __LINE__,
          "ps_exchange_respond() for %s failed: %s",
          r->physical.path.ptr, ps_last_error());
        r->handler_module = NULL; /* lighttpd's error page */
        r->http_status = 500;
        return HANDLER_FINISHED;
    }

    ps_exchange_detail(hctx->x, &detail);
    if (detail && *detail
        && (r->conf.log_request_handling || info.status == 403
            || info.status == 415 || info.status >= 500))
        log_error(r->conf.errh, __FILE__, __LINE__,
          info.status >= 400 ? "%s failed (%u): %s" : "%s (%u): %s",
          r->physical.path.ptr, info.status, detail);

    r->http_status = (int)info.status;
    for (size_t i = 0; i < info.header_count; ++i) {
        const char *k, *v;
        size_t klen, vlen;
        if (PS_OK != ps_exchange_header(hctx->x, i, &k, &klen, &v, &vlen))
            continue;
        http_header_response_insert(r, http_header_hkey_get(k, klen),
                                    k, (uint32_t)klen, v, (uint32_t)vlen);
    }

    if (0 == info.body_length) { /* HEAD, 204, 304, an empty file */
        r->resp_body_finished = 1;
        return HANDLER_FINISHED;
    }
    hctx->left = info.body_length;
    ps_exchange_align_file_pages(hctx->x, (uint64_t)sysconf(_SC_PAGESIZE));
    /* the header goes before the body is complete (HTTP/1.1 and 2) */
    r->conf.stream_response_body |= FDEVENT_STREAM_RESPONSE;
    return mod_pseudostream_send(r, hctx);
}


/* the build has ended: its index (cached or not) or its error, not re-read */

static handler_t
mod_pseudostream_resume (request_st * const r, handler_ctx * const hctx)
{
    if (hctx->waiting) return HANDLER_WAIT_FOR_EVENT;
    const ps_status st = ps_exchange_open_build(hctx->x, hctx->build);
    ps_build_free(hctx->build);
    hctx->build = NULL;
    if (st != PS_OK) {
        log_error(r->conf.errh, __FILE__, __LINE__,
          "opening %s failed: %s", r->physical.path.ptr, ps_last_error());
        r->handler_module = NULL;
        r->http_status = 500;
        return HANDLER_FINISHED;
    }
    return mod_pseudostream_answer(r, hctx);
}


/*
 * Opens the request's file for the library: through the stat cache, whose
 * descriptor it is lent. A missing or forbidden file becomes the library's
 * answer (open_failed); a directory stays lighttpd's ("dir/" redirect).
 * -1: not ours after all.
 */

static int
mod_pseudostream_open (request_st * const r, handler_ctx * const hctx)
{
    ps_exchange * const x = hctx->x;
    const char * const path = r->physical.path.ptr;
    stat_cache_entry * const sce =
      stat_cache_get_entry_open(&r->physical.path, r->conf.follow_symlink);
    int err = errno;

    if (sce && S_ISDIR(sce->st.st_mode)) return -1;
    if (sce && !S_ISREG(sce->st.st_mode))
        err = ENOENT;
    else if (sce && !r->conf.follow_symlink
             && 0 != stat_cache_path_contains_symlink(&r->physical.path,
                                                      r->conf.errh))
        err = ELOOP;
    else if (sce && sce->fd >= 0) {
        hctx->sce = sce;
        stat_cache_entry_refchg(sce, 1);
        ps_exchange_open_fd_async(x, sce->fd, path, &hctx->build);
        if (hctx->build) mod_pseudostream_build(r, hctx);
        return 0;
    }
    else if (sce && 0 == sce->st.st_size) { /* the stat cache opens none */
        ps_exchange_open_path(x, path);
        return 0;
    }
    ps_exchange_open_failed(x, err, path);
    return 0;
}


/*
 * A request for a file with a listed extension is the library's, whatever
 * its method: claimed once mod_alias and the like have mapped its path,
 * before lighttpd's own check that the file exists, so that a missing
 * file is answered with the library's headers too.
 */

PHYSICALPATH_FUNC(mod_pseudostream_physical) {
    plugin_data * const p = p_d;

    if (NULL != r->handler_module) return HANDLER_GO_ON;

    mod_pseudostream_patch_config(r, p);
    if (NULL == p->conf.extensions
        || NULL == array_match_value_suffix(p->conf.extensions,
                                            &r->physical.path))
        return HANDLER_GO_ON;

    const ps_options * const options = mod_pseudostream_options(r, p);
    const buffer * const method = http_method_buf(r->http_method);
    ps_exchange *x = NULL;
    if (NULL == options
        || PS_OK != ps_exchange_new(BUF_PTR_LEN(method),
                                    BUF_PTR_LEN(&r->uri.query), &x)
        || PS_OK != ps_exchange_configure(x, options)) {
        ps_exchange_free(x);
        r->http_status = 500;
        return HANDLER_FINISHED;
    }
    for (uint32_t i = 0; i < r->rqst_headers.used; ++i) {
        const data_string * const ds =
          (const data_string *)r->rqst_headers.data[i];
        ps_exchange_set_header(x, BUF_PTR_LEN(&ds->key),
                               BUF_PTR_LEN(&ds->value));
    }

    handler_ctx * const hctx = ck_calloc(1, sizeof(*hctx));
    hctx->x = x;
    hctx->options = options;
    hctx->con = r->con;
    hctx->wakes = &p->wakes;
    uint32_t wants = 0;
    ps_exchange_wants_file(x, &wants);
    if (wants && 0 != mod_pseudostream_open(r, hctx)) {
        handler_ctx_free(hctx);
        return HANDLER_GO_ON;
    }

    r->plugin_ctx[p->id] = hctx;
    r->handler_module = p->self;
    /* the library has applied Range; lighttpd must not apply it again */
    r->conf.range_requests = 0;
    return HANDLER_GO_ON; /* on to handle_subrequest */
}


SUBREQUEST_FUNC(mod_pseudostream_subrequest) {
    plugin_data * const p = p_d;
    handler_ctx * const hctx = r->plugin_ctx[p->id];
    if (NULL == hctx) return HANDLER_GO_ON; /* not ours */
    if (hctx->build) return mod_pseudostream_resume(r, hctx);
    if (!hctx->answered) return mod_pseudostream_answer(r, hctx);
    return mod_pseudostream_send(r, hctx);
}


/* after the response, or when the client went away: nothing left behind */

REQUEST_FUNC(mod_pseudostream_reset) {
    plugin_data * const p = p_d;
    handler_ctx * const hctx = r->plugin_ctx[p->id];
    if (NULL == hctx) return HANDLER_GO_ON;
    r->plugin_ctx[p->id] = NULL;
    handler_ctx_free(hctx);
    return HANDLER_GO_ON;
}


__attribute_cold__
int mod_pseudostream_plugin_init (plugin *p);
int mod_pseudostream_plugin_init (plugin *p)
{
    p->version = LIGHTTPD_VERSION_ID;
    p->name = "pseudostream";

    p->init = mod_pseudostream_init;
    p->cleanup = mod_pseudostream_free;
    p->set_defaults = mod_pseudostream_set_defaults;
    p->handle_physical = mod_pseudostream_physical;
    p->handle_subrequest = mod_pseudostream_subrequest;
    p->handle_request_reset = mod_pseudostream_reset;

    return 0;
}
