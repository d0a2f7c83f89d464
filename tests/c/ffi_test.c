/*
 * Exercises the C ABI the way a host does: the exchange (options by name,
 * the whole answer, its body as pieces and as copies, builds off an event
 * loop), and the lower layer it rests on (open -> info -> plan -> stream ->
 * free), plus the error paths. Built with -Wall -Wextra -Werror and
 * AddressSanitizer/UBSan by `make c-test`. Usage: ffi_test SAMPLE.flv
 */
#define _POSIX_C_SOURCE 200809L

#include "pseudostream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <unistd.h>

static int checks, failures;

#define CHECK(cond)                                                         \
    do {                                                                    \
        checks++;                                                           \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: CHECK failed: %s (last error: %s)\n",   \
                    __FILE__, __LINE__, #cond, ps_last_error());            \
            failures++;                                                     \
        }                                                                   \
    } while (0)

#define CHECK_STATUS(call, expected) CHECK((call) == (expected))

static unsigned char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)n);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

struct memory_source {
    const unsigned char *data;
    size_t len;
    unsigned calls;
};

static int32_t memory_read_at(void *ctx, uint64_t offset, uint8_t *buf, size_t len,
                              size_t *out_read) {
    struct memory_source *m = ctx;
    m->calls++;
    if (offset >= m->len) {
        *out_read = 0;
        return 0;
    }
    size_t n = m->len - (size_t)offset;
    if (n > len) n = len;
    memcpy(buf, m->data + offset, n);
    *out_read = n;
    return 0;
}

static int32_t failing_read_at(void *ctx, uint64_t offset, uint8_t *buf, size_t len,
                               size_t *out_read) {
    (void)ctx; (void)offset; (void)buf; (void)len; (void)out_read;
    return -5;
}

/* Drains a stream under a fake clock; returns the bytes in a malloc'd buffer. */
static unsigned char *drain(ps_stream *stream, uint64_t expected, size_t cap,
                            uint64_t *waits, uint64_t *elapsed_us) {
    unsigned char *out = malloc(expected ? expected : 1);
    unsigned char *buf = malloc(cap);
    uint64_t got = 0, now = 5000000, start = now;
    *waits = 0;
    for (;;) {
        size_t written = 99;
        uint64_t wait_us = 99;
        uint32_t state = 99;
        ps_status s = ps_stream_fill(stream, buf, cap, now, &written, &wait_us, &state);
        CHECK(s == PS_OK);
        if (s != PS_OK) break;
        if (state == PS_FILL_DONE) {
            CHECK(written == 0 && wait_us == 0);
            break;
        }
        if (state == PS_FILL_WAIT) {
            CHECK(written == 0 && wait_us > 0);
            now += wait_us;
            (*waits)++;
            continue;
        }
        CHECK(state == PS_FILL_DATA && written > 0 && wait_us == 0);
        CHECK(got + written <= expected);
        if (got + written > expected) break;
        memcpy(out + got, buf, written);
        got += written;
    }
    CHECK(got == expected);
    *elapsed_us = now - start;
    free(buf);
    return out;
}

static void test_errors(const char *not_flv) {
    ps_media *media = (ps_media *)0x1; /* must stay untouched on failure */
    CHECK_STATUS(ps_media_open("/nonexistent/x.flv", &media), PS_ERR_NOT_FOUND);
    CHECK(media == (ps_media *)0x1);
    CHECK(strstr(ps_last_error(), "nonexistent") != NULL);
    CHECK(ps_status_http(PS_ERR_NOT_FOUND) == 404);
    CHECK_STATUS(ps_media_open(not_flv, &media), PS_ERR_UNSUPPORTED_FORMAT);
    CHECK(ps_status_http(PS_ERR_UNSUPPORTED_FORMAT) == 415);
    CHECK_STATUS(ps_media_open(NULL, &media), PS_ERR_NULL_ARG);
    CHECK_STATUS(ps_media_open("x", NULL), PS_ERR_NULL_ARG);
    CHECK(strcmp(ps_strerror(PS_ERR_BAD_REQUEST), "bad request") == 0);
    CHECK(strcmp(ps_strerror(9999), "unknown status") == 0);

    /* A pointer that is not a live handle is refused, not trusted. */
    uint64_t not_a_handle[4] = {0, 0, 0, 0};
    ps_media_info info;
    CHECK_STATUS(ps_media_get_info((const ps_media *)not_a_handle, &info), PS_ERR_BAD_HANDLE);

    /* Freeing NULL is a no-op. */
    ps_media_free(NULL);
    ps_plan_free(NULL);
    ps_stream_free(NULL);
    ps_options_free(NULL);
    ps_request_free(NULL);
    ps_pacer_free(NULL);

    /* Bad queries are bad requests, never a whole-file fallback. */
    const char *bad[] = {"start=abc", "start=-1", "start=1&start=2", "start=99999999999999999999",
                         "bstart=1&start=2"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ps_request *req = NULL;
        CHECK_STATUS(ps_request_parse(NULL, bad[i], strlen(bad[i]), &req), PS_ERR_BAD_REQUEST);
        CHECK(req == NULL);
    }
    ps_options *opts = NULL;
    CHECK_STATUS(ps_options_new(&opts), PS_OK);
    CHECK_STATUS(ps_options_set_prefix_mode(opts, 42), PS_ERR_INVALID_ARG);
    CHECK_STATUS(ps_options_set_start_unit(opts, PS_UNIT_MILLISECONDS), PS_ERR_INVALID_ARG);
    CHECK_STATUS(ps_options_set_param_name(opts, 99, "x"), PS_ERR_INVALID_ARG);
    CHECK_STATUS(ps_options_set_param_name(opts, PS_PARAM_START, "end"), PS_ERR_INVALID_ARG);
    CHECK_STATUS(ps_options_set_param_name(opts, PS_PARAM_END, "until"), PS_OK);
    CHECK_STATUS(ps_options_set_param_name(opts, PS_PARAM_START, "end"), PS_OK);
    ps_options_free(opts);

    /* A failing read callback is an I/O error. */
    CHECK_STATUS(ps_media_open_source(failing_read_at, NULL, 1000, NULL, 0, &media), PS_ERR_IO);
    CHECK_STATUS(ps_media_open_source(NULL, NULL, 1000, NULL, 0, &media), PS_ERR_NULL_ARG);
}

static void test_serving(const char *path) {
    size_t file_len = 0;
    unsigned char *file = read_file(path, &file_len);
    CHECK(file != NULL);
    if (!file) return;

    ps_media *media = NULL;
    CHECK_STATUS(ps_media_open(path, &media), PS_OK);
    if (!media) return;

    ps_media_info info;
    CHECK_STATUS(ps_media_get_info(media, &info), PS_OK);
    CHECK(info.format == 1);
    CHECK(info.size == file_len);
    CHECK(info.has_video == 1 && info.has_audio == 1);
    CHECK(info.video_codec == 7 && info.audio_codec == 10);
    CHECK(info.keyframe_count >= 10);
    CHECK(info.duration_ms > 10000);
    CHECK(info.bitrate_bps > 0);

    uint64_t prev_offset = 0, time_ms = 0, offset = 0;
    for (uint64_t i = 0; i < info.keyframe_count; i++) {
        CHECK_STATUS(ps_media_keyframe(media, i, &time_ms, &offset), PS_OK);
        CHECK(offset > prev_offset && offset < file_len);
        CHECK(file[offset] == 9); /* a video tag */
        prev_offset = offset;
    }
    CHECK_STATUS(ps_media_keyframe(media, info.keyframe_count, &time_ms, &offset),
                 PS_ERR_INVALID_ARG);

    /* JSON export: too small first, then the size it asked for. */
    char small[8];
    size_t needed = 0;
    CHECK_STATUS(ps_media_info_json(media, small, sizeof small, &needed), PS_ERR_BUFFER_TOO_SMALL);
    CHECK(needed > sizeof small);
    char *json = malloc(needed);
    size_t json_len = 0;
    CHECK_STATUS(ps_media_info_json(media, json, needed, &json_len), PS_OK);
    CHECK(json_len + 1 == needed && strlen(json) == json_len);
    CHECK(strstr(json, "\"keyframes\":[") != NULL);
    free(json);

    /* A time seek to 10.5 s with the query parser, seconds as the unit. */
    ps_options *opts = NULL;
    CHECK_STATUS(ps_options_new(&opts), PS_OK);
    CHECK_STATUS(ps_options_set_start_unit(opts, PS_UNIT_SECONDS), PS_OK);
    const char *query = "start=10.5&unrelated=1";
    ps_request *req = NULL;
    CHECK_STATUS(ps_request_parse(opts, query, strlen(query), &req), PS_OK);
    ps_plan *plan = NULL;
    CHECK_STATUS(ps_plan_new(media, opts, req, &plan), PS_OK);
    ps_plan_info pi;
    CHECK_STATUS(ps_plan_get_info(plan, &pi), PS_OK);
    CHECK(pi.start_ms <= 10500 && pi.start_ms + 4000 > 10500);
    CHECK(pi.whole_file == 0);
    CHECK(pi.length == pi.prefix_length + (pi.file_to - pi.file_from));
    CHECK(pi.file_to == file_len);
    CHECK(file[pi.file_from] == 9);
    const uint8_t *prefix = NULL;
    size_t prefix_len = 0;
    CHECK_STATUS(ps_plan_prefix(plan, &prefix, &prefix_len), PS_OK);
    CHECK(prefix_len == pi.prefix_length && prefix_len > 13);
    CHECK(memcmp(prefix, "FLV\x01\x05\0\0\0\x09\0\0\0\0", 13) == 0);
    const char *etag = NULL, *ctype = NULL;
    CHECK_STATUS(ps_plan_etag(plan, &etag), PS_OK);
    CHECK(etag[0] == '"' && etag[strlen(etag) - 1] == '"');
    CHECK_STATUS(ps_plan_content_type(plan, &ctype), PS_OK);
    CHECK(strcmp(ctype, "video/x-flv") == 0);

    /* The whole response, unpaced: prefix then the file range. */
    ps_stream *stream = NULL;
    uint64_t waits = 0, elapsed = 0, remaining = 0;
    CHECK_STATUS(ps_stream_new(media, plan, 0, pi.length, &stream), PS_OK);
    CHECK_STATUS(ps_stream_remaining(stream, &remaining), PS_OK);
    CHECK(remaining == pi.length);
    unsigned char *body = drain(stream, pi.length, 7000, &waits, &elapsed);
    CHECK(waits == 0);
    CHECK(memcmp(body, prefix, prefix_len) == 0);
    CHECK(memcmp(body + prefix_len, file + pi.file_from, pi.file_to - pi.file_from) == 0);
    ps_stream_free(stream);

    /* Range: 206 with a window that crosses the prefix boundary. */
    ps_response resp;
    CHECK_STATUS(ps_plan_respond(plan, "bytes=5-99", NULL, NULL, NULL, &resp), PS_OK);
    CHECK(resp.status == 206 && resp.first == 5 && resp.length == 95);
    char content_range[64];
    size_t cr_len = 0;
    CHECK_STATUS(ps_plan_content_range(plan, &resp, content_range, sizeof content_range, &cr_len),
                 PS_OK);
    char expected_cr[64];
    snprintf(expected_cr, sizeof expected_cr, "bytes 5-99/%llu", (unsigned long long)pi.length);
    CHECK(strcmp(content_range, expected_cr) == 0);
    ps_slice slice;
    CHECK_STATUS(ps_plan_slice(plan, resp.first, resp.length, &slice), PS_OK);
    CHECK(slice.prefix_from == 5 && slice.prefix_to == prefix_len);
    CHECK(slice.file_from == pi.file_from);
    CHECK(slice.file_to - slice.file_from + (slice.prefix_to - slice.prefix_from) == 95);
    CHECK_STATUS(ps_stream_new(media, plan, resp.first, resp.length, &stream), PS_OK);
    unsigned char *window = drain(stream, resp.length, 4096, &waits, &elapsed);
    CHECK(memcmp(window, body + 5, 95) == 0);
    free(window);
    ps_stream_free(stream);
    free(body);

    /* Validators and unsatisfiable ranges. */
    CHECK_STATUS(ps_plan_respond(plan, NULL, NULL, etag, NULL, &resp), PS_OK);
    CHECK(resp.status == 304);
    CHECK_STATUS(ps_plan_respond(plan, "bytes=0-1", "\"other\"", NULL, NULL, &resp), PS_OK);
    CHECK(resp.status == 412);
    CHECK_STATUS(ps_plan_respond(plan, "bytes=999999999-", NULL, NULL, NULL, &resp), PS_OK);
    CHECK(resp.status == 416);
    CHECK(resp.burst_bytes == 0 && resp.rate_bytes_per_s == 0);

    /* One pacing policy: every body is paced by the plan, Range included;
       bodyless answers are not. */
    {
        ps_options *paced = NULL;
        ps_plan *paced_plan = NULL;
        ps_response r;
        CHECK_STATUS(ps_options_new(&paced), PS_OK);
        CHECK_STATUS(ps_options_set_rate(paced, 50000), PS_OK);
        CHECK_STATUS(ps_options_set_burst_bytes(paced, 1000), PS_OK);
        CHECK_STATUS(ps_plan_new(media, paced, NULL, &paced_plan), PS_OK);
        CHECK_STATUS(ps_plan_respond(paced_plan, NULL, NULL, NULL, NULL, &r), PS_OK);
        CHECK(r.status == 200 && r.burst_bytes == 1000 && r.rate_bytes_per_s == 50000);
        CHECK_STATUS(ps_plan_respond(paced_plan, "bytes=100-", NULL, NULL, NULL, &r), PS_OK);
        CHECK(r.status == 206 && r.burst_bytes == 1000 && r.rate_bytes_per_s == 50000);
        CHECK_STATUS(ps_plan_respond(paced_plan, NULL, NULL, "*", NULL, &r), PS_OK);
        CHECK(r.status == 304 && r.burst_bytes == 0 && r.rate_bytes_per_s == 0);
        ps_plan_free(paced_plan);

        /* Metadata modes: a file with valid keyframe metadata is served as
           stored unless rewriting is forced. */
        ps_plan_info info;
        CHECK_STATUS(ps_options_set_metadata(paced, 3), PS_ERR_INVALID_ARG);
        CHECK_STATUS(ps_options_set_metadata(paced, PS_METADATA_MISSING), PS_OK);
        CHECK_STATUS(ps_plan_new(media, paced, NULL, &paced_plan), PS_OK);
        CHECK_STATUS(ps_plan_get_info(paced_plan, &info), PS_OK);
        CHECK(info.whole_file == 1 && info.prefix_length == 0);
        ps_plan_free(paced_plan);
        CHECK_STATUS(ps_options_set_metadata(paced, PS_METADATA_ALWAYS), PS_OK);
        CHECK_STATUS(ps_plan_new(media, paced, NULL, &paced_plan), PS_OK);
        CHECK_STATUS(ps_plan_get_info(paced_plan, &info), PS_OK);
        CHECK(info.whole_file == 0 && info.prefix_length > 13 && info.file_to == file_len);
        const uint8_t *head = NULL;
        size_t head_len = 0;
        CHECK_STATUS(ps_plan_prefix(paced_plan, &head, &head_len), PS_OK);
        CHECK(head_len == info.prefix_length && memcmp(head, "FLV", 3) == 0);
        CHECK(head[13] == 18); /* the first tag is the new onMetaData */
        ps_plan_free(paced_plan);
        ps_options_free(paced);
    }
    CHECK_STATUS(ps_stream_new(media, plan, pi.length, 1, &stream), PS_ERR_INVALID_ARG);

    /* Another seek has another ETag. */
    ps_request *other = NULL;
    ps_plan *other_plan = NULL;
    const char *other_etag = NULL;
    CHECK_STATUS(ps_request_new(&other), PS_OK);
    CHECK_STATUS(ps_request_set_start(other, PS_UNIT_MILLISECONDS, 20000), PS_OK);
    CHECK_STATUS(ps_request_set_prefix_mode(other, PS_PREFIX_HEADER), PS_OK);
    CHECK_STATUS(ps_plan_new(media, NULL, other, &other_plan), PS_OK);
    CHECK_STATUS(ps_plan_etag(other_plan, &other_etag), PS_OK);
    CHECK(strcmp(etag, other_etag) != 0);
    CHECK_STATUS(ps_plan_prefix(other_plan, &prefix, &prefix_len), PS_OK);
    CHECK(prefix_len == 13);
    ps_plan_free(other_plan);
    ps_request_free(other);

    /* A start past the end is a range error (416), not the whole file. */
    ps_request *past = NULL;
    CHECK_STATUS(ps_request_parse(opts, "start=99999", 11, &past), PS_OK);
    CHECK_STATUS(ps_plan_new(media, opts, past, &other_plan), PS_ERR_RANGE_NOT_SATISFIABLE);
    CHECK(ps_status_http(PS_ERR_RANGE_NOT_SATISFIABLE) == 416);
    ps_request_free(past);

    /* Pacing: 3 s of media at once, then 1.25x the bitrate. */
    CHECK_STATUS(ps_options_set_burst_ms(opts, 3000), PS_OK);
    CHECK_STATUS(ps_options_set_rate_auto(opts, 1250), PS_OK);
    ps_plan *paced = NULL;
    CHECK_STATUS(ps_plan_new(media, opts, req, &paced), PS_OK);
    ps_plan_info ppi;
    CHECK_STATUS(ps_plan_get_info(paced, &ppi), PS_OK);
    CHECK(ppi.rate_bytes_per_s == info.bitrate_bps * 1250 / 8000);
    /* the burst in media time comes on top of the prefix */
    CHECK(ppi.burst_bytes == info.bitrate_bps * 3000 / 8000 + ppi.prefix_length);
    CHECK_STATUS(ps_stream_new(media, paced, 0, ppi.length, &stream), PS_OK);
    body = drain(stream, ppi.length, 16384, &waits, &elapsed);
    CHECK(waits > 0);
    double expected_s = (double)(ppi.length - ppi.burst_bytes) / (double)ppi.rate_bytes_per_s;
    double took_s = (double)elapsed / 1e6;
    CHECK(took_s > expected_s * 0.99 && took_s < expected_s * 1.01);
    free(body);
    ps_stream_free(stream);
    ps_plan_free(paced);

    /* The stand-alone pacer. */
    ps_pacer *pacer = NULL;
    uint64_t allowed = 0, wait_us = 0;
    CHECK_STATUS(ps_pacer_new(1000, 10000, &pacer), PS_OK);
    CHECK_STATUS(ps_pacer_allow(pacer, 0, 5000, &allowed, &wait_us), PS_OK);
    CHECK(allowed == 1000 && wait_us == 0);
    CHECK_STATUS(ps_pacer_consume(pacer, allowed), PS_OK);
    CHECK_STATUS(ps_pacer_allow(pacer, 0, 5000, &allowed, &wait_us), PS_OK);
    CHECK(allowed == 0 && wait_us > 0);
    /* After the burst, pieces of 2 s of the rate (20000 bytes) go when the
       schedule reaches their middle: at 1 s. */
    CHECK_STATUS(ps_pacer_allow(pacer, 999999, 50000, &allowed, &wait_us), PS_OK);
    CHECK(allowed == 0 && wait_us == 1);
    CHECK_STATUS(ps_pacer_allow(pacer, 1000000, 50000, &allowed, &wait_us), PS_OK);
    CHECK(allowed == 20000);
    ps_pacer_free(pacer);

    /* Aligned to file pages: the window is 100 prefix bytes, then the file
       from byte 10; the 20000-byte piece due at 1 s ends at file byte 20480. */
    CHECK_STATUS(ps_pacer_new(1000, 10000, &pacer), PS_OK);
    CHECK_STATUS(ps_pacer_align_file_pages(pacer, 100, 10, 4096), PS_OK);
    CHECK_STATUS(ps_pacer_allow(pacer, 0, 50000, &allowed, &wait_us), PS_OK);
    CHECK(allowed == 1000);
    CHECK_STATUS(ps_pacer_consume(pacer, allowed), PS_OK);
    CHECK_STATUS(ps_pacer_allow(pacer, 1000000, 50000, &allowed, &wait_us), PS_OK);
    CHECK(allowed == 20480 - 10 + 100 - 1000);
    CHECK((10 + 1000 + allowed - 100) % 4096 == 0);
    ps_pacer_free(pacer);
    CHECK_STATUS(ps_pacer_align_file_pages(NULL, 0, 0, 4096), PS_ERR_NULL_ARG);

    ps_plan_free(plan);
    ps_request_free(req);
    ps_options_free(opts);

    /* Through a descriptor the host keeps: same index, from the cache. */
    FILE *kept = fopen(path, "rb");
    CHECK(kept != NULL);
    if (kept) {
        ps_media *by_fd = NULL;
        ps_media_info fd_info;
        CHECK_STATUS(ps_media_open_fd(fileno(kept), &by_fd), PS_OK);
        CHECK_STATUS(ps_media_get_info(by_fd, &fd_info), PS_OK);
        CHECK(fd_info.keyframe_count == info.keyframe_count && fd_info.size == file_len);
        ps_media_free(by_fd);
        fclose(kept);
    }
    CHECK_STATUS(ps_media_open_fd(-1, &media), PS_ERR_INVALID_ARG);

    /* A lent descriptor with the host's stat: same index, no system call. */
    kept = fopen(path, "rb");
    CHECK(kept != NULL);
    if (kept) {
        ps_media *lent = NULL;
        ps_media_info lent_info;
        CHECK_STATUS(ps_media_open_fd_borrowed(fileno(kept), file_len, 0, 1234567, 42, &lent),
                     PS_OK);
        CHECK_STATUS(ps_media_get_info(lent, &lent_info), PS_OK);
        CHECK(lent_info.keyframe_count == info.keyframe_count);
        ps_plan *lent_plan = NULL;
        ps_plan_info lpi;
        CHECK_STATUS(ps_plan_new(lent, NULL, NULL, &lent_plan), PS_OK);
        CHECK_STATUS(ps_plan_get_info(lent_plan, &lpi), PS_OK);
        CHECK(lpi.whole_file == 1 && lpi.length == file_len);
        ps_stream *lent_stream = NULL;
        CHECK_STATUS(ps_stream_new(lent, lent_plan, 0, lpi.length, &lent_stream), PS_OK);
        unsigned char *copy = drain(lent_stream, lpi.length, 65536, &waits, &elapsed);
        CHECK(memcmp(copy, file, file_len) == 0);
        free(copy);
        ps_stream_free(lent_stream);
        ps_plan_free(lent_plan);
        ps_media_free(lent);
        CHECK(fgetc(kept) != EOF); /* the library did not close it */
        fclose(kept);
    }
    CHECK_STATUS(ps_media_open_fd_borrowed(-1, 1, 0, 1, 0, &media), PS_ERR_INVALID_ARG);

    /* Only from the cache: "not cached" until an open has indexed the file. */
    kept = fopen(path, "rb");
    CHECK(kept != NULL);
    if (kept) {
        int fd = fileno(kept);
        uint64_t hits_before = 0, hits_after = 0;
        ps_media *cached = (ps_media *)0x1; /* must stay untouched on a miss */
        CHECK_STATUS(ps_media_open_fd_borrowed_cached(fd, file_len, 0, 7654321, 42, &cached),
                     PS_ERR_NOT_CACHED);
        CHECK(cached == (ps_media *)0x1);
        CHECK(strstr(ps_last_error(), "not cached") != NULL);
        CHECK(strcmp(ps_strerror(PS_ERR_NOT_CACHED), "index not cached") == 0);
        CHECK(ps_status_http(PS_ERR_NOT_CACHED) == 500);
        ps_media *built = NULL;
        CHECK_STATUS(ps_media_open_fd_borrowed(fd, file_len, 0, 7654321, 42, &built), PS_OK);
        CHECK_STATUS(ps_cache_stats(NULL, NULL, &hits_before, NULL), PS_OK);
        cached = NULL;
        CHECK_STATUS(ps_media_open_fd_borrowed_cached(fd, file_len, 0, 7654321, 42, &cached),
                     PS_OK);
        CHECK_STATUS(ps_cache_stats(NULL, NULL, &hits_after, NULL), PS_OK);
        CHECK(hits_after == hits_before + 1);
        ps_media_info cached_info;
        CHECK_STATUS(ps_media_get_info(cached, &cached_info), PS_OK);
        CHECK(cached_info.keyframe_count == info.keyframe_count);
        /* It reads through the lent descriptor like any media. */
        ps_plan *cached_plan = NULL;
        CHECK_STATUS(ps_plan_new(cached, NULL, NULL, &cached_plan), PS_OK);
        ps_plan_free(cached_plan);
        /* Another version of the same file is not the cached one. */
        ps_media *other = NULL;
        CHECK_STATUS(ps_media_open_fd_borrowed_cached(fd, file_len, 0, 7654321, 43, &other),
                     PS_ERR_NOT_CACHED);
        CHECK(other == NULL);
        ps_media_free(cached);
        ps_media_free(built);
        fclose(kept);
    }
    CHECK_STATUS(ps_media_open_fd_borrowed_cached(-1, 1, 0, 1, 0, &media), PS_ERR_INVALID_ARG);
    CHECK_STATUS(ps_media_open_fd_borrowed_cached(0, 1, 0, 1, 0, NULL), PS_ERR_NULL_ARG);

    /* The same file through a read callback indexes the same way. */
    struct memory_source src = {file, file_len, 0};
    ps_media *from_cb = NULL;
    CHECK_STATUS(ps_media_open_source(memory_read_at, &src, file_len, "mem:sample", 1, &from_cb),
                 PS_OK);
    ps_media_info cb_info;
    CHECK_STATUS(ps_media_get_info(from_cb, &cb_info), PS_OK);
    CHECK(cb_info.keyframe_count == info.keyframe_count);
    CHECK(cb_info.duration_ms == info.duration_ms);
    CHECK(src.calls > 0);
    unsigned calls_after_first_open = src.calls;
    ps_media *again = NULL;
    CHECK_STATUS(ps_media_open_source(memory_read_at, &src, file_len, "mem:sample", 1, &again),
                 PS_OK);
    CHECK(src.calls == calls_after_first_open); /* cached: no index work */
    uint64_t hits = 0;
    CHECK_STATUS(ps_cache_stats(NULL, NULL, &hits, NULL), PS_OK);
    CHECK(hits >= 1);
    ps_media_free(again);
    ps_media_free(from_cb);

    ps_media_free(media);
    free(file);
}

/* Plans `query` on `media` under `opts`; returns the status, the plan in *out. */
static ps_status plan_query(ps_media *media, ps_options *opts, const char *query,
                            ps_plan **out) {
    ps_request *req = NULL;
    ps_status s = ps_request_parse(opts, query, strlen(query), &req);
    if (s != PS_OK) return s;
    s = ps_plan_new(media, opts, req, out);
    ps_request_free(req);
    return s;
}

static void test_mp4(const char *path) {
    ps_media *media = NULL;
    CHECK_STATUS(ps_media_open(path, &media), PS_OK);
    ps_media_info info;
    CHECK_STATUS(ps_media_get_info(media, &info), PS_OK);
    CHECK(info.format == PS_FORMAT_MP4);
    CHECK(info.video_codec == 0x61766331u); /* 'avc1' */
    CHECK(info.audio_codec == 0x6d703461u); /* 'mp4a' */
    CHECK(info.keyframe_count > 1 && info.duration_ms > 6000);

    ps_options *opts = NULL;
    CHECK_STATUS(ps_options_new(&opts), PS_OK);
    CHECK_STATUS(ps_options_set_cut_mode(opts, 2), PS_ERR_INVALID_ARG);

    /* The default unit is bytes, yet MP4 reads start/end as seconds. */
    ps_plan *plan = NULL;
    CHECK_STATUS(plan_query(media, opts, "start=5.5&end=8", &plan), PS_OK);
    ps_plan_info pi;
    CHECK_STATUS(ps_plan_get_info(plan, &pi), PS_OK);
    CHECK(pi.format == PS_FORMAT_MP4 && pi.start_ms == 5500 && pi.end_ms == 8000);
    CHECK(pi.whole_file == 0 && pi.file_to <= info.size);
    const uint8_t *prefix = NULL;
    size_t prefix_len = 0;
    CHECK_STATUS(ps_plan_prefix(plan, &prefix, &prefix_len), PS_OK);
    CHECK(prefix_len > 16 && memcmp(prefix + 4, "ftyp", 4) == 0);
    CHECK(memcmp(prefix + prefix_len - 4, "mdat", 4) == 0);
    const char *type = NULL;
    CHECK_STATUS(ps_plan_content_type(plan, &type), PS_OK);
    CHECK(strcmp(type, "video/mp4") == 0);
    ps_plan_free(plan);

    CHECK_STATUS(ps_options_set_cut_mode(opts, PS_CUT_KEYFRAME), PS_OK);
    CHECK_STATUS(plan_query(media, opts, "start=5.5", &plan), PS_OK);
    CHECK_STATUS(ps_plan_get_info(plan, &pi), PS_OK);
    CHECK(pi.start_ms == 4000); /* the keyframe before 5.5 s (GOP of 2 s) */
    ps_plan_free(plan);

    CHECK_STATUS(plan_query(media, opts, "fs=1000", &plan), PS_ERR_BAD_REQUEST);
    CHECK_STATUS(plan_query(media, opts, "start=6&end=5", &plan), PS_ERR_BAD_REQUEST);
    CHECK_STATUS(plan_query(media, opts, "start=9999", &plan), PS_ERR_RANGE_NOT_SATISFIABLE);

    /* A moov over the limit is refused, cached index or not. */
    CHECK_STATUS(ps_mp4_set_moov_limit(100), PS_OK);
    ps_media *again = NULL;
    CHECK_STATUS(ps_media_open(path, &again), PS_ERR_UNSUPPORTED_FORMAT);
    CHECK(strstr(ps_last_error(), "limit") != NULL);
    CHECK_STATUS(ps_mp4_set_moov_limit(0), PS_OK);
    CHECK_STATUS(ps_media_open(path, &again), PS_OK);
    ps_media_free(again);

    ps_options_free(opts);
    ps_media_free(media);
}

/* The value of header `name` in an answered exchange, or NULL. */
static const char *header_value(const ps_exchange *x, const char *name, size_t *len) {
    ps_exchange_info info;
    if (ps_exchange_get_info(x, &info) != PS_OK) {
        return NULL;
    }
    for (uint32_t i = 0; i < info.header_count; i++) {
        const char *n, *v;
        size_t nl, vl;
        if (ps_exchange_header(x, i, &n, &nl, &v, &vl) != PS_OK) {
            return NULL;
        }
        if (nl == strlen(name) && strncasecmp(n, name, nl) == 0) {
            *len = vl;
            return v;
        }
    }
    return NULL;
}

/* A new exchange for METHOD and QUERY with one header (or none). */
static ps_exchange *exchange(const char *method, const char *query, const char *header,
                             const char *value) {
    ps_exchange *x = NULL;
    CHECK_STATUS(ps_exchange_new(method, strlen(method), query, strlen(query), &x), PS_OK);
    if (header) {
        CHECK_STATUS(ps_exchange_set_header(x, header, strlen(header), value, strlen(value)),
                     PS_OK);
    }
    return x;
}

/* The exchange: options by name, the whole answer, pieces and copies of
   the body agree with each other and with the file, builds off a loop. */
static void test_exchange(const char *path) {
    size_t file_len;
    unsigned char *file = read_file(path, &file_len);
    CHECK(file != NULL);
    ps_options *options;
    CHECK_STATUS(ps_options_new(&options), PS_OK);
    CHECK_STATUS(ps_options_set(options, "startUnit", "seconds"), PS_OK);
    CHECK_STATUS(ps_options_set(options, "cors", "*"), PS_OK);
    CHECK_STATUS(ps_options_set(options, "rate", "auto:1.5"), PS_OK);
    CHECK_STATUS(ps_options_set(options, "rate", "fast"), PS_ERR_INVALID_ARG);
    CHECK(strstr(ps_last_error(), "'rate'") != NULL && strstr(ps_last_error(), "'fast'") != NULL);
    CHECK_STATUS(ps_options_set(options, "colour", "blue"), PS_ERR_INVALID_ARG);
    CHECK_STATUS(ps_options_set(NULL, "rate", "auto"), PS_ERR_INVALID_ARG);
    CHECK_STATUS(ps_options_set(NULL, "index_cache", "64m"), PS_OK);
    CHECK_STATUS(ps_options_set(options, "rate", "off"), PS_OK);
    size_t needed = 0;
    CHECK_STATUS(ps_options_describe(NULL, 0, &needed), PS_ERR_BUFFER_TOO_SMALL);
    char *keys = malloc(needed);
    size_t written = 0;
    CHECK_STATUS(ps_options_describe(keys, needed, &written), PS_OK);
    CHECK(strstr(keys, "start_unit | unit:") != NULL);
    free(keys);

    /* A Range of a seek: 206, its headers, the body as pieces. */
    ps_exchange *x = exchange("GET", "start=10.5", "Range", "bytes=100-4099");
    uint32_t wants = 0;
    CHECK_STATUS(ps_exchange_wants_file(x, &wants), PS_OK);
    CHECK(wants == 1);
    CHECK_STATUS(ps_exchange_open_path(x, path), PS_OK);
    CHECK_STATUS(ps_exchange_respond(x, options), PS_OK);
    ps_exchange_info info;
    CHECK_STATUS(ps_exchange_get_info(x, &info), PS_OK);
    CHECK(info.status == 206 && info.has_content_length == 1);
    CHECK(info.content_length == 4000 && info.body_length == 4000);
    size_t len = 0;
    const char *v = header_value(x, "Content-Range", &len);
    CHECK(v != NULL && strncmp(v, "bytes 100-4099/", 15) == 0 && v[len] == '\0');
    v = header_value(x, "Access-Control-Allow-Origin", &len);
    CHECK(v != NULL && len == 1 && v[0] == '*');
    CHECK(header_value(x, "ETag", &len) != NULL && header_value(x, "Last-Modified", &len) != NULL);
    ps_header all[32];
    size_t header_count = 0;
    CHECK_STATUS(ps_exchange_headers(x, all, 2, &header_count), PS_ERR_BUFFER_TOO_SMALL);
    CHECK(header_count == info.header_count);
    CHECK_STATUS(ps_exchange_headers(x, all, 32, &header_count), PS_OK);
    CHECK(header_count == info.header_count);
    for (size_t i = 0; i < header_count; i++) {
        const char *n, *hv;
        size_t nl, vl;
        CHECK_STATUS(ps_exchange_header(x, i, &n, &nl, &hv, &vl), PS_OK);
        CHECK(n == all[i].name && nl == all[i].name_len && hv == all[i].value);
        CHECK(vl == all[i].value_len && all[i].value[vl] == '\0');
    }
    ps_piece pieces[4];
    size_t count = 0, total = 0;
    uint64_t wait_us = 0;
    uint32_t state = 0;
    CHECK_STATUS(ps_exchange_pieces(x, 0, pieces, 4, &count, &wait_us, &state), PS_OK);
    CHECK(state == PS_FILL_DATA && count >= 1);
    for (size_t i = 0; i < count; i++) {
        total += pieces[i].length;
        if (pieces[i].data == NULL) {
            CHECK(pieces[i].offset + pieces[i].length <= file_len);
        }
    }
    CHECK(total == 4000);
    CHECK_STATUS(ps_exchange_pieces(x, 0, pieces, 4, &count, &wait_us, &state), PS_OK);
    CHECK(state == PS_FILL_DONE && count == 0);
    ps_exchange_free(x);

    /* The same answer copied, and the whole file as stored. */
    x = exchange("GET", "", NULL, NULL);
    CHECK_STATUS(ps_exchange_open_path(x, path), PS_OK);
    CHECK_STATUS(ps_exchange_respond(x, options), PS_OK);
    CHECK_STATUS(ps_exchange_get_info(x, &info), PS_OK);
    CHECK(info.status == 200 && info.body_length >= file_len - 1000);
    unsigned char buf[65536];
    size_t got = 0;
    for (;;) {
        size_t n = 0;
        CHECK_STATUS(ps_exchange_fill(x, buf, sizeof buf, 0, &n, &wait_us, &state), PS_OK);
        if (state != PS_FILL_DATA) {
            break;
        }
        got += n;
    }
    CHECK(state == PS_FILL_DONE && got == info.body_length);
    ps_exchange_free(x);

    /* Answers without a file, and failures that are answers. */
    x = exchange("OPTIONS", "", "Origin", "https://a.example");
    CHECK_STATUS(ps_exchange_wants_file(x, &wants), PS_OK);
    CHECK(wants == 0);
    CHECK_STATUS(ps_exchange_respond(x, options), PS_OK);
    CHECK_STATUS(ps_exchange_get_info(x, &info), PS_OK);
    CHECK(info.status == 204 && info.body_length == 0);
    CHECK(header_value(x, "Access-Control-Allow-Methods", &len) != NULL);
    ps_exchange_free(x);
    x = exchange("DELETE", "", NULL, NULL);
    CHECK_STATUS(ps_exchange_respond(x, options), PS_OK);
    CHECK_STATUS(ps_exchange_get_info(x, &info), PS_OK);
    CHECK(info.status == 405 && header_value(x, "Allow", &len) != NULL);
    ps_exchange_free(x);
    x = exchange("GET", "start=abc", NULL, NULL);
    CHECK_STATUS(ps_exchange_open_failed(x, 2 /* ENOENT */, "missing.flv"), PS_OK);
    CHECK_STATUS(ps_exchange_respond(x, options), PS_OK);
    CHECK_STATUS(ps_exchange_get_info(x, &info), PS_OK);
    const char *detail = NULL;
    CHECK_STATUS(ps_exchange_detail(x, &detail), PS_OK);
    CHECK(info.status == 404 && strstr(detail, "missing.flv") != NULL);
    ps_exchange_free(x);

    /* A build off the event loop: one leads, one joins, both get it. */
    ps_cache_clear();
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    ps_exchange *a = exchange("GET", "start=10.5", NULL, NULL);
    ps_exchange *b = exchange("GET", "start=20", NULL, NULL);
    ps_build *lead = NULL, *join = NULL;
    CHECK_STATUS(ps_exchange_open_fd_async(a, fd, path, &lead), PS_OK);
    CHECK_STATUS(ps_exchange_open_fd_async(b, fd, path, &join), PS_OK);
    CHECK(lead != NULL && join != NULL);
    uint32_t leads = 9, added = 9;
    CHECK_STATUS(ps_build_leads(lead, &leads), PS_OK);
    CHECK(leads == 1);
    CHECK_STATUS(ps_build_leads(join, &leads), PS_OK);
    CHECK(leads == 0);
    int token = 0;
    CHECK_STATUS(ps_build_add_waiter(join, &token, &added), PS_OK);
    CHECK(added == 1);
    CHECK_STATUS(ps_build_run(join, fd), PS_ERR_INVALID_ARG);
    CHECK_STATUS(ps_build_run(lead, fd), PS_OK);
    void *tokens[4];
    CHECK_STATUS(ps_build_take_waiters(lead, tokens, 4, &count), PS_OK);
    CHECK(count == 1 && tokens[0] == &token);
    CHECK_STATUS(ps_build_take_waiters(lead, tokens, 4, &count), PS_OK);
    CHECK(count == 0);
    CHECK_STATUS(ps_build_add_waiter(join, &token, &added), PS_OK);
    CHECK(added == 0);
    CHECK_STATUS(ps_exchange_open_build(a, lead), PS_OK);
    CHECK_STATUS(ps_exchange_open_build(b, join), PS_OK);
    ps_build_free(lead);
    ps_build_free(join);
    ps_build_free(NULL);
    CHECK_STATUS(ps_exchange_respond(a, options), PS_OK);
    CHECK_STATUS(ps_exchange_respond(b, options), PS_OK);
    CHECK_STATUS(ps_exchange_get_info(a, &info), PS_OK);
    CHECK(info.status == 200);
    CHECK_STATUS(ps_exchange_get_info(b, &info), PS_OK);
    CHECK(info.status == 200);
    ps_exchange_free(a);
    ps_exchange_free(b);
    ps_build *none = (ps_build *)0x1;
    x = exchange("GET", "", NULL, NULL);
    CHECK_STATUS(ps_exchange_open_fd_async(x, fd, path, &none), PS_OK);
    CHECK(none == NULL); /* cached now */
    ps_exchange_free(x);
    close(fd);

    ps_exchange_free(NULL);
    CHECK_STATUS(ps_exchange_respond(NULL, options), PS_ERR_NULL_ARG);
    ps_options_free(options);
    free(file);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s SAMPLE.flv NOT_FLV_FILE SAMPLE.mp4\n", argv[0]);
        return 2;
    }
    printf("libpseudostream %s\n", ps_version());
    test_errors(argv[2]);
    test_serving(argv[1]);
    test_mp4(argv[3]);
    test_exchange(argv[1]);
    printf("c-abi checks: %d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}
