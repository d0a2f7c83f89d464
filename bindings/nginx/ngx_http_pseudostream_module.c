
/*
 * ngx_http_pseudostream_module: HTTP pseudostreaming of FLV and MP4 files
 * ("movie.flv?start=...", "movie.mp4?start=12.5&end=30"), answered by
 * libpseudostream.
 *
 * The library decides the whole answer: the status, every header, CORS,
 * the pacing, and a body of pieces (bytes it holds, ranges of the file).
 * This module is transport: it hands the library the request and the open
 * file cache's descriptor, writes the headers it gets back, and turns the
 * pieces into memory and file buffers for nginx's output chain (sendfile,
 * directio, aio), waiting on event timers when the pacing says so.
 *
 * Indexing a file the library has not seen reads it: a walk over the tags
 * of a long FLV takes seconds when the file is not in the page cache.
 * Where the location has "aio threads", that walk runs in nginx's thread
 * pool and the request resumes when it is done; requests for the same file
 * meanwhile wait for that build without a pool thread of their own.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <pseudostream.h>


/* pieces taken from the library at a time */
#define NGX_HTTP_PSEUDOSTREAM_PIECES   16

/* more than an answer has */
#define NGX_HTTP_PSEUDOSTREAM_HEADERS  32


typedef struct {
    ngx_array_t               *settings;    /* of ngx_keyval_t, process-wide */
} ngx_http_pseudostream_main_conf_t;


typedef struct {
    ngx_array_t               *settings;    /* of ngx_keyval_t, in order */
    ps_options                *options;
} ngx_http_pseudostream_loc_conf_t;


#if (NGX_THREADS)

/* the work of a pool thread: runs the build of an index */

typedef struct {
    ps_build                  *build;
    ngx_fd_t                   fd;
} ngx_http_pseudostream_task_t;

#endif


typedef struct {
    ps_exchange               *exchange;
    ngx_str_t                  path;
    ngx_open_file_info_t       of;

    /* body bytes not yet handed to the output filter */

    uint64_t                   left;
    ngx_msec_t                 start_msec;
    unsigned                   sending:1;

    ngx_file_t                 file;

#if (NGX_THREADS)

    /* the index build this request leads or waits for */

    ps_build                  *build;
    ngx_event_t                wait_event;

    /* a descriptor of the file without O_DIRECT, read by the build */

    ngx_fd_t                   index_fd;
    ngx_log_t                 *log;

#endif

    /* one batch of pieces and the buffers they become, reused */

    ps_piece                   pieces[NGX_HTTP_PSEUDOSTREAM_PIECES];
    ngx_buf_t                  bufs[NGX_HTTP_PSEUDOSTREAM_PIECES];
    ngx_chain_t                out[NGX_HTTP_PSEUDOSTREAM_PIECES];
} ngx_http_pseudostream_ctx_t;


static ngx_int_t ngx_http_pseudostream_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_pseudostream_open(ngx_http_request_t *r,
    ngx_http_pseudostream_ctx_t *ctx);
static ngx_int_t ngx_http_pseudostream_respond(ngx_http_request_t *r,
    ngx_http_pseudostream_ctx_t *ctx);
static ngx_int_t ngx_http_pseudostream_headers(ngx_http_request_t *r,
    ngx_http_pseudostream_ctx_t *ctx, ps_exchange_info *info);
static ngx_int_t ngx_http_pseudostream_send(ngx_http_request_t *r,
    ngx_http_pseudostream_ctx_t *ctx);
static void ngx_http_pseudostream_writer(ngx_http_request_t *r);
static ngx_int_t ngx_http_pseudostream_pump(ngx_http_request_t *r,
    ngx_http_pseudostream_ctx_t *ctx);
static ngx_int_t ngx_http_pseudostream_wait_socket(ngx_http_request_t *r);
static ngx_int_t ngx_http_pseudostream_failed(ngx_http_request_t *r,
    ngx_http_pseudostream_ctx_t *ctx, const char *call);
#if (NGX_THREADS)
static ngx_int_t ngx_http_pseudostream_index_in_thread(ngx_http_request_t *r,
    ngx_http_pseudostream_ctx_t *ctx);
static ngx_int_t ngx_http_pseudostream_run_build(ngx_http_request_t *r,
    ngx_http_pseudostream_ctx_t *ctx);
static void ngx_http_pseudostream_block(ngx_http_request_t *r,
    ngx_http_pseudostream_ctx_t *ctx);
static ngx_int_t ngx_http_pseudostream_open_for_index(ngx_http_request_t *r,
    ngx_http_pseudostream_ctx_t *ctx);
static void ngx_http_pseudostream_build_thread(void *data, ngx_log_t *log);
static void ngx_http_pseudostream_build_done(ngx_event_t *ev);
static void ngx_http_pseudostream_index_done(ngx_event_t *ev);
static void ngx_http_pseudostream_indexed(ngx_http_request_t *r);
#endif
static void ngx_http_pseudostream_cleanup(void *data);

static void *ngx_http_pseudostream_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_pseudostream_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_pseudostream_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static void ngx_http_pseudostream_free_options(void *data);
static char *ngx_http_pseudostream(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_pseudostream_set(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_pseudostream_init_process(ngx_cycle_t *cycle);


/*
 * Every library option is a directive "pseudostream_<key> value...;" that
 * takes the library's value syntax ("pseudostream_rate auto 1.25;" passes
 * "auto 1.25"); the library checks it when the configuration is read.
 */

#define ngx_http_pseudostream_option(name, where, args)                      \
    { ngx_string("pseudostream_" name),                                       \
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|args,            \
      ngx_http_pseudostream_set, where, 0, NULL }

#define ngx_http_pseudostream_process_option(name)                           \
    { ngx_string("pseudostream_" name),                                       \
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,                                      \
      ngx_http_pseudostream_set, NGX_HTTP_MAIN_CONF_OFFSET, 0, NULL }

#define NGX_HTTP_PSEUDOSTREAM_LOC  NGX_HTTP_LOC_CONF_OFFSET


static ngx_command_t  ngx_http_pseudostream_commands[] = {

    { ngx_string("pseudostream"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_pseudostream,
      0,
      0,
      NULL },

    ngx_http_pseudostream_option("prefix", NGX_HTTP_PSEUDOSTREAM_LOC,
                                 NGX_CONF_TAKE1),
    ngx_http_pseudostream_option("start_unit", NGX_HTTP_PSEUDOSTREAM_LOC,
                                 NGX_CONF_TAKE1),
    ngx_http_pseudostream_option("metadata", NGX_HTTP_PSEUDOSTREAM_LOC,
                                 NGX_CONF_TAKE1),
    ngx_http_pseudostream_option("cut", NGX_HTTP_PSEUDOSTREAM_LOC,
                                 NGX_CONF_TAKE1),
    ngx_http_pseudostream_option("mp4_cut", NGX_HTTP_PSEUDOSTREAM_LOC,
                                 NGX_CONF_TAKE1),
    ngx_http_pseudostream_option("faststart", NGX_HTTP_PSEUDOSTREAM_LOC,
                                 NGX_CONF_TAKE1),
    ngx_http_pseudostream_option("mp4_faststart", NGX_HTTP_PSEUDOSTREAM_LOC,
                                 NGX_CONF_TAKE1),
    ngx_http_pseudostream_option("flv_output", NGX_HTTP_PSEUDOSTREAM_LOC,
                                 NGX_CONF_TAKE1),
    ngx_http_pseudostream_option("flv_as", NGX_HTTP_PSEUDOSTREAM_LOC,
                                 NGX_CONF_TAKE1),
    ngx_http_pseudostream_option("rate", NGX_HTTP_PSEUDOSTREAM_LOC,
                                 NGX_CONF_TAKE12),
    ngx_http_pseudostream_option("burst", NGX_HTTP_PSEUDOSTREAM_LOC,
                                 NGX_CONF_TAKE1),
    ngx_http_pseudostream_option("burst_bytes", NGX_HTTP_PSEUDOSTREAM_LOC,
                                 NGX_CONF_TAKE1),
    ngx_http_pseudostream_option("burst_time", NGX_HTTP_PSEUDOSTREAM_LOC,
                                 NGX_CONF_TAKE1),
    ngx_http_pseudostream_option("burst_seconds", NGX_HTTP_PSEUDOSTREAM_LOC,
                                 NGX_CONF_TAKE1),
    ngx_http_pseudostream_option("client_pacing", NGX_HTTP_PSEUDOSTREAM_LOC,
                                 NGX_CONF_TAKE1),
    ngx_http_pseudostream_option("cors", NGX_HTTP_PSEUDOSTREAM_LOC,
                                 NGX_CONF_1MORE),
    ngx_http_pseudostream_option("cache_control", NGX_HTTP_PSEUDOSTREAM_LOC,
                                 NGX_CONF_1MORE),
    ngx_http_pseudostream_option("param", NGX_HTTP_PSEUDOSTREAM_LOC,
                                 NGX_CONF_TAKE12),
    ngx_http_pseudostream_option("param_start", NGX_HTTP_PSEUDOSTREAM_LOC,
                                 NGX_CONF_TAKE1),
    ngx_http_pseudostream_option("param_end", NGX_HTTP_PSEUDOSTREAM_LOC,
                                 NGX_CONF_TAKE1),
    ngx_http_pseudostream_option("param_ib", NGX_HTTP_PSEUDOSTREAM_LOC,
                                 NGX_CONF_TAKE1),
    ngx_http_pseudostream_option("param_fs", NGX_HTTP_PSEUDOSTREAM_LOC,
                                 NGX_CONF_TAKE1),
    ngx_http_pseudostream_option("param_bstart", NGX_HTTP_PSEUDOSTREAM_LOC,
                                 NGX_CONF_TAKE1),
    ngx_http_pseudostream_option("param_bend", NGX_HTTP_PSEUDOSTREAM_LOC,
                                 NGX_CONF_TAKE1),
    ngx_http_pseudostream_option("param_ri", NGX_HTTP_PSEUDOSTREAM_LOC,
                                 NGX_CONF_TAKE1),
    ngx_http_pseudostream_option("param_rs", NGX_HTTP_PSEUDOSTREAM_LOC,
                                 NGX_CONF_TAKE1),
    ngx_http_pseudostream_option("param_format", NGX_HTTP_PSEUDOSTREAM_LOC,
                                 NGX_CONF_TAKE1),

    ngx_http_pseudostream_process_option("index_cache"),
    ngx_http_pseudostream_process_option("mp4_max_moov_size"),

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
    size_t                         root;
    u_char                        *last;
    ngx_int_t                      rc;
    ngx_uint_t                     i;
    ps_status                      st;
    uint32_t                       wants;
    ngx_list_part_t               *part;
    ngx_table_elt_t               *h;
    ngx_pool_cleanup_t            *cln;
    ngx_http_pseudostream_ctx_t   *ctx;

    if (r->uri.data[r->uri.len - 1] == '/') {
        return NGX_DECLINED;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_pseudostream_ctx_t));
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the batch arrays at its end are written before they are read */

    ctx = cln->data;
    ngx_memzero(ctx, offsetof(ngx_http_pseudostream_ctx_t, pieces));

#if (NGX_THREADS)
    ctx->index_fd = NGX_INVALID_FILE;
#endif

    cln->handler = ngx_http_pseudostream_cleanup;

    st = ps_exchange_new((const char *) r->method_name.data,
                         r->method_name.len, (const char *) r->args.data,
                         r->args.len, &ctx->exchange);
    if (st != PS_OK) {
        return ngx_http_pseudostream_failed(r, ctx, "ps_exchange_new");
    }

    /* a subrequest's answer goes into its parent's: no client conditions */

    if (r == r->main) {
        part = &r->headers_in.headers.part;
        h = part->elts;

        for (i = 0; /* void */ ; i++) {

            if (i >= part->nelts) {
                if (part->next == NULL) {
                    break;
                }

                part = part->next;
                h = part->elts;
                i = 0;
            }

            if (h[i].hash == 0) {
                continue;
            }

            st = ps_exchange_set_header(ctx->exchange,
                                        (const char *) h[i].key.data,
                                        h[i].key.len,
                                        (const char *) h[i].value.data,
                                        h[i].value.len);
            if (st != PS_OK) {
                return ngx_http_pseudostream_failed(r, ctx,
                                                    "ps_exchange_set_header");
            }
        }
    }

    last = ngx_http_map_uri_to_path(r, &ctx->path, &root, 0);
    if (last == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->path.len = last - ctx->path.data;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "http pseudostream filename: \"%V\"", &ctx->path);

    st = ps_exchange_wants_file(ctx->exchange, &wants);
    if (st != PS_OK) {
        return ngx_http_pseudostream_failed(r, ctx, "ps_exchange_wants_file");
    }

    if (wants) {
        rc = ngx_http_pseudostream_open(r, ctx);

        if (rc != NGX_OK) {
            return rc;
        }
    }

    return ngx_http_pseudostream_respond(r, ctx);
}


/*
 * Opens the file through the open file cache and lends its descriptor to
 * the library, or tells the library why it could not be opened. Returns
 * NGX_OK, NGX_DECLINED for a directory, NGX_DONE when the file is indexed
 * in a thread and the request resumes later, or an error.
 */

static ngx_int_t
ngx_http_pseudostream_open(ngx_http_request_t *r,
    ngx_http_pseudostream_ctx_t *ctx)
{
    ngx_err_t                  err;
    ngx_uint_t                 level;
    ps_status                  st;
    ngx_open_file_info_t      *of;
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    of = &ctx->of;

    of->read_ahead = clcf->read_ahead;
    of->directio = clcf->directio;
    of->valid = clcf->open_file_cache_valid;
    of->min_uses = clcf->open_file_cache_min_uses;
    of->errors = clcf->open_file_cache_errors;
    of->events = clcf->open_file_cache_events;

    if (ngx_http_set_disable_symlinks(r, clcf, &ctx->path, of) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_open_cached_file(clcf->open_file_cache, &ctx->path, of, r->pool)
        != NGX_OK)
    {
        err = of->err;

        if (err == 0) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        level = (err == NGX_ENOENT || err == NGX_ENOTDIR
                 || err == NGX_ENAMETOOLONG || err == NGX_EACCES)
                ? NGX_LOG_ERR : NGX_LOG_CRIT;

        if (err != NGX_ENOENT || clcf->log_not_found) {
            ngx_log_error(level, r->connection->log, err,
                          "%s \"%s\" failed", of->failed, ctx->path.data);
        }

        /* the library answers it (404, 403, 500) with its headers */

        st = ps_exchange_open_failed(ctx->exchange, (int32_t) err,
                                     (const char *) ctx->path.data);
        if (st != PS_OK) {
            return ngx_http_pseudostream_failed(r, ctx,
                                                "ps_exchange_open_failed");
        }

        return NGX_OK;
    }

    if (!of->is_file) {
        return NGX_DECLINED;
    }

    r->root_tested = !r->error_page;

    ctx->file.fd = of->fd;
    ctx->file.name = ctx->path;
    ctx->file.log = r->connection->log;
    ctx->file.directio = of->is_directio;

    /* what the open file cache knows spares the library an fstat */

    if (ps_exchange_set_file_hint(ctx->exchange, (uint64_t) of->uniq,
                                  (uint64_t) of->size, (int64_t) of->mtime)
        != PS_OK)
    {
        return ngx_http_pseudostream_failed(r, ctx,
                                            "ps_exchange_set_file_hint");
    }

#if (NGX_THREADS)
    {
    ngx_int_t  rc;

    rc = ngx_http_pseudostream_index_in_thread(r, ctx);

    if (rc != NGX_DECLINED) {
        return rc;
    }
    }
#endif


    /* no thread pool: the worker indexes the file if it must */

    if (ps_exchange_open_fd(ctx->exchange, of->fd,
                            (const char *) ctx->path.data)
        != PS_OK)
    {
        return ngx_http_pseudostream_failed(r, ctx, "ps_exchange_open_fd");
    }

    return NGX_OK;
}


/* the library's answer, written out */

static ngx_int_t
ngx_http_pseudostream_respond(ngx_http_request_t *r,
    ngx_http_pseudostream_ctx_t *ctx)
{
    ngx_int_t                          rc;
    ps_status                          st;
    ngx_uint_t                         level;
    const char                        *detail;
    ps_exchange_info                   info;
    ngx_http_pseudostream_loc_conf_t  *plcf;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_pseudostream_module);

#if (NGX_HAVE_O_DIRECT)
    ngx_uint_t  directio;

    /*
     * the library reads through of.fd while it answers (a few tag headers
     * for an end, the index when it is not cached): buffered reads, so
     * O_DIRECT is off meanwhile
     */

    directio = ctx->of.is_directio && ctx->file.fd == ctx->of.fd;

    if (directio && ngx_directio_off(ctx->of.fd) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, ngx_errno,
                      ngx_directio_off_n " \"%V\" failed", &ctx->path);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
#endif

    st = ps_exchange_respond(ctx->exchange, plcf->options);

#if (NGX_HAVE_O_DIRECT)
    if (directio && ngx_directio_on(ctx->of.fd) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, ngx_errno,
                      ngx_directio_on_n " \"%V\" failed", &ctx->path);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
#endif

    if (st != PS_OK
        || ps_exchange_get_info(ctx->exchange, &info) != PS_OK)
    {
        return ngx_http_pseudostream_failed(r, ctx, "ps_exchange_respond");
    }

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "http pseudostream answer: %uD body:%uL "
                   "burst:%uL rate:%uL",
                   info.status, info.body_length,
                   info.burst_bytes, info.rate_bytes_per_s);

    rc = ngx_http_pseudostream_headers(r, ctx, &info);
    if (rc != NGX_OK) {
        return rc;
    }

    if (info.status >= NGX_HTTP_BAD_REQUEST) {

        /* nginx's error page, with the library's other headers */

        switch (info.status) {

        case NGX_HTTP_BAD_REQUEST:
        case NGX_HTTP_NOT_ALLOWED:
        case NGX_HTTP_PRECONDITION_FAILED:
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
            break;
        }

        if (ps_exchange_detail(ctx->exchange, &detail) == PS_OK) {
            ngx_log_error(level, r->connection->log, 0,
                          "pseudostream \"%V\": %uD: %s",
                          &ctx->path, info.status, detail);
        }

        return info.status;
    }

    ctx->left = info.body_length;

    return ngx_http_pseudostream_send(r, ctx);
}


/* the library's headers as nginx's; nginx adds Date, Server, Connection */

static ngx_int_t
ngx_http_pseudostream_headers(ngx_http_request_t *r,
    ngx_http_pseudostream_ctx_t *ctx, ps_exchange_info *info)
{
    size_t            i, count, nlen, vlen;
    ps_header         headers[NGX_HTTP_PSEUDOSTREAM_HEADERS];
    ngx_uint_t        error;
    const char       *name, *value;
    ngx_table_elt_t  *h;

    error = info->status >= NGX_HTTP_BAD_REQUEST;

    /* the library has evaluated validators and Range */

    r->disable_not_modified = 1;
    r->allow_ranges = 0;
    r->headers_out.status = info->status;
    r->headers_out.last_modified_time = -1;

    if (info->has_content_length && !error) {
        r->headers_out.content_length_n = (off_t) info->content_length;
    }

    if (ps_exchange_headers(ctx->exchange, headers,
                            NGX_HTTP_PSEUDOSTREAM_HEADERS, &count)
        != PS_OK)
    {
        return ngx_http_pseudostream_failed(r, ctx, "ps_exchange_headers");
    }

    for (i = 0; i < count; i++) {
        name = headers[i].name;
        nlen = headers[i].name_len;
        value = headers[i].value;
        vlen = headers[i].value_len;

        if (nlen == sizeof("Content-Length") - 1
            && ngx_strncasecmp((u_char *) name, (u_char *) "Content-Length",
                               nlen) == 0)
        {
            continue;
        }

        if (nlen == sizeof("Content-Type") - 1
            && ngx_strncasecmp((u_char *) name, (u_char *) "Content-Type",
                               nlen) == 0)
        {
            /* an error page decides its own */

            if (!error) {
                r->headers_out.content_type.len = vlen;
                r->headers_out.content_type.data = (u_char *) value;
                r->headers_out.content_type_len = vlen;
                r->headers_out.content_type_lowcase = NULL;
            }

            continue;
        }

        /* the strings live in the exchange, freed with the request */

        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
#if (nginx_version >= 1023000)
        h->next = NULL;
#endif
        h->key.len = nlen;
        h->key.data = (u_char *) name;
        h->value.len = vlen;
        h->value.data = (u_char *) value;
        h->lowcase_key = NULL;

        if (nlen == sizeof("ETag") - 1
            && ngx_strncasecmp((u_char *) name, (u_char *) "ETag", nlen) == 0)
        {
            r->headers_out.etag = h;
        }
    }

    return NGX_OK;
}


/* the header, then the body as far as the library lets it go now */

static ngx_int_t
ngx_http_pseudostream_send(ngx_http_request_t *r,
    ngx_http_pseudostream_ctx_t *ctx)
{
    ngx_int_t  rc;

    r->connection->log->action = "sending pseudostream to client";

    if (ctx->left && r->method != NGX_HTTP_HEAD) {

        /* sendfile pushes a piece that starts mid-page in two writes */

        if (ps_exchange_align_file_pages(ctx->exchange, ngx_pagesize)
            != PS_OK)
        {
            return ngx_http_pseudostream_failed(r, ctx,
                                                "ps_exchange_align_file_pages");
        }
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    if (ctx->left == 0) {
        return ngx_http_send_special(r, NGX_HTTP_LAST);
    }

    ngx_http_set_ctx(r, ctx, ngx_http_pseudostream_module);

    /* as ngx_http_set_write_handler() does for nginx's own writer */

    r->read_event_handler = r->discard_body
                            ? ngx_http_discarded_request_body_handler
                            : ngx_http_test_reading;
    r->write_event_handler = ngx_http_pseudostream_writer;

    ctx->start_msec = ngx_current_msec;

    rc = ngx_http_pseudostream_pump(r, ctx);

    if (rc != NGX_DONE) {
        /* all of it went to the output filter already, or an error */
        return rc;
    }

    /* the writer finalizes the request once the body is out */

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

    if (ctx == NULL || ctx->exchange == NULL) {
        ngx_log_error(NGX_LOG_ALERT, c->log, 0,
                      "pseudostream writer without a response");
        ngx_http_finalize_request(r, NGX_ERROR);
        return;
    }

    rc = ngx_http_pseudostream_pump(r, ctx);

    if (rc == NGX_DONE) {
        return;
    }

    /* nginx's writer sends what the filters still hold */

    r->write_event_handler = ngx_http_request_empty_handler;

    ngx_http_finalize_request(r, rc);
}


/*
 * Hands the output filter the pieces the library lets go now, a batch at
 * a time, each batch out of the filters before the next is asked for (its
 * library bytes are valid until then). Returns NGX_DONE when it waits (for
 * a pacing timer or for the socket), otherwise the output filter's answer
 * to the last piece (NGX_OK, NGX_AGAIN) or NGX_ERROR. A wake-up allocates
 * nothing.
 */

static ngx_int_t
ngx_http_pseudostream_pump(ngx_http_request_t *r,
    ngx_http_pseudostream_ctx_t *ctx)
{
    size_t             i, count;
    uint32_t           state;
    uint64_t           now, wait_us, sent;
    ngx_int_t          rc;
    ps_piece          *p;
    ngx_buf_t         *b;
    ngx_msec_t         delay;
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

            /* the last batch is not out yet: flush before asking again */

            rc = ngx_http_output_filter(r, NULL);

            if (rc == NGX_ERROR) {
                return NGX_ERROR;
            }

            if (r->buffered || c->buffered || r->postponed) {
                return ngx_http_pseudostream_wait_socket(r);
            }

            continue;
        }

        /*
         * nginx's monotonic millisecond clock, the one its timers run on,
         * counted from the start of the response (which also survives
         * ngx_msec_t wrapping); a subrequest writes into its parent's
         * response and has no pace of its own: its clock is at the end
         */

        now = (r == r->main)
              ? (uint64_t) (ngx_msec_t) (ngx_current_msec - ctx->start_msec)
                * 1000
              : PS_NOW_UNPACED;

        if (ps_exchange_pieces(ctx->exchange, now, ctx->pieces,
                               NGX_HTTP_PSEUDOSTREAM_PIECES, &count, &wait_us,
                               &state)
            != PS_OK)
        {
            ngx_log_error(NGX_LOG_ERR, c->log, 0,
                          "ps_exchange_pieces() for \"%V\" failed: %s",
                          &ctx->path, ps_last_error());
            return NGX_ERROR;
        }

        if (state == PS_FILL_DONE) {
            return NGX_OK;
        }

        if (state == PS_FILL_WAIT) {

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
                           "http pseudostream wait %M left:%uL",
                           delay, ctx->left);

            /* not a lazy re-arm of the send_timeout timer */

            if (wev->timer_set) {
                ngx_del_timer(wev);
            }

            wev->delayed = 1;
            ngx_add_timer(wev, delay);

            return NGX_DONE;
        }

        /* a memory buffer for library bytes, a file buffer for the rest */

        sent = 0;
        b = NULL;

        for (i = 0; i < count; i++) {
            p = &ctx->pieces[i];
            b = &ctx->bufs[i];
            ngx_memzero(b, sizeof(ngx_buf_t));

            if (p->data) {
                b->start = (u_char *) p->data;

                if (r != r->main) {

                    /* the parent may keep it past the next batch */

                    b->start = ngx_pnalloc(r->pool, (size_t) p->length);
                    if (b->start == NULL) {
                        return NGX_ERROR;
                    }

                    ngx_memcpy(b->start, p->data, (size_t) p->length);
                }

                b->pos = b->start;
                b->last = b->start + p->length;
                b->end = b->last;
                b->memory = 1;

            } else {
                b->file = &ctx->file;
                b->file_pos = (off_t) p->offset;
                b->file_last = (off_t) (p->offset + p->length);
                b->in_file = 1;
            }

            b->tag = (ngx_buf_tag_t) &ngx_http_pseudostream_module;

            ctx->out[i].buf = b;
            ctx->out[i].next = (i + 1 < count) ? &ctx->out[i + 1] : NULL;

            sent += p->length;
        }

        if (b == NULL || sent > ctx->left) {
            ngx_log_error(NGX_LOG_ALERT, c->log, 0,
                          "pseudostream pieces of \"%V\" do not fit "
                          "the response", &ctx->path);
            return NGX_ERROR;
        }

        ctx->left -= sent;

        if (ctx->left == 0) {
            b->last_buf = (r == r->main) ? 1 : 0;
            b->last_in_chain = 1;

        } else {
            /* past postpone_output: each batch goes out when it may */
            b->flush = 1;
        }

        ctx->sending = 1;

        rc = ngx_http_output_filter(r, &ctx->out[0]);

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (ctx->left == 0) {
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


/* a call that cannot fail on good arguments failed: a bug, logged */

static ngx_int_t
ngx_http_pseudostream_failed(ngx_http_request_t *r,
    ngx_http_pseudostream_ctx_t *ctx, const char *call)
{
    ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                  "%s() for \"%V\" failed: %s", call, &ctx->path,
                  ps_last_error());

    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}


#if (NGX_THREADS)

/*
 * With "aio threads", a file whose index is not cached is indexed in the
 * location's thread pool while the request waits, blocked like a thread
 * read of nginx's own. The library's cache finds the build of the same
 * file version under way, if any: then the request waits for that one,
 * without a thread of its own. Returns NGX_DONE when it waits; NGX_OK when
 * the exchange has the file (cached, or its failure); NGX_DECLINED when
 * the worker opens it (no aio threads); or an error.
 */

static ngx_int_t
ngx_http_pseudostream_index_in_thread(ngx_http_request_t *r,
    ngx_http_pseudostream_ctx_t *ctx)
{
    uint32_t                          leads, added;
    ngx_http_core_loc_conf_t         *clcf;
    ngx_http_pseudostream_loc_conf_t  *plcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (clcf->aio != NGX_HTTP_AIO_THREADS) {
        return NGX_DECLINED;
    }

    /* the build this request may run makes what its options need */

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_pseudostream_module);

    if (ps_exchange_configure(ctx->exchange, plcf->options) != PS_OK) {
        return ngx_http_pseudostream_failed(r, ctx, "ps_exchange_configure");
    }

    if (ps_exchange_open_fd_async(ctx->exchange, ctx->of.fd,
                                  (const char *) ctx->path.data, &ctx->build)
        != PS_OK)
    {
        return ngx_http_pseudostream_failed(r, ctx,
                                            "ps_exchange_open_fd_async");
    }

    if (ctx->build == NULL) {
        return NGX_OK;
    }

    if (ps_build_leads(ctx->build, &leads) != PS_OK) {
        return ngx_http_pseudostream_failed(r, ctx, "ps_build_leads");
    }

    if (leads) {
        return ngx_http_pseudostream_run_build(r, ctx);
    }

    /* another request's build: woken by ngx_http_pseudostream_build_done() */

    ctx->wait_event.data = r;
    ctx->wait_event.handler = ngx_http_pseudostream_index_done;
    ctx->wait_event.log = r->connection->log;

    if (ps_build_add_waiter(ctx->build, ctx, &added) != PS_OK) {
        return ngx_http_pseudostream_failed(r, ctx, "ps_build_add_waiter");
    }

    if (!added) {
        /* it has just ended */
        return (ps_exchange_open_build(ctx->exchange, ctx->build) == PS_OK)
               ? NGX_OK
               : ngx_http_pseudostream_failed(r, ctx,
                                              "ps_exchange_open_build");
    }

    ngx_http_pseudostream_block(r, ctx);

    return NGX_DONE;
}


/* the build this request leads, posted to the location's thread pool */

static ngx_int_t
ngx_http_pseudostream_run_build(ngx_http_request_t *r,
    ngx_http_pseudostream_ctx_t *ctx)
{
    ngx_str_t                      name;
    ngx_thread_pool_t             *tp;
    ngx_thread_task_t             *task;
    ngx_http_core_loc_conf_t      *clcf;
    ngx_http_pseudostream_task_t  *work;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

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
                                 sizeof(ngx_http_pseudostream_task_t));
    if (task == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    work = task->ctx;
    work->build = ctx->build;
    work->fd = ctx->of.fd;

    /* O_DIRECT is switched on the served descriptor by the worker's reads */

    if (ctx->of.is_directio) {
        if (ngx_http_pseudostream_open_for_index(r, ctx) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        work->fd = ctx->index_fd;
    }

    task->handler = ngx_http_pseudostream_build_thread;
    task->event.data = r;
    task->event.handler = ngx_http_pseudostream_build_done;

    if (ngx_thread_task_post(tp, task) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "http pseudostream index \"%V\" in a thread", &ctx->path);

    ngx_http_pseudostream_block(r, ctx);

    return NGX_DONE;
}


/* the request waits for an index build, its own or another's */

static void
ngx_http_pseudostream_block(ngx_http_request_t *r,
    ngx_http_pseudostream_ctx_t *ctx)
{
    ngx_http_set_ctx(r, ctx, ngx_http_pseudostream_module);

    /*
     * the request and its pool, which hold the task and the descriptor it
     * reads, live until the build is done: a terminated request is only
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
 * A second descriptor of the file, without O_DIRECT, for the build: the
 * worker switches O_DIRECT on the open file cache's descriptor for its own
 * reads, which must not happen under the pool thread's. Opened by the same
 * path and checked to be the same file.
 */

static ngx_int_t
ngx_http_pseudostream_open_for_index(ngx_http_request_t *r,
    ngx_http_pseudostream_ctx_t *ctx)
{
    ngx_fd_t         fd;
    ngx_file_info_t  fi;

    fd = ngx_open_file(ctx->path.data, NGX_FILE_RDONLY|NGX_FILE_NONBLOCK,
                       NGX_FILE_OPEN, 0);

    if (fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, ngx_errno,
                      ngx_open_file_n " \"%V\" failed", &ctx->path);
        return NGX_ERROR;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR
        || ngx_file_uniq(&fi) != ctx->of.uniq
        || ngx_file_size(&fi) != ctx->of.size
        || ngx_file_mtime(&fi) != ctx->of.mtime)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "\"%V\" changed while opened", &ctx->path);

        if (ngx_close_file(fd) == NGX_FILE_ERROR) {
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, ngx_errno,
                          ngx_close_file_n " \"%V\" failed", &ctx->path);
        }

        return NGX_ERROR;
    }

    ctx->index_fd = fd;
    ctx->log = r->connection->log;

    return NGX_OK;
}


/* runs in a pool thread; a failure reaches every request of the build */

static void
ngx_http_pseudostream_build_thread(void *data, ngx_log_t *log)
{
    ngx_http_pseudostream_task_t  *work = data;

    (void) ps_build_run(work->build, work->fd);
}


/* back in the worker: the requests that waited for this build go on first */

static void
ngx_http_pseudostream_build_done(ngx_event_t *ev)
{
    size_t                        i, n;
    void                         *waiting[16];
    ngx_http_request_t           *r;
    ngx_http_pseudostream_ctx_t  *ctx, *w;

    r = ev->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_pseudostream_module);

    do {
        if (ps_build_take_waiters(ctx->build, waiting, 16, &n) != PS_OK) {
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                          "ps_build_take_waiters() failed: %s",
                          ps_last_error());
            break;
        }

        for (i = 0; i < n; i++) {
            w = waiting[i];
            ngx_post_event(&w->wait_event, &ngx_posted_events);
        }

    } while (n);

    ngx_http_pseudostream_index_done(ev);
}


/* the build a request led or waited for has ended */

static void
ngx_http_pseudostream_index_done(ngx_event_t *ev)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = ev->data;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    r->main->blocked--;
    r->aio = 0;

    /* ngx_http_pseudostream_indexed(), or nginx's finalizer if terminated */

    r->write_event_handler(r);

    ngx_http_run_posted_requests(c);
}


static void
ngx_http_pseudostream_indexed(ngx_http_request_t *r)
{
    ngx_int_t                     rc;
    ngx_http_pseudostream_ctx_t  *ctx;

    if (r->aio) {
        /* a write event while the index is being built */
        return;
    }

    r->write_event_handler = ngx_http_request_empty_handler;

    ctx = ngx_http_get_module_ctx(r, ngx_http_pseudostream_module);

    /* the index, even one the cache did not keep, or why there is none */

    rc = (ps_exchange_open_build(ctx->exchange, ctx->build) == PS_OK)
         ? ngx_http_pseudostream_respond(r, ctx)
         : ngx_http_pseudostream_failed(r, ctx, "ps_exchange_open_build");

    ngx_http_finalize_request(r, rc);
}

#endif


static void
ngx_http_pseudostream_cleanup(void *data)
{
    ngx_http_pseudostream_ctx_t  *ctx = data;

    ps_exchange_free(ctx->exchange);

#if (NGX_THREADS)

    ps_build_free(ctx->build);

    /* after the exchange and the build that read it */

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
    /* set by ngx_pcalloc(): settings = NULL */

    return ngx_pcalloc(cf->pool, sizeof(ngx_http_pseudostream_main_conf_t));
}


static void *
ngx_http_pseudostream_create_loc_conf(ngx_conf_t *cf)
{
    /* set by ngx_pcalloc(): settings = NULL, options = NULL */

    return ngx_pcalloc(cf->pool, sizeof(ngx_http_pseudostream_loc_conf_t));
}


/*
 * A location's options: its parent's settings, then its own, given to the
 * library in that order (a later one replaces an earlier one of the same
 * key). A location without settings of its own shares its parent's.
 */

static char *
ngx_http_pseudostream_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_pseudostream_loc_conf_t *prev = parent;
    ngx_http_pseudostream_loc_conf_t *conf = child;

    ngx_uint_t           i, n;
    ngx_keyval_t        *kv, *own;
    ngx_pool_cleanup_t  *cln;

    if (conf->settings == NULL && prev->options) {
        conf->settings = prev->settings;
        conf->options = prev->options;
        return NGX_CONF_OK;
    }

    own = conf->settings ? conf->settings->elts : NULL;
    n = conf->settings ? conf->settings->nelts : 0;

    if (prev->settings) {
        conf->settings = ngx_array_create(cf->pool, prev->settings->nelts + n,
                                          sizeof(ngx_keyval_t));
        if (conf->settings == NULL) {
            return NGX_CONF_ERROR;
        }

        kv = ngx_array_push_n(conf->settings, prev->settings->nelts);
        if (kv == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memcpy(kv, prev->settings->elts,
                   prev->settings->nelts * sizeof(ngx_keyval_t));

        if (n) {
            kv = ngx_array_push_n(conf->settings, n);
            if (kv == NULL) {
                return NGX_CONF_ERROR;
            }

            ngx_memcpy(kv, own, n * sizeof(ngx_keyval_t));
        }
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    if (ps_options_new(&conf->options) != PS_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ps_options_new() failed: %s", ps_last_error());
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_pseudostream_free_options;
    cln->data = conf->options;

    kv = conf->settings ? conf->settings->elts : NULL;
    n = conf->settings ? conf->settings->nelts : 0;

    for (i = 0; i < n; i++) {
        /* checked when read: see ngx_http_pseudostream_set() */

        if (ps_options_set(conf->options, (const char *) kv[i].key.data,
                           (const char *) kv[i].value.data)
            != PS_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "pseudostream_%V: %s", &kv[i].key,
                               ps_last_error());
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
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


/*
 * "pseudostream_<key> value ...;": the key is the directive's name without
 * its prefix, the value its arguments joined by spaces. The library checks
 * both now, so that nginx -t names a wrong one with its file and line.
 */

static char *
ngx_http_pseudostream_set(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_array_t **settings = conf;

    u_char        *p;
    size_t         len;
    ngx_str_t     *value;
    ps_status      st;
    ngx_uint_t     i;
    ps_options    *check;
    ngx_keyval_t  *kv;

    value = cf->args->elts;

    if (*settings == NULL) {
        *settings = ngx_array_create(cf->pool, 4, sizeof(ngx_keyval_t));
        if (*settings == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    kv = ngx_array_push(*settings);
    if (kv == NULL) {
        return NGX_CONF_ERROR;
    }

    /* NUL-terminated copies, kept for the merge */

    kv->key.len = value[0].len - (sizeof("pseudostream_") - 1);
    kv->key.data = ngx_pnalloc(cf->pool, kv->key.len + 1);
    if (kv->key.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_cpystrn(kv->key.data, value[0].data + sizeof("pseudostream_") - 1,
                kv->key.len + 1);

    len = 0;
    for (i = 1; i < cf->args->nelts; i++) {
        len += value[i].len + 1;
    }

    kv->value.data = ngx_pnalloc(cf->pool, len);
    if (kv->value.data == NULL) {
        return NGX_CONF_ERROR;
    }

    p = kv->value.data;
    for (i = 1; i < cf->args->nelts; i++) {
        if (i > 1) {
            *p++ = ' ';
        }

        p = ngx_cpymem(p, value[i].data, value[i].len);
    }

    *p = '\0';
    kv->value.len = p - kv->value.data;

    if (cmd->conf == NGX_HTTP_MAIN_CONF_OFFSET) {
        /* process-wide: taken now, and again in each worker */
        st = ps_options_set(NULL, (const char *) kv->key.data,
                            (const char *) kv->value.data);

    } else if (ps_options_new(&check) == PS_OK) {
        st = ps_options_set(check, (const char *) kv->key.data,
                            (const char *) kv->value.data);
        ps_options_free(check);

    } else {
        st = PS_ERR_PANIC;
    }

    if (st != PS_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", ps_last_error());
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_pseudostream_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                          i;
    ngx_keyval_t                       *kv;
    ngx_http_pseudostream_main_conf_t  *pmcf;

    pmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_pseudostream_module);

    if (pmcf == NULL || pmcf->settings == NULL) {
        return NGX_OK;
    }

    /* the index cache and the moov limit are per process */

    kv = pmcf->settings->elts;

    for (i = 0; i < pmcf->settings->nelts; i++) {
        if (ps_options_set(NULL, (const char *) kv[i].key.data,
                           (const char *) kv[i].value.data)
            != PS_OK)
        {
            ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                          "pseudostream_%V: %s", &kv[i].key,
                          ps_last_error());
        }
    }

    return NGX_OK;
}
