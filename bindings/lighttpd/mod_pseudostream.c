/*
 * mod_pseudostream: HTTP pseudostreaming of FLV and MP4 files for lighttpd
 * ("movie.flv?start=...", "movie.mp4?start=12.5&end=30"), answered by
 * libpseudostream.
 *
 * The library decides what to send (a prefix it builds and one range of
 * the file), which window of it a request gets (preconditions and Range)
 * and how that window is paced; this module turns the answer into a
 * memory chunk and a file chunk of the request's write queue, and lets
 * lighttpd do the rest: its stat cache, sendfile, HTTP/1.1 and HTTP/2.
 *
 * A paced window goes out in pieces under the library's pacing clock
 * (ps_pacer): lighttpd calls the module's handle_subrequest while the
 * response is written; each time, the pacer says how many bytes may be
 * queued now, and when it says wait, the response takes its place in a
 * queue of deadlines; one timerfd per lighttpd process, in its event
 * loop, puts each connection back on the job list when its piece is due.
 * lighttpd's own server.kbytes-per-second works in one-second steps and
 * not under HTTP/2; this one runs to the millisecond on both.
 *
 * A request without a query that the library would answer with the file
 * as stored, unpaced, is left to mod_staticfile.
 *
 * Indexing a file the library has not indexed yet reads it (a walk over
 * the tags of a long FLV takes seconds when the file is not in the page
 * cache): that build runs on a thread of its own, and the request resumes
 * when an eventfd in lighttpd's event loop says it is done, so lighttpd
 * goes on serving meanwhile. Requests for a file whose build is under way
 * wait for that build (one thread per file, not per request). A file whose
 * index is cached is answered at once.
 */

#include "first.h"

#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/types.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base.h"
#include "buffer.h"
#include "array.h"
#include "chunk.h"
#include "fdevent.h"
#include "http_chunk.h"
#include "http_date.h"
#include "http_header.h"
#include "log.h"
#include "plugin.h"
#include "request.h"
#include "response.h"
#include "stat_cache.h"

#include <pseudostream.h>


enum { PS_RATE_OFF, PS_RATE_FIXED, PS_RATE_AUTO };
enum { PS_BURST_DEFAULT, PS_BURST_BYTES, PS_BURST_MS };

/* a paced response queues no more while this much waits for the socket */
#define PS_QUEUE_HIGH  (256 * 1024)


/* The settings a ps_options is made of, as merged for a request. */
typedef struct {
    const array *params;        /* "start" => "pos", ... */
    uint32_t prefix;            /* ps_prefix_mode */
    uint32_t start_unit;        /* ps_unit */
    uint32_t metadata;          /* ps_metadata_mode */
    uint32_t cut;               /* ps_cut_mode */
    uint32_t client_pacing;
    uint32_t burst_kind;        /* PS_BURST_* */
    uint32_t burst;             /* bytes or milliseconds of media */
    uint32_t rate_mode;         /* PS_RATE_* */
    uint32_t rate;              /* bytes per second, or permille of auto */
} options_key;

typedef struct {
    const array *extensions;
    options_key opt;
} plugin_config;

/* One ps_options per distinct merged setting, made on first use. */
typedef struct {
    options_key key;
    ps_options *options;
} options_entry;

typedef struct handler_ctx handler_ctx;
typedef struct index_job index_job;

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
    server *srv;
} wake_queue;

typedef struct {
    PLUGIN_DATA;
    plugin_config defaults;
    plugin_config conf;
    wake_queue wakes;
    index_job *builds;          /* index builds under way */
    options_entry *options;
    uint32_t noptions;
} plugin_data;

/* What the library made for one request. */
typedef struct {
    ps_request *request;
    ps_media *media;
    ps_plan *plan;
    ps_pacer *pacer;
} ps_objects;

/*
 * An index build on a thread. The thread reads the first block and writes
 * the second, then signals `done`; the event loop alone touches the rest.
 */
struct index_job {
    int fd;                     /* the stat cache's, held by `sce` */
    uint64_t size;
    uint64_t device;
    uint64_t inode;
    int64_t mtime_ns;
    int done_fd;                /* an eventfd */

    ps_media *media;
    ps_status status;
    char error[256];

    stat_cache_entry *sce;      /* a reference held until the job is freed */
    fdnode *done;
    server *srv;
    plugin_data *p;
    index_job *next;            /* in p->builds while it runs */
    handler_ctx *waiting;       /* the requests that wait for it */
    uint32_t refs;              /* the thread's, until it signals; one each */
    int finished;               /* the thread has signalled */
};

/* A request waiting for its index, or a paced response in progress. */
struct handler_ctx {
    index_job *job;             /* while the index is built */
    ps_objects ps;
    stat_cache_entry *sce;      /* a reference held: its fd stays open */
    const uint8_t *prefix;      /* in the plan */
    uint64_t prefix_pos;
    uint64_t prefix_end;
    off_t file_pos;
    off_t file_end;
    uint64_t start_us;          /* CLOCK_MONOTONIC, when the body started */
    connection *con;
    server *srv;
    wake_queue *wakes;
    uint64_t wake_us;           /* CLOCK_MONOTONIC, when it is next due */
    uint32_t wake_slot;         /* 1 + its place in the heap; 0: not there */
    handler_ctx *wait_next;     /* in job->waiting */
};


static const char *const ps_param_names[] = {
    "start", "end", "ib", "fs", "bstart", "bend", "ri", "rs"
};


static void
ps_objects_free (ps_objects * const ps)
{
    ps_pacer_free(ps->pacer);
    ps_plan_free(ps->plan);
    ps_media_free(ps->media);
    ps_request_free(ps->request);
    memset(ps, 0, sizeof(*ps));
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
    for (uint32_t i = 0; i < p->noptions; ++i)
        ps_options_free(p->options[i].options);
    free(p->options);
}


static void
mod_pseudostream_merge_config_cpv (plugin_config * const pconf,
                                   const config_plugin_value_t * const cpv)
{
    switch (cpv->k_id) { /* index into static config_plugin_keys_t cpk[] */
      case 0: /* pseudostream.extensions */
        pconf->extensions = cpv->v.a;
        break;
      case 1: /* pseudostream.prefix */
        pconf->opt.prefix = cpv->v.u;
        break;
      case 2: /* pseudostream.start-unit */
        pconf->opt.start_unit = cpv->v.u;
        break;
      case 3: /* pseudostream.metadata */
        pconf->opt.metadata = cpv->v.u;
        break;
      case 4: /* pseudostream.mp4-cut */
        pconf->opt.cut = cpv->v.u;
        break;
      case 5: /* pseudostream.params */
        pconf->opt.params = cpv->v.a;
        break;
      case 6: /* pseudostream.burst */
        pconf->opt.burst_kind = cpv->v.u2[0];
        pconf->opt.burst = cpv->v.u2[1];
        break;
      case 7: /* pseudostream.rate */
        pconf->opt.rate_mode = cpv->v.u2[0];
        pconf->opt.rate = cpv->v.u2[1];
        break;
      case 8: /* pseudostream.client-pacing */
        pconf->opt.client_pacing = cpv->v.u;
        break;
      default: /* server-wide keys, applied once */
        return;
    }
}


static void
mod_pseudostream_merge_config (plugin_config * const pconf,
                               const config_plugin_value_t *cpv)
{
    do {
        mod_pseudostream_merge_config_cpv(pconf, cpv);
    } while ((++cpv)->k_id != -1);
}


static void
mod_pseudostream_patch_config (request_st * const r, plugin_data * const p)
{
    p->conf = p->defaults;
    for (int i = 1, used = p->nconfig; i < used; ++i) {
        if (config_check_cond(r, (uint32_t)p->cvlist[i].k_id))
            mod_pseudostream_merge_config(&p->conf,
                                          p->cvlist + p->cvlist[i].v.u2[0]);
    }
}


/* "1024", "512k", "8m", "1g" (powers of 1024), as nginx sizes read */

static int
ps_parse_size (const char *s, uint64_t * const out)
{
    char *end;
    if (*s < '0' || *s > '9') return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno) return -1;
    unsigned int shift = 0;
    switch (*end) {
      case 'k': case 'K': shift = 10; ++end; break;
      case 'm': case 'M': shift = 20; ++end; break;
      case 'g': case 'G': shift = 30; ++end; break;
      default: break;
    }
    if (*end != '\0' || v > (UINT64_MAX >> shift)) return -1;
    *out = (uint64_t)v << shift;
    return 0;
}


/* a burst: a size in bytes, or media time as "3s" or "1500ms" */

static int
ps_parse_burst (const char *s, uint32_t u2[2])
{
    char *end;
    uint64_t bytes;
    if (0 == ps_parse_size(s, &bytes)) {
        if (bytes > UINT32_MAX) return -1;
        u2[0] = PS_BURST_BYTES;
        u2[1] = (uint32_t)bytes;
        return 0;
    }
    if (*s < '0' || *s > '9') return -1;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno) return -1;
    if (0 == strcmp(end, "ms")) {
        /* as given */
    }
    else if (0 == strcmp(end, "s") && v <= UINT32_MAX / 1000)
        v *= 1000;
    else
        return -1;
    if (v > UINT32_MAX) return -1;
    u2[0] = PS_BURST_MS;
    u2[1] = (uint32_t)v;
    return 0;
}


/* a rate: "off", a size per second, "auto" or "auto <factor>" (e.g. 1.25) */

static int
ps_parse_rate (const char *s, uint32_t u2[2])
{
    uint64_t bytes;
    if (0 == strcmp(s, "off")) {
        u2[0] = PS_RATE_OFF;
        u2[1] = 0;
        return 0;
    }
    if (0 == strncmp(s, "auto", 4) && (s[4] == '\0' || s[4] == ' ')) {
        uint32_t permille = 1250;   /* the library's usual 1.25x */
        if (s[4] == ' ') {
            const char *f = s + 5;
            uint32_t whole = 0, frac = 0, scale = 1000, digits = 0;
            while (*f == ' ') ++f;
            for (; *f >= '0' && *f <= '9'; ++f, ++digits) {
                whole = whole * 10 + (uint32_t)(*f - '0');
                if (whole > 100) return -1;
            }
            if (*f == '.') {
                for (++f; *f >= '0' && *f <= '9'; ++f, ++digits) {
                    if (scale == 1) return -1;  /* at most 3 decimals */
                    scale /= 10;
                    frac += (uint32_t)(*f - '0') * scale;
                }
            }
            if (*f != '\0' || 0 == digits) return -1;
            permille = whole * 1000 + frac;
            if (0 == permille || permille > 100000) return -1;
        }
        u2[0] = PS_RATE_AUTO;
        u2[1] = permille;
        return 0;
    }
    if (0 != ps_parse_size(s, &bytes) || bytes > UINT32_MAX) return -1;
    u2[0] = bytes ? PS_RATE_FIXED : PS_RATE_OFF;
    u2[1] = (uint32_t)bytes;
    return 0;
}


static int
ps_parse_word (const char *s, const char *const *words, uint32_t n,
               uint32_t * const out)
{
    for (uint32_t i = 0; i < n; ++i) {
        if (0 == strcmp(s, words[i])) {
            *out = i;
            return 0;
        }
    }
    return -1;
}


/* "start" => "pos": known parameters renamed to names a query can carry */

static int
ps_check_params (server * const srv, const array * const a)
{
    for (uint32_t i = 0; i < a->used; ++i) {
        const data_string * const ds = (const data_string *)a->data[i];
        uint32_t id;
        if (0 != ps_parse_word(ds->key.ptr, ps_param_names,
                               sizeof(ps_param_names)/sizeof(*ps_param_names),
                               &id)) {
            log_error(srv->errh, __FILE__, __LINE__,
              "pseudostream.params: unknown parameter \"%s\" (start, end, "
              "ib, fs, bstart, bend, ri, rs)", ds->key.ptr);
            return -1;
        }
        /* "" turns the parameter off */
        const char *v = buffer_is_blank(&ds->value) ? "" : ds->value.ptr;
        if (strpbrk(v, " \t&=#?%+")) {
            log_error(srv->errh, __FILE__, __LINE__,
              "pseudostream.params: invalid query parameter name \"%s\"", v);
            return -1;
        }
        for (uint32_t j = 0; j < i; ++j) {
            if (buffer_is_equal(&((const data_string *)a->data[j])->key,
                                &ds->key)) {
                log_error(srv->errh, __FILE__, __LINE__,
                  "pseudostream.params: duplicate parameter \"%s\"",
                  ds->key.ptr);
                return -1;
            }
        }
    }
    return 0;
}


SETDEFAULTS_FUNC(mod_pseudostream_set_defaults) {
    static const config_plugin_keys_t cpk[] = {
      { CONST_STR_LEN("pseudostream.extensions"),
        T_CONFIG_ARRAY_VLIST,
        T_CONFIG_SCOPE_CONNECTION }
     ,{ CONST_STR_LEN("pseudostream.prefix"),
        T_CONFIG_STRING,
        T_CONFIG_SCOPE_CONNECTION }
     ,{ CONST_STR_LEN("pseudostream.start-unit"),
        T_CONFIG_STRING,
        T_CONFIG_SCOPE_CONNECTION }
     ,{ CONST_STR_LEN("pseudostream.metadata"),
        T_CONFIG_STRING,
        T_CONFIG_SCOPE_CONNECTION }
     ,{ CONST_STR_LEN("pseudostream.mp4-cut"),
        T_CONFIG_STRING,
        T_CONFIG_SCOPE_CONNECTION }
     ,{ CONST_STR_LEN("pseudostream.params"),
        T_CONFIG_ARRAY_KVSTRING,
        T_CONFIG_SCOPE_CONNECTION }
     ,{ CONST_STR_LEN("pseudostream.burst"),
        T_CONFIG_STRING,
        T_CONFIG_SCOPE_CONNECTION }
     ,{ CONST_STR_LEN("pseudostream.rate"),
        T_CONFIG_STRING,
        T_CONFIG_SCOPE_CONNECTION }
     ,{ CONST_STR_LEN("pseudostream.client-pacing"),
        T_CONFIG_BOOL,
        T_CONFIG_SCOPE_CONNECTION }
     ,{ CONST_STR_LEN("pseudostream.index-cache"),
        T_CONFIG_STRING,
        T_CONFIG_SCOPE_SERVER }
     ,{ CONST_STR_LEN("pseudostream.mp4-max-moov-size"),
        T_CONFIG_STRING,
        T_CONFIG_SCOPE_SERVER }
     ,{ NULL, 0,
        T_CONFIG_UNSET,
        T_CONFIG_SCOPE_UNSET }
    };
    static const char *const prefixes[] = { "none", "header", "init", "full" };
    static const char *const units[] = { "bytes", "seconds" };
    static const char *const metadata[] = { "off", "missing", "always" };
    static const char *const cuts[] = { "exact", "keyframe" };

    plugin_data * const p = p_d;
    if (!config_plugin_values_init(srv, p, cpk, "mod_pseudostream"))
        return HANDLER_ERROR;

    /* words and sizes are read once, here; a request merges numbers */
    /* (the global block's list is empty when it sets nothing here) */
    for (int i = !p->cvlist[0].v.u2[1]; i < p->nconfig; ++i) {
        config_plugin_value_t *cpv = p->cvlist + p->cvlist[i].v.u2[0];
        for (; -1 != cpv->k_id; ++cpv) {
            const char *s = NULL;
            const char *const *words = NULL;
            uint32_t nwords = 0, word;
            uint64_t size;
            ps_status st;

            if (cpv->vtype == T_CONFIG_LOCAL) continue; /* read already */
            if (cpv->vtype == T_CONFIG_STRING)
                s = buffer_is_blank(cpv->v.b) ? "" : cpv->v.b->ptr;

            switch (cpv->k_id) {
              case 1: words = prefixes; nwords = 4; break;
              case 2: words = units;    nwords = 2; break;
              case 3: words = metadata; nwords = 3; break;
              case 4: words = cuts;     nwords = 2; break;
              case 5:
                if (0 != ps_check_params(srv, cpv->v.a)) return HANDLER_ERROR;
                continue;
              case 6:
                if (0 != ps_parse_burst(s, cpv->v.u2)) {
                    log_error(srv->errh, __FILE__, __LINE__,
                      "pseudostream.burst: \"%s\" is not a size (\"256k\") "
                      "or media time (\"3s\", \"1500ms\")", s);
                    return HANDLER_ERROR;
                }
                cpv->vtype = T_CONFIG_LOCAL;
                continue;
              case 7:
                if (0 != ps_parse_rate(s, cpv->v.u2)) {
                    log_error(srv->errh, __FILE__, __LINE__,
                      "pseudostream.rate: \"%s\" is not \"off\", a size per "
                      "second (\"100k\") or \"auto\" (\"auto 1.5\")", s);
                    return HANDLER_ERROR;
                }
                cpv->vtype = T_CONFIG_LOCAL;
                continue;
              case 9:
              case 10:
                if (0 != ps_parse_size(s, &size)) {
                    log_error(srv->errh, __FILE__, __LINE__,
                      "%s: \"%s\" is not a size (\"64m\")",
                      cpk[cpv->k_id].k, s);
                    return HANDLER_ERROR;
                }
                /* process-wide; lighttpd's workers fork after this */
                st = (cpv->k_id == 9)
                  ? ps_cache_set_capacity(size)
                  : ps_mp4_set_moov_limit(size);
                if (st != PS_OK) {
                    log_error(srv->errh, __FILE__, __LINE__,
                      "%s: %s", cpk[cpv->k_id].k, ps_last_error());
                    return HANDLER_ERROR;
                }
                continue;
              default:
                continue;
            }

            if (0 != ps_parse_word(s, words, nwords, &word)) {
                buffer * const tb = srv->tmp_buf;
                buffer_clear(tb);
                for (uint32_t w = 0; w < nwords; ++w) {
                    buffer_append_string(tb, w ? ", \"" : "\"");
                    buffer_append_string(tb, words[w]);
                    buffer_append_string_len(tb, CONST_STR_LEN("\""));
                }
                log_error(srv->errh, __FILE__, __LINE__,
                  "%s: \"%s\" is not one of %s", cpk[cpv->k_id].k, s, tb->ptr);
                return HANDLER_ERROR;
            }
            cpv->v.u = word;
            cpv->vtype = T_CONFIG_LOCAL;
        }
    }

    /* the library's defaults, and nginx module's */
    memset(&p->defaults, 0, sizeof(p->defaults));
    p->defaults.opt.prefix = PS_PREFIX_INIT;
    p->defaults.opt.start_unit = PS_UNIT_BYTES;
    p->defaults.opt.metadata = PS_METADATA_MISSING;
    p->defaults.opt.cut = PS_CUT_EXACT;
    p->defaults.opt.client_pacing = 1;
    p->defaults.opt.burst_kind = PS_BURST_DEFAULT;
    p->defaults.opt.rate_mode = PS_RATE_OFF;

    if (p->nconfig > 0 && p->cvlist->v.u2[1]) {
        const config_plugin_value_t *cpv = p->cvlist + p->cvlist->v.u2[0];
        if (-1 != cpv->k_id)
            mod_pseudostream_merge_config(&p->defaults, cpv);
    }

    return HANDLER_GO_ON;
}


static int
options_key_eq (const options_key * const a, const options_key * const b)
{
    return a->params == b->params
        && a->prefix == b->prefix
        && a->start_unit == b->start_unit
        && a->metadata == b->metadata
        && a->cut == b->cut
        && a->client_pacing == b->client_pacing
        && a->burst_kind == b->burst_kind
        && a->burst == b->burst
        && a->rate_mode == b->rate_mode
        && a->rate == b->rate;
}


static ps_options *
ps_options_make (const options_key * const k)
{
    ps_options *o;
    ps_status st = ps_options_new(&o);
    if (st != PS_OK) return NULL;

    st = ps_options_set_prefix_mode(o, k->prefix);
    if (st == PS_OK) st = ps_options_set_start_unit(o, k->start_unit);
    if (st == PS_OK) st = ps_options_set_metadata(o, k->metadata);
    if (st == PS_OK) st = ps_options_set_cut_mode(o, k->cut);
    if (st == PS_OK) st = ps_options_set_client_pacing(o, k->client_pacing);

    for (uint32_t i = 0; k->params && i < k->params->used && st == PS_OK; ++i) {
        const data_string * const ds = (const data_string *)k->params->data[i];
        uint32_t id = 0;
        ps_parse_word(ds->key.ptr, ps_param_names,
                      sizeof(ps_param_names)/sizeof(*ps_param_names), &id);
        st = ps_options_set_param_name(o, id, buffer_is_blank(&ds->value)
                                              ? "" : ds->value.ptr);
    }

    if (st == PS_OK && k->burst_kind == PS_BURST_BYTES)
        st = ps_options_set_burst_bytes(o, k->burst);
    if (st == PS_OK && k->burst_kind == PS_BURST_MS)
        st = ps_options_set_burst_ms(o, k->burst);

    if (st == PS_OK) {
        switch (k->rate_mode) {
          case PS_RATE_FIXED: st = ps_options_set_rate(o, k->rate); break;
          case PS_RATE_AUTO:  st = ps_options_set_rate_auto(o, k->rate); break;
          default:            st = ps_options_set_rate(o, 0); break;
        }
    }

    if (st != PS_OK) {
        ps_options_free(o);
        return NULL;
    }
    return o;
}


/* the request's options: made once per distinct setting, then shared */

static ps_options *
mod_pseudostream_options (request_st * const r, plugin_data * const p)
{
    for (uint32_t i = 0; i < p->noptions; ++i) {
        if (options_key_eq(&p->options[i].key, &p->conf.opt))
            return p->options[i].options;
    }

    ps_options * const o = ps_options_make(&p->conf.opt);
    if (NULL == o) {
        log_error(r->conf.errh, __FILE__, __LINE__,
          "pseudostream settings refused: %s", ps_last_error());
        return NULL;
    }

    if (0 == (p->noptions & 7))
        ck_realloc_u32((void **)&p->options, p->noptions, 8,
                       sizeof(*p->options));
    p->options[p->noptions].key = p->conf.opt;
    p->options[p->noptions].options = o;
    ++p->noptions;
    return o;
}


/* ---------------------------------------------------------- requests -- */

/*
 * An error answer with its own headers (Content-Range of a 416, Allow of a
 * 405) and no body: lighttpd's error document would drop the headers, as
 * it does unless the request has a handler.
 */

static handler_t
mod_pseudostream_bodyless (request_st * const r, const plugin_data * const p,
                           int status)
{
    r->http_status = status;
    r->handler_module = p->self;
    r->resp_body_finished = 1;
    return HANDLER_FINISHED;
}


/*
 * Ends the request with the library's status for a failed call, and logs
 * why: always for what needs the administrator (403, 415, 500), with
 * debug.log-request-handling for clients' mistakes (400, 416).
 */

static handler_t
mod_pseudostream_fail_because (request_st * const r,
                               const plugin_data * const p,
                               const char * const call, ps_status st,
                               const char *detail)
{
    int status = (int)ps_status_http(st);
    int always = 1;

    switch (status) {
      case 400:
      case 416:
        always = 0;
        break;
      case 403:
      case 404:
      case 415:
        break;
      default:
        status = 500;
        break;
    }

    if (always || r->conf.log_request_handling) {
        if (NULL == detail || '\0' == *detail) detail = ps_strerror(st);
        log_error(r->conf.errh, __FILE__, __LINE__,
          "%s() for %s failed (%d): %s",
          call, r->physical.path.ptr, status, detail);
    }

    if (status == 416) return mod_pseudostream_bodyless(r, p, status);
    r->http_status = status;
    r->handler_module = NULL;
    return HANDLER_FINISHED;
}


static handler_t
mod_pseudostream_fail (request_st * const r, const plugin_data * const p,
                       const char * const call, ps_status st)
{
    return mod_pseudostream_fail_because(r, p, call, st, ps_last_error());
}


static void
mod_pseudostream_unsatisfiable (request_st * const r, uint64_t length)
{
    buffer * const vb =
      http_header_response_set_ptr(r, HTTP_HEADER_CONTENT_RANGE,
                                   CONST_STR_LEN("Content-Range"));
    buffer_append_string_len(vb, CONST_STR_LEN("bytes */"));
    buffer_append_int(vb, (intmax_t)length);
}


static const char *
ps_request_header (const request_st * const r, enum http_header_e id,
                   const char * const k, uint32_t klen)
{
    const buffer * const vb = http_header_request_get(r, id, k, klen);
    return vb ? vb->ptr : NULL;
}


/*
 * If-Unmodified-Since and If-Modified-Since in RFC 9110 order around the
 * library's answer (it has evaluated If-Match, If-None-Match, If-Range and
 * Range): each is ignored when its entity-tag counterpart was sent or it
 * is not a valid date.
 */

static uint32_t
mod_pseudostream_test_dates (const request_st * const r, uint32_t status,
                             unix_time64_t mtime)
{
    const buffer *vb;

    if (status != 412
        && !light_btst(r->rqst_htags, HTTP_HEADER_IF_MATCH)
        && (vb = http_header_request_get(r, HTTP_HEADER_IF_UNMODIFIED_SINCE,
                                         CONST_STR_LEN("If-Unmodified-Since")))
        /* a date at all: the epoch is not later than a valid one */
        && !http_date_if_modified_since(BUF_PTR_LEN(vb), 0)
        && http_date_if_modified_since(BUF_PTR_LEN(vb), mtime))
        return 412;

    if ((status == 200 || status == 206 || status == 416)
        && !light_btst(r->rqst_htags, HTTP_HEADER_IF_NONE_MATCH)
        && (vb = http_header_request_get(r, HTTP_HEADER_IF_MODIFIED_SINCE,
                                         CONST_STR_LEN("If-Modified-Since")))
        && !http_date_if_modified_since(BUF_PTR_LEN(vb), 0)
        && !http_date_if_modified_since(BUF_PTR_LEN(vb), mtime))
        return 304;

    return status;
}


static uint64_t
ps_monotonic_us (void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}


static void
index_job_release (index_job * const job)
{
    if (--job->refs) return;
    ps_media_free(job->media);
    stat_cache_entry_refchg(job->sce, -1);
    free(job);
}


static void
index_job_attach (index_job * const job, handler_ctx * const hctx)
{
    hctx->job = job;
    hctx->wait_next = job->waiting;
    job->waiting = hctx;
    ++job->refs;
}


/* the request waits no more (resumed, or gone); the job may go */

static void
index_job_detach (handler_ctx * const hctx)
{
    index_job * const job = hctx->job;
    handler_ctx **link = &job->waiting;
    while (*link && *link != hctx) link = &(*link)->wait_next;
    if (*link) *link = hctx->wait_next;
    hctx->wait_next = NULL;
    hctx->job = NULL;
    index_job_release(job);
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
    if (0 == q->used) return 0; /* a wake with nothing due is harmless */
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


static void
handler_ctx_free (handler_ctx * const hctx)
{
    if (hctx->job) index_job_detach(hctx);
    if (hctx->wakes) wake_queue_remove(hctx->wakes, hctx);
    if (hctx->sce) stat_cache_entry_refchg(hctx->sce, -1);
    ps_objects_free(&hctx->ps);
    free(hctx);
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
        q->srv = hctx->srv;
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


/*
 * Queues what the pacer allows now, and sets the timer for the next
 * piece. Called when the response starts and then each time lighttpd
 * runs the request while writing it: after the socket took data, when
 * the timer fired, for HTTP/2 on each pass over the connection's streams.
 */

static handler_t
mod_pseudostream_pace (request_st * const r, handler_ctx * const hctx)
{
    /* the header goes now, with or without a burst */
    r->resp_body_started = 1;

    for (;;) {
        const uint64_t want = (hctx->prefix_end - hctx->prefix_pos)
                            + (uint64_t)(hctx->file_end - hctx->file_pos);
        uint64_t allowed, wait_us;

        if (0 == want) {
            r->resp_body_finished = 1;
            return HANDLER_FINISHED;
        }

        /* a slow client: the connection calls again as the queue drains */
        if (chunkqueue_length(&r->write_queue) >= PS_QUEUE_HIGH)
            return HANDLER_WAIT_FOR_EVENT;

        ps_status st = ps_pacer_allow(hctx->ps.pacer,
                                      ps_monotonic_us() - hctx->start_us,
                                      want, &allowed, &wait_us);
        if (st != PS_OK) {
            log_error(r->conf.errh, __FILE__, __LINE__,
              "ps_pacer_allow() failed: %s", ps_last_error());
            return HANDLER_ERROR;
        }

        if (0 == allowed) {
            /* queued while data remains: HTTP/2 calls only on events */
            if (wait_us > 86400000000ull) wait_us = 86400000000ull;
            return 0 == wake_queue_set(hctx->wakes, hctx,
                                       ps_monotonic_us() + wait_us,
                                       r->conf.errh)
              ? HANDLER_WAIT_FOR_EVENT
              : HANDLER_ERROR;
        }

        if (allowed > want) allowed = want;

        uint64_t n = hctx->prefix_end - hctx->prefix_pos;
        if (n > allowed) n = allowed;
        if (n) {
            http_chunk_append_mem(r, (const char *)hctx->prefix
                                     + hctx->prefix_pos, (size_t)n);
            hctx->prefix_pos += n;
        }
        if (allowed > n) {
            http_chunk_append_file_ref_range(r, hctx->sce, hctx->file_pos,
                                             (off_t)(allowed - n));
            hctx->file_pos += (off_t)(allowed - n);
        }

        st = ps_pacer_consume(hctx->ps.pacer, allowed);
        if (st != PS_OK) {
            log_error(r->conf.errh, __FILE__, __LINE__,
              "ps_pacer_consume() failed: %s", ps_last_error());
            return HANDLER_ERROR;
        }
    }
}


/*
 * Headers of a 200 or 206 answer, and of 304: the library's ETag, the
 * file's Last-Modified, the plan's Content-Type (or lighttpd's by
 * extension), Content-Length and Content-Range.
 */

static int
mod_pseudostream_headers (request_st * const r, const ps_plan * const plan,
                          const ps_response * const resp,
                          stat_cache_entry * const sce, const int ranges)
{
    const char *etag, *type;
    char range[128];
    size_t len;

    if (ps_plan_etag(plan, &etag) != PS_OK) return -1;
    http_header_response_set(r, HTTP_HEADER_ETAG, CONST_STR_LEN("ETag"),
                             etag, strlen(etag));
    http_response_set_last_modified(r, sce->st.st_mtime);

    if (resp->status == 304) return 0;

    if (ps_plan_content_type(plan, &type) == PS_OK) {
        http_header_response_set(r, HTTP_HEADER_CONTENT_TYPE,
                                 CONST_STR_LEN("Content-Type"),
                                 type, strlen(type));
    }
    else {
        const buffer * const ct = stat_cache_content_type_get(sce, r);
        if (ct && !buffer_is_blank(ct))
            http_header_response_set(r, HTTP_HEADER_CONTENT_TYPE,
                                     CONST_STR_LEN("Content-Type"),
                                     BUF_PTR_LEN(ct));
        else
            http_header_response_set(r, HTTP_HEADER_CONTENT_TYPE,
                                     CONST_STR_LEN("Content-Type"),
                                     CONST_STR_LEN("application/octet-stream"));
    }

    buffer_append_int(
      http_header_response_set_ptr(r, HTTP_HEADER_CONTENT_LENGTH,
                                   CONST_STR_LEN("Content-Length")),
      (intmax_t)resp->length);

    if (resp->status == 206) {
        if (ps_plan_content_range(plan, resp, range, sizeof(range), &len)
            != PS_OK)
            return -1;
        http_header_response_set(r, HTTP_HEADER_CONTENT_RANGE,
                                 CONST_STR_LEN("Content-Range"), range,
                                 (uint32_t)len);
    }
    else if (ranges) {
        http_header_response_set(r, HTTP_HEADER_ACCEPT_RANGES,
                                 CONST_STR_LEN("Accept-Ranges"),
                                 CONST_STR_LEN("bytes"));
    }
    return 0;
}


static handler_t mod_pseudostream_planned (request_st *r, plugin_data *p,
    stat_cache_entry *sce, int has_query, ps_options *options,
    ps_objects *psp, ps_status st, const char *detail);


static void *
mod_pseudostream_index_thread (void *arg)
{
    index_job * const job = arg;
    const uint64_t one = 1;

    job->status = ps_media_open_fd_borrowed(job->fd, job->size, job->device,
                                            job->inode, job->mtime_ns,
                                            &job->media);
    if (job->status != PS_OK) {
        /* ps_last_error() is this thread's */
        const char * const e = ps_last_error();
        snprintf(job->error, sizeof(job->error), "%s", e ? e : "");
    }
    while (write(job->done_fd, &one, sizeof(one)) < 0 && errno == EINTR) ;
    return NULL;
}


/* the thread has built the index (or failed): resume its request */

static handler_t
mod_pseudostream_indexed (void *ctx, int revents)
{
    index_job * const job = ctx;
    uint64_t n;
    UNUSED(revents);

    if (read(job->done_fd, &n, sizeof(n)) < 0 && errno == EAGAIN)
        return HANDLER_FINISHED; /* not yet */
    fdevent_fdnode_event_del(job->srv->ev, job->done);
    fdevent_sched_close(job->srv->ev, job->done);
    job->done = NULL;
    job->finished = 1;

    index_job **link = &job->p->builds;
    while (*link != job) link = &(*link)->next;
    *link = job->next;

    for (handler_ctx *hctx = job->waiting; hctx; hctx = hctx->wait_next)
        joblist_append(hctx->con);
    index_job_release(job); /* the thread's */
    return HANDLER_FINISHED;
}


/*
 * The request waits for the index of `sce`'s file, with `ps` (its parsed
 * query) in its context: for the build under way of that file version, or
 * for one it starts on a thread. -1 when no thread or eventfd could be
 * had: the caller indexes at once instead.
 */

static int
mod_pseudostream_wait_for_index (request_st * const r, plugin_data * const p,
                                 stat_cache_entry * const sce,
                                 ps_objects * const ps)
{
    const uint64_t device = (uint64_t)sce->st.st_dev;
    const uint64_t inode = (uint64_t)sce->st.st_ino;
    const uint64_t size = (uint64_t)sce->st.st_size;
    const int64_t mtime_ns = (int64_t)sce->st.st_mtim.tv_sec * 1000000000
                           + sce->st.st_mtim.tv_nsec;
    index_job *job = p->builds;
    while (job && !(job->device == device && job->inode == inode
                    && job->size == size && job->mtime_ns == mtime_ns))
        job = job->next;

    if (NULL == job) {
        pthread_attr_t attr;
        pthread_t thread;
        job = ck_calloc(1, sizeof(*job));
        job->fd = sce->fd;
        job->size = size;
        job->device = device;
        job->inode = inode;
        job->mtime_ns = mtime_ns;
        job->srv = r->con->srv;
        job->p = p;
        job->refs = 1; /* the thread's */
        job->done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (job->done_fd < 0) {
            log_perror(r->conf.errh, __FILE__, __LINE__, "eventfd()");
            free(job);
            return -1;
        }

        int started = 0 == pthread_attr_init(&attr);
        if (started) {
            started = 0 == pthread_attr_setdetachstate(&attr,
                                                       PTHREAD_CREATE_DETACHED)
                   && 0 == pthread_create(&thread, &attr,
                                          mod_pseudostream_index_thread, job);
            pthread_attr_destroy(&attr);
        }
        if (!started) {
            log_error(r->conf.errh, __FILE__, __LINE__,
              "no thread to index %s: indexed in the event loop",
              r->physical.path.ptr);
            close(job->done_fd);
            free(job);
            return -1;
        }

        /* the thread reads sce->fd: the entry stays until the job goes */
        job->sce = sce;
        stat_cache_entry_refchg(sce, 1);
        ++job->srv->cur_fds;
        job->done = fdevent_register(job->srv->ev, job->done_fd,
                                     mod_pseudostream_indexed, job);
        fdevent_fdnode_event_set(job->srv->ev, job->done, FDEVENT_IN);
        job->next = p->builds;
        p->builds = job;
    }

    handler_ctx * const hctx = ck_calloc(1, sizeof(*hctx));
    hctx->ps = *ps;
    memset(ps, 0, sizeof(*ps));
    hctx->sce = sce; /* its own reference: what it is planned with */
    stat_cache_entry_refchg(sce, 1);
    hctx->con = r->con;
    hctx->srv = r->con->srv;
    index_job_attach(job, hctx);
    r->plugin_ctx[p->id] = hctx;
    r->handler_module = p->self;
    return 0;
}


/*
 * Opens the media of `sce`'s file from the library's cache, or waits for
 * its index (HANDLER_WAIT_FOR_EVENT), and answers; takes `ps` over.
 */

static handler_t
mod_pseudostream_open_media (request_st * const r, plugin_data * const p,
                             stat_cache_entry * const sce,
                             const int has_query, ps_options * const options,
                             ps_objects * const ps)
{
    /*
     * The library borrows the stat cache's descriptor (no dup, no fstat);
     * the entry is referenced for as long as the media lives. A file not
     * indexed yet is indexed on a thread, and the request waits for it.
     */
    const int64_t mtime_ns = (int64_t)sce->st.st_mtim.tv_sec * 1000000000
                           + sce->st.st_mtim.tv_nsec;
    ps_status st =
      ps_media_open_fd_borrowed_cached(sce->fd, (uint64_t)sce->st.st_size,
                                       (uint64_t)sce->st.st_dev,
                                       (uint64_t)sce->st.st_ino,
                                       mtime_ns, &ps->media);
    if (st == PS_ERR_NOT_CACHED) {
        if (0 == mod_pseudostream_wait_for_index(r, p, sce, ps))
            return HANDLER_WAIT_FOR_EVENT;
        /* no thread to be had: indexed here, as the event loop waits */
        st = ps_media_open_fd_borrowed(sce->fd, (uint64_t)sce->st.st_size,
                                       (uint64_t)sce->st.st_dev,
                                       (uint64_t)sce->st.st_ino,
                                       mtime_ns, &ps->media);
    }
    return mod_pseudostream_planned(r, p, sce, has_query, options, ps, st,
                                    ps_last_error());
}


/*
 * The request resumes with its index built: planned as if it had been
 * cached, and served as the first call would have served it.
 */

static handler_t
mod_pseudostream_resume (request_st * const r, plugin_data * const p,
                         handler_ctx * const hctx)
{
    index_job * const job = hctx->job;
    ps_objects ps = hctx->ps;
    stat_cache_entry * const sce = hctx->sce; /* its reference, dropped last */
    const int has_query = !buffer_is_blank(&r->uri.query);
    handler_t rc;

    if (!job->finished) return HANDLER_WAIT_FOR_EVENT;

    const ps_status status = job->status;
    char error[sizeof(job->error)];
    memcpy(error, job->error, sizeof(error));
    /* the built media reads job->sce's descriptor: for its request only */
    if (job->sce == sce) {
        ps.media = job->media;
        job->media = NULL;
    }
    memset(&hctx->ps, 0, sizeof(hctx->ps));
    hctx->sce = NULL;
    r->plugin_ctx[p->id] = NULL;
    r->handler_module = NULL;
    handler_ctx_free(hctx); /* the job may go */

    /* p->conf belongs to whichever request ran last */
    mod_pseudostream_patch_config(r, p);
    ps_options * const options = mod_pseudostream_options(r, p);
    if (NULL == options) {
        ps_objects_free(&ps);
        stat_cache_entry_refchg(sce, -1);
        r->http_status = 500;
        return HANDLER_FINISHED;
    }

    if (status == PS_OK && NULL == ps.media)
        /* another request's build: the index is cached now (or built again) */
        rc = mod_pseudostream_open_media(r, p, sce, has_query, options, &ps);
    else
        rc = mod_pseudostream_planned(r, p, sce, has_query, options, &ps,
                                      status, status == PS_OK ? NULL : error);
    if (rc == HANDLER_GO_ON) {
        if (r->handler_module == p->self)
            rc = mod_pseudostream_pace(r, r->plugin_ctx[p->id]);
        else {
            /* the file as stored: what mod_staticfile would have sent */
            http_response_send_file(r, &r->physical.path, sce);
            rc = HANDLER_FINISHED;
        }
    }
    stat_cache_entry_refchg(sce, -1);
    return rc;
}


/*
 * Answers a request with the library: its plan, its answer to the
 * preconditions and Range, its pacing. HANDLER_GO_ON without a handler
 * leaves the request to mod_staticfile (no query, the file as stored).
 */

static handler_t
mod_pseudostream_plan (request_st * const r, plugin_data * const p,
                       stat_cache_entry * const sce, const int has_query)
{
    ps_objects ps;
    ps_status st;

    memset(&ps, 0, sizeof(ps));

    ps_options * const options = mod_pseudostream_options(r, p);
    if (NULL == options) {
        r->http_status = 500;
        r->handler_module = NULL;
        return HANDLER_FINISHED;
    }

    if (has_query) {
        st = ps_request_parse(options, r->uri.query.ptr,
                              buffer_clen(&r->uri.query), &ps.request);
        if (st != PS_OK)
            return mod_pseudostream_fail(r, p, "ps_request_parse", st);
    }

    return mod_pseudostream_open_media(r, p, sce, has_query, options, &ps);
}


/*
 * The rest of mod_pseudostream_plan, with the media opened (`st` PS_OK)
 * or not (`detail` says why); takes `ps` over.
 */

static handler_t
mod_pseudostream_planned (request_st * const r, plugin_data * const p,
                          stat_cache_entry * const sce, const int has_query,
                          ps_options * const options, ps_objects * const psp,
                          ps_status st, const char * const detail)
{
    ps_objects ps = *psp;
    ps_plan_info info;
    ps_response resp;
    ps_slice slice;
    const uint8_t *prefix;
    size_t prefix_len;
    handler_t rc;

    memset(psp, 0, sizeof(*psp));

    if ((st == PS_ERR_UNSUPPORTED_FORMAT || st == PS_ERR_MALFORMED_MEDIA)
        && !has_query) {
        /* nothing to seek in, nothing to rewrite: served as stored */
        if (r->conf.log_request_handling)
            log_error(r->conf.errh, __FILE__, __LINE__,
              "%s served as stored: %s", r->physical.path.ptr, detail);
        ps_objects_free(&ps);
        return HANDLER_GO_ON;
    }
    if (st != PS_OK) {
        rc = mod_pseudostream_fail_because(r, p, "ps_media_open_fd_borrowed",
                                           st, detail);
        ps_objects_free(&ps);
        return rc;
    }

    st = ps_plan_new(ps.media, options, ps.request, &ps.plan);
    if (st != PS_OK) {
        if (st == PS_ERR_RANGE_NOT_SATISFIABLE)
            mod_pseudostream_unsatisfiable(r, (uint64_t)sce->st.st_size);
        rc = mod_pseudostream_fail(r, p, "ps_plan_new", st);
        ps_objects_free(&ps);
        return rc;
    }

    st = ps_plan_get_info(ps.plan, &info);
    if (st == PS_OK && !has_query && info.whole_file
        && 0 == info.rate_bytes_per_s) {
        ps_objects_free(&ps);
        return HANDLER_GO_ON;
    }
    if (st == PS_OK) st = ps_plan_prefix(ps.plan, &prefix, &prefix_len);
    if (st != PS_OK) {
        rc = mod_pseudostream_fail(r, p, "ps_plan_get_info", st);
        ps_objects_free(&ps);
        return rc;
    }
    if (prefix_len != info.prefix_length || info.file_from > info.file_to
        || info.file_to > (uint64_t)sce->st.st_size) {
        log_error(r->conf.errh, __FILE__, __LINE__,
          "pseudostream plan of %s does not fit the file",
          r->physical.path.ptr);
        ps_objects_free(&ps);
        r->http_status = 500;
        r->handler_module = NULL;
        return HANDLER_FINISHED;
    }

    /*
     * the library evaluates the entity tags and Range (unless the server
     * has server.range-requests disabled); the module the dates
     */
    const int ranges = r->conf.range_requests;
    st = ps_plan_respond(ps.plan,
                         !ranges ? NULL
                         : ps_request_header(r, HTTP_HEADER_RANGE,
                                             CONST_STR_LEN("Range")),
                         ps_request_header(r, HTTP_HEADER_IF_MATCH,
                                           CONST_STR_LEN("If-Match")),
                         ps_request_header(r, HTTP_HEADER_IF_NONE_MATCH,
                                           CONST_STR_LEN("If-None-Match")),
                         !ranges ? NULL
                         : ps_request_header(r, HTTP_HEADER_IF_RANGE,
                                             CONST_STR_LEN("If-Range")),
                         &resp);
    if (st != PS_OK) {
        rc = mod_pseudostream_fail(r, p, "ps_plan_respond", st);
        ps_objects_free(&ps);
        return rc;
    }

    const uint32_t status =
      mod_pseudostream_test_dates(r, resp.status, sce->st.st_mtime);
    if (status != resp.status) {
        memset(&resp, 0, sizeof(resp));
        resp.status = status;
    }

    /* lighttpd must not apply Range to the body the module built */
    r->conf.range_requests = 0;
    r->handler_module = NULL;

    switch (resp.status) {
      case 200:
      case 206:
      case 304:
        break;
      case 416:
        mod_pseudostream_unsatisfiable(r, info.length);
        ps_objects_free(&ps);
        return mod_pseudostream_bodyless(r, p, 416);
      default: /* 412 */
        r->http_status = (int)resp.status;
        ps_objects_free(&ps);
        return HANDLER_FINISHED;
    }

    if (0 != mod_pseudostream_headers(r, ps.plan, &resp, sce, ranges)) {
        rc = mod_pseudostream_fail(r, p, "ps_plan_etag", PS_ERR_INVALID_ARG);
        ps_objects_free(&ps);
        return rc;
    }
    r->http_status = (int)resp.status;

    if (resp.status == 304 || r->http_method == HTTP_METHOD_HEAD
        || 0 == resp.length) {
        r->resp_body_finished = 1;
        ps_objects_free(&ps);
        return HANDLER_FINISHED;
    }

    st = ps_plan_slice(ps.plan, resp.first, resp.length, &slice);
    if (st != PS_OK || slice.prefix_from > slice.prefix_to
        || slice.prefix_to > prefix_len || slice.file_from > slice.file_to
        || slice.file_to > (uint64_t)sce->st.st_size) {
        log_error(r->conf.errh, __FILE__, __LINE__,
          "pseudostream slice of %s does not fit the file",
          r->physical.path.ptr);
        ps_objects_free(&ps);
        http_response_body_clear(r, 0);
        r->http_status = 500;
        return HANDLER_FINISHED;
    }

    if (0 == resp.rate_bytes_per_s) {
        /* all at once: the prefix part copied, the file part by sendfile */
        if (slice.prefix_to > slice.prefix_from)
            http_chunk_append_mem(r, (const char *)prefix + slice.prefix_from,
                                  (size_t)(slice.prefix_to - slice.prefix_from));
        if (slice.file_to > slice.file_from)
            http_chunk_append_file_ref_range(r, sce, (off_t)slice.file_from,
                                             (off_t)(slice.file_to
                                                     - slice.file_from));
        r->resp_body_finished = 1;
        ps_objects_free(&ps);
        return HANDLER_FINISHED;
    }

    /* paced: this module's handle_subrequest writes the body */
    st = ps_pacer_new(resp.burst_bytes, resp.rate_bytes_per_s, &ps.pacer);
    if (st == PS_OK)
        st = ps_pacer_align_file_pages(ps.pacer,
                                       slice.prefix_to - slice.prefix_from,
                                       slice.file_from,
                                       (uint64_t)sysconf(_SC_PAGESIZE));
    if (st != PS_OK) {
        http_response_body_clear(r, 0);
        rc = mod_pseudostream_fail(r, p, "ps_pacer_new", st);
        ps_objects_free(&ps);
        return rc;
    }

    handler_ctx * const hctx = ck_calloc(1, sizeof(*hctx));
    hctx->ps = ps;
    hctx->sce = sce;
    stat_cache_entry_refchg(sce, 1);
    hctx->prefix = prefix;
    hctx->prefix_pos = slice.prefix_from;
    hctx->prefix_end = slice.prefix_to;
    hctx->file_pos = (off_t)slice.file_from;
    hctx->file_end = (off_t)slice.file_to;
    hctx->start_us = ps_monotonic_us();
    hctx->con = r->con;
    hctx->srv = r->con->srv;
    hctx->wakes = &p->wakes;

    r->plugin_ctx[p->id] = hctx;
    r->handler_module = p->self;
    /* the header goes before the body is complete (HTTP/1.1 and 2) */
    r->conf.stream_response_body |= FDEVENT_STREAM_RESPONSE;
    return HANDLER_GO_ON;
}


URIHANDLER_FUNC(mod_pseudostream_subrequest_start) {
    plugin_data * const p = p_d;

    if (NULL != r->handler_module) return HANDLER_GO_ON;

    mod_pseudostream_patch_config(r, p);
    if (NULL == p->conf.extensions
        || NULL == array_match_value_suffix(p->conf.extensions,
                                            &r->physical.path))
        return HANDLER_GO_ON;

    switch (r->http_method) {
      case HTTP_METHOD_GET:
      case HTTP_METHOD_HEAD:
        break;
      case HTTP_METHOD_OPTIONS:
        return HANDLER_GO_ON;
      default:
        http_header_response_set(r, HTTP_HEADER_ALLOW, CONST_STR_LEN("Allow"),
                                 CONST_STR_LEN("GET, HEAD"));
        return mod_pseudostream_bodyless(r, p, 405);
    }

    stat_cache_entry * const sce =
      stat_cache_get_entry_open(&r->physical.path, r->conf.follow_symlink);
    if (NULL == sce) {
        r->http_status = (errno == ENOENT || errno == ENOTDIR) ? 404 : 403;
        return HANDLER_FINISHED;
    }
    if (!S_ISREG(sce->st.st_mode)) return HANDLER_GO_ON;

    const int has_query = !buffer_is_blank(&r->uri.query);

    /*
     * without a query, the library is asked only where its answer can
     * differ from the file as stored: pacing or rewritten metadata
     */
    if (!has_query && p->conf.opt.rate_mode == PS_RATE_OFF
        && p->conf.opt.metadata == PS_METADATA_OFF)
        return HANDLER_GO_ON;

    if (sce->fd < 0) {
        if (0 == sce->st.st_size) {
            /* the stat cache opens no empty file: nothing to seek in */
            if (!has_query) return HANDLER_GO_ON;
            log_error(r->conf.errh, __FILE__, __LINE__,
              "%s is empty: no media to seek in", r->physical.path.ptr);
            r->http_status = 415;
            return HANDLER_FINISHED;
        }
        r->http_status = (errno == ENOENT) ? 404 : 403;
        log_perror(r->conf.errh, __FILE__, __LINE__,
          "open() %s failed", r->physical.path.ptr);
        return HANDLER_FINISHED;
    }

    return mod_pseudostream_plan(r, p, sce, has_query);
}


SUBREQUEST_FUNC(mod_pseudostream_subrequest) {
    plugin_data * const p = p_d;
    handler_ctx * const hctx = r->plugin_ctx[p->id];
    if (NULL == hctx) return HANDLER_GO_ON; /* not ours */
    if (hctx->job) return mod_pseudostream_resume(r, p, hctx);
    return mod_pseudostream_pace(r, hctx);
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
    p->handle_subrequest_start = mod_pseudostream_subrequest_start;
    p->handle_subrequest = mod_pseudostream_subrequest;
    p->handle_request_reset = mod_pseudostream_reset;

    return 0;
}
