/*
 * h1: a strict HTTP/1.1 request codec for the terminal side (no I/O).
 *
 * The TLS front feeds it decrypted bytes; it finds the end of the request
 * head, parses the request line and header fields in place, and decodes
 * chunked bodies.  It accepts only what a DeepL client sends and refuses
 * every ambiguity that lets two parsers disagree about where a request
 * ends (RFC 9112 section 11.2): bare LF or CR, obsolete line folding,
 * whitespace before a colon, several or malformed Content-Length values,
 * Transfer-Encoding other than exactly "chunked", and both framings at once.
 */
#ifndef TG_H1_H
#define TG_H1_H

#include <stddef.h>
#include <stdint.h>

/* Largest request head (request line and header fields) accepted. */
#define H1_MAX_HEAD 8192
/* Most header fields accepted in one request. */
#define H1_MAX_HEADERS 64

typedef enum h1_err {
    H1_OK = 0,
    H1_ERR_REQUEST_LINE,     /* 400: method, target or version malformed */
    H1_ERR_VERSION,          /* 505: not HTTP/1.0 or HTTP/1.1 */
    H1_ERR_HEADER,           /* 400: a field line is malformed */
    H1_ERR_HEAD_TOO_LARGE,   /* 431: head longer than H1_MAX_HEAD */
    H1_ERR_TOO_MANY_HEADERS, /* 431: more than H1_MAX_HEADERS fields */
    H1_ERR_LENGTH,           /* 400: Content-Length malformed or repeated */
    H1_ERR_TRANSFER_CODING,  /* 501: a transfer coding other than chunked */
    H1_ERR_FRAMING,          /* 400: both Content-Length and chunked */
    H1_ERR_HOST,             /* 400: HTTP/1.1 without exactly one Host */
    H1_ERR_CHUNK             /* 400: chunked body framing malformed */
} h1_err;

/* A stable, content-free description of e.  Cannot fail. */
const char *h1_strerror(h1_err e);

/* The HTTP status an error is answered with.  Cannot fail. */
unsigned h1_status(h1_err e);

typedef struct h1_field {
    const char *name;    /* as sent (case preserved), NUL-terminated */
    const char *value;   /* surrounding whitespace removed, NUL-terminated */
} h1_field;

typedef struct h1_head {
    const char *method;
    const char *path;    /* origin-form path, without the query */
    const char *query;   /* after '?', or NULL */
    int minor;           /* HTTP/1.<minor> */
    h1_field fields[H1_MAX_HEADERS];
    size_t n_fields;
    /* Derived from the fields: */
    int keep_alive;      /* the terminal allows another request after this one */
    int expect_continue; /* "Expect: 100-continue" */
    int chunked;         /* Transfer-Encoding: chunked */
    int has_length;      /* Content-Length present */
    uint64_t length;     /* its value */
} h1_head;

/* Length of the head at the start of buf (through the empty line, which
 * may end in a bare LF so that such heads are refused, not waited on), or
 * 0 when it is not complete yet.  Cannot fail. */
size_t h1_head_length(const char *buf, size_t len);

/* Parse the complete head buf[0..len) (as measured by h1_head_length),
 * writing NUL terminators into buf; h points into buf afterwards.
 * Returns H1_OK or the first problem found. */
h1_err h1_parse_head(char *buf, size_t len, h1_head *h);

/* The value of the first field named name (case-insensitive), or NULL.
 * Borrowed from the head's buffer.  Cannot fail. */
const char *h1_field_get(const h1_head *h, const char *name);

/* Decode application/x-www-form-urlencoded bytes in[0..len) ('+' and
 * percent escapes; NUL bytes are kept) into out (cap bytes including the
 * NUL).  Returns the decoded length, -1 when an escape is malformed, -2
 * when the result does not fit.  Form bodies and query strings share it. */
long h1_form_decode(const char *in, size_t len, char *out, size_t cap);

/* Decode the query string argument named name (percent and '+' decoding)
 * into out (cap bytes including the NUL).  Returns its length, -1 when it
 * is absent (or query is NULL), -2 when it is malformed or does not fit. */
long h1_query_arg(const char *query, const char *name, char *out, size_t cap);

/* Chunked body decoder state. */
typedef struct h1_chunked {
    int state;
    uint64_t remaining;  /* data bytes left in the current chunk */
    size_t line;         /* bytes of the current size or trailer line */
    int done;            /* last chunk and trailers consumed */
    size_t max_line;     /* bound on a size line with its extensions */
    size_t max_trailers; /* bound on all trailer lines */
} h1_chunked;

/* Start decoding a chunked body, with the terminal side's bounds (4096
 * bytes each; a caller may change max_line and max_trailers before the
 * first step).  Cannot fail. */
void h1_chunked_init(h1_chunked *c);

/* Decode from in[0..len): consumes framing and returns, through *data and
 * *data_len, the next span of body data inside in (possibly empty).
 * *used is how many bytes of in were consumed (framing and data).  Call
 * again with the rest until *used is 0 or c->done.  Returns H1_OK or
 * H1_ERR_CHUNK. */
h1_err h1_chunked_step(h1_chunked *c, const char *in, size_t len, size_t *used,
                       const char **data, size_t *data_len);

/* Reason phrase for status (the statuses this gateway sends), else
 * "Unknown".  Cannot fail. */
const char *h1_reason(unsigned status);

/* The current time as an HTTP date ("Sun, 06 Nov 1994 08:49:37 GMT") in
 * out (30 bytes), computed at most once per second per thread.
 * Cannot fail. */
void h1_date(char out[30]);

#endif
