#include "h1.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define H1_MAX_CHUNK_LINE 4096   /* chunk size line with its extensions */
#define H1_MAX_TRAILERS   4096   /* all trailer lines of one body */

const char *h1_strerror(h1_err e)
{
    switch (e) {
    case H1_OK:                   return "ok";
    case H1_ERR_REQUEST_LINE:     return "malformed request line";
    case H1_ERR_VERSION:          return "HTTP version not supported";
    case H1_ERR_HEADER:           return "malformed header field";
    case H1_ERR_HEAD_TOO_LARGE:   return "request head too large";
    case H1_ERR_TOO_MANY_HEADERS: return "too many header fields";
    case H1_ERR_LENGTH:           return "malformed or repeated Content-Length";
    case H1_ERR_TRANSFER_CODING:  return "unsupported transfer coding";
    case H1_ERR_FRAMING:          return "both Content-Length and Transfer-Encoding";
    case H1_ERR_HOST:             return "missing or repeated Host";
    case H1_ERR_CHUNK:            return "malformed chunked body";
    }
    return "unknown";
}

unsigned h1_status(h1_err e)
{
    switch (e) {
    case H1_OK:                   return 200;
    case H1_ERR_VERSION:          return 505;
    case H1_ERR_HEAD_TOO_LARGE:
    case H1_ERR_TOO_MANY_HEADERS: return 431;
    case H1_ERR_TRANSFER_CODING:  return 501;
    case H1_ERR_REQUEST_LINE:
    case H1_ERR_HEADER:
    case H1_ERR_LENGTH:
    case H1_ERR_FRAMING:
    case H1_ERR_HOST:
    case H1_ERR_CHUNK:            return 400;
    }
    return 400;
}

/* RFC 9110 tchar. */
static int is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

size_t h1_head_length(const char *buf, size_t len)
{
    const char *p = buf, *end = buf + len;

    /* The end of the head is an empty line.  Bare LF line ends are found
     * too, so that such a head is refused (h1_parse_head) rather than
     * waited on until the idle timeout. */
    while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        p++;
        if (p < end && *p == '\n')
            return (size_t)(p - buf) + 1;
        if (end - p >= 2 && p[0] == '\r' && p[1] == '\n')
            return (size_t)(p - buf) + 2;
    }
    return 0;
}

/* Does the comma-separated list s hold token tok (case-insensitive)? */
static int list_has(const char *s, const char *tok)
{
    size_t tl = strlen(tok);

    while (*s != '\0') {
        const char *e;
        size_t n;
        while (*s == ' ' || *s == '\t' || *s == ',')
            s++;
        e = s;
        while (*e != '\0' && *e != ',')
            e++;
        n = (size_t)(e - s);
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        if (n == tl && strncasecmp(s, tok, tl) == 0)
            return 1;
        s = e;
    }
    return 0;
}

/* The request line "METHOD SP /target SP HTTP/1.x" in line[0..n). */
static h1_err parse_request_line(char *line, size_t n, h1_head *h)
{
    size_t i = 0, m;
    char *target, *q;

    while (i < n && is_tchar((unsigned char)line[i]))
        i++;
    if (i == 0 || i > 16 || i >= n || line[i] != ' ')
        return H1_ERR_REQUEST_LINE;
    line[i++] = '\0';
    h->method = line;
    target = line + i;
    while (i < n && (unsigned char)line[i] > 0x20 && (unsigned char)line[i] < 0x7f)
        i++;
    if (line + i == target || i >= n || line[i] != ' ' || target[0] != '/')
        return H1_ERR_REQUEST_LINE;
    line[i++] = '\0';
    m = n - i;
    if (m != 8 || memcmp(line + i, "HTTP/", 5) != 0 || line[i + 6] != '.' ||
        line[i + 5] < '0' || line[i + 5] > '9' || line[i + 7] < '0' || line[i + 7] > '9')
        return H1_ERR_REQUEST_LINE;
    if (line[i + 5] != '1')
        return H1_ERR_VERSION;
    /* A higher minor version is answered as HTTP/1.1 (RFC 9110 2.5). */
    h->minor = line[i + 7] == '0' ? 0 : 1;
    q = strchr(target, '?');
    if (q != NULL)
        *q++ = '\0';
    h->path = target;
    h->query = q;
    return H1_OK;
}

/* One field line in line[0..n): "name:" OWS value OWS. */
static h1_err parse_field(char *line, size_t n, h1_field *f)
{
    size_t i = 0, v, e;

    while (i < n && is_tchar((unsigned char)line[i]))
        i++;
    /* No name, whitespace before the colon, obs-fold: all refused. */
    if (i == 0 || i >= n || line[i] != ':')
        return H1_ERR_HEADER;
    line[i++] = '\0';
    while (i < n && (line[i] == ' ' || line[i] == '\t'))
        i++;
    v = i;
    for (; i < n; i++) {
        unsigned char c = (unsigned char)line[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return H1_ERR_HEADER;
    }
    e = n;
    while (e > v && (line[e - 1] == ' ' || line[e - 1] == '\t'))
        e--;
    line[e] = '\0';
    f->name = line;
    f->value = line + v;
    return H1_OK;
}

static h1_err derive(h1_head *h)
{
    const char *te = NULL;
    int n_host = 0, n_len = 0, n_te = 0;

    h->keep_alive = h->minor >= 1;
    for (size_t i = 0; i < h->n_fields; i++) {
        const h1_field *f = &h->fields[i];
        if (strcasecmp(f->name, "Content-Length") == 0) {
            const char *p = f->value;
            uint64_t v = 0;
            if (++n_len > 1 || *p == '\0' || strlen(p) > 15)
                return H1_ERR_LENGTH;
            for (; *p != '\0'; p++) {
                if (*p < '0' || *p > '9')
                    return H1_ERR_LENGTH;
                v = v * 10 + (uint64_t)(*p - '0');
            }
            h->has_length = 1;
            h->length = v;
        } else if (strcasecmp(f->name, "Transfer-Encoding") == 0) {
            n_te++;
            te = f->value;
        } else if (strcasecmp(f->name, "Host") == 0) {
            n_host++;
        } else if (strcasecmp(f->name, "Connection") == 0) {
            if (list_has(f->value, "close"))
                h->keep_alive = 0;
            else if (h->minor == 0 && list_has(f->value, "keep-alive"))
                h->keep_alive = 1;
        } else if (strcasecmp(f->name, "Expect") == 0) {
            h->expect_continue = h->minor >= 1 && strcasecmp(f->value, "100-continue") == 0;
        }
    }
    if (n_te > 0) {
        if (h->minor == 0)
            return H1_ERR_FRAMING;   /* HTTP/1.0 has no transfer codings */
        if (n_te > 1 || strcasecmp(te, "chunked") != 0)
            return H1_ERR_TRANSFER_CODING;
        if (h->has_length)
            return H1_ERR_FRAMING;
        h->chunked = 1;
    }
    if (h->minor >= 1 && n_host != 1)
        return H1_ERR_HOST;
    if (n_host > 1)
        return H1_ERR_HOST;
    return H1_OK;
}

h1_err h1_parse_head(char *buf, size_t len, h1_head *h)
{
    size_t pos = 0;
    int first = 1;
    h1_err e;

    memset(h, 0, sizeof(*h));
    if (len > H1_MAX_HEAD)
        return H1_ERR_HEAD_TOO_LARGE;
    if (len < 4 || memcmp(buf + len - 4, "\r\n\r\n", 4) != 0)
        return H1_ERR_REQUEST_LINE;
    for (;;) {
        char *line = buf + pos;
        char *cr = memchr(line, '\r', len - pos);
        size_t n;

        if (cr == NULL || (size_t)(cr - buf) + 1 >= len || cr[1] != '\n')
            return first ? H1_ERR_REQUEST_LINE : H1_ERR_HEADER;   /* bare CR */
        n = (size_t)(cr - line);
        if (memchr(line, '\n', n) != NULL)
            return first ? H1_ERR_REQUEST_LINE : H1_ERR_HEADER;   /* bare LF */
        *cr = '\0';
        pos += n + 2;
        if (first) {
            e = parse_request_line(line, n, h);
            if (e != H1_OK)
                return e;
            first = 0;
            continue;
        }
        if (n == 0)
            break;
        if (h->n_fields == H1_MAX_HEADERS)
            return H1_ERR_TOO_MANY_HEADERS;
        e = parse_field(line, n, &h->fields[h->n_fields]);
        if (e != H1_OK)
            return e;
        h->n_fields++;
    }
    if (pos != len)
        return H1_ERR_HEADER;
    return derive(h);
}

const char *h1_field_get(const h1_head *h, const char *name)
{
    for (size_t i = 0; i < h->n_fields; i++)
        if (strcasecmp(h->fields[i].name, name) == 0)
            return h->fields[i].value;
    return NULL;
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

long h1_form_decode(const char *in, size_t len, char *out, size_t cap)
{
    size_t n = 0;

    if (cap == 0)
        return -2;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];

        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int hi, lo;

            if (len - i < 3)
                return -1;
            hi = hexval(in[i + 1]);
            lo = hexval(in[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (n + 1 >= cap)
            return -2;
        out[n++] = c;
    }
    out[n] = '\0';
    return (long)n;
}

long h1_query_arg(const char *query, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    const char *p = query;

    if (query == NULL || cap == 0)
        return -1;
    while (*p != '\0') {
        const char *end = strchr(p, '&');
        size_t seg = end != NULL ? (size_t)(end - p) : strlen(p);
        if (seg > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
            long n = h1_form_decode(p + nl + 1, seg - nl - 1, out, cap);

            return n < 0 ? -2 : n;
        }
        if (seg == nl && strncmp(p, name, nl) == 0) {
            out[0] = '\0';
            return 0;
        }
        p += seg;
        if (*p == '&')
            p++;
    }
    return -1;
}

enum {
    CH_SIZE = 0, CH_SIZE_WS, CH_EXT, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF,
    CH_TRAILER, CH_TRAILER_LINE, CH_TRAILER_LF, CH_END_LF, CH_DONE
};

void h1_chunked_init(h1_chunked *c)
{
    memset(c, 0, sizeof(*c));
    c->state = CH_SIZE;
    c->max_line = H1_MAX_CHUNK_LINE;
    c->max_trailers = H1_MAX_TRAILERS;
}

h1_err h1_chunked_step(h1_chunked *c, const char *in, size_t len, size_t *used,
                       const char **data, size_t *data_len)
{
    size_t i = 0;

    *data = NULL;
    *data_len = 0;
    while (i < len && c->state != CH_DONE) {
        unsigned char ch = (unsigned char)in[i];
        switch (c->state) {
        case CH_SIZE: {
            int v = hexval((char)ch);
            if (v >= 0) {
                /* 15 hex digits: far above any body limit, no overflow. */
                if (++c->line > 15)
                    goto bad;
                c->remaining = c->remaining * 16 + (uint64_t)v;
            } else if (c->line == 0) {
                goto bad;
            } else if (ch == ';') {
                c->state = CH_EXT;
            } else if (ch == ' ' || ch == '\t') {
                c->state = CH_SIZE_WS;
            } else if (ch == '\r') {
                c->state = CH_SIZE_LF;
            } else {
                goto bad;
            }
            i++;
            break;
        }
        case CH_SIZE_WS:
            /* Blanks after the size may only lead to an extension. */
            if (ch == ';')
                c->state = CH_EXT;
            else if (ch == '\r')
                c->state = CH_SIZE_LF;
            else if ((ch != ' ' && ch != '\t') || ++c->line > c->max_line)
                goto bad;
            i++;
            break;
        case CH_EXT:
            /* Extensions are ignored, but still bounded and free of
             * control characters. */
            if (ch == '\r')
                c->state = CH_SIZE_LF;
            else if ((ch < 0x20 && ch != '\t') || ch == 0x7f || ++c->line > c->max_line)
                goto bad;
            i++;
            break;
        case CH_SIZE_LF:
            if (ch != '\n')
                goto bad;
            i++;
            c->line = 0;
            c->state = c->remaining == 0 ? CH_TRAILER : CH_DATA;
            break;
        case CH_DATA: {
            size_t n = len - i;
            if ((uint64_t)n > c->remaining)
                n = (size_t)c->remaining;
            c->remaining -= n;
            if (c->remaining == 0)
                c->state = CH_DATA_CR;
            *data = in + i;
            *data_len = n;
            *used = i + n;
            return H1_OK;
        }
        case CH_DATA_CR:
            if (ch != '\r')
                goto bad;
            c->state = CH_DATA_LF;
            i++;
            break;
        case CH_DATA_LF:
            if (ch != '\n')
                goto bad;
            c->state = CH_SIZE;
            c->remaining = 0;
            c->line = 0;
            i++;
            break;
        case CH_TRAILER:
            if (ch == '\r') {
                c->state = CH_END_LF;
            } else {
                if (ch < 0x20 || ch == 0x7f || ++c->line > c->max_trailers)
                    goto bad;
                c->state = CH_TRAILER_LINE;
            }
            i++;
            break;
        case CH_TRAILER_LINE:
            if (ch == '\r')
                c->state = CH_TRAILER_LF;
            else if ((ch < 0x20 && ch != '\t') || ch == 0x7f || ++c->line > c->max_trailers)
                goto bad;
            i++;
            break;
        case CH_TRAILER_LF:
            if (ch != '\n')
                goto bad;
            c->state = CH_TRAILER;
            i++;
            break;
        case CH_END_LF:
            if (ch != '\n')
                goto bad;
            c->state = CH_DONE;
            c->done = 1;
            i++;
            break;
        default:
            goto bad;
        }
    }
    *used = i;
    return H1_OK;
bad:
    *used = i;
    return H1_ERR_CHUNK;
}

const char *h1_reason(unsigned status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 456: return "Quota Exceeded";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default:  return "Unknown";
    }
}

void h1_date(char out[30])
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    static __thread time_t cached_at = (time_t)-1;
    static __thread char cached[64];
    time_t now = time(NULL);

    if (now != cached_at) {
        struct tm tm;
        if (gmtime_r(&now, &tm) == NULL)
            memset(&tm, 0, sizeof(tm));
        /* Fixed English names: strftime's would follow the locale. */
        snprintf(cached, sizeof(cached), "%.3s, %02d %.3s %04d %02d:%02d:%02d GMT",
                 days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
                 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
        cached_at = now;
    }
    memcpy(out, cached, 30);
}
