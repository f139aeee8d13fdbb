/*
 * stub_vendor: a recording stub of a DeepL-compatible cloud MT vendor.
 *
 * Integration tests point the gateway's upstream at it and then assert on the
 * record file exactly what reached the "vendor"; benchmarks use it as a 0 ms
 * or 1 s upstream.  One thread, one epoll loop, non-blocking OpenSSL: a
 * delayed answer is a timer, not a sleeping thread, so thousands of
 * connections can wait at once.
 *
 *   stub_vendor --listen 127.0.0.1:PORT --cert F --key F [--record FILE]
 *               [--delay-ms N] [--plain] [--port-file FILE] [--tls13-only]
 *               [--api-key KEY]
 *
 * Endpoints:
 *   POST /v2/translate      JSON ({"text":[...],"target_lang":"DE",...}) or
 *                           form (text=...&text=...&target_lang=DE) body.
 *                           200 {"translations":[{"detected_source_language":
 *                           "EN","text":T}]}, T = "[" TARGET_LANG "] " + the
 *                           input with every ASCII letter outside XML tags
 *                           (<...>) and entity references (&...;) upper-cased.
 *   GET|POST /v2/languages  ?type=source|target: a fixed DeepL-shaped list.
 *   anything else           404 {"message":"Not found"}.
 * Every request needs "Authorization: DeepL-Auth-Key KEY" (KEY must equal
 * --api-key when given, else anything non-empty); otherwise 403
 * {"message":"Authorization failed"}.
 *
 * Magic markers, looked for in the FIRST text of a /v2/translate request
 * only, so one stub instance can serve many tests:
 *   @@delay=MS@@         answer after MS milliseconds (replaces --delay-ms);
 *                        combines with the markers below, which act after it
 *   @@close@@            close the connection without answering
 *   @@status=NNN@@       answer NNN (100..599) with {"message":"stub error"}
 *   @@status-once=NNN@@  like @@status@@, but only for the first request that
 *                        carries it with a given @@id=XYZ@@ (XYZ: up to 64
 *                        bytes, no '@'); later requests with the same id are
 *                        answered normally.  Without @@id@@ the key is "".
 *   @@garbage@@          200 with a body that is not JSON
 *   @@droptags@@         translate, dropping every XML tag (<...>)
 *   @@duptags@@          translate, writing every XML tag twice
 *   @@count=N@@          return N translations (0..10000) whatever the number
 *                        of input texts; entries past the last input repeat
 *                        the last input's translation ("[XX] " if none)
 *   @@framing=F@@        answer the translation with another HTTP framing:
 *                        chunked (7-byte chunks, an extension, a trailer),
 *                        interim (100 and 103 answers first), eof (HTTP/1.0,
 *                        no length, close), lf (bare LF line ends), extra
 *                        (junk after the reply), splitextra (a second,
 *                        unasked reply in the next TLS record), badstatus,
 *                        badchunk,
 *                        hugehead (70 KiB of headers)
 *   @@drop-next@@        answer, then close the connection when the next
 *                        request on it arrives (recorded, never answered):
 *                        a kept-alive connection gone stale
 * Precedence after the delay: close, status-once, status, garbage, count.
 * Markers are not removed from the text: they are translated like the rest.
 *
 * Record (--record FILE): one JSON line per request received, written and
 * flushed before the answer (so requests answered with an error, or not at
 * all, are recorded too):
 *   {"seq":N,"conn":C,"method":"POST","path":"/v2/translate?...","headers":
 *    {"name":"value",...},"body":"..."}
 * seq counts from 1; conn numbers the connection it came on (from 1); path is the request target as sent; header names are
 * lower-cased, values have surrounding blanks removed, repeated headers are
 * joined with ", " in order; body is the exact body (de-chunked for chunked
 * requests).  Strings are escaped by json_escape(): '"' and '\' with a
 * backslash, bytes below 0x20 as \u00XX, valid UTF-8 passed through as is,
 * and every byte that is not part of valid UTF-8 as \u00XX with the byte's
 * value (so \u0080-\u00ff in a record always mean a raw invalid byte, never
 * a character).  Requests refused before their head parses (400, 431) are not
 * recorded; a 413 is recorded with an empty body.
 *
 * Limits: request head 32 KiB (431), body 8 MiB (413), 100 headers (431).
 * HTTP/1.1 keep-alive, Content-Length or chunked request bodies, Expect:
 * 100-continue.  SIGTERM/SIGINT close everything and exit 0.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define MAX_HEAD      (32u * 1024u)
#define MAX_BODY      (8u * 1024u * 1024u)
/* Chunk framing may add to the body; beyond this the request is refused. */
#define MAX_IN        (MAX_HEAD + MAX_BODY + 1024u * 1024u)
#define MAX_HEADERS   100
#define MAX_TEXTS     100000
#define MAX_COUNT     10000
#define MAX_DELAY_MS  (3600L * 1000L)
#define MAX_ONCE_IDS  100000
#define READ_CHUNK    16384

/* ------------------------------------------------------------ buffers */

/* A growable byte buffer with a hard cap; a failed add leaves it intact. */
struct buf {
    char  *p;
    size_t len;
    size_t alloc;
    size_t cap;
};

static void buf_init(struct buf *b, size_t cap)
{
    b->p = NULL;
    b->len = 0;
    b->alloc = 0;
    b->cap = cap;
}

static void buf_free(struct buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = 0;
    b->alloc = 0;
}

/* Make room for n more bytes.  Returns 0, or -1 over the cap or out of
 * memory (contents untouched). */
static int buf_reserve(struct buf *b, size_t n)
{
    size_t want, na;
    char *np;

    if (n > b->cap - b->len)
        return -1;
    want = b->len + n + 1;
    if (want <= b->alloc)
        return 0;
    na = b->alloc ? b->alloc : 256;
    while (na < want)
        na = na > SIZE_MAX / 2 ? want : na * 2;
    if (na > b->cap + 1)
        na = b->cap + 1;
    np = realloc(b->p, na);
    if (np == NULL)
        return -1;
    b->p = np;
    b->alloc = na;
    return 0;
}

static int buf_add(struct buf *b, const void *p, size_t n)
{
    if (buf_reserve(b, n) < 0)
        return -1;
    if (n > 0)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static int buf_adds(struct buf *b, const char *s)
{
    return buf_add(b, s, strlen(s));
}

static int buf_addc(struct buf *b, char ch)
{
    return buf_add(b, &ch, 1);
}

static int buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int buf_printf(struct buf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp)
        return -1;
    return buf_add(b, tmp, (size_t)n);
}

/* Drop the first n bytes. */
static void buf_consume(struct buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
    } else {
        memmove(b->p, b->p + n, b->len - n);
        b->len -= n;
    }
    if (b->p != NULL)
        b->p[b->len] = '\0';
}

/* ------------------------------------------------------------ JSON out */

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when the bytes there
 * are not valid UTF-8 (overlong forms, surrogates and > U+10FFFF are
 * invalid). */
static size_t utf8_valid_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        return (n >= 2 && (s[1] & 0xc0) == 0x80) ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
            return 0;
        if (c == 0xe0 && s[1] < 0xa0)
            return 0;
        if (c == 0xed && s[1] >= 0xa0)
            return 0;
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if (n < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 ||
            (s[3] & 0xc0) != 0x80)
            return 0;
        if (c == 0xf0 && s[1] < 0x90)
            return 0;
        if (c == 0xf4 && s[1] >= 0x90)
            return 0;
        return 4;
    }
    return 0;
}

/* Append s[0..n) as a quoted JSON string (see the header comment for the
 * escaping rules).  Returns 0 or -1 (cap or memory). */
static int json_escape(struct buf *b, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, run = 0, l;

    if (buf_addc(b, '"') < 0)
        return -1;
    while (i < n) {
        unsigned char c = u[i];
        if (c == '"' || c == '\\') {
            if (buf_add(b, s + run, i - run) < 0 || buf_addc(b, '\\') < 0 ||
                buf_addc(b, (char)c) < 0)
                return -1;
            run = ++i;
            continue;
        }
        l = c < 0x20 ? 0 : utf8_valid_len(u + i, n - i);
        if (l == 0) {
            if (buf_add(b, s + run, i - run) < 0 ||
                buf_printf(b, "\\u%04x", (unsigned)c) < 0)
                return -1;
            run = ++i;
            continue;
        }
        i += l;
    }
    if (buf_add(b, s + run, i - run) < 0 || buf_addc(b, '"') < 0)
        return -1;
    return 0;
}

/* ------------------------------------------------------------ JSON in */

struct text {
    char  *p;
    size_t len;
};

struct texts {
    struct text *v;
    size_t n, alloc;
};

static void texts_free(struct texts *t)
{
    size_t i;

    for (i = 0; i < t->n; i++)
        free(t->v[i].p);
    free(t->v);
    t->v = NULL;
    t->n = t->alloc = 0;
}

/* Steals b's contents (b is left empty).  Returns 0 or -1. */
static int texts_add(struct texts *t, struct buf *b)
{
    if (t->n == MAX_TEXTS)
        return -1;
    if (t->n == t->alloc) {
        size_t na = t->alloc ? t->alloc * 2 : 8;
        struct text *nv = realloc(t->v, na * sizeof *nv);
        if (nv == NULL)
            return -1;
        t->v = nv;
        t->alloc = na;
    }
    if (b->p == NULL && buf_reserve(b, 0) < 0)
        return -1;
    t->v[t->n].p = b->p;
    t->v[t->n].len = b->len;
    t->n++;
    buf_init(b, b->cap);
    return 0;
}

struct jp {
    const char *p, *end;
    int depth;
};

static void j_ws(struct jp *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' ||
                             *j->p == '\r'))
        j->p++;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int j_hex4(struct jp *j, unsigned *out)
{
    unsigned v = 0;
    int i, h;

    if (j->end - j->p < 4)
        return -1;
    for (i = 0; i < 4; i++) {
        h = hexval(j->p[i]);
        if (h < 0)
            return -1;
        v = v * 16 + (unsigned)h;
    }
    j->p += 4;
    *out = v;
    return 0;
}

static int put_utf8(struct buf *b, unsigned cp)
{
    char o[4];
    size_t n;

    if (cp < 0x80) {
        o[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        o[0] = (char)(0xf0 | (cp >> 18));
        o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    return buf_add(b, o, n);
}

/* Parse a string at j->p (which is at '"'); decode it into out when out is
 * not NULL.  Returns 0 or -1 (malformed, or out's cap). */
static int j_string(struct jp *j, struct buf *out)
{
    const char *run;

    if (j->p >= j->end || *j->p != '"')
        return -1;
    run = ++j->p;
    while (j->p < j->end) {
        unsigned char c = (unsigned char)*j->p;
        if (c == '"') {
            if (out != NULL && buf_add(out, run, (size_t)(j->p - run)) < 0)
                return -1;
            if (out != NULL && out->p == NULL && buf_reserve(out, 0) < 0)
                return -1;
            j->p++;
            return 0;
        }
        if (c < 0x20)
            return -1;
        if (c != '\\') {
            j->p++;
            continue;
        }
        if (out != NULL && buf_add(out, run, (size_t)(j->p - run)) < 0)
            return -1;
        j->p++;
        if (j->p >= j->end)
            return -1;
        c = (unsigned char)*j->p++;
        if (c == 'u') {
            unsigned cp, lo;
            if (j_hex4(j, &cp) < 0)
                return -1;
            if (cp >= 0xdc00 && cp <= 0xdfff)
                return -1;
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (j->end - j->p < 2 || j->p[0] != '\\' || j->p[1] != 'u')
                    return -1;
                j->p += 2;
                if (j_hex4(j, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
                    return -1;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            if (out != NULL && put_utf8(out, cp) < 0)
                return -1;
        } else {
            char d;
            switch (c) {
            case '"': d = '"'; break;
            case '\\': d = '\\'; break;
            case '/': d = '/'; break;
            case 'b': d = '\b'; break;
            case 'f': d = '\f'; break;
            case 'n': d = '\n'; break;
            case 'r': d = '\r'; break;
            case 't': d = '\t'; break;
            default: return -1;
            }
            if (out != NULL && buf_addc(out, d) < 0)
                return -1;
        }
        run = j->p;
    }
    return -1;
}

static int j_value(struct jp *j);

static int j_literal(struct jp *j, const char *lit)
{
    size_t n = strlen(lit);

    if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n) != 0)
        return -1;
    j->p += n;
    return 0;
}

static int j_number(struct jp *j)
{
    const char *start = j->p;

    if (j->p < j->end && *j->p == '-')
        j->p++;
    if (j->p >= j->end)
        return -1;
    if (*j->p == '0') {
        j->p++;
    } else if (*j->p >= '1' && *j->p <= '9') {
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
            j->p++;
    } else {
        return -1;
    }
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        if (j->p >= j->end || *j->p < '0' || *j->p > '9')
            return -1;
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
            j->p++;
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
            j->p++;
        if (j->p >= j->end || *j->p < '0' || *j->p > '9')
            return -1;
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
            j->p++;
    }
    return j->p > start ? 0 : -1;
}

/* Skip over one value (validating it).  Returns 0 or -1. */
static int j_value(struct jp *j)
{
    int rc = -1;

    j_ws(j);
    if (j->p >= j->end || j->depth > 64)
        return -1;
    switch (*j->p) {
    case '"':
        return j_string(j, NULL);
    case 't':
        return j_literal(j, "true");
    case 'f':
        return j_literal(j, "false");
    case 'n':
        return j_literal(j, "null");
    case '[':
    case '{': {
        char close = *j->p == '[' ? ']' : '}';
        int obj = close == '}';
        j->depth++;
        j->p++;
        j_ws(j);
        if (j->p < j->end && *j->p == close) {
            j->p++;
            rc = 0;
            break;
        }
        for (;;) {
            if (obj) {
                j_ws(j);
                if (j_string(j, NULL) < 0)
                    goto out;
                j_ws(j);
                if (j->p >= j->end || *j->p != ':')
                    goto out;
                j->p++;
            }
            if (j_value(j) < 0)
                goto out;
            j_ws(j);
            if (j->p >= j->end)
                goto out;
            if (*j->p == ',') {
                j->p++;
                continue;
            }
            if (*j->p == close) {
                j->p++;
                rc = 0;
            }
            goto out;
        }
    out:
        break;
    }
    default:
        return j_number(j);
    }
    j->depth--;
    return rc;
}

/* Parse a DeepL JSON request body: texts from "text" (a string or an array
 * of strings), target_lang into lang.  Other keys are validated and ignored.
 * Returns 0 or -1 (malformed). */
static int parse_json_body(const char *body, size_t n, struct texts *t,
                           struct buf *lang)
{
    struct jp j = { body, body + n, 0 };
    struct buf key, s;
    int rc = -1;

    buf_init(&key, MAX_BODY);
    buf_init(&s, MAX_BODY);
    j_ws(&j);
    if (j.p >= j.end || *j.p != '{')
        goto fail;
    j.p++;
    j_ws(&j);
    if (j.p < j.end && *j.p == '}') {
        j.p++;
        goto done;
    }
    for (;;) {
        j_ws(&j);
        key.len = 0;
        if (j_string(&j, &key) < 0)
            goto fail;
        j_ws(&j);
        if (j.p >= j.end || *j.p != ':')
            goto fail;
        j.p++;
        j_ws(&j);
        if (strcmp(key.p, "text") == 0 && j.p < j.end && *j.p == '"') {
            if (j_string(&j, &s) < 0 || texts_add(t, &s) < 0)
                goto fail;
        } else if (strcmp(key.p, "text") == 0 && j.p < j.end && *j.p == '[') {
            j.p++;
            j_ws(&j);
            if (j.p < j.end && *j.p == ']') {
                j.p++;
            } else {
                for (;;) {
                    j_ws(&j);
                    if (j_string(&j, &s) < 0 || texts_add(t, &s) < 0)
                        goto fail;
                    j_ws(&j);
                    if (j.p < j.end && *j.p == ',') {
                        j.p++;
                        continue;
                    }
                    if (j.p < j.end && *j.p == ']') {
                        j.p++;
                        break;
                    }
                    goto fail;
                }
            }
        } else if (strcmp(key.p, "target_lang") == 0 && j.p < j.end &&
                   *j.p == '"') {
            lang->len = 0;
            if (j_string(&j, lang) < 0)
                goto fail;
        } else if (strcmp(key.p, "text") == 0 ||
                   strcmp(key.p, "target_lang") == 0) {
            goto fail; /* wrong type */
        } else if (j_value(&j) < 0) {
            goto fail;
        }
        j_ws(&j);
        if (j.p < j.end && *j.p == ',') {
            j.p++;
            continue;
        }
        if (j.p < j.end && *j.p == '}') {
            j.p++;
            break;
        }
        goto fail;
    }
done:
    j_ws(&j);
    if (j.p != j.end)
        goto fail;
    rc = 0;
fail:
    buf_free(&key);
    buf_free(&s);
    return rc;
}

/* ------------------------------------------------------------ forms */

/* Decode application/x-www-form-urlencoded s[0..n) into out ('+' is a
 * space; a '%' not followed by two hex digits is kept as is). */
static int form_decode(struct buf *out, const char *s, size_t n)
{
    size_t i;

    if (buf_reserve(out, 0) < 0)
        return -1;
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 &&
                   hexval(s[i + 2]) >= 0) {
            c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        }
        if (buf_addc(out, c) < 0)
            return -1;
    }
    return 0;
}

/* Call fn for every key=value pair of a form.  fn returns 0 or -1 (stop). */
static int form_each(const char *s, size_t n,
                     int (*fn)(void *, const char *, size_t, const char *,
                               size_t),
                     void *arg)
{
    size_t i = 0;

    while (i < n) {
        const char *pair = s + i, *amp, *eq;
        size_t plen;
        amp = memchr(pair, '&', n - i);
        plen = amp ? (size_t)(amp - pair) : n - i;
        i += plen + 1;
        if (plen == 0)
            continue;
        eq = memchr(pair, '=', plen);
        if (eq == NULL) {
            if (fn(arg, pair, plen, "", 0) < 0)
                return -1;
        } else if (fn(arg, pair, (size_t)(eq - pair), eq + 1,
                      plen - (size_t)(eq - pair) - 1) < 0) {
            return -1;
        }
    }
    return 0;
}

struct form_req {
    struct texts *texts;
    struct buf *lang;
    struct buf *type;
};

static int key_is(const char *k, size_t kn, const char *want)
{
    return kn == strlen(want) && memcmp(k, want, kn) == 0;
}

static int form_field(void *arg, const char *k, size_t kn, const char *v,
                      size_t vn)
{
    struct form_req *f = arg;
    struct buf key, val;
    int rc = -1;

    buf_init(&key, MAX_BODY);
    buf_init(&val, MAX_BODY);
    if (form_decode(&key, k, kn) < 0 || form_decode(&val, v, vn) < 0)
        goto fail;
    if (f->texts != NULL && key_is(key.p, key.len, "text")) {
        if (texts_add(f->texts, &val) < 0)
            goto fail;
    } else if (f->lang != NULL && key_is(key.p, key.len, "target_lang")) {
        f->lang->len = 0;
        if (buf_add(f->lang, val.p, val.len) < 0)
            goto fail;
    } else if (f->type != NULL && key_is(key.p, key.len, "type")) {
        f->type->len = 0;
        if (buf_add(f->type, val.p, val.len) < 0)
            goto fail;
    }
    rc = 0;
fail:
    buf_free(&key);
    buf_free(&val);
    return rc;
}

/* ------------------------------------------------------------ options */

struct opts {
    const char *listen;
    const char *cert;
    const char *key;
    const char *record;
    const char *port_file;
    const char *api_key;
    long delay_ms;
    int plain;
    int tls13_only;
};

static struct opts opt;

/* ------------------------------------------------------------ connections */

enum cstate { ST_HANDSHAKE, ST_READ, ST_DELAY, ST_WRITE, ST_DEAD };
enum after { AW_NEXT, AW_CLOSE, AW_READ_MORE };
enum chunk_st { CH_SIZE, CH_DATA, CH_DATA_END, CH_TRAILER, CH_DONE };

struct hdr {
    char *name;  /* lower-cased */
    char *value; /* blanks trimmed */
};

struct req {
    char      *block; /* copy of the head, split in place */
    char      *method;
    char      *target;
    int        http11;
    struct hdr h[MAX_HEADERS];
    int        nh;
    size_t     head_len;
    int        chunked;
    size_t     clen;
    int        expect_continue;
    int        sent_continue;
    enum chunk_st cst;
    size_t     cpos;  /* next undecoded byte of in (chunked) */
    size_t     crem;  /* bytes left in the current chunk */
    struct buf body;  /* decoded chunked body */
    size_t     consume; /* bytes of in this request used */
};

struct conn {
    int          fd;
    SSL         *ssl;
    enum cstate  state;
    uint32_t     events;   /* current epoll interest */
    struct buf   in;
    struct buf   out;
    size_t       out_off;
    int          have_head;
    struct req   req;
    enum after   after;
    int          close_after_delay; /* @@close@@: close instead of writing */
    int          drop_next;         /* @@drop-next@@ */
    unsigned long long id;          /* connection number, from 1 */
    uint64_t     deadline;
    size_t       heap_idx; /* SIZE_MAX when not in the heap */
    struct conn *prev, *next;
};

static int epfd = -1;
static SSL_CTX *ssl_ctx;
static FILE *record_fp;
static unsigned long long seq;
static unsigned long long conn_seq;
static struct conn *live_list, *dead_list;
static size_t nconns;
static char listen_tag, signal_tag; /* epoll data for the two special fds */

/* Timer heap of delayed connections, ordered by deadline. */
static struct conn **heap;
static size_t heap_n, heap_alloc;

/* Ids already answered by @@status-once@@. */
static char **once_ids;
static size_t once_n, once_alloc;

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void heap_swap(size_t a, size_t b)
{
    struct conn *t = heap[a];

    heap[a] = heap[b];
    heap[b] = t;
    heap[a]->heap_idx = a;
    heap[b]->heap_idx = b;
}

static void heap_up(size_t i)
{
    while (i > 0 && heap[(i - 1) / 2]->deadline > heap[i]->deadline) {
        heap_swap(i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < heap_n && heap[l]->deadline < heap[m]->deadline)
            m = l;
        if (r < heap_n && heap[r]->deadline < heap[m]->deadline)
            m = r;
        if (m == i)
            return;
        heap_swap(i, m);
        i = m;
    }
}

static int heap_push(struct conn *c)
{
    if (heap_n == heap_alloc) {
        size_t na = heap_alloc ? heap_alloc * 2 : 64;
        struct conn **nh = realloc(heap, na * sizeof *nh);
        if (nh == NULL)
            return -1;
        heap = nh;
        heap_alloc = na;
    }
    heap[heap_n] = c;
    c->heap_idx = heap_n++;
    heap_up(c->heap_idx);
    return 0;
}

static void heap_remove(struct conn *c)
{
    size_t i = c->heap_idx;

    if (i == SIZE_MAX)
        return;
    c->heap_idx = SIZE_MAX;
    heap_n--;
    if (i == heap_n)
        return;
    heap[i] = heap[heap_n];
    heap[i]->heap_idx = i;
    heap_up(i);
    heap_down(heap[i]->heap_idx);
}

static void req_reset(struct req *r)
{
    free(r->block);
    buf_free(&r->body);
    memset(r, 0, sizeof *r);
    buf_init(&r->body, MAX_BODY);
}

static void set_events(struct conn *c, uint32_t ev)
{
    struct epoll_event e;

    if (c->events == ev)
        return;
    memset(&e, 0, sizeof e);
    e.events = ev;
    e.data.ptr = c;
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &e) == 0)
        c->events = ev;
}

static void conn_close(struct conn *c)
{
    if (c->state == ST_DEAD)
        return;
    heap_remove(c);
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    if (c->ssl != NULL) {
        /* Best effort close_notify; the socket is non-blocking. */
        ERR_clear_error();
        if (SSL_is_init_finished(c->ssl))
            SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
        c->ssl = NULL;
        ERR_clear_error();
    }
    /* Closing with unread input makes the kernel send a RST, which can
     * destroy an error answer still in flight (431, 413): drain what is
     * already here first. */
    shutdown(c->fd, SHUT_WR);
    {
        char sink[4096];
        int rounds = 256;
        while (rounds-- > 0 && read(c->fd, sink, sizeof sink) > 0)
            ;
    }
    close(c->fd);
    c->fd = -1;
    c->state = ST_DEAD;
    /* Unlink from the live list; freed after the current batch of events,
     * which may still point at it. */
    if (c->prev)
        c->prev->next = c->next;
    else
        live_list = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = NULL;
    c->next = dead_list;
    dead_list = c;
    nconns--;
}

static void conn_free(struct conn *c)
{
    req_reset(&c->req);
    free(c->req.block);
    buf_free(&c->req.body);
    buf_free(&c->in);
    buf_free(&c->out);
    free(c);
}

static void reap_dead(void)
{
    while (dead_list != NULL) {
        struct conn *c = dead_list;
        dead_list = c->next;
        conn_free(c);
    }
}

enum { IO_OK = 1, IO_EOF = 0, IO_ERR = -1, IO_WANT_READ = -2,
       IO_WANT_WRITE = -3 };

static int ssl_result(struct conn *c, int r)
{
    switch (SSL_get_error(c->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        return IO_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        return IO_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN:
        return IO_EOF;
    default:
        return IO_ERR;
    }
}

/* Read what is available into c->in.  Returns IO_OK, IO_EOF, IO_ERR or
 * IO_WANT_*. */
static int io_read(struct conn *c)
{
    size_t room = READ_CHUNK;

    if (c->in.cap - c->in.len < room)
        room = c->in.cap - c->in.len;
    if (room == 0 || buf_reserve(&c->in, room) < 0)
        return IO_ERR;
    if (c->ssl != NULL) {
        size_t got = 0;
        int r;
        ERR_clear_error();
        r = SSL_read_ex(c->ssl, c->in.p + c->in.len, room, &got);
        if (r <= 0)
            return ssl_result(c, r);
        c->in.len += got;
    } else {
        ssize_t r = read(c->fd, c->in.p + c->in.len, room);
        if (r < 0)
            return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                       ? IO_WANT_READ
                       : IO_ERR;
        if (r == 0)
            return IO_EOF;
        c->in.len += (size_t)r;
    }
    c->in.p[c->in.len] = '\0';
    return IO_OK;
}

/* Write from c->out.  Returns IO_OK when all is written, IO_ERR or
 * IO_WANT_*. */
static int io_write(struct conn *c)
{
    while (c->out_off < c->out.len) {
        size_t left = c->out.len - c->out_off;
        if (c->ssl != NULL) {
            size_t put = 0;
            int r;
            ERR_clear_error();
            r = SSL_write_ex(c->ssl, c->out.p + c->out_off, left, &put);
            if (r <= 0) {
                r = ssl_result(c, r);
                return r == IO_EOF ? IO_ERR : r;
            }
            c->out_off += put;
        } else {
            ssize_t r = write(c->fd, c->out.p + c->out_off, left);
            if (r < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                    return IO_WANT_WRITE;
                return IO_ERR;
            }
            c->out_off += (size_t)r;
        }
    }
    return IO_OK;
}

/* ------------------------------------------------------------ responses */

static const char *reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 456: return "Quota Exceeded";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 529: return "Too Many Requests";
    default: return "Status";
    }
}

/* Put a whole response into c->out.  Returns 0 or -1 (memory). */
static int set_response(struct conn *c, int status, const char *ctype,
                        const char *body, size_t blen, int keep_alive)
{
    c->out.len = 0;
    c->out_off = 0;
    if (buf_printf(&c->out, "HTTP/1.1 %d %s\r\n", status, reason(status)) < 0 ||
        buf_printf(&c->out, "Content-Type: %s\r\n", ctype) < 0 ||
        buf_printf(&c->out, "Content-Length: %zu\r\n", blen) < 0 ||
        buf_printf(&c->out, "X-Stub-Seq: %llu\r\n", seq) < 0 ||
        buf_adds(&c->out, keep_alive ? "Connection: keep-alive\r\n\r\n"
                                     : "Connection: close\r\n\r\n") < 0 ||
        buf_add(&c->out, body, blen) < 0)
        return -1;
    c->after = keep_alive ? AW_NEXT : AW_CLOSE;
    return 0;
}

static int set_message(struct conn *c, int status, const char *msg,
                       int keep_alive)
{
    struct buf b;
    int rc;

    buf_init(&b, 4096);
    if (buf_adds(&b, "{\"message\":") < 0 || json_escape(&b, msg, strlen(msg)) < 0 ||
        buf_addc(&b, '}') < 0) {
        buf_free(&b);
        return -1;
    }
    rc = set_response(c, status, "application/json", b.p, b.len, keep_alive);
    buf_free(&b);
    return rc;
}

/* ------------------------------------------------------------ requests */

static const char *req_header(const struct req *r, const char *name)
{
    int i;

    for (i = 0; i < r->nh; i++)
        if (strcmp(r->h[i].name, name) == 0)
            return r->h[i].value;
    return NULL;
}

/* Does the comma-separated header list contain token (case-insensitive)? */
static int has_token(const char *list, const char *token)
{
    size_t tl = strlen(token);

    while (list != NULL && *list != '\0') {
        const char *e;
        size_t n;
        while (*list == ' ' || *list == '\t' || *list == ',')
            list++;
        e = strchr(list, ',');
        n = e ? (size_t)(e - list) : strlen(list);
        while (n > 0 && (list[n - 1] == ' ' || list[n - 1] == '\t'))
            n--;
        if (n == tl && strncasecmp(list, token, tl) == 0)
            return 1;
        list = e;
    }
    return 0;
}

static int keep_alive_wanted(const struct req *r)
{
    const char *conn = req_header(r, "connection");

    if (r->http11)
        return !has_token(conn, "close");
    return has_token(conn, "keep-alive");
}

/* Parse an unsigned decimal of at most maxdigits digits.  Returns 0 or -1. */
static int parse_ulong(const char *s, size_t n, size_t maxdigits,
                       unsigned long *out)
{
    unsigned long v = 0;
    size_t i;

    if (n == 0 || n > maxdigits)
        return -1;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    *out = v;
    return 0;
}

/* Split the head (in->p[0..head_len)) into c->req.  Returns 0, or an HTTP
 * status to refuse the request with. */
static int parse_head(struct conn *c, size_t head_len)
{
    struct req *r = &c->req;
    char *p, *line, *eol, *sp;
    const char *cl, *te;

    r->block = malloc(head_len + 1);
    if (r->block == NULL)
        return 500;
    memcpy(r->block, c->in.p, head_len);
    r->block[head_len] = '\0';
    r->head_len = head_len;
    p = r->block;

    /* Request line. */
    eol = strstr(p, "\r\n");
    if (eol == NULL)
        return 400;
    *eol = '\0';
    line = p;
    p = eol + 2;
    sp = strchr(line, ' ');
    if (sp == NULL || sp == line)
        return 400;
    *sp = '\0';
    r->method = line;
    r->target = sp + 1;
    sp = strchr(r->target, ' ');
    if (sp == NULL || sp == r->target)
        return 400;
    *sp = '\0';
    if (strcmp(sp + 1, "HTTP/1.1") == 0)
        r->http11 = 1;
    else if (strcmp(sp + 1, "HTTP/1.0") != 0)
        return 400;

    /* Header lines, up to the empty line. */
    while ((eol = strstr(p, "\r\n")) != NULL && eol != p) {
        char *colon, *v, *ve, *k;
        *eol = '\0';
        colon = strchr(p, ':');
        if (colon == NULL || colon == p)
            return 400;
        for (k = p; k < colon; k++) {
            if (*k == ' ' || *k == '\t')
                return 400;
            if (*k >= 'A' && *k <= 'Z')
                *k = (char)(*k - 'A' + 'a');
        }
        *colon = '\0';
        v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        ve = v + strlen(v);
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            *--ve = '\0';
        if (r->nh == MAX_HEADERS)
            return 431;
        r->h[r->nh].name = p;
        r->h[r->nh].value = v;
        r->nh++;
        p = eol + 2;
    }

    cl = req_header(r, "content-length");
    te = req_header(r, "transfer-encoding");
    if (te != NULL) {
        if (cl != NULL || strcasecmp(te, "chunked") != 0)
            return 400;
        r->chunked = 1;
        r->cst = CH_SIZE;
        r->cpos = head_len;
    } else if (cl != NULL) {
        unsigned long v;
        int i;
        for (i = 0; i < r->nh; i++)
            if (strcmp(r->h[i].name, "content-length") == 0 &&
                strcmp(r->h[i].value, cl) != 0)
                return 400;
        if (parse_ulong(cl, strlen(cl), 15, &v) < 0)
            return 400;
        if (v > MAX_BODY)
            return 413;
        r->clen = v;
    }
    r->expect_continue = has_token(req_header(r, "expect"), "100-continue");
    return 0;
}

/* Decode as much of a chunked body as c->in holds.  Returns 1 when the body
 * is complete, 0 when more input is needed, or an HTTP status (400, 413). */
static int dechunk(struct conn *c)
{
    struct req *r = &c->req;

    for (;;) {
        const char *p = c->in.p + r->cpos;
        size_t avail = c->in.len - r->cpos;
        const char *eol;

        switch (r->cst) {
        case CH_SIZE: {
            size_t n = 0, i;
            int digits = 0;
            eol = memchr(p, '\n', avail);
            if (eol == NULL)
                return avail > 1024 ? 400 : 0;
            if (eol == p || eol[-1] != '\r')
                return 400;
            for (i = 0; p + i < eol - 1 && hexval(p[i]) >= 0; i++) {
                if (++digits > 8)
                    return 413;
                n = n * 16 + (size_t)hexval(p[i]);
            }
            if (digits == 0 || (p[i] != '\r' && p[i] != ';'))
                return 400;
            r->cpos += (size_t)(eol - p) + 1;
            if (n == 0) {
                r->cst = CH_TRAILER;
            } else {
                if (n > MAX_BODY - r->body.len)
                    return 413;
                r->crem = n;
                r->cst = CH_DATA;
            }
            break;
        }
        case CH_DATA: {
            size_t take = avail < r->crem ? avail : r->crem;
            if (take == 0)
                return 0;
            if (buf_add(&r->body, p, take) < 0)
                return 413;
            r->cpos += take;
            r->crem -= take;
            if (r->crem == 0)
                r->cst = CH_DATA_END;
            break;
        }
        case CH_DATA_END:
            if (avail < 2)
                return 0;
            if (p[0] != '\r' || p[1] != '\n')
                return 400;
            r->cpos += 2;
            r->cst = CH_SIZE;
            break;
        case CH_TRAILER:
            eol = memchr(p, '\n', avail);
            if (eol == NULL)
                return avail > 4096 ? 400 : 0;
            if (eol == p || eol[-1] != '\r')
                return 400;
            r->cpos += (size_t)(eol - p) + 1;
            if (eol == p + 1) {
                r->cst = CH_DONE;
                /* A chunked body that decodes to nothing is still "" */
                if (buf_reserve(&r->body, 0) < 0)
                    return 413;
                return 1;
            }
            break;
        case CH_DONE:
            return 1;
        }
    }
}

/* Append the record line for the current request.  Failures to record are
 * reported once and otherwise ignored: the stub keeps answering. */
static void record_request(const struct req *r, unsigned long long conn,
                           const char *body, size_t blen)
{
    static int warned;
    struct buf b;
    int i, j, first = 1;

    if (record_fp == NULL)
        return;
    buf_init(&b, MAX_BODY * 6 + MAX_HEAD * 6 + 1024);
    if (buf_printf(&b, "{\"seq\":%llu,\"conn\":%llu,\"method\":", seq, conn) < 0 ||
        json_escape(&b, r->method, strlen(r->method)) < 0 ||
        buf_adds(&b, ",\"path\":") < 0 ||
        json_escape(&b, r->target, strlen(r->target)) < 0 ||
        buf_adds(&b, ",\"headers\":{") < 0)
        goto fail;
    for (i = 0; i < r->nh; i++) {
        int dup = 0, more = 0;
        for (j = 0; j < i; j++)
            if (strcmp(r->h[j].name, r->h[i].name) == 0)
                dup = 1;
        if (dup)
            continue;
        if ((!first && buf_addc(&b, ',') < 0) ||
            json_escape(&b, r->h[i].name, strlen(r->h[i].name)) < 0 ||
            buf_addc(&b, ':') < 0)
            goto fail;
        first = 0;
        for (j = i + 1; j < r->nh; j++)
            if (strcmp(r->h[j].name, r->h[i].name) == 0)
                more = 1;
        if (!more) {
            if (json_escape(&b, r->h[i].value, strlen(r->h[i].value)) < 0)
                goto fail;
        } else {
            struct buf joined;
            int rc = 0;
            buf_init(&joined, MAX_HEAD);
            for (j = i; j < r->nh && rc == 0; j++) {
                if (strcmp(r->h[j].name, r->h[i].name) != 0)
                    continue;
                if (joined.len > 0)
                    rc = buf_adds(&joined, ", ");
                if (rc == 0)
                    rc = buf_adds(&joined, r->h[j].value);
            }
            if (rc == 0)
                rc = json_escape(&b, joined.p ? joined.p : "", joined.len);
            buf_free(&joined);
            if (rc < 0)
                goto fail;
        }
    }
    if (buf_adds(&b, "},\"body\":") < 0 || json_escape(&b, body, blen) < 0 ||
        buf_adds(&b, "}\n") < 0)
        goto fail;
    if (fwrite(b.p, 1, b.len, record_fp) != b.len || fflush(record_fp) != 0)
        goto fail;
    buf_free(&b);
    return;
fail:
    if (!warned) {
        fprintf(stderr, "stub_vendor: cannot write the record file\n");
        warned = 1;
    }
    buf_free(&b);
}

/* Find "@@name=VALUE@@" in s; on success copy VALUE (at most cap-1 bytes,
 * no '@') into out and return 0, else -1. */
static int marker_value(const struct text *t, const char *name, char *out,
                        size_t cap)
{
    char pat[32];
    const char *s = t->p, *end = t->p + t->len, *hit, *v;
    int n = snprintf(pat, sizeof pat, "@@%s=", name);

    if (n < 0 || (size_t)n >= sizeof pat)
        return -1;
    while (s < end && (hit = memmem(s, (size_t)(end - s), pat, (size_t)n)) != NULL) {
        const char *q;
        v = hit + n;
        q = v;
        while (q < end && *q != '@' && (size_t)(q - v) < cap - 1)
            q++;
        if (end - q >= 2 && q[0] == '@' && q[1] == '@') {
            memcpy(out, v, (size_t)(q - v));
            out[q - v] = '\0';
            return 0;
        }
        s = hit + 1;
    }
    return -1;
}

static int marker_num(const struct text *t, const char *name, size_t maxdigits,
                      unsigned long *out)
{
    char v[16];

    if (marker_value(t, name, v, sizeof v) < 0)
        return -1;
    return parse_ulong(v, strlen(v), maxdigits, out);
}

static int has_marker(const struct text *t, const char *m)
{
    return memmem(t->p, t->len, m, strlen(m)) != NULL;
}

/* Returns 1 when id was seen before, else remembers it and returns 0. */
static int once_seen(const char *id)
{
    size_t i;
    char *copy;

    for (i = 0; i < once_n; i++)
        if (strcmp(once_ids[i], id) == 0)
            return 1;
    if (once_n == MAX_ONCE_IDS)
        return 1; /* table full: behave as "already failed once" */
    if (once_n == once_alloc) {
        size_t na = once_alloc ? once_alloc * 2 : 16;
        char **nv = realloc(once_ids, na * sizeof *nv);
        if (nv == NULL)
            return 1;
        once_ids = nv;
        once_alloc = na;
    }
    copy = strdup(id);
    if (copy == NULL)
        return 1;
    once_ids[once_n++] = copy;
    return 0;
}

/* The stub's "translation" of t into out. */
/* tags: 1 copy markup verbatim, 0 drop it, 2 write it twice (the last two
 * let tests lose or duplicate the gateway's placeholders). */
static int translate(struct buf *out, const char *lang, const struct text *t,
                     int tags)
{
    size_t i = 0;
    const char *l;

    if (buf_addc(out, '[') < 0)
        return -1;
    for (l = lang; *l; l++)
        if (buf_addc(out, (*l >= 'a' && *l <= 'z') ? (char)(*l - 32) : *l) < 0)
            return -1;
    if (buf_adds(out, "] ") < 0)
        return -1;
    while (i < t->len) {
        char c = t->p[i];
        if (c == '<') {
            const char *gt = memchr(t->p + i, '>', t->len - i);
            size_t n = gt ? (size_t)(gt - (t->p + i)) + 1 : t->len - i;
            for (int k = 0; k < tags; k++)
                if (buf_add(out, t->p + i, n) < 0)
                    return -1;
            i += n;
            continue;
        }
        if (c == '&') {
            /* Entity or character reference: &name; or &#...; verbatim. */
            size_t k = i + 1;
            while (k < t->len && k - i <= 12 &&
                   ((t->p[k] >= 'a' && t->p[k] <= 'z') ||
                    (t->p[k] >= 'A' && t->p[k] <= 'Z') ||
                    (t->p[k] >= '0' && t->p[k] <= '9') || t->p[k] == '#'))
                k++;
            if (k < t->len && k > i + 1 && t->p[k] == ';') {
                if (buf_add(out, t->p + i, k - i + 1) < 0)
                    return -1;
                i = k + 1;
                continue;
            }
        }
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 32);
        if (buf_addc(out, c) < 0)
            return -1;
        i++;
    }
    return 0;
}

static const char LANG_SOURCE[] =
    "[{\"language\":\"DE\",\"name\":\"German\"},"
    "{\"language\":\"EN\",\"name\":\"English\"},"
    "{\"language\":\"ES\",\"name\":\"Spanish\"},"
    "{\"language\":\"JA\",\"name\":\"Japanese\"}]";

static const char LANG_TARGET[] =
    "[{\"language\":\"DE\",\"name\":\"German\",\"supports_formality\":true},"
    "{\"language\":\"EN-GB\",\"name\":\"English (British)\",\"supports_formality\":false},"
    "{\"language\":\"EN-US\",\"name\":\"English (American)\",\"supports_formality\":false},"
    "{\"language\":\"ES\",\"name\":\"Spanish\",\"supports_formality\":true},"
    "{\"language\":\"JA\",\"name\":\"Japanese\",\"supports_formality\":false}]";

static int is_json_type(const struct req *r)
{
    const char *ct = req_header(r, "content-type");

    return ct != NULL && strncasecmp(ct, "application/json", 16) == 0;
}

/* What to do with a parsed request once the response is in c->out. */
struct outcome {
    long delay_ms;
    int  close_now; /* @@close@@ */
};

static int handle_languages(struct conn *c, const char *query, const char *body,
                            size_t blen, int ka)
{
    struct buf type;
    struct form_req f = { NULL, NULL, &type };
    const char *list = LANG_SOURCE;
    int rc = -1;

    buf_init(&type, 64);
    if (query != NULL && form_each(query, strlen(query), form_field, &f) < 0)
        goto fail;
    if (strcmp(c->req.method, "POST") == 0 && !is_json_type(&c->req) &&
        form_each(body, blen, form_field, &f) < 0)
        goto fail;
    if (type.p != NULL && strcmp(type.p, "target") == 0)
        list = LANG_TARGET;
    else if (type.p != NULL && strcmp(type.p, "source") != 0) {
        rc = set_message(c, 400, "Value for 'type' not supported.", ka);
        goto fail;
    }
    rc = set_response(c, 200, "application/json", list, strlen(list), ka);
fail:
    buf_free(&type);
    if (rc < 0 && c->out.len == 0)
        rc = set_message(c, 400, "Bad request", ka);
    return rc;
}

/* The translation reply in another framing (@@framing=F@@).  Returns 0,
 * 1 when F is unknown, -1 when memory runs out. */
static int set_framed(struct conn *c, const char *f, const char *body, size_t blen,
                      int ka)
{
    struct buf *o = &c->out;
    int rc = 0;

    o->len = 0;
    c->out_off = 0;
    c->after = ka ? AW_NEXT : AW_CLOSE;
    if (strcmp(f, "chunked") == 0 || strcmp(f, "badchunk") == 0) {
        size_t i;
        rc |= buf_printf(o, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         "Transfer-Encoding: chunked\r\nX-Stub-Seq: %llu\r\n\r\n", seq);
        if (strcmp(f, "badchunk") == 0)
            rc |= buf_adds(o, "zz\r\n");
        for (i = 0; i < blen; i += 7) {
            size_t n = blen - i < 7 ? blen - i : 7;
            rc |= buf_printf(o, i == 0 ? "%zx;stub=1\r\n" : "%zx\r\n", n);
            rc |= buf_add(o, body + i, n);
            rc |= buf_adds(o, "\r\n");
        }
        rc |= buf_adds(o, "0\r\nX-Stub-Trailer: 1\r\n\r\n");
    } else if (strcmp(f, "interim") == 0) {
        rc |= buf_adds(o, "HTTP/1.1 100 Continue\r\n\r\n"
                          "HTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\n");
        rc |= buf_printf(o, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         "Content-Length: %zu\r\n\r\n", blen);
        rc |= buf_add(o, body, blen);
    } else if (strcmp(f, "eof") == 0) {
        rc |= buf_adds(o, "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n");
        rc |= buf_add(o, body, blen);
        c->after = AW_CLOSE;
    } else if (strcmp(f, "lf") == 0) {
        rc |= buf_printf(o, "HTTP/1.1 200 OK\nContent-Type: application/json\n"
                         "Content-Length: %zu\n\n", blen);
        rc |= buf_add(o, body, blen);
    } else if (strcmp(f, "extra") == 0) {
        rc |= buf_printf(o, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         "Content-Length: %zu\r\n\r\n", blen);
        rc |= buf_add(o, body, blen);
        rc |= buf_adds(o, "HTTP/1.1 200 OK\r\n");
    } else if (strcmp(f, "splitextra") == 0) {
        /* The reply fills one 16 KiB TLS record exactly; a second, unasked
         * reply follows in the next record. */
        static const char stale[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                    "Content-Length: 20\r\n\r\n{\"message\":\"STALE\"}";
        char head[256];
        int hl = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Type: "
                          "application/json\r\nContent-Length: %zu\r\n", blen);
        size_t base = (size_t)hl + 2 + blen + 14, k;
        if (hl < 0 || base > 16384)
            return 1;
        k = 16384 - base;
        rc |= buf_add(o, head, (size_t)hl);
        rc |= buf_adds(o, "X-Stub-Pad: ");
        while (k-- > 0)
            rc |= buf_addc(o, 'a');
        rc |= buf_adds(o, "\r\n\r\n");
        rc |= buf_add(o, body, blen);
        rc |= buf_adds(o, stale);
    } else if (strcmp(f, "badstatus") == 0) {
        rc |= buf_printf(o, "HTTP/1.1 2x0 OK\r\nContent-Length: %zu\r\n\r\n", blen);
        rc |= buf_add(o, body, blen);
    } else if (strcmp(f, "hugehead") == 0) {
        int i;
        rc |= buf_adds(o, "HTTP/1.1 200 OK\r\n");
        for (i = 0; i < 700; i++)
            rc |= buf_printf(o, "X-Stub-Pad-%03d: %090d\r\n", i, 0);
        rc |= buf_printf(o, "Content-Length: %zu\r\n\r\n", blen);
        rc |= buf_add(o, body, blen);
    } else {
        return 1;
    }
    return rc < 0 ? -1 : 0;
}

static int handle_translate(struct conn *c, const char *body, size_t blen,
                            int ka, struct outcome *oc)
{
    struct texts t = { NULL, 0, 0 };
    struct buf lang, out, tr;
    const struct text *first;
    int tags;
    unsigned long v, count;
    char id[80];
    size_t i;
    int rc = -1;

    buf_init(&lang, 64);
    buf_init(&out, MAX_BODY * 8);
    buf_init(&tr, MAX_BODY * 2);
    if (is_json_type(&c->req)) {
        if (parse_json_body(body, blen, &t, &lang) < 0) {
            rc = set_message(c, 400, "Invalid request: expected a JSON object", ka);
            goto done;
        }
    } else {
        struct form_req f = { &t, &lang, NULL };
        if (form_each(body, blen, form_field, &f) < 0) {
            rc = set_message(c, 400, "Invalid request", ka);
            goto done;
        }
    }
    if (t.n == 0) {
        rc = set_message(c, 400, "Parameter 'text' not specified.", ka);
        goto done;
    }
    if (lang.len == 0) {
        rc = set_message(c, 400, "Value for 'target_lang' not supported.", ka);
        goto done;
    }

    first = &t.v[0];
    if (marker_num(first, "delay", 7, &v) == 0)
        oc->delay_ms = v > (unsigned long)MAX_DELAY_MS ? MAX_DELAY_MS : (long)v;
    if (has_marker(first, "@@close@@")) {
        oc->close_now = 1;
        rc = 0;
        goto done;
    }
    if (marker_num(first, "status-once", 3, &v) == 0 && v >= 100 && v <= 599) {
        if (marker_value(first, "id", id, sizeof id) < 0)
            id[0] = '\0';
        if (!once_seen(id)) {
            rc = set_message(c, (int)v, "stub error", ka);
            goto done;
        }
    }
    if (marker_num(first, "status", 3, &v) == 0 && v >= 100 && v <= 599) {
        rc = set_message(c, (int)v, "stub error", ka);
        goto done;
    }
    if (has_marker(first, "@@garbage@@")) {
        static const char garbage[] = "<html>stub garbage: this is not JSON";
        rc = set_response(c, 200, "application/json", garbage,
                          sizeof garbage - 1, ka);
        goto done;
    }
    tags = has_marker(first, "@@droptags@@") ? 0 : has_marker(first, "@@duptags@@") ? 2 : 1;
    count = t.n;
    if (marker_num(first, "count", 5, &v) == 0)
        count = v > MAX_COUNT ? MAX_COUNT : v;

    if (buf_adds(&out, "{\"translations\":[") < 0)
        goto done;
    for (i = 0; i < count; i++) {
        tr.len = 0;
        if (translate(&tr, lang.p, &t.v[i < t.n ? i : t.n - 1], tags) < 0 ||
            (i > 0 && buf_addc(&out, ',') < 0) ||
            buf_adds(&out, "{\"detected_source_language\":\"EN\",\"text\":") < 0 ||
            json_escape(&out, tr.p, tr.len) < 0 || buf_addc(&out, '}') < 0)
            goto done;
    }
    if (buf_adds(&out, "]}") < 0)
        goto done;
    if (has_marker(first, "@@drop-next@@"))
        c->drop_next = 1;
    if (marker_value(first, "framing", id, sizeof id) == 0) {
        rc = set_framed(c, id, out.p, out.len, ka);
        if (rc == 1)
            rc = set_message(c, 400, "unknown framing", ka);
        goto done;
    }
    rc = set_response(c, 200, "application/json", out.p, out.len, ka);
done:
    texts_free(&t);
    buf_free(&lang);
    buf_free(&out);
    buf_free(&tr);
    return rc;
}

static int auth_ok(const struct req *r)
{
    static const char scheme[] = "DeepL-Auth-Key ";
    const char *a = req_header(r, "authorization");

    if (a == NULL || strncmp(a, scheme, sizeof scheme - 1) != 0)
        return 0;
    a += sizeof scheme - 1;
    if (*a == '\0')
        return 0;
    return opt.api_key == NULL || strcmp(a, opt.api_key) == 0;
}

/* A complete request is in c->req (body given): record it, build the answer
 * and move the connection on. */
static void dispatch(struct conn *c, const char *body, size_t blen)
{
    struct req *r = &c->req;
    struct outcome oc = { opt.delay_ms, 0 };
    char *query;
    char path[256];
    size_t plen;
    int ka = keep_alive_wanted(r), rc;

    seq++;
    record_request(r, c->id, body, blen);
    if (c->drop_next) {
        conn_close(c);
        return;
    }

    query = strchr(r->target, '?');
    plen = query ? (size_t)(query - r->target) : strlen(r->target);
    if (plen >= sizeof path)
        plen = sizeof path - 1;
    memcpy(path, r->target, plen);
    path[plen] = '\0';

    if (!auth_ok(r))
        rc = set_message(c, 403, "Authorization failed", ka);
    else if (strcmp(path, "/v2/translate") == 0 && strcmp(r->method, "POST") == 0)
        rc = handle_translate(c, body, blen, ka, &oc);
    else if (strcmp(path, "/v2/languages") == 0 &&
             (strcmp(r->method, "GET") == 0 || strcmp(r->method, "POST") == 0))
        rc = handle_languages(c, query ? query + 1 : NULL, body, blen, ka);
    else
        rc = set_message(c, 404, "Not found", ka);
    if (rc < 0 && !oc.close_now && set_message(c, 500, "stub out of memory", 0) < 0)
        oc.close_now = 1;

    if (oc.delay_ms > 0) {
        c->deadline = now_ms() + (uint64_t)oc.delay_ms;
        c->close_after_delay = oc.close_now;
        if (heap_push(c) == 0) {
            c->state = ST_DELAY;
            set_events(c, 0);
            return;
        }
    }
    if (oc.close_now) {
        conn_close(c);
        return;
    }
    c->state = ST_WRITE;
}

/* Refuse a request that cannot be handled (bad framing): answer and close. */
static void refuse(struct conn *c, int status)
{
    const char *msg = status == 413   ? "Request entity too large"
                      : status == 431 ? "Request header fields too large"
                      : status == 500 ? "Internal error"
                                      : "Bad request";

    if (set_message(c, status, msg, 0) < 0) {
        conn_close(c);
        return;
    }
    c->state = ST_WRITE;
}

/* Look at c->in for a complete request.  Returns 1 when the connection
 * changed state (answer queued, or closed), 0 when more input is needed. */
static int try_request(struct conn *c)
{
    struct req *r = &c->req;
    int st;

    if (!c->have_head) {
        const char *end = memmem(c->in.p ? c->in.p : "", c->in.len, "\r\n\r\n", 4);
        if (end == NULL) {
            if (c->in.len >= MAX_HEAD) {
                refuse(c, 431);
                return 1;
            }
            return 0;
        }
        if ((size_t)(end - c->in.p) + 4 > MAX_HEAD) {
            refuse(c, 431);
            return 1;
        }
        st = parse_head(c, (size_t)(end - c->in.p) + 4);
        if (st == 413) {
            /* Record what arrived, then refuse. */
            seq++;
            record_request(r, c->id, "", 0);
            refuse(c, 413);
            return 1;
        }
        if (st != 0) {
            refuse(c, st);
            return 1;
        }
        c->have_head = 1;
    }

    if (r->chunked) {
        st = dechunk(c);
        if (st == 0 && c->in.len >= c->in.cap)
            st = 413;
        if (st == 413) {
            seq++;
            record_request(r, c->id, "", 0);
        }
        if (st > 1) {
            refuse(c, st);
            return 1;
        }
        if (st == 1) {
            r->consume = r->cpos;
            dispatch(c, r->body.p, r->body.len);
            return 1;
        }
    } else if (c->in.len - r->head_len >= r->clen) {
        r->consume = r->head_len + r->clen;
        dispatch(c, c->in.p + r->head_len, r->clen);
        return 1;
    }

    if (r->expect_continue && !r->sent_continue) {
        r->sent_continue = 1;
        c->out.len = 0;
        c->out_off = 0;
        if (buf_adds(&c->out, "HTTP/1.1 100 Continue\r\n\r\n") < 0) {
            conn_close(c);
            return 1;
        }
        c->after = AW_READ_MORE;
        c->state = ST_WRITE;
        return 1;
    }
    return 0;
}

static void want(struct conn *c, int io)
{
    set_events(c, io == IO_WANT_WRITE ? EPOLLOUT : EPOLLIN);
}

/* Run the connection's state machine until it has to wait. */
static void conn_drive(struct conn *c)
{
    int r;

    for (;;) {
        switch (c->state) {
        case ST_HANDSHAKE:
            ERR_clear_error();
            r = SSL_accept(c->ssl);
            if (r == 1) {
                c->state = ST_READ;
                continue;
            }
            r = ssl_result(c, r);
            if (r == IO_WANT_READ || r == IO_WANT_WRITE) {
                want(c, r);
                return;
            }
            conn_close(c);
            return;
        case ST_READ:
            if (try_request(c))
                continue;
            r = io_read(c);
            if (r == IO_OK)
                continue;
            if (r == IO_WANT_READ || r == IO_WANT_WRITE) {
                want(c, r);
                return;
            }
            conn_close(c);
            return;
        case ST_DELAY:
            return;
        case ST_WRITE:
            r = io_write(c);
            if (r == IO_WANT_READ || r == IO_WANT_WRITE) {
                want(c, r);
                return;
            }
            if (r != IO_OK || c->after == AW_CLOSE) {
                conn_close(c);
                return;
            }
            c->out.len = 0;
            c->out_off = 0;
            if (c->after == AW_NEXT) {
                buf_consume(&c->in, c->req.consume);
                req_reset(&c->req);
                c->have_head = 0;
            }
            c->state = ST_READ;
            continue;
        case ST_DEAD:
            return;
        }
    }
}

static void conn_timer(struct conn *c)
{
    if (c->close_after_delay) {
        conn_close(c);
        return;
    }
    c->state = ST_WRITE;
    conn_drive(c);
}

static void accept_all(int lfd)
{
    for (;;) {
        struct epoll_event e;
        struct conn *c;
        int fd, one = 1;

        fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                fprintf(stderr, "stub_vendor: accept: %s\n", strerror(errno));
            return;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c = calloc(1, sizeof *c);
        if (c == NULL) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->id = ++conn_seq;
        c->heap_idx = SIZE_MAX;
        buf_init(&c->in, MAX_IN);
        buf_init(&c->out, MAX_BODY * 8 + 4096);
        buf_init(&c->req.body, MAX_BODY);
        c->state = ST_READ;
        if (!opt.plain) {
            c->ssl = SSL_new(ssl_ctx);
            if (c->ssl == NULL || SSL_set_fd(c->ssl, fd) != 1) {
                SSL_free(c->ssl);
                free(c);
                close(fd);
                ERR_clear_error();
                continue;
            }
            c->state = ST_HANDSHAKE;
        }
        memset(&e, 0, sizeof e);
        e.events = EPOLLIN;
        e.data.ptr = c;
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e) < 0) {
            SSL_free(c->ssl);
            free(c);
            close(fd);
            continue;
        }
        c->events = EPOLLIN;
        c->next = live_list;
        if (live_list)
            live_list->prev = c;
        live_list = c;
        nconns++;
        conn_drive(c);
    }
}

/* ------------------------------------------------------------ setup */

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    unsigned int i = 0;

    (void)ssl;
    (void)arg;
    while (i < inlen) {
        unsigned int n = in[i];
        if (i + 1 + n > inlen)
            break;
        if (n == 8 && memcmp(in + i + 1, "http/1.1", 8) == 0) {
            *out = in + i + 1;
            *outlen = (unsigned char)n;
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + n;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

static void ssl_errors(const char *what)
{
    unsigned long e;
    char msg[256];

    fprintf(stderr, "stub_vendor: %s\n", what);
    while ((e = ERR_get_error()) != 0) {
        ERR_error_string_n(e, msg, sizeof msg);
        fprintf(stderr, "  %s\n", msg);
    }
}

static SSL_CTX *make_ssl_ctx(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    if (ctx == NULL) {
        ssl_errors("SSL_CTX_new failed");
        return NULL;
    }
    if (!SSL_CTX_set_min_proto_version(ctx, opt.tls13_only ? TLS1_3_VERSION
                                                           : TLS1_2_VERSION)) {
        ssl_errors("cannot set the minimum TLS version");
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, opt.cert) != 1) {
        ssl_errors("cannot load --cert");
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, opt.key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        ssl_errors("cannot load --key (or it does not match --cert)");
        goto fail;
    }
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/* Bind and listen on HOST:PORT ("127.0.0.1:0", "[::1]:8443").  Returns the
 * socket or -1; the bound port in *port. */
static int make_listener(const char *spec, unsigned *port)
{
    char host[128];
    const char *colon, *h = spec, *pstr;
    size_t hl;
    unsigned long pv;
    struct addrinfo hints, *ai = NULL;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fd = -1, one = 1;

    colon = strrchr(spec, ':');
    if (colon == NULL)
        goto bad;
    pstr = colon + 1;
    hl = (size_t)(colon - spec);
    if (hl >= 2 && spec[0] == '[' && colon[-1] == ']') {
        h = spec + 1;
        hl -= 2;
    }
    if (hl == 0 || hl >= sizeof host ||
        parse_ulong(pstr, strlen(pstr), 5, &pv) < 0 || pv > 65535)
        goto bad;
    memcpy(host, h, hl);
    host[hl] = '\0';

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
    if (getaddrinfo(host, pstr, &hints, &ai) != 0 || ai == NULL)
        goto bad;
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto sys;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 4096) < 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
        goto sys;
    if (ss.ss_family == AF_INET)
        *port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    else
        *port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    freeaddrinfo(ai);
    return fd;
bad:
    fprintf(stderr, "stub_vendor: --listen wants HOST:PORT with a numeric "
                    "host, got '%s'\n", spec);
    goto fail;
sys:
    fprintf(stderr, "stub_vendor: cannot listen on %s: %s\n", spec,
            strerror(errno));
fail:
    if (ai != NULL)
        freeaddrinfo(ai);
    if (fd >= 0)
        close(fd);
    return -1;
}

/* Write the port to path atomically (tests poll for the file). */
static int write_port_file(const char *path, unsigned port)
{
    char tmp[PATH_MAX];
    FILE *f;
    int n = snprintf(tmp, sizeof tmp, "%s.tmp", path);

    if (n < 0 || (size_t)n >= sizeof tmp)
        return -1;
    f = fopen(tmp, "w");
    if (f == NULL)
        return -1;
    if (fprintf(f, "%u\n", port) < 0) {
        fclose(f);
        unlink(tmp);
        return -1;
    }
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: stub_vendor --listen HOST:PORT --cert FILE --key FILE\n"
            "                   [--record FILE] [--delay-ms N] [--plain]\n"
            "                   [--port-file FILE] [--tls13-only] [--api-key KEY]\n"
            "\n"
            "A recording stub of a DeepL API v2 vendor (see tests/stub/README.md).\n"
            "  --listen HOST:PORT  numeric address; port 0 picks a free port\n"
            "  --cert, --key       PEM certificate (chain) and key; not needed\n"
            "                      with --plain\n"
            "  --record FILE       append one JSON line per request\n"
            "  --delay-ms N        answer every request after N ms\n"
            "  --plain             plain HTTP, no TLS (benchmark baseline)\n"
            "  --port-file FILE    write the bound port there once listening\n"
            "  --tls13-only        refuse TLS 1.2 (default: TLS 1.2 and 1.3)\n"
            "  --api-key KEY       accept only \"DeepL-Auth-Key KEY\"\n");
}

static int parse_opts(int argc, char **argv)
{
    int i;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--plain") == 0) {
            opt.plain = 1;
            continue;
        } else if (strcmp(a, "--tls13-only") == 0) {
            opt.tls13_only = 1;
            continue;
        } else if (strcmp(a, "--listen") == 0) {
            slot = &opt.listen;
        } else if (strcmp(a, "--cert") == 0) {
            slot = &opt.cert;
        } else if (strcmp(a, "--key") == 0) {
            slot = &opt.key;
        } else if (strcmp(a, "--record") == 0) {
            slot = &opt.record;
        } else if (strcmp(a, "--port-file") == 0) {
            slot = &opt.port_file;
        } else if (strcmp(a, "--api-key") == 0) {
            slot = &opt.api_key;
        } else if (strcmp(a, "--delay-ms") == 0) {
            unsigned long v;
            if (i + 1 >= argc ||
                parse_ulong(argv[i + 1], strlen(argv[i + 1]), 7, &v) < 0 ||
                v > (unsigned long)MAX_DELAY_MS) {
                fprintf(stderr, "stub_vendor: --delay-ms wants 0..%ld\n",
                        MAX_DELAY_MS);
                return -1;
            }
            opt.delay_ms = (long)v;
            i++;
            continue;
        } else {
            fprintf(stderr, "stub_vendor: unknown argument '%s'\n", a);
            return -1;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "stub_vendor: %s needs a value\n", a);
            return -1;
        }
        *slot = argv[++i];
    }
    if (opt.listen == NULL) {
        fprintf(stderr, "stub_vendor: --listen is required\n");
        return -1;
    }
    if (!opt.plain && (opt.cert == NULL || opt.key == NULL)) {
        fprintf(stderr, "stub_vendor: --cert and --key are required without --plain\n");
        return -1;
    }
    return 0;
}

static void raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    struct epoll_event ev[256];
    struct epoll_event e;
    sigset_t mask;
    unsigned port = 0;
    int lfd = -1, sfd = -1, running = 1, rc = 1, i, n;
    size_t k;

    if (parse_opts(argc, argv) < 0) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();

    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 ||
        (sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
        fprintf(stderr, "stub_vendor: signalfd: %s\n", strerror(errno));
        goto fail;
    }
    if (!opt.plain && (ssl_ctx = make_ssl_ctx()) == NULL)
        goto fail;
    if (opt.record != NULL) {
        record_fp = fopen(opt.record, "a");
        if (record_fp == NULL) {
            fprintf(stderr, "stub_vendor: cannot open %s: %s\n", opt.record,
                    strerror(errno));
            goto fail;
        }
    }
    lfd = make_listener(opt.listen, &port);
    if (lfd < 0)
        goto fail;
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        goto fail;
    memset(&e, 0, sizeof e);
    e.events = EPOLLIN;
    e.data.ptr = &listen_tag;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &e) < 0)
        goto fail;
    e.data.ptr = &signal_tag;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, sfd, &e) < 0)
        goto fail;
    if (opt.port_file != NULL && write_port_file(opt.port_file, port) < 0) {
        fprintf(stderr, "stub_vendor: cannot write %s\n", opt.port_file);
        goto fail;
    }
    fprintf(stderr, "stub_vendor: listening on %s port %u (%s)\n", opt.listen,
            port, opt.plain ? "plain HTTP" : opt.tls13_only ? "TLS 1.3" : "TLS");

    while (running) {
        int timeout = -1;
        uint64_t now;
        if (heap_n > 0) {
            now = now_ms();
            timeout = heap[0]->deadline <= now
                          ? 0
                          : (int)(heap[0]->deadline - now > INT_MAX
                                      ? INT_MAX
                                      : heap[0]->deadline - now);
        }
        n = epoll_wait(epfd, ev, (int)(sizeof ev / sizeof ev[0]), timeout);
        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "stub_vendor: epoll_wait: %s\n", strerror(errno));
            goto fail;
        }
        for (i = 0; i < n; i++) {
            void *p = ev[i].data.ptr;
            if (p == &listen_tag) {
                accept_all(lfd);
            } else if (p == &signal_tag) {
                struct signalfd_siginfo si;
                while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
                    running = 0;
            } else {
                struct conn *c = p;
                if (c->state == ST_DEAD)
                    continue;
                if (c->state == ST_DELAY) {
                    /* Not reading while delayed: only errors arrive here. */
                    if (ev[i].events & (EPOLLERR | EPOLLHUP))
                        conn_close(c);
                    continue;
                }
                conn_drive(c);
            }
        }
        now = now_ms();
        while (heap_n > 0 && heap[0]->deadline <= now) {
            struct conn *c = heap[0];
            heap_remove(c);
            conn_timer(c);
        }
        reap_dead();
    }
    rc = 0;
    fprintf(stderr, "stub_vendor: exiting after %llu requests\n", seq);
fail:
    while (live_list != NULL)
        conn_close(live_list);
    reap_dead();
    free(heap);
    for (k = 0; k < once_n; k++)
        free(once_ids[k]);
    free(once_ids);
    if (record_fp != NULL)
        fclose(record_fp);
    if (ssl_ctx != NULL)
        SSL_CTX_free(ssl_ctx);
    if (lfd >= 0)
        close(lfd);
    if (sfd >= 0)
        close(sfd);
    if (epfd >= 0)
        close(epfd);
    if (rc == 0 && opt.port_file != NULL)
        unlink(opt.port_file);
    return rc;
}
