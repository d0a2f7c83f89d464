
/*
 * ngx_http_pseudostream_module: HTTP pseudostreaming of FLV files
 * ("movie.flv?start=..."), answered by libpseudostream.
 *
 * The library decides what to send (a prefix it builds and one range of
 * the file), which window of it a request gets (preconditions and Range)
 * and how that window is paced; this module turns the answer into a
 * memory buffer and a file buffer, and lets nginx do the rest: the open
 * file cache, sendfile, directio and aio, timers.
 *
 * A paced window goes out in pieces under the library's pacing clock
 * (ps_pacer): each time the request's write handler runs, the pacer says
 * how many bytes may go; they go as a memory buffer (prefix) and a file
 * buffer (sendfile), and when it says wait, a timer on the connection's
 * write event wakes the handler again. The worker never blocks.
 *
 * A request without a query that the library would answer with the file
 * as stored, unpaced, takes the static module's path instead (nginx's
 * ETag, its not_modified and range filters).
 *
 * Indexing a file the library has not indexed yet reads it: a walk over
 * the tags of a long FLV takes seconds when the file is not in the page
 * cache. Where the location has "aio threads", that walk runs in nginx's
 * thread pool and the request resumes when it is done; the worker goes on
 * serving. Requests for a file whose build is under way wait for that
 * build without a pool thread of their own. Requests for a file whose
 * index is cached never leave the worker.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <pseudostream.h>


#define NGX_HTTP_PSEUDOSTREAM_RATE_OFF    0
#define NGX_HTTP_PSEUDOSTREAM_RATE_FIXED  1
#define NGX_HTTP_PSEUDOSTREAM_RATE_AUTO   2

#define NGX_HTTP_PSEUDOSTREAM_PARAMS      8


typedef struct {
    size_t                     index_cache;
    size_t                     mp4_max_moov_size;
} ngx_http_pseudostream_main_conf_t;


typedef struct {
    ngx_uint_t                 prefix;
    ngx_uint_t                 start_unit;
    ngx_uint_t                 metadata;
    ngx_uint_t                 mp4_cut;

    ngx_str_t                  params[NGX_HTTP_PSEUDOSTREAM_PARAMS];
    ngx_uint_t                 params_set;

    size_t                     burst;
    ngx_msec_t                 burst_time;

    ngx_uint_t                 rate_mode;
    size_t                     rate;
    ngx_uint_t                 rate_factor;

    ngx_flag_t                 client_pacing;

    ps_options                *options;
} ngx_http_pseudostream_loc_conf_t;


#if (NGX_THREADS)

/*
 * An index build in the thread pool: what it reads, what it gives back.
 * The thread touches the first two blocks; the worker alone the rest.
 */

typedef struct {
    ngx_fd_t                   fd;
    uint64_t                   size;
    uint64_t                   inode;
    int64_t                    mtime_ns;

    ps_media                  *media;
    ps_status                  status;
    u_char                     error[256];

    /* in ngx_http_pseudostream_builds while the build runs */

    ngx_queue_t                queue;
    ngx_str_t                  path;

    /* the requests for the same file that wait for it (ctx->wait) */

    ngx_queue_t                waiters;
} ngx_http_pseudostream_index_t;


/* this worker's builds under way */

static ngx_queue_t  ngx_http_pseudostream_builds;

#endif


typedef struct {
    ps_request                *request;
    ps_media                  *media;
    ps_plan                   *plan;
    ps_pacer                  *pacer;

    const uint8_t             *prefix;
    size_t                     prefix_len;
    uint64_t                   length;

    /* a paced window: what is left of its prefix part and of its file part */

    size_t                     prefix_pos;
    size_t                     prefix_end;
    off_t                      file_pos;
    off_t                      file_end;
    ngx_msec_t                 start_msec;
    unsigned                   sending:1;

    ngx_file_t                 file;

#if (NGX_THREADS)

    /* an index built in a thread, and where to resume with it */

    ngx_http_pseudostream_index_t  *index;
    ngx_str_t                  path;
    ngx_open_file_info_t       of;

    /* a descriptor of the file without O_DIRECT, read by the index build */

    ngx_fd_t                   index_fd;
    ngx_log_t                 *log;

    /* waiting for another request's build of the same file */

    ngx_queue_t                wait;
    ngx_event_t                wait_event;

#endif

    /* the buffers of one piece, reused once the previous piece is out */

    ngx_buf_t                  prefix_buf;
    ngx_buf_t                  file_buf;
    ngx_chain_t                out[2];
} ngx_http_pseudostream_ctx_t;


static ngx_int_t ngx_http_pseudostream_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_pseudostream_static(ngx_http_request_t *r,
    ngx_str_t *path, ngx_open_file_info_t *of);
static ngx_int_t ngx_http_pseudostream_plan(ngx_http_request_t *r,
    ngx_str_t *path, ngx_open_file_info_t *of);
static ngx_int_t ngx_http_pseudostream_answer(ngx_http_request_t *r,
    ngx_http_pseudostream_ctx_t *ctx, ngx_str_t *path,
    ngx_open_file_info_t *of);
static ngx_int_t ngx_http_pseudostream_resolve(ngx_http_request_t *r,
    ngx_http_pseudostream_ctx_t *ctx, ngx_str_t *path,
    ngx_open_file_info_t *of);
static ngx_int_t ngx_http_pseudostream_open_failed(ngx_http_request_t *r,
    ngx_str_t *path, ps_status status, const char *detail);
#if (NGX_THREADS)
static ngx_int_t ngx_http_pseudostream_index_in_thread(ngx_http_request_t *r,
    ngx_http_pseudostream_ctx_t *ctx, ngx_str_t *path,
    ngx_open_file_info_t *of);
static ngx_int_t ngx_http_pseudostream_open_for_index(ngx_http_request_t *r,
    ngx_http_pseudostream_ctx_t *ctx, ngx_str_t *path,
    ngx_open_file_info_t *of);
static ngx_http_pseudostream_index_t *ngx_http_pseudostream_build_of(
    ngx_str_t *path, ngx_open_file_info_t *of);
static void ngx_http_pseudostream_block(ngx_http_request_t *r,
    ngx_http_pseudostream_ctx_t *ctx);
static void ngx_http_pseudostream_index_thread(void *data, ngx_log_t *log);
static void ngx_http_pseudostream_index_done(ngx_event_t *ev);
static void ngx_http_pseudostream_build_done(ngx_event_t *ev);
static void ngx_http_pseudostream_indexed(ngx_http_request_t *r);
#endif
static ngx_int_t ngx_http_pseudostream_respond(ngx_http_request_t *r,
    ngx_http_pseudostream_ctx_t *ctx, ngx_str_t *path,
    ngx_open_file_info_t *of, ps_response *resp);
static ngx_uint_t ngx_http_pseudostream_test_dates(ngx_http_request_t *r,
    ngx_uint_t status, time_t mtime);
static ngx_int_t ngx_http_pseudostream_headers(ngx_http_request_t *r,
    ngx_http_pseudostream_ctx_t *ctx, ngx_str_t *path,
    ngx_open_file_info_t *of, ps_response *resp);
static ngx_table_elt_t *ngx_http_pseudostream_push_header(
    ngx_http_request_t *r, char *key, size_t len);
static ngx_int_t ngx_http_pseudostream_unsatisfiable(ngx_http_request_t *r,
    uint64_t length);
static ngx_int_t ngx_http_pseudostream_send(ngx_http_request_t *r,
    ngx_str_t *path, ngx_open_file_info_t *of, const uint8_t *prefix,
    size_t len, off_t start, off_t end);
static ngx_int_t ngx_http_pseudostream_send_paced(ngx_http_request_t *r,
    ngx_http_pseudostream_ctx_t *ctx, ngx_str_t *path,
    ngx_open_file_info_t *of, ps_response *resp, ps_slice *slice);
static void ngx_http_pseudostream_writer(ngx_http_request_t *r);
static ngx_int_t ngx_http_pseudostream_pace(ngx_http_request_t *r,
    ngx_http_pseudostream_ctx_t *ctx);
static ngx_int_t ngx_http_pseudostream_wait_socket(ngx_http_request_t *r);
static ngx_int_t ngx_http_pseudostream_error(ngx_http_request_t *r,
    ngx_str_t *path, const char *call, ps_status status);
static ngx_int_t ngx_http_pseudostream_fail(ngx_http_request_t *r,
    ngx_str_t *path, const char *call, ps_status status, const char *detail);
static void ngx_http_pseudostream_cleanup(void *data);

static void *ngx_http_pseudostream_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_pseudostream_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_pseudostream_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static ps_options *ngx_http_pseudostream_options(ngx_conf_t *cf,
    ngx_http_pseudostream_loc_conf_t *conf);
static void ngx_http_pseudostream_free_options(void *data);
static char *ngx_http_pseudostream(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_pseudostream_param(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_pseudostream_rate(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_pseudostream_init_process(ngx_cycle_t *cycle);


static ngx_conf_enum_t  ngx_http_pseudostream_prefixes[] = {
    { ngx_string("none"), PS_PREFIX_NONE },
    { ngx_string("header"), PS_PREFIX_HEADER },
    { ngx_string("init"), PS_PREFIX_INIT },
    { ngx_string("full"), PS_PREFIX_FULL },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_pseudostream_units[] = {
    { ngx_string("bytes"), PS_UNIT_BYTES },
    { ngx_string("seconds"), PS_UNIT_SECONDS },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_pseudostream_metadata_modes[] = {
    { ngx_string("off"), PS_METADATA_OFF },
    { ngx_string("missing"), PS_METADATA_MISSING },
    { ngx_string("always"), PS_METADATA_ALWAYS },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_pseudostream_mp4_cuts[] = {
    { ngx_string("exact"), PS_CUT_EXACT },
    { ngx_string("keyframe"), PS_CUT_KEYFRAME },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_pseudostream_params[] = {
    { ngx_string("start"), PS_PARAM_START },
    { ngx_string("end"), PS_PARAM_END },
    { ngx_string("ib"), PS_PARAM_INITIAL_BYTES },
    { ngx_string("fs"), PS_PARAM_FILE_START },
    { ngx_string("bstart"), PS_PARAM_BYTE_START },
    { ngx_string("bend"), PS_PARAM_BYTE_END },
    { ngx_string("ri"), PS_PARAM_BURST },
    { ngx_string("rs"), PS_PARAM_RATE },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_pseudostream_commands[] = {

    { ngx_string("pseudostream"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_pseudostream,
      0,
      0,
      NULL },

    { ngx_string("pseudostream_prefix"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_pseudostream_loc_conf_t, prefix),
      &ngx_http_pseudostream_prefixes },

    { ngx_string("pseudostream_start_unit"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_pseudostream_loc_conf_t, start_unit),
      &ngx_http_pseudostream_units },

    { ngx_string("pseudostream_metadata"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_pseudostream_loc_conf_t, metadata),
      &ngx_http_pseudostream_metadata_modes },

    { ngx_string("pseudostream_mp4_cut"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_pseudostream_loc_conf_t, mp4_cut),
      &ngx_http_pseudostream_mp4_cuts },

    { ngx_string("pseudostream_param"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE2,
      ngx_http_pseudostream_param,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("pseudostream_burst"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_pseudostream_loc_conf_t, burst),
      NULL },

    { ngx_string("pseudostream_burst_time"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_pseudostream_loc_conf_t, burst_time),
      NULL },

    { ngx_string("pseudostream_rate"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_pseudostream_rate,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("pseudostream_client_pacing"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_pseudostream_loc_conf_t, client_pacing),
      NULL },

    { ngx_string("pseudostream_index_cache"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_pseudostream_main_conf_t, index_cache),
      NULL },

    { ngx_string("pseudostream_mp4_max_moov_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_pseudostream_main_conf_t, mp4_max_moov_size),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_pseudostream_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    ngx_http_pseudostream_create_main_conf, /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_pseudostream_create_loc_conf, /* create location configuration */
    ngx_http_pseudostream_merge_loc_conf   /* merge location configuration */
};


ngx_module_t  ngx_http_pseudostream_module = {
    NGX_MODULE_V1,
    &ngx_http_pseudostream_module_ctx,     /* module context */
    ngx_http_pseudostream_commands,        /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_pseudostream_init_process,    /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_int_t
ngx_http_pseudostream_handler(ngx_http_request_t *r)
{
    u_char                            *last;
    size_t                             root;
    ngx_int_t                          rc;
    ngx_uint_t                         level;
    ngx_str_t                          path;
    ngx_log_t                         *log;
    ngx_open_file_info_t               of;
    ngx_http_core_loc_conf_t          *clcf;
    ngx_http_pseudostream_loc_conf_t  *plcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    if (r->uri.data[r->uri.len - 1] == '/') {
        return NGX_DECLINED;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    last = ngx_http_map_uri_to_path(r, &path, &root, 0);
    if (last == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    log = r->connection->log;

    path.len = last - path.data;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, log, 0,
                   "http pseudostream filename: \"%V\"", &path);

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    ngx_memzero(&of, sizeof(ngx_open_file_info_t));

    of.read_ahead = clcf->read_ahead;
    of.directio = clcf->directio;
    of.valid = clcf->open_file_cache_valid;
    of.min_uses = clcf->open_file_cache_min_uses;
    of.errors = clcf->open_file_cache_errors;
    of.events = clcf->open_file_cache_events;

    if (ngx_http_set_disable_symlinks(r, clcf, &path, &of) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_open_cached_file(clcf->open_file_cache, &path, &of, r->pool)
        != NGX_OK)
    {
        switch (of.err) {

        case 0:
            return NGX_HTTP_INTERNAL_SERVER_ERROR;

        case NGX_ENOENT:
        case NGX_ENOTDIR:
        case NGX_ENAMETOOLONG:

            level = NGX_LOG_ERR;
            rc = NGX_HTTP_NOT_FOUND;
            break;

        case NGX_EACCES:
#if (NGX_HAVE_OPENAT)
        case NGX_EMLINK:
        case NGX_ELOOP:
#endif

            level = NGX_LOG_ERR;
            rc = NGX_HTTP_FORBIDDEN;
            break;

        default:

            level = NGX_LOG_CRIT;
            rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
            break;
        }

        if (rc != NGX_HTTP_NOT_FOUND || clcf->log_not_found) {
            ngx_log_error(level, log, of.err,
                          "%s \"%s\" failed", of.failed, path.data);
        }

        return rc;
    }

    if (!of.is_file) {
        return NGX_DECLINED;
    }

    r->root_tested = !r->error_page;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_pseudostream_module);

    /*
     * without a query, the library is asked only where its answer can
     * differ from the file as stored: pacing or rewritten metadata
     */

    if (r->args.len
        || plcf->rate_mode != NGX_HTTP_PSEUDOSTREAM_RATE_OFF
        || plcf->metadata != PS_METADATA_OFF)
    {
        rc = ngx_http_pseudostream_plan(r, &path, &of);

        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    return ngx_http_pseudostream_static(r, &path, &of);
}


static ngx_int_t
ngx_http_pseudostream_static(ngx_http_request_t *r, ngx_str_t *path,
    ngx_open_file_info_t *of)
{
    /* the file as it is, like the static module */

    r->connection->log->action = "sending response to client";

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = of->size;
    r->headers_out.last_modified_time = of->mtime;

    if (ngx_http_set_etag(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_set_content_type(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->allow_ranges = 1;

    return ngx_http_pseudostream_send(r, path, of, NULL, 0, 0, of->size);
}


/*
 * Answers a request with the library: its plan, its answer to the
 * request's preconditions and Range, its pacing. Returns NGX_DECLINED for
 * a request without a query that the static path serves the same, and
 * NGX_DONE when the file is indexed in a thread and the request resumes
 * later.
 */

static ngx_int_t
ngx_http_pseudostream_plan(ngx_http_request_t *r, ngx_str_t *path,
    ngx_open_file_info_t *of)
{
#if (NGX_THREADS)
    ngx_int_t                          rc;
#endif
    ps_status                          st;
    ngx_pool_cleanup_t                *cln;
    ngx_http_pseudostream_ctx_t       *ctx;
    ngx_http_pseudostream_loc_conf_t  *plcf;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_pseudostream_module);

    if (plcf->options == NULL) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "pseudostream options missing in this location");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_pseudostream_ctx_t));
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx = cln->data;
    ngx_memzero(ctx, sizeof(ngx_http_pseudostream_ctx_t));

#if (NGX_THREADS)
    ctx->index_fd = NGX_INVALID_FILE;
#endif

    cln->handler = ngx_http_pseudostream_cleanup;

    /* no query: no request, the library plans the whole (served) file */

    if (r->args.len) {
        st = ps_request_parse(plcf->options, (const char *) r->args.data,
                              r->args.len, &ctx->request);
        if (st != PS_OK) {
            return ngx_http_pseudostream_error(r, path, "ps_request_parse",
                                               st);
        }
    }

#if (NGX_THREADS)

    rc = ngx_http_pseudostream_index_in_thread(r, ctx, path, of);

    if (rc != NGX_DECLINED) {
        return rc;
    }

#endif

    return ngx_http_pseudostream_answer(r, ctx, path, of);
}


static ngx_int_t
ngx_http_pseudostream_answer(ngx_http_request_t *r,
    ngx_http_pseudostream_ctx_t *ctx, ngx_str_t *path,
    ngx_open_file_info_t *of)
{
    size_t                        len;
    ngx_int_t                     rc;
    ps_status                     st;
    ps_response                   resp;
    ps_plan_info                  info;
    const uint8_t                *prefix;

#if (NGX_HAVE_O_DIRECT)
    ngx_uint_t                    directio;

    /*
     * the library reads the file through of->fd itself (buffered reads of
     * a few bytes): turn O_DIRECT off while the plan is made
     */

    directio = of->is_directio;

#if (NGX_THREADS)
    if (ctx->index_fd != NGX_INVALID_FILE) {
        /* it reads a descriptor of its own */
        directio = 0;
    }
#endif

    if (directio && ngx_directio_off(of->fd) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, ngx_errno,
                      ngx_directio_off_n " \"%V\" failed", path);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

#endif

    rc = ngx_http_pseudostream_resolve(r, ctx, path, of);

#if (NGX_HAVE_O_DIRECT)

    if (directio && ngx_directio_on(of->fd) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, ngx_errno,
                      ngx_directio_on_n " \"%V\" failed", path);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

#endif

    if (rc != NGX_OK) {
        return rc;
    }

    st = ps_plan_get_info(ctx->plan, &info);
    if (st != PS_OK) {
        return ngx_http_pseudostream_error(r, path, "ps_plan_get_info", st);
    }

    if (r->args.len == 0 && info.whole_file && info.rate_bytes_per_s == 0) {
        return NGX_DECLINED;
    }

    st = ps_plan_prefix(ctx->plan, &prefix, &len);
    if (st != PS_OK) {
        return ngx_http_pseudostream_error(r, path, "ps_plan_prefix", st);
    }

    if (len != info.prefix_length
        || info.file_from > info.file_to
        || info.file_to > (uint64_t) of->size)
    {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "pseudostream plan of \"%V\" does not fit the file",
                      path);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->prefix = prefix;
    ctx->prefix_len = len;
    ctx->length = info.length;

    ngx_log_debug5(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "http pseudostream plan: prefix:%uz file:%uL-%uL "
                   "burst:%uL rate:%uL",
                   len, info.file_from, info.file_to,
                   info.burst_bytes, info.rate_bytes_per_s);

    rc = ngx_http_pseudostream_respond(r, ctx, path, of, &resp);
    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_pseudostream_headers(r, ctx, path, of, &resp);
}


static ngx_int_t
ngx_http_pseudostream_resolve(ngx_http_request_t *r,
    ngx_http_pseudostream_ctx_t *ctx, ngx_str_t *path,
    ngx_open_file_info_t *of)
{
    ps_status                          st;
    ngx_http_pseudostream_loc_conf_t  *plcf;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_pseudostream_module);

    /* opened already when the index was built in a thread */

    if (ctx->media == NULL) {

        /*
         * The library borrows the descriptor of the open file cache (no
         * dup, no fstat): this request's cleanup, added after
         * ngx_open_cached_file's, runs first and frees the media before
         * the descriptor can be closed. nginx keeps the inode but not the
         * device; 0 stands for it.
         */

        st = ps_media_open_fd_borrowed(of->fd, (uint64_t) of->size, 0,
                                       (uint64_t) of->uniq,
                                       (int64_t) of->mtime * 1000000000,
                                       &ctx->media);
        if (st != PS_OK) {
            return ngx_http_pseudostream_open_failed(r, path, st,
                                                     ps_last_error());
        }
    }

    st = ps_plan_new(ctx->media, plcf->options, ctx->request, &ctx->plan);
    if (st == PS_OK) {
        return NGX_OK;
    }

    if (st == PS_ERR_RANGE_NOT_SATISFIABLE) {

        /* RFC 9110: "bytes *" and the length of the file */

        if (ngx_http_pseudostream_unsatisfiable(r, (uint64_t) of->size)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return ngx_http_pseudostream_error(r, path, "ps_plan_new", st);
}


static ngx_int_t
ngx_http_pseudostream_open_failed(ngx_http_request_t *r, ngx_str_t *path,
    ps_status status, const char *detail)
{
    if ((status == PS_ERR_UNSUPPORTED_FORMAT
         || status == PS_ERR_MALFORMED_MEDIA)
        && r->args.len == 0)
    {
        /* nothing to seek in, nothing to rewrite: served as stored */

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "\"%V\" served as stored: %s", path, detail);
        return NGX_DECLINED;
    }

    return ngx_http_pseudostream_fail(r, path, "ps_media_open_fd_borrowed",
                                      status, detail);
}


#if (NGX_THREADS)

/*
 * A file whose index is not cached is indexed in the location's thread
 * pool (aio threads): the request waits, blocked like a thread read of
 * nginx's own, and resumes in ngx_http_pseudostream_indexed(). Returns
 * NGX_DONE then; NGX_DECLINED when the worker answers now (no aio threads,
 * or the index is cached: ctx->media is set); or an error.
 */

static ngx_int_t
ngx_http_pseudostream_index_in_thread(ngx_http_request_t *r,
    ngx_http_pseudostream_ctx_t *ctx, ngx_str_t *path,
    ngx_open_file_info_t *of)
{
    ps_status                       st;
    ngx_str_t                       name;
    ngx_thread_pool_t              *tp;
    ngx_thread_task_t              *task;
    ngx_http_core_loc_conf_t       *clcf;
    ngx_http_pseudostream_index_t  *ix, *build;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (clcf->aio != NGX_HTTP_AIO_THREADS) {
        return NGX_DECLINED;
    }

    st = ps_media_open_fd_borrowed_cached(of->fd, (uint64_t) of->size, 0,
                                          (uint64_t) of->uniq,
                                          (int64_t) of->mtime * 1000000000,
                                          &ctx->media);

    if (st != PS_ERR_NOT_CACHED) {
        /*
         * cached: ctx->media is set; or cached but refused (an MP4 over
         * the moov limit), which the worker's open finds again unread
         */
        return NGX_DECLINED;
    }

    if (path != &ctx->path) {
        ctx->path = *path;
        ctx->of = *of;
    }

    /* a build of this file under way: wait for it, not for a thread */

    build = ngx_http_pseudostream_build_of(path, of);

    if (build != NULL) {
        ix = ngx_pcalloc(r->pool, sizeof(ngx_http_pseudostream_index_t));
        if (ix == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx->index = ix;
        ctx->wait_event.data = r;
        ctx->wait_event.handler = ngx_http_pseudostream_index_done;
        ctx->wait_event.log = r->connection->log;
        ngx_queue_insert_tail(&build->waiters, &ctx->wait);

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "http pseudostream index \"%V\" under way: waits",
                       path);

        ngx_http_pseudostream_block(r, ctx);

        return NGX_DONE;
    }

    /* the thread pool of the location, as nginx's own thread reads find it */

    tp = clcf->thread_pool;

    if (tp == NULL) {
        if (ngx_http_complex_value(r, clcf->thread_pool_value, &name)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        tp = ngx_thread_pool_get((ngx_cycle_t *) ngx_cycle, &name);

        if (tp == NULL) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "thread pool \"%V\" not found", &name);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    task = ngx_thread_task_alloc(r->pool,
                                 sizeof(ngx_http_pseudostream_index_t));
    if (task == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ix = task->ctx;

    ix->fd = of->fd;
    ix->size = (uint64_t) of->size;
    ix->inode = (uint64_t) of->uniq;
    ix->mtime_ns = (int64_t) of->mtime * 1000000000;

    ctx->index = ix;

    if (of->is_directio) {
        if (ngx_http_pseudostream_open_for_index(r, ctx, path, of)
            != NGX_OK)
        {
            /* the path leads elsewhere now: indexed in the worker */
            return NGX_DECLINED;
        }

        ix->fd = ctx->index_fd;
    }

    task->handler = ngx_http_pseudostream_index_thread;
    task->event.data = r;
    task->event.handler = ngx_http_pseudostream_build_done;

    if (ngx_thread_task_post(tp, task) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "http pseudostream index \"%V\" in a thread", path);

    ix->path = ctx->path;
    ngx_queue_init(&ix->waiters);
    ngx_queue_insert_tail(&ngx_http_pseudostream_builds, &ix->queue);

    ngx_http_pseudostream_block(r, ctx);

    return NGX_DONE;
}


/* the build under way in this worker of the file version, if any */

static ngx_http_pseudostream_index_t *
ngx_http_pseudostream_build_of(ngx_str_t *path, ngx_open_file_info_t *of)
{
    ngx_queue_t                    *q;
    ngx_http_pseudostream_index_t  *ix;

    for (q = ngx_queue_head(&ngx_http_pseudostream_builds);
         q != ngx_queue_sentinel(&ngx_http_pseudostream_builds);
         q = ngx_queue_next(q))
    {
        ix = ngx_queue_data(q, ngx_http_pseudostream_index_t, queue);

        if (ix->inode == (uint64_t) of->uniq
            && ix->size == (uint64_t) of->size
            && ix->mtime_ns == (int64_t) of->mtime * 1000000000
            && ix->path.len == path->len
            && ngx_memcmp(ix->path.data, path->data, path->len) == 0)
        {
            return ix;
        }
    }

    return NULL;
}


/* the request waits for an index build, its own or another's */

static void
ngx_http_pseudostream_block(ngx_http_request_t *r,
    ngx_http_pseudostream_ctx_t *ctx)
{
    ngx_http_set_ctx(r, ctx, ngx_http_pseudostream_module);

    /*
     * the request and its pool, which hold the task and the descriptor it
     * reads, live until the task is done: a terminated request is only
     * freed once nothing blocks it
     */

    r->main->blocked++;
    r->aio = 1;
    r->main->count++;

    r->read_event_handler = r->discard_body
                            ? ngx_http_discarded_request_body_handler
                            : ngx_http_test_reading;
    r->write_event_handler = ngx_http_pseudostream_indexed;
}


/*
 * Opens a second descriptor of the file, without O_DIRECT: the worker
 * switches O_DIRECT on the open file cache's descriptor for its own reads,
 * which must not happen under the pool thread's. Opened by the same path
 * and checked to be the file of->fd is (inode, size, modification time),
 * which the open file cache has checked (symlinks and all).
 */

static ngx_int_t
ngx_http_pseudostream_open_for_index(ngx_http_request_t *r,
    ngx_http_pseudostream_ctx_t *ctx, ngx_str_t *path,
    ngx_open_file_info_t *of)
{
    ngx_fd_t         fd;
    ngx_file_info_t  fi;

    fd = ngx_open_file(path->data, NGX_FILE_RDONLY|NGX_FILE_NONBLOCK,
                       NGX_FILE_OPEN, 0);

    if (fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, ngx_errno,
                      ngx_open_file_n " \"%V\" failed", path);
        return NGX_ERROR;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR
        || ngx_file_uniq(&fi) != of->uniq
        || ngx_file_size(&fi) != of->size
        || ngx_file_mtime(&fi) != of->mtime)
    {
        if (ngx_close_file(fd) == NGX_FILE_ERROR) {
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, ngx_errno,
                          ngx_close_file_n " \"%V\" failed", path);
        }

        return NGX_ERROR;
    }

    ctx->index_fd = fd;
    ctx->log = r->connection->log;

    return NGX_OK;
}


/* runs in a pool thread: builds the index, which the library caches */

static void
ngx_http_pseudostream_index_thread(void *data, ngx_log_t *log)
{
    ngx_http_pseudostream_index_t  *ix = data;

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, log, 0,
                   "http pseudostream index thread");

    ix->status = ps_media_open_fd_borrowed(ix->fd, ix->size, 0, ix->inode,
                                           ix->mtime_ns, &ix->media);

    if (ix->status != PS_OK) {
        /* the detail is the pool thread's: the worker gets a copy */
        ngx_cpystrn(ix->error, (u_char *) ps_last_error(),
                    sizeof(ix->error));
    }
}


/*
 * Back in the worker, as nginx's own thread reads come back: the requests
 * that waited for this build go on first, with its outcome (the index is
 * in the library's cache now).
 */

static void
ngx_http_pseudostream_build_done(ngx_event_t *ev)
{
    ngx_queue_t                    *q;
    ngx_http_request_t             *r;
    ngx_http_pseudostream_ctx_t    *ctx, *waiting;
    ngx_http_pseudostream_index_t  *ix;

    r = ev->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_pseudostream_module);
    ix = ctx->index;

    ngx_queue_remove(&ix->queue);

    while (!ngx_queue_empty(&ix->waiters)) {
        q = ngx_queue_head(&ix->waiters);
        ngx_queue_remove(q);

        waiting = ngx_queue_data(q, ngx_http_pseudostream_ctx_t, wait);
        waiting->index->status = ix->status;
        ngx_memcpy(waiting->index->error, ix->error, sizeof(ix->error));

        ngx_post_event(&waiting->wait_event, &ngx_posted_events);
    }

    ngx_http_pseudostream_index_done(ev);
}


/* a request's index build, or the one it waited for, is done */

static void
ngx_http_pseudostream_index_done(ngx_event_t *ev)
{
    ngx_connection_t             *c;
    ngx_http_request_t           *r;
    ngx_http_pseudostream_ctx_t  *ctx;

    r = ev->data;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "http pseudostream indexed: \"%V?%V\"",
                   &r->uri, &r->args);

    /* the request's cleanup frees the media, whatever happens next (none
       when it waited for another request's build) */

    ctx = ngx_http_get_module_ctx(r, ngx_http_pseudostream_module);
    ctx->media = ctx->index->media;
    ctx->index->media = NULL;

    r->main->blocked--;
    r->aio = 0;

    /* ngx_http_pseudostream_indexed(), or nginx's finalizer if terminated */

    r->write_event_handler(r);

    ngx_http_run_posted_requests(c);
}


static void
ngx_http_pseudostream_indexed(ngx_http_request_t *r)
{
    ngx_int_t                       rc;
    ngx_http_pseudostream_ctx_t    *ctx;
    ngx_http_pseudostream_index_t  *ix;

    if (r->aio) {
        /* a write event while the index is being built */
        return;
    }

    r->write_event_handler = ngx_http_request_empty_handler;

    ctx = ngx_http_get_module_ctx(r, ngx_http_pseudostream_module);
    ix = ctx->index;

    if (ix->status == PS_OK && ctx->media == NULL) {

        /*
         * it waited for another request's build: the index is cached now,
         * unless the cache has let it go again, and then it is built again
         */

        rc = ngx_http_pseudostream_index_in_thread(r, ctx, &ctx->path,
                                                   &ctx->of);
        if (rc != NGX_DECLINED) {
            ngx_http_finalize_request(r, rc);
            return;
        }
    }

    if (ix->status == PS_OK) {
        rc = ngx_http_pseudostream_answer(r, ctx, &ctx->path, &ctx->of);

    } else {
        rc = ngx_http_pseudostream_open_failed(r, &ctx->path, ix->status,
                                               (const char *) ix->error);
    }

    if (rc == NGX_DECLINED) {
        rc = ngx_http_pseudostream_static(r, &ctx->path, &ctx->of);
    }

    ngx_http_finalize_request(r, rc);
}

#endif


/*
 * The library evaluates If-Match, If-None-Match, If-Range and Range (RFC
 * 9110 order) against the plan's ETag and length, and says how the window
 * is paced; the module adds the date validators, which need the file's
 * modification time. nginx's not_modified and range filters stay out.
 */

static ngx_int_t
ngx_http_pseudostream_respond(ngx_http_request_t *r,
    ngx_http_pseudostream_ctx_t *ctx, ngx_str_t *path,
    ngx_open_file_info_t *of, ps_response *resp)
{
    ps_status                  st;
    ngx_uint_t                 status;
    const char                *range, *if_match, *if_none_match, *if_range;
    ngx_http_core_loc_conf_t  *clcf;

    range = NULL;
    if_match = NULL;
    if_none_match = NULL;
    if_range = NULL;

    /* nginx keeps header values NUL-terminated */

    if (r == r->main) {
        clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

        if (r->headers_in.range
            && clcf->max_ranges
            && r->http_version >= NGX_HTTP_VERSION_10)
        {
            range = (const char *) r->headers_in.range->value.data;
        }

        if (r->headers_in.if_range) {
            if_range = (const char *) r->headers_in.if_range->value.data;
        }

        if (r->headers_in.if_match) {
            if_match = (const char *) r->headers_in.if_match->value.data;
        }

        if (r->headers_in.if_none_match) {
            if_none_match =
                       (const char *) r->headers_in.if_none_match->value.data;
        }
    }

    st = ps_plan_respond(ctx->plan, range, if_match, if_none_match, if_range,
                         resp);
    if (st != PS_OK) {
        return ngx_http_pseudostream_error(r, path, "ps_plan_respond", st);
    }

    if (r == r->main) {
        status = ngx_http_pseudostream_test_dates(r, resp->status,
                                                  of->mtime);

        if (status != resp->status) {
            resp->status = (uint32_t) status;
            resp->first = 0;
            resp->length = 0;
            resp->burst_bytes = 0;
            resp->rate_bytes_per_s = 0;
        }
    }

    ngx_log_debug5(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "http pseudostream respond: %uD %uL+%uL "
                   "burst:%uL rate:%uL",
                   resp->status, resp->first, resp->length,
                   resp->burst_bytes, resp->rate_bytes_per_s);

    return NGX_OK;
}


/*
 * If-Unmodified-Since and If-Modified-Since in RFC 9110 order around the
 * library's answer: each is ignored when its entity-tag counterpart was
 * sent (and evaluated by the library) or is not a valid date;
 * If-Modified-Since follows the location's if_modified_since.
 */

static ngx_uint_t
ngx_http_pseudostream_test_dates(ngx_http_request_t *r, ngx_uint_t status,
    time_t mtime)
{
    time_t                     t;
    ngx_table_elt_t           *h;
    ngx_http_core_loc_conf_t  *clcf;

    h = r->headers_in.if_unmodified_since;

    if (h && r->headers_in.if_match == NULL
        && status != NGX_HTTP_PRECONDITION_FAILED)
    {
        t = ngx_parse_http_time(h->value.data, h->value.len);

        if (t != NGX_ERROR && mtime > t) {
            return NGX_HTTP_PRECONDITION_FAILED;
        }
    }

    h = r->headers_in.if_modified_since;

    if (h == NULL
        || r->headers_in.if_none_match
        || (status != NGX_HTTP_OK
            && status != NGX_HTTP_PARTIAL_CONTENT
            && status != NGX_HTTP_RANGE_NOT_SATISFIABLE))
    {
        return status;
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (clcf->if_modified_since == NGX_HTTP_IMS_OFF) {
        return status;
    }

    t = ngx_parse_http_time(h->value.data, h->value.len);

    if (t == NGX_ERROR) {
        return status;
    }

    if (t == mtime
        || (clcf->if_modified_since == NGX_HTTP_IMS_BEFORE && t > mtime))
    {
        return NGX_HTTP_NOT_MODIFIED;
    }

    return status;
}


static ngx_int_t
ngx_http_pseudostream_headers(ngx_http_request_t *r,
    ngx_http_pseudostream_ctx_t *ctx, ngx_str_t *path,
    ngx_open_file_info_t *of, ps_response *resp)
{
    size_t                     len;
    ps_slice                   slice;
    ps_status                  st;
    const char                *etag, *type;
    ngx_table_elt_t           *h;
    ngx_http_core_loc_conf_t  *clcf;

    switch (resp->status) {

    case NGX_HTTP_OK:
    case NGX_HTTP_PARTIAL_CONTENT:
    case NGX_HTTP_NOT_MODIFIED:
        break;

    case NGX_HTTP_RANGE_NOT_SATISFIABLE:

        if (ngx_http_pseudostream_unsatisfiable(r, ctx->length) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return NGX_HTTP_RANGE_NOT_SATISFIABLE;

    default: /* NGX_HTTP_PRECONDITION_FAILED */
        return resp->status;
    }

    r->connection->log->action = "sending pseudostream to client";

    /* the module has evaluated validators and Range */

    r->disable_not_modified = 1;
    r->allow_ranges = 0;

    r->headers_out.status = resp->status;
    r->headers_out.last_modified_time = of->mtime;

    st = ps_plan_etag(ctx->plan, &etag);
    if (st != PS_OK) {
        return ngx_http_pseudostream_error(r, path, "ps_plan_etag", st);
    }

    h = ngx_http_pseudostream_push_header(r, "ETag", sizeof("ETag") - 1);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->value.len = ngx_strlen(etag);
    h->value.data = ngx_pnalloc(r->pool, h->value.len);
    if (h->value.data == NULL) {
        h->hash = 0;
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(h->value.data, etag, h->value.len);
    r->headers_out.etag = h;

    if (resp->status == NGX_HTTP_NOT_MODIFIED) {

        /* validators only; the header filter makes it header only */

        return ngx_http_send_header(r);
    }

    r->headers_out.content_length_n = (off_t) resp->length;

    if (ps_plan_content_type(ctx->plan, &type) == PS_OK) {
        r->headers_out.content_type_len = ngx_strlen(type);
        r->headers_out.content_type.len = r->headers_out.content_type_len;
        r->headers_out.content_type.data = (u_char *) type;
        r->headers_out.content_type_lowcase = NULL;

    } else if (ngx_http_set_content_type(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (resp->status == NGX_HTTP_PARTIAL_CONTENT) {

        h = ngx_http_pseudostream_push_header(r, "Content-Range",
                                              sizeof("Content-Range") - 1);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        len = sizeof("bytes -/") - 1 + 3 * NGX_INT64_LEN + 1;

        h->value.data = ngx_pnalloc(r->pool, len);
        if (h->value.data == NULL) {
            h->hash = 0;
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        st = ps_plan_content_range(ctx->plan, resp, (char *) h->value.data,
                                   len, &h->value.len);
        if (st != PS_OK) {
            h->hash = 0;
            return ngx_http_pseudostream_error(r, path,
                                               "ps_plan_content_range", st);
        }

        r->headers_out.content_range = h;

    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (resp->status == NGX_HTTP_OK && r == r->main && clcf->max_ranges) {

        h = ngx_http_pseudostream_push_header(r, "Accept-Ranges",
                                              sizeof("Accept-Ranges") - 1);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_str_set(&h->value, "bytes");
        r->headers_out.accept_ranges = h;
    }

    /* the window: a part of the prefix, then a range of the file */

    st = ps_plan_slice(ctx->plan, resp->first, resp->length, &slice);
    if (st != PS_OK) {
        return ngx_http_pseudostream_error(r, path, "ps_plan_slice", st);
    }

    if (slice.prefix_from > slice.prefix_to
        || slice.prefix_to > ctx->prefix_len
        || slice.file_from > slice.file_to
        || slice.file_to > (uint64_t) of->size)
    {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "pseudostream slice of \"%V\" does not fit the file",
                      path);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* a paced window goes out in pieces; subrequests go unpaced */

    if (resp->rate_bytes_per_s
        && resp->length
        && r == r->main
        && r->method != NGX_HTTP_HEAD)
    {
        return ngx_http_pseudostream_send_paced(r, ctx, path, of, resp,
                                                &slice);
    }

    return ngx_http_pseudostream_send(r, path, of,
                                      ctx->prefix + slice.prefix_from,
                                      (size_t) (slice.prefix_to
                                                - slice.prefix_from),
                                      (off_t) slice.file_from,
                                      (off_t) slice.file_to);
}


static ngx_table_elt_t *
ngx_http_pseudostream_push_header(ngx_http_request_t *r, char *key,
    size_t len)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NULL;
    }

    h->hash = 1;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif
    h->key.len = len;
    h->key.data = (u_char *) key;
    h->lowcase_key = NULL;

    return h;
}


/* A 416's Content-Range: "bytes *" and the length (RFC 9110). */

static ngx_int_t
ngx_http_pseudostream_unsatisfiable(ngx_http_request_t *r, uint64_t length)
{
    ngx_table_elt_t  *h;

    h = ngx_http_pseudostream_push_header(r, "Content-Range",
                                          sizeof("Content-Range") - 1);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->value.data = ngx_pnalloc(r->pool,
                                sizeof("bytes */") - 1 + NGX_OFF_T_LEN);
    if (h->value.data == NULL) {
        h->hash = 0;
        return NGX_ERROR;
    }

    h->value.len = ngx_sprintf(h->value.data, "bytes */%uL", length)
                   - h->value.data;

    r->headers_out.content_range = h;

    return NGX_OK;
}


static ngx_int_t
ngx_http_pseudostream_send(ngx_http_request_t *r, ngx_str_t *path,
    ngx_open_file_info_t *of, const uint8_t *prefix, size_t len,
    off_t start, off_t end)
{
    ngx_int_t     rc;
    ngx_buf_t    *b, *p;
    ngx_chain_t   out[2];

    /* we need to allocate all before the header would be sent */

    p = NULL;

    if (len) {
        p = ngx_calloc_buf(r->pool);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->file = ngx_pcalloc(r->pool, sizeof(ngx_file_t));
    if (b->file == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b->file_pos = start;
    b->file_last = end;

    b->in_file = (end > start) ? 1 : 0;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;
    b->sync = (b->last_buf || b->in_file) ? 0 : 1;

    b->file->fd = of->fd;
    b->file->name = *path;
    b->file->log = r->connection->log;
    b->file->directio = of->is_directio;

    out[1].buf = b;
    out[1].next = NULL;

    if (p == NULL) {
        return ngx_http_output_filter(r, &out[1]);
    }

    /* the prefix stays in the plan, which lives as long as r->pool */

    p->pos = (u_char *) prefix;
    p->last = p->pos + len;
    p->memory = 1;

    out[0].buf = p;
    out[0].next = &out[1];

    return ngx_http_output_filter(r, &out[0]);
}


static ngx_int_t
ngx_http_pseudostream_send_paced(ngx_http_request_t *r,
    ngx_http_pseudostream_ctx_t *ctx, ngx_str_t *path,
    ngx_open_file_info_t *of, ps_response *resp, ps_slice *slice)
{
    ngx_int_t  rc;
    ps_status  st;

    /* we need to allocate all before the header would be sent */

    st = ps_pacer_new(resp->burst_bytes, resp->rate_bytes_per_s,
                      &ctx->pacer);
    if (st != PS_OK) {
        return ngx_http_pseudostream_error(r, path, "ps_pacer_new", st);
    }

    /* pieces past the burst end on file pages: sendfile sends each whole */

    st = ps_pacer_align_file_pages(ctx->pacer,
                                   slice->prefix_to - slice->prefix_from,
                                   slice->file_from, ngx_pagesize);
    if (st != PS_OK) {
        return ngx_http_pseudostream_error(r, path,
                                           "ps_pacer_align_file_pages", st);
    }

    ctx->prefix_pos = (size_t) slice->prefix_from;
    ctx->prefix_end = (size_t) slice->prefix_to;
    ctx->file_pos = (off_t) slice->file_from;
    ctx->file_end = (off_t) slice->file_to;

    ctx->file.fd = of->fd;
    ctx->file.name = *path;
    ctx->file.log = r->connection->log;
    ctx->file.directio = of->is_directio;

    ngx_http_set_ctx(r, ctx, ngx_http_pseudostream_module);

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    /* as ngx_http_set_write_handler() does for nginx's own writer */

    r->read_event_handler = r->discard_body
                            ? ngx_http_discarded_request_body_handler
                            : ngx_http_test_reading;
    r->write_event_handler = ngx_http_pseudostream_writer;

    ctx->start_msec = ngx_current_msec;

    rc = ngx_http_pseudostream_pace(r, ctx);

    if (rc != NGX_DONE) {
        /* all of it went to the output filter already, or an error */
        return rc;
    }

    /* waiting: the write handler finalizes the request when it is sent */

    r->main->count++;

    return NGX_DONE;
}


static void
ngx_http_pseudostream_writer(ngx_http_request_t *r)
{
    ngx_int_t                     rc;
    ngx_event_t                  *wev;
    ngx_connection_t             *c;
    ngx_http_pseudostream_ctx_t  *ctx;

    c = r->connection;
    wev = c->write;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "http pseudostream writer: \"%V?%V\"", &r->uri, &r->args);

    if (wev->timedout) {

        if (!wev->delayed) {
            ngx_log_error(NGX_LOG_INFO, c->log, NGX_ETIMEDOUT,
                          "client timed out");
            c->timedout = 1;

            ngx_http_finalize_request(r, NGX_HTTP_REQUEST_TIME_OUT);
            return;
        }

        /* a pacing timer ran out (ngx_http_request_handler may clear these) */

        wev->timedout = 0;
        wev->delayed = 0;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_pseudostream_module);

    if (ctx == NULL || ctx->pacer == NULL) {
        ngx_log_error(NGX_LOG_ALERT, c->log, 0,
                      "pseudostream writer without a paced response");
        ngx_http_finalize_request(r, NGX_ERROR);
        return;
    }

    rc = ngx_http_pseudostream_pace(r, ctx);

    if (rc == NGX_DONE) {
        return;
    }

    /* nginx's writer sends what the filters still hold */

    r->write_event_handler = ngx_http_request_empty_handler;

    ngx_http_finalize_request(r, rc);
}


/*
 * Hands the output filter what the pacer allows now. Returns NGX_DONE when
 * it waits (for the pacing timer or for the socket), otherwise the output
 * filter's answer to the last piece (NGX_OK, NGX_AGAIN) or NGX_ERROR.
 *
 * A wake-up costs a pacer question that sends (the pacer holds back
 * until a piece is due: 64k, or two seconds' worth at low rates), the
 * output filter with one or two buffers of the context, and a pacer
 * question that sets the next timer; nothing is allocated.
 */

static ngx_int_t
ngx_http_pseudostream_pace(ngx_http_request_t *r,
    ngx_http_pseudostream_ctx_t *ctx)
{
    size_t             n;
    off_t              f;
    uint64_t           now, want, allowed, wait_us;
    ngx_int_t          rc;
    ps_status          st;
    ngx_buf_t         *b;
    ngx_msec_t         delay;
    ngx_chain_t       *out, **ll;
    ngx_event_t       *wev;
    ngx_connection_t  *c;

    c = r->connection;
    wev = c->write;

    for ( ;; ) {

        if (wev->delayed || r->aio) {

            /*
             * a timer is set, ours or the write filter's (limit_rate,
             * sendfile_max_chunk), or a file read is in progress
             */

            return ngx_http_pseudostream_wait_socket(r);
        }

        if (r->buffered || c->buffered || r->postponed) {

            /* the last piece is not out yet: flush before asking again */

            rc = ngx_http_output_filter(r, NULL);

            if (rc == NGX_ERROR) {
                return NGX_ERROR;
            }

            if (r->buffered || c->buffered || r->postponed) {
                return ngx_http_pseudostream_wait_socket(r);
            }

            continue;
        }

        want = (uint64_t) (ctx->prefix_end - ctx->prefix_pos)
               + (uint64_t) (ctx->file_end - ctx->file_pos);

        /*
         * nginx's monotonic millisecond clock: the one its timers run on,
         * so a timer set for the pacer's wait finds the bytes allowed;
         * counted from the start of the response, which also survives
         * the 32-bit ngx_msec_t wrapping
         */

        now = (uint64_t) (ngx_msec_t) (ngx_current_msec - ctx->start_msec)
              * 1000;

        st = ps_pacer_allow(ctx->pacer, now, want, &allowed, &wait_us);
        if (st != PS_OK) {
            ngx_log_error(NGX_LOG_ALERT, c->log, 0,
                          "ps_pacer_allow() failed: %s", ps_last_error());
            return NGX_ERROR;
        }

        if (allowed == 0) {

            if (!ctx->sending) {

                /* no burst: the header goes now, not with the first piece */

                ctx->sending = 1;

                if (ngx_http_send_special(r, NGX_HTTP_FLUSH) == NGX_ERROR) {
                    return NGX_ERROR;
                }
            }

            /* round up: waking early costs a second timer */

            wait_us = (wait_us + 999) / 1000;
            delay = (wait_us > 86400000) ? 86400000 : (ngx_msec_t) wait_us;

            if (delay == 0) {
                delay = 1;
            }

            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, c->log, 0,
                           "http pseudostream wait %M left:%uL", delay, want);

            /* not a lazy re-arm of the send_timeout timer */

            if (wev->timer_set) {
                ngx_del_timer(wev);
            }

            wev->delayed = 1;
            ngx_add_timer(wev, delay);

            return NGX_DONE;
        }

        if (allowed > want) {
            allowed = want;
        }

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, c->log, 0,
                       "http pseudostream send %uL of %uL", allowed, want);

        /*
         * a memory buffer for the prefix part, a file buffer for the rest;
         * nothing is buffered now, so the filters are done with the
         * buffers of the previous piece
         */

        out = NULL;
        ll = &out;
        b = NULL;

        n = ctx->prefix_end - ctx->prefix_pos;
        if ((uint64_t) n > allowed) {
            n = (size_t) allowed;
        }

        if (n) {
            b = &ctx->prefix_buf;
            ngx_memzero(b, sizeof(ngx_buf_t));

            /* the prefix stays in the plan, which lives as long as r->pool */

            b->start = (u_char *) ctx->prefix + ctx->prefix_pos;
            b->pos = b->start;
            b->last = b->start + n;
            b->end = b->last;
            b->memory = 1;
            b->tag = (ngx_buf_tag_t) &ngx_http_pseudostream_module;

            ctx->prefix_pos += n;

            ctx->out[0].buf = b;
            *ll = &ctx->out[0];
            ll = &ctx->out[0].next;
        }

        f = (off_t) (allowed - n);

        if (f) {
            b = &ctx->file_buf;
            ngx_memzero(b, sizeof(ngx_buf_t));

            b->file = &ctx->file;
            b->file_pos = ctx->file_pos;
            b->file_last = ctx->file_pos + f;
            b->in_file = 1;
            b->tag = (ngx_buf_tag_t) &ngx_http_pseudostream_module;

            ctx->file_pos += f;

            ctx->out[1].buf = b;
            *ll = &ctx->out[1];
            ll = &ctx->out[1].next;
        }

        *ll = NULL;

        if (allowed == want) {
            b->last_buf = 1;
            b->last_in_chain = 1;

        } else {
            /* past postpone_output: each piece goes out when allowed */
            b->flush = 1;
        }

        ctx->sending = 1;

        rc = ngx_http_output_filter(r, out);

        st = ps_pacer_consume(ctx->pacer, allowed);
        if (st != PS_OK) {
            ngx_log_error(NGX_LOG_ALERT, c->log, 0,
                          "ps_pacer_consume() failed: %s", ps_last_error());
            return NGX_ERROR;
        }

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (allowed == want) {
            return rc;
        }
    }
}


/* waits for the socket (or a timer already set) under send_timeout */

static ngx_int_t
ngx_http_pseudostream_wait_socket(ngx_http_request_t *r)
{
    ngx_event_t               *wev;
    ngx_http_core_loc_conf_t  *clcf;

    wev = r->connection->write;
    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (!wev->delayed) {
        ngx_add_timer(wev, clcf->send_timeout);
    }

    if (ngx_handle_write_event(wev, clcf->send_lowat) != NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_DONE;
}


static ngx_int_t
ngx_http_pseudostream_error(ngx_http_request_t *r, ngx_str_t *path,
    const char *call, ps_status status)
{
    return ngx_http_pseudostream_fail(r, path, call, status, ps_last_error());
}


static ngx_int_t
ngx_http_pseudostream_fail(ngx_http_request_t *r, ngx_str_t *path,
    const char *call, ps_status status, const char *detail)
{
    ngx_int_t   rc;
    ngx_uint_t  level;

    rc = ps_status_http(status);

    switch (rc) {

    case NGX_HTTP_BAD_REQUEST:
    case NGX_HTTP_RANGE_NOT_SATISFIABLE:
        level = NGX_LOG_INFO;
        break;

    case NGX_HTTP_FORBIDDEN:
    case NGX_HTTP_NOT_FOUND:
    case NGX_HTTP_UNSUPPORTED_MEDIA_TYPE:
        level = NGX_LOG_ERR;
        break;

    default:
        level = NGX_LOG_CRIT;
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        break;
    }

    if (detail == NULL || *detail == '\0') {
        detail = ps_strerror(status);
    }

    ngx_log_error(level, r->connection->log, 0,
                  "%s() for \"%V\" failed: %s", call, path, detail);

    return rc;
}


static void
ngx_http_pseudostream_cleanup(void *data)
{
    ngx_http_pseudostream_ctx_t  *ctx = data;

    ps_pacer_free(ctx->pacer);
    ps_plan_free(ctx->plan);
    ps_media_free(ctx->media);
    ps_request_free(ctx->request);

#if (NGX_THREADS)

    /* after the media that reads it */

    if (ctx->index_fd != NGX_INVALID_FILE
        && ngx_close_file(ctx->index_fd) == NGX_FILE_ERROR)
    {
        ngx_log_error(NGX_LOG_ALERT, ctx->log, ngx_errno,
                      ngx_close_file_n " \"%V\" failed", &ctx->path);
    }

#endif
}


static void *
ngx_http_pseudostream_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_pseudostream_main_conf_t  *pmcf;

    pmcf = ngx_palloc(cf->pool, sizeof(ngx_http_pseudostream_main_conf_t));
    if (pmcf == NULL) {
        return NULL;
    }

    pmcf->index_cache = NGX_CONF_UNSET_SIZE;
    pmcf->mp4_max_moov_size = NGX_CONF_UNSET_SIZE;

    return pmcf;
}


static void *
ngx_http_pseudostream_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_pseudostream_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_pseudostream_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->params = { { 0, NULL }, ... };
     *     conf->params_set = 0;
     *     conf->rate = 0;
     *     conf->options = NULL;
     */

    conf->prefix = NGX_CONF_UNSET_UINT;
    conf->start_unit = NGX_CONF_UNSET_UINT;
    conf->metadata = NGX_CONF_UNSET_UINT;
    conf->mp4_cut = NGX_CONF_UNSET_UINT;
    conf->burst = NGX_CONF_UNSET_SIZE;
    conf->burst_time = NGX_CONF_UNSET_MSEC;
    conf->rate_mode = NGX_CONF_UNSET_UINT;
    conf->rate_factor = NGX_CONF_UNSET_UINT;
    conf->client_pacing = NGX_CONF_UNSET;

    return conf;
}


static char *
ngx_http_pseudostream_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_pseudostream_loc_conf_t *prev = parent;
    ngx_http_pseudostream_loc_conf_t *conf = child;

    ngx_uint_t  i, own;

    own = conf->prefix != NGX_CONF_UNSET_UINT
          || conf->start_unit != NGX_CONF_UNSET_UINT
          || conf->metadata != NGX_CONF_UNSET_UINT
          || conf->mp4_cut != NGX_CONF_UNSET_UINT
          || conf->params_set
          || conf->burst != NGX_CONF_UNSET_SIZE
          || conf->burst_time != NGX_CONF_UNSET_MSEC
          || conf->rate_mode != NGX_CONF_UNSET_UINT
          || conf->client_pacing != NGX_CONF_UNSET;

    if (conf->burst != NGX_CONF_UNSET_SIZE
        && conf->burst_time != NGX_CONF_UNSET_MSEC)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"pseudostream_burst\" and "
                           "\"pseudostream_burst_time\" cannot be used "
                           "at the same level");
        return NGX_CONF_ERROR;
    }

    ngx_conf_merge_uint_value(conf->prefix, prev->prefix, PS_PREFIX_INIT);
    ngx_conf_merge_uint_value(conf->start_unit, prev->start_unit,
                              PS_UNIT_BYTES);
    ngx_conf_merge_uint_value(conf->metadata, prev->metadata,
                              PS_METADATA_MISSING);
    ngx_conf_merge_uint_value(conf->mp4_cut, prev->mp4_cut, PS_CUT_EXACT);

    for (i = 0; i < NGX_HTTP_PSEUDOSTREAM_PARAMS; i++) {
        if (!(conf->params_set & ((ngx_uint_t) 1 << i))
            && (prev->params_set & ((ngx_uint_t) 1 << i)))
        {
            conf->params[i] = prev->params[i];
            conf->params_set |= (ngx_uint_t) 1 << i;
        }
    }

    /* a burst in bytes or in media time, from the nearest level setting one */

    if (conf->burst == NGX_CONF_UNSET_SIZE
        && conf->burst_time == NGX_CONF_UNSET_MSEC)
    {
        conf->burst = prev->burst;
        conf->burst_time = prev->burst_time;
    }

    if (conf->rate_mode == NGX_CONF_UNSET_UINT) {
        conf->rate_mode = prev->rate_mode;
        conf->rate = prev->rate;
        conf->rate_factor = prev->rate_factor;
    }

    if (conf->rate_mode == NGX_CONF_UNSET_UINT) {
        conf->rate_mode = NGX_HTTP_PSEUDOSTREAM_RATE_OFF;
    }

    ngx_conf_merge_value(conf->client_pacing, prev->client_pacing, 1);

    if (!own && prev->options) {
        conf->options = prev->options;
        return NGX_CONF_OK;
    }

    conf->options = ngx_http_pseudostream_options(cf, conf);
    if (conf->options == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ps_options *
ngx_http_pseudostream_options(ngx_conf_t *cf,
    ngx_http_pseudostream_loc_conf_t *conf)
{
    u_char              *name;
    ngx_uint_t           i;
    ps_status            st;
    ps_options          *options;
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    st = ps_options_new(&options);
    if (st != PS_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ps_options_new() failed: %s", ps_last_error());
        return NULL;
    }

    cln->handler = ngx_http_pseudostream_free_options;
    cln->data = options;

    st = ps_options_set_prefix_mode(options, (uint32_t) conf->prefix);

    if (st == PS_OK) {
        st = ps_options_set_start_unit(options, (uint32_t) conf->start_unit);
    }

    if (st == PS_OK) {
        st = ps_options_set_metadata(options, (uint32_t) conf->metadata);
    }

    if (st == PS_OK) {
        st = ps_options_set_cut_mode(options, (uint32_t) conf->mp4_cut);
    }

    for (i = 0; st == PS_OK && i < NGX_HTTP_PSEUDOSTREAM_PARAMS; i++) {

        if (!(conf->params_set & ((ngx_uint_t) 1 << i))) {
            continue;
        }

        name = ngx_pnalloc(cf->temp_pool, conf->params[i].len + 1);
        if (name == NULL) {
            return NULL;
        }

        ngx_cpystrn(name, conf->params[i].data,
                    conf->params[i].len + 1);

        st = ps_options_set_param_name(options, (uint32_t) i,
                                       (const char *) name);
    }

    if (st == PS_OK && conf->burst != NGX_CONF_UNSET_SIZE) {
        st = ps_options_set_burst_bytes(options, conf->burst);
    }

    if (st == PS_OK && conf->burst_time != NGX_CONF_UNSET_MSEC) {
        st = ps_options_set_burst_ms(options, conf->burst_time);
    }

    if (st == PS_OK) {
        switch (conf->rate_mode) {

        case NGX_HTTP_PSEUDOSTREAM_RATE_FIXED:
            st = ps_options_set_rate(options, conf->rate);
            break;

        case NGX_HTTP_PSEUDOSTREAM_RATE_AUTO:
            st = ps_options_set_rate_auto(options,
                                          (uint32_t) conf->rate_factor);
            break;

        default: /* NGX_HTTP_PSEUDOSTREAM_RATE_OFF */
            st = ps_options_set_rate(options, 0);
            break;
        }
    }

    if (st == PS_OK) {
        st = ps_options_set_client_pacing(options,
                                          conf->client_pacing ? 1 : 0);
    }

    if (st != PS_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid pseudostream settings: %s",
                           ps_last_error());
        return NULL;
    }

    return options;
}


static void
ngx_http_pseudostream_free_options(void *data)
{
    ps_options_free(data);
}


static char *
ngx_http_pseudostream(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_pseudostream_handler;

    return NGX_CONF_OK;
}


static char *
ngx_http_pseudostream_param(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_pseudostream_loc_conf_t *plcf = conf;

    u_char           *p, *last;
    ngx_str_t        *value;
    ngx_uint_t        bit;
    ngx_conf_enum_t  *e;

    value = cf->args->elts;

    for (e = ngx_http_pseudostream_params; e->name.len; e++) {
        if (e->name.len == value[1].len
            && ngx_strncmp(e->name.data, value[1].data, value[1].len) == 0)
        {
            break;
        }
    }

    if (e->name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown pseudostream parameter \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    bit = (ngx_uint_t) 1 << e->value;

    if (plcf->params_set & bit) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate pseudostream parameter \"%V\"",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    last = value[2].data + value[2].len;

    for (p = value[2].data; p < last; p++) {
        if (*p <= ' ' || *p == 0x7f || *p == '&' || *p == '=' || *p == '#') {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid query parameter name \"%V\"",
                               &value[2]);
            return NGX_CONF_ERROR;
        }
    }

    plcf->params[e->value] = value[2];
    plcf->params_set |= bit;

    return NGX_CONF_OK;
}


static char *
ngx_http_pseudostream_rate(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_pseudostream_loc_conf_t *plcf = conf;

    ssize_t     size;
    ngx_int_t   factor;
    ngx_str_t  *value;

    if (plcf->rate_mode != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "auto") == 0) {

        plcf->rate_mode = NGX_HTTP_PSEUDOSTREAM_RATE_AUTO;
        plcf->rate_factor = 1250;

        if (cf->args->nelts == 3) {
            factor = ngx_atofp(value[2].data, value[2].len, 3);

            if (factor == NGX_ERROR || factor == 0 || factor > 100000) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid rate factor \"%V\"", &value[2]);
                return NGX_CONF_ERROR;
            }

            plcf->rate_factor = factor;
        }

        return NGX_CONF_OK;
    }

    if (cf->args->nelts != 2) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "a factor is only valid after \"auto\"");
        return NGX_CONF_ERROR;
    }

    if (ngx_strcmp(value[1].data, "off") == 0) {
        plcf->rate_mode = NGX_HTTP_PSEUDOSTREAM_RATE_OFF;
        return NGX_CONF_OK;
    }

    size = ngx_parse_size(&value[1]);
    if (size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid rate \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    plcf->rate_mode = size ? NGX_HTTP_PSEUDOSTREAM_RATE_FIXED
                           : NGX_HTTP_PSEUDOSTREAM_RATE_OFF;
    plcf->rate = (size_t) size;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_pseudostream_init_process(ngx_cycle_t *cycle)
{
    ps_status                           st;
    ngx_http_pseudostream_main_conf_t  *pmcf;

#if (NGX_THREADS)
    ngx_queue_init(&ngx_http_pseudostream_builds);
#endif

    pmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_pseudostream_module);

    if (pmcf == NULL) {
        return NGX_OK;
    }

    /* the index cache and the limits are per process: set in each worker */

    if (pmcf->mp4_max_moov_size != NGX_CONF_UNSET_SIZE) {
        st = ps_mp4_set_moov_limit(pmcf->mp4_max_moov_size);
        if (st != PS_OK) {
            ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                          "ps_mp4_set_moov_limit(%uz) failed: %s",
                          pmcf->mp4_max_moov_size, ps_last_error());
        }
    }

    if (pmcf->index_cache == NGX_CONF_UNSET_SIZE) {
        return NGX_OK;
    }

    st = ps_cache_set_capacity(pmcf->index_cache);
    if (st != PS_OK) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "ps_cache_set_capacity(%uz) failed: %s",
                      pmcf->index_cache, ps_last_error());
    }

    return NGX_OK;
}
