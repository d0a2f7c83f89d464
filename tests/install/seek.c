/*
 * A program built outside the source tree against an installed
 * libpseudostream (`pkg-config --cflags --libs pseudostream`): plans
 * ?start=SECONDS on a file and writes the response body to stdout.
 * Used by scripts/test-install.sh.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pseudostream.h>

static int
fail(const char *call, ps_status st)
{
    fprintf(stderr, "seek: %s: %s: %s\n", call, ps_strerror(st), ps_last_error());
    return 1;
}

int
main(int argc, char **argv)
{
    ps_options *options = NULL;
    ps_request *request = NULL;
    ps_media *media = NULL;
    ps_plan *plan = NULL;
    ps_plan_info info;
    ps_stream *stream = NULL;
    ps_status st;
    char query[64];
    uint8_t buf[65536];
    int rc = 1;

    if (argc != 3) {
        fprintf(stderr, "usage: seek FILE SECONDS > body\n");
        return 2;
    }
    fprintf(stderr, "libpseudostream %s\n", ps_version());
    snprintf(query, sizeof(query), "start=%s", argv[2]);

    if ((st = ps_options_new(&options)) != PS_OK
        || (st = ps_options_set_start_unit(options, PS_UNIT_SECONDS)) != PS_OK) {
        return fail("ps_options", st);
    }
    if ((st = ps_request_parse(options, query, strlen(query), &request)) != PS_OK) {
        rc = fail("ps_request_parse", st);
        goto done;
    }
    if ((st = ps_media_open(argv[1], &media)) != PS_OK) {
        rc = fail("ps_media_open", st);
        goto done;
    }
    if ((st = ps_plan_new(media, options, request, &plan)) != PS_OK
        || (st = ps_plan_get_info(plan, &info)) != PS_OK) {
        rc = fail("ps_plan_new", st);
        goto done;
    }
    if ((st = ps_stream_new(media, plan, 0, info.length, &stream)) != PS_OK) {
        rc = fail("ps_stream_new", st);
        goto done;
    }
    for (;;) {
        size_t written = 0;
        uint32_t state = 0;
        uint64_t wait_us = 0;
        st = ps_stream_fill(stream, buf, sizeof(buf), 0, &written, &wait_us, &state);
        if (st != PS_OK) {
            rc = fail("ps_stream_fill", st);
            goto done;
        }
        if (written && fwrite(buf, 1, written, stdout) != written) {
            perror("seek: stdout");
            goto done;
        }
        if (state == PS_FILL_DONE) {
            break;
        }
    }
    rc = 0;

done:
    ps_stream_free(stream);
    ps_plan_free(plan);
    ps_media_free(media);
    ps_request_free(request);
    ps_options_free(options);
    return rc;
}
