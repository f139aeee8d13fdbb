/* The terminal-side HTTP/1.1 codec (gateway/h1.c): heads accepted and
 * refused with the exact error, chunked decoding however the bytes are
 * split, query arguments. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "h1.h"

static h1_err parse(const char *text, h1_head *h, char *buf, size_t cap)
{
    size_t n = strlen(text);

    assert_true(n < cap);
    memcpy(buf, text, n + 1);
    assert_int_equal(h1_head_length(buf, n), n);
    return h1_parse_head(buf, n, h);
}

static void test_head_fields_and_derived_flags(void **state)
{
    char buf[H1_MAX_HEAD + 1];
    h1_head h;

    (void)state;
    assert_int_equal(parse("POST /v2/translate?x=1 HTTP/1.1\r\nHost: gw\r\n"
                           "authorization:   DeepL-Auth-Key k  \r\n"
                           "Content-Length: 12\r\nExpect: 100-Continue\r\n"
                           "X-Obs: caf\xc3\xa9\r\n\r\n", &h, buf, sizeof(buf)), H1_OK);
    assert_string_equal(h.method, "POST");
    assert_string_equal(h.path, "/v2/translate");
    assert_string_equal(h.query, "x=1");
    assert_int_equal(h.minor, 1);
    assert_int_equal(h.n_fields, 5);
    assert_string_equal(h1_field_get(&h, "Authorization"), "DeepL-Auth-Key k");
    assert_string_equal(h1_field_get(&h, "x-obs"), "caf\xc3\xa9");
    assert_null(h1_field_get(&h, "Cookie"));
    assert_true(h.keep_alive);
    assert_true(h.expect_continue);
    assert_true(h.has_length);
    assert_int_equal(h.length, 12);
    assert_false(h.chunked);

    assert_int_equal(parse("GET /v2/usage HTTP/1.0\r\n\r\n", &h, buf, sizeof(buf)), H1_OK);
    assert_int_equal(h.minor, 0);
    assert_false(h.keep_alive);
    assert_null(h.query);
    assert_int_equal(parse("GET /v2/usage HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
                           &h, buf, sizeof(buf)), H1_OK);
    assert_true(h.keep_alive);
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: te, close\r\n\r\n",
                           &h, buf, sizeof(buf)), H1_OK);
    assert_false(h.keep_alive);
    assert_int_equal(parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n",
                           &h, buf, sizeof(buf)), H1_OK);
    assert_true(h.chunked);
    assert_false(h.has_length);
    /* A later minor version is served as HTTP/1.1. */
    assert_int_equal(parse("GET / HTTP/1.7\r\nHost: a\r\n\r\n", &h, buf, sizeof(buf)), H1_OK);
    assert_int_equal(h.minor, 1);
}

static void test_heads_refused_with_the_exact_error(void **state)
{
    static const struct {
        const char *head;
        h1_err want;
    } cases[] = {
        {"POST  /x HTTP/1.1\r\nHost: a\r\n\r\n", H1_ERR_REQUEST_LINE},
        {"POST x HTTP/1.1\r\nHost: a\r\n\r\n", H1_ERR_REQUEST_LINE},
        {"POST /x HTTP/1.1 \r\nHost: a\r\n\r\n", H1_ERR_REQUEST_LINE},
        {"POST /x HTTP/11\r\nHost: a\r\n\r\n", H1_ERR_REQUEST_LINE},
        {"P\x01ST /x HTTP/1.1\r\nHost: a\r\n\r\n", H1_ERR_REQUEST_LINE},
        {"POST /\x7f HTTP/1.1\r\nHost: a\r\n\r\n", H1_ERR_REQUEST_LINE},
        {"POST /x HTTP/2.0\r\nHost: a\r\n\r\n", H1_ERR_VERSION},
        {"POST /x HTTP/0.9\r\nHost: a\r\n\r\n", H1_ERR_VERSION},
        {"POST /x HTTP/1.1\nHost: a\r\n\r\n", H1_ERR_REQUEST_LINE},
        {"POST /x HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", H1_ERR_HEADER},
        {"POST /x HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", H1_ERR_HEADER},
        {"POST /x HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", H1_ERR_HEADER},
        {"POST /x HTTP/1.1\r\nHost : a\r\n\r\n", H1_ERR_HEADER},
        {"POST /x HTTP/1.1\r\n: a\r\n\r\n", H1_ERR_HEADER},
        {"POST /x HTTP/1.1\r\nHost: a\x01\r\n\r\n", H1_ERR_HEADER},
        {"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n", H1_ERR_LENGTH},
        {"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", H1_ERR_LENGTH},
        {"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", H1_ERR_LENGTH},
        {"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
         H1_ERR_LENGTH},
        {"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 9999999999999999\r\n\r\n",
         H1_ERR_LENGTH},
        {"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
         H1_ERR_TRANSFER_CODING},
        {"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
         H1_ERR_TRANSFER_CODING},
        {"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
         "Transfer-Encoding: chunked\r\n\r\n", H1_ERR_TRANSFER_CODING},
        {"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
         "Content-Length: 3\r\n\r\n", H1_ERR_FRAMING},
        {"POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", H1_ERR_FRAMING},
        {"POST /x HTTP/1.1\r\n\r\n", H1_ERR_HOST},
        {"POST /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", H1_ERR_HOST},
    };
    char buf[H1_MAX_HEAD + 1];
    h1_head h;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        h1_err e = parse(cases[i].head, &h, buf, sizeof(buf));
        if (e != cases[i].want)
            fail_msg("case %zu: got %s, want %s", i, h1_strerror(e),
                     h1_strerror(cases[i].want));
        assert_true(h1_status(e) >= 400);
    }
}

static void test_head_limits(void **state)
{
    static char buf[2 * H1_MAX_HEAD];
    h1_head h;
    size_t n;

    (void)state;
    /* Exactly H1_MAX_HEADERS fields pass, one more is refused. */
    for (int extra = 0; extra <= 1; extra++) {
        n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: a\r\n");
        for (int i = 1; i < H1_MAX_HEADERS + extra; i++)
            n += (size_t)snprintf(buf + n, sizeof(buf) - n, "X-%d: v\r\n", i);
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\r\n");
        assert_int_equal(h1_parse_head(buf, n, &h),
                         extra ? H1_ERR_TOO_MANY_HEADERS : H1_OK);
    }
    memset(buf, 'a', sizeof(buf));
    memcpy(buf, "GET / HTTP/1.1\r\nX: ", 19);
    memcpy(buf + H1_MAX_HEAD - 3, "\r\n\r\n", 4);
    assert_int_equal(h1_head_length(buf, H1_MAX_HEAD + 1), H1_MAX_HEAD + 1);
    assert_int_equal(h1_parse_head(buf, H1_MAX_HEAD + 1, &h), H1_ERR_HEAD_TOO_LARGE);
    assert_int_equal(h1_head_length("GET / HTTP/1.1\r\nHost: a\r\n", 25), 0);
    assert_int_equal(h1_head_length("\r\n\r", 3), 0);
}

/* Decode in[0..len) fed in pieces of `step` bytes (the front may see any
 * split); returns the error and the body in out. */
static h1_err dechunk(const char *in, size_t len, size_t step, char *out, size_t *olen,
                      size_t *consumed)
{
    h1_chunked c;
    size_t pos = 0, avail = 0;

    h1_chunked_init(&c);
    *olen = 0;
    while (!c.done && pos < len) {
        const char *data;
        size_t used, dlen;
        h1_err e;
        if (avail < step && pos + avail < len)
            avail = pos + step <= len ? step : len - pos;
        e = h1_chunked_step(&c, in + pos, avail, &used, &data, &dlen);
        if (e != H1_OK)
            return e;
        assert_true(used <= avail);
        if (dlen > 0) {
            assert_true(data >= in + pos && data + dlen <= in + pos + used);
            memcpy(out + *olen, data, dlen);
            *olen += dlen;
        }
        pos += used;
        avail -= used;
        if (used == 0 && !c.done)
            avail = 0;   /* needs more than this piece: widen */
    }
    *consumed = pos;
    return c.done ? H1_OK : H1_ERR_CHUNK;
}

static void test_chunked_decoding_under_every_split(void **state)
{
    static const char body[] = "5\r\nhello\r\nA;name=\"v\"\r\n, world!!!\r\n"
                               "0\r\nTrailer: x\r\n\r\nNEXT";
    char out[64];
    size_t olen, used;

    (void)state;
    for (size_t step = 1; step <= sizeof(body); step++) {
        assert_int_equal(dechunk(body, sizeof(body) - 1, step, out, &olen, &used), H1_OK);
        assert_int_equal(olen, 15);
        assert_memory_equal(out, "hello, world!!!", 15);
        /* The next request's bytes are left alone. */
        assert_int_equal(used, sizeof(body) - 1 - 4);
    }
}

static void test_chunked_framing_errors(void **state)
{
    static const char *bad[] = {
        "g\r\nx\r\n0\r\n\r\n",            /* not hex */
        "\r\n",                           /* no size */
        "3\r\nabcX\r\n0\r\n\r\n",         /* data not followed by CRLF */
        "3\nabc\r\n0\r\n\r\n",            /* bare LF */
        "1000000000000000\r\n",           /* 16 hex digits */
        "3;\x01\r\nabc\r\n0\r\n\r\n",     /* control in an extension */
        "3 x\r\nabc\r\n0\r\n\r\n",         /* blank then not an extension */
        "0\r\nX\x01: y\r\n\r\n",          /* control in a trailer */
    };
    char out[64];
    size_t olen, used;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (dechunk(bad[i], strlen(bad[i]), 64, out, &olen, &used) != H1_ERR_CHUNK)
            fail_msg("case %zu accepted", i);
    /* Blanks before an extension or the line end are allowed. */
    assert_int_equal(dechunk("3 ;e=1\r\nabc\r\n2\t\r\nde\r\n0\r\n\r\n", 26, 64, out,
                             &olen, &used), H1_OK);
    assert_int_equal(olen, 5);
    assert_memory_equal(out, "abcde", 5);
}

static void test_query_arguments(void **state)
{
    char out[8];

    (void)state;
    assert_int_equal(h1_query_arg("type=target", "type", out, sizeof(out)), 6);
    assert_string_equal(out, "target");
    assert_int_equal(h1_query_arg("a=1&type=so%75rce&b", "type", out, sizeof(out)), 6);
    assert_string_equal(out, "source");
    assert_int_equal(h1_query_arg("x=a+b", "x", out, sizeof(out)), 3);
    assert_string_equal(out, "a b");
    assert_int_equal(h1_query_arg("types=x", "type", out, sizeof(out)), -1);
    assert_int_equal(h1_query_arg(NULL, "type", out, sizeof(out)), -1);
    assert_int_equal(h1_query_arg("type=%ZZ", "type", out, sizeof(out)), -2);
    assert_int_equal(h1_query_arg("type=%4", "type", out, sizeof(out)), -2);
    assert_int_equal(h1_query_arg("type=12345678", "type", out, sizeof(out)), -2);
}

static void test_reasons_and_date(void **state)
{
    char d[30];

    (void)state;
    assert_string_equal(h1_reason(413), "Content Too Large");
    assert_string_equal(h1_reason(299), "Unknown");
    h1_date(d);
    assert_int_equal(strlen(d), 29);
    assert_memory_equal(d + 25, " GMT", 4);
    assert_int_equal(d[3], ',');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_head_fields_and_derived_flags),
        cmocka_unit_test(test_heads_refused_with_the_exact_error),
        cmocka_unit_test(test_head_limits),
        cmocka_unit_test(test_chunked_decoding_under_every_split),
        cmocka_unit_test(test_chunked_framing_errors),
        cmocka_unit_test(test_query_arguments),
        cmocka_unit_test(test_reasons_and_date),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
