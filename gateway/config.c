#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

/* The config is operator-written and small; the cap only stops a wrong path
 * (a log, a device) from being slurped. */
#define CONFIG_MAX_FILE       (1024 * 1024)
#define CONFIG_MAX_LISTENERS  64
#define CONFIG_MAX_UPSTREAMS  64
#define CONFIG_MAX_CLIENTS    10000
#define CONFIG_NAME_MAX       TG_NAME_MAX
/* Positions are recorded this deep; the schema is three levels deep, so only
 * the key of an unknown member ever matters below that. */
#define CONFIG_SCAN_DEPTH     32

static const char *const config_tls_profiles[] = {
    "cryptrec-strict", "cryptrec-recommended", "cryptrec-high", NULL
};

/* ------------------------------------------------------------------------
 * A small growable string for JSON paths and messages (not secrets).
 */

typedef struct config_str {
    char  *s;
    size_t len;
    size_t alloc;
    int    oom;
} config_str;

static void config_str_add(config_str *b, const char *p, size_t n)
{
    char *q;
    size_t na;

    if (b->oom)
        return;
    if (b->len + n + 1 > b->alloc) {
        na = b->alloc ? b->alloc : 64;
        while (na < b->len + n + 1)
            na *= 2;
        q = realloc(b->s, na);
        if (q == NULL) {
            b->oom = 1;
            return;
        }
        b->s = q;
        b->alloc = na;
    }
    memcpy(b->s + b->len, p, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void config_str_truncate(config_str *b, size_t len)
{
    if (b->s != NULL && len <= b->len) {
        b->len = len;
        b->s[len] = '\0';
    }
}

static int config_is_ident(const char *k)
{
    size_t i;

    if (!((k[0] >= 'A' && k[0] <= 'Z') || (k[0] >= 'a' && k[0] <= 'z') ||
          k[0] == '_'))
        return 0;
    for (i = 1; k[i] != '\0'; i++) {
        char ch = k[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
              (ch >= '0' && ch <= '9') || ch == '_'))
            return 0;
    }
    return 1;
}

/* Append one member segment: ".key" for identifiers, otherwise ["key"] with
 * quotes, backslashes and control characters escaped so that a diagnostic
 * stays on one line.  Scanner and validator both use this, so their paths
 * agree byte for byte. */
static void config_str_push_key(config_str *b, const char *k)
{
    char esc[8];
    size_t i;

    if (config_is_ident(k)) {
        config_str_add(b, ".", 1);
        config_str_add(b, k, strlen(k));
        return;
    }
    config_str_add(b, "[\"", 2);
    for (i = 0; k[i] != '\0'; i++) {
        unsigned char ch = (unsigned char)k[i];
        if (ch == '"' || ch == '\\') {
            esc[0] = '\\';
            esc[1] = (char)ch;
            config_str_add(b, esc, 2);
        } else if (ch < 0x20 || ch == 0x7f) {
            snprintf(esc, sizeof(esc), "\\u%04x", ch);
            config_str_add(b, esc, 6);
        } else {
            config_str_add(b, (const char *)&k[i], 1);
        }
    }
    config_str_add(b, "\"]", 2);
}

static void config_str_push_index(config_str *b, size_t i)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "[%zu]", i);

    config_str_add(b, tmp, (size_t)n);
}

/* ------------------------------------------------------------------------
 * Position scanner.  Jansson reports positions only for syntax errors, so
 * after a successful parse the raw text is walked once more and the position
 * of every value (and of every member's key) is recorded under its JSON path.
 * The text is known to be valid JSON and valid UTF-8 by then; the scanner
 * still never reads past the end.  Columns count characters, 1-based.
 */

typedef struct config_pos {
    char *path;
    int kline, kcol;    /* the member's key; equal to the value for others */
    int vline, vcol;
} config_pos;

typedef struct config_scan {
    const unsigned char *p;
    const unsigned char *end;
    int line, col;
    config_str path;
    config_str key;
    config_pos *v;
    size_t n, alloc;
    int fail;
} config_scan;

static void scan_adv(config_scan *s)
{
    unsigned char b;

    if (s->p >= s->end)
        return;
    b = *s->p++;
    if (b == '\n') {
        s->line++;
        s->col = 1;
    } else if ((b & 0xC0) != 0x80) {
        s->col++;
    }
}

static void scan_ws(config_scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' ||
                             *s->p == '\n' || *s->p == '\r'))
        scan_adv(s);
}

static void scan_record(config_scan *s, int kl, int kc, int vl, int vc)
{
    config_pos *nv;
    size_t na;

    if (s->fail || s->path.oom) {
        s->fail = 1;
        return;
    }
    if (s->n == s->alloc) {
        na = s->alloc ? s->alloc * 2 : 64;
        nv = realloc(s->v, na * sizeof(*nv));
        if (nv == NULL) {
            s->fail = 1;
            return;
        }
        s->v = nv;
        s->alloc = na;
    }
    s->v[s->n].path = strdup(s->path.s);
    if (s->v[s->n].path == NULL) {
        s->fail = 1;
        return;
    }
    s->v[s->n].kline = kl;
    s->v[s->n].kcol = kc;
    s->v[s->n].vline = vl;
    s->v[s->n].vcol = vc;
    s->n++;
}

static int scan_hex4(const unsigned char *p, const unsigned char *end,
                     unsigned *out)
{
    unsigned v = 0;
    int i;

    if (end - p < 4)
        return -1;
    for (i = 0; i < 4; i++) {
        unsigned char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static void scan_utf8(config_str *b, unsigned cp)
{
    char u[4];

    if (cp < 0x80) {
        u[0] = (char)cp;
        config_str_add(b, u, 1);
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        config_str_add(b, u, 2);
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        config_str_add(b, u, 3);
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        config_str_add(b, u, 4);
    }
}

/* Consume a string starting at its opening quote.  With out non-NULL, the
 * decoded value (as Jansson decodes it) is left there. */
static void scan_string(config_scan *s, config_str *out)
{
    unsigned cp, lo;

    if (out != NULL)
        config_str_truncate(out, 0);
    if (out != NULL && out->s == NULL)
        config_str_add(out, "", 0);
    scan_adv(s);                                  /* opening quote */
    while (s->p < s->end && *s->p != '"') {
        if (*s->p != '\\') {
            if (out != NULL)
                config_str_add(out, (const char *)s->p, 1);
            scan_adv(s);
            continue;
        }
        scan_adv(s);
        if (s->p >= s->end)
            break;
        switch (*s->p) {
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case 'u':
            if (scan_hex4(s->p + 1, s->end, &cp) != 0) {
                s->fail = 1;
                return;
            }
            /* Advance over "uXXXX". */
            for (int i = 0; i < 5; i++)
                scan_adv(s);
            if (cp >= 0xD800 && cp <= 0xDBFF && s->end - s->p >= 6 &&
                s->p[0] == '\\' && s->p[1] == 'u' &&
                scan_hex4(s->p + 2, s->end, &lo) == 0 &&
                lo >= 0xDC00 && lo <= 0xDFFF) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                for (int i = 0; i < 6; i++)
                    scan_adv(s);
            }
            if (out != NULL)
                scan_utf8(out, cp);
            continue;
        default:
            cp = *s->p;                           /* '"', '\\', '/' */
            break;
        }
        if (out != NULL)
            scan_utf8(out, cp);
        scan_adv(s);
    }
    scan_adv(s);                                  /* closing quote */
}

/* Skip a value without recording anything below it (deep nesting). */
static void scan_skip(config_scan *s)
{
    size_t depth = 0;

    do {
        if (s->p >= s->end)
            return;
        if (*s->p == '"') {
            scan_string(s, NULL);
            continue;
        }
        if (*s->p == '{' || *s->p == '[')
            depth++;
        else if (*s->p == '}' || *s->p == ']')
            depth--;
        scan_adv(s);
        if (depth == 0) {
            /* A scalar at top level: consume the rest of its token. */
            while (s->p < s->end && *s->p != ',' && *s->p != '}' &&
                   *s->p != ']' && *s->p != ' ' && *s->p != '\t' &&
                   *s->p != '\n' && *s->p != '\r')
                scan_adv(s);
        }
    } while (depth > 0 && !s->fail);
}

static void scan_value(config_scan *s, int kl, int kc, int depth)
{
    int vl = s->line, vc = s->col;
    size_t saved, idx;

    if (s->fail || s->p >= s->end) {
        s->fail = 1;
        return;
    }
    if (depth > CONFIG_SCAN_DEPTH) {
        scan_skip(s);
        return;
    }
    scan_record(s, kl < 0 ? vl : kl, kl < 0 ? vc : kc, vl, vc);
    saved = s->path.len;
    if (*s->p == '{') {
        scan_adv(s);
        scan_ws(s);
        if (s->p < s->end && *s->p == '}') {
            scan_adv(s);
            return;
        }
        while (!s->fail && s->p < s->end) {
            int kline, kcol;

            scan_ws(s);
            if (s->p >= s->end || *s->p != '"') {
                s->fail = 1;
                return;
            }
            kline = s->line;
            kcol = s->col;
            scan_string(s, &s->key);
            if (s->key.oom) {
                s->fail = 1;
                return;
            }
            scan_ws(s);
            if (s->p >= s->end || *s->p != ':') {
                s->fail = 1;
                return;
            }
            scan_adv(s);
            scan_ws(s);
            config_str_push_key(&s->path, s->key.s);
            scan_value(s, kline, kcol, depth + 1);
            config_str_truncate(&s->path, saved);
            scan_ws(s);
            if (s->p < s->end && *s->p == ',') {
                scan_adv(s);
                continue;
            }
            if (s->p < s->end && *s->p == '}') {
                scan_adv(s);
                return;
            }
            s->fail = 1;
        }
        return;
    }
    if (*s->p == '[') {
        scan_adv(s);
        scan_ws(s);
        if (s->p < s->end && *s->p == ']') {
            scan_adv(s);
            return;
        }
        for (idx = 0; !s->fail && s->p < s->end; idx++) {
            scan_ws(s);
            config_str_push_index(&s->path, idx);
            scan_value(s, -1, -1, depth + 1);
            config_str_truncate(&s->path, saved);
            scan_ws(s);
            if (s->p < s->end && *s->p == ',') {
                scan_adv(s);
                continue;
            }
            if (s->p < s->end && *s->p == ']') {
                scan_adv(s);
                return;
            }
            s->fail = 1;
        }
        return;
    }
    if (*s->p == '"') {
        scan_string(s, NULL);
        return;
    }
    while (s->p < s->end && *s->p != ',' && *s->p != '}' && *s->p != ']' &&
           *s->p != ' ' && *s->p != '\t' && *s->p != '\n' && *s->p != '\r')
        scan_adv(s);
}

static int config_pos_cmp(const void *a, const void *b)
{
    return strcmp(((const config_pos *)a)->path, ((const config_pos *)b)->path);
}

/* ------------------------------------------------------------------------
 * Validation context: collected diagnostics and the current JSON path.
 */

typedef struct config_err {
    int line, col;
    size_t seq;
    char *text;        /* "PATH: message" */
} config_err;

typedef struct config_ctx {
    const char *file;
    char *dir;             /* absolute directory of the file, no trailing '/' */
    config_pos *pos;
    size_t npos;
    config_str path;
    config_err *errs;
    size_t nerr, aerr;
    unsigned flags;         /* CONFIG_ALLOW_... */
    int oom;
} config_ctx;

static const config_pos *config_find(const config_ctx *c, const char *path)
{
    config_pos key;

    if (c->pos == NULL || path == NULL)
        return NULL;
    key.path = (char *)(uintptr_t)path;
    return bsearch(&key, c->pos, c->npos, sizeof(*c->pos), config_pos_cmp);
}

static void config_add_err(config_ctx *c, int line, int col, const char *text)
{
    config_err *ne;
    size_t na;

    if (c->nerr == c->aerr) {
        na = c->aerr ? c->aerr * 2 : 16;
        ne = realloc(c->errs, na * sizeof(*ne));
        if (ne == NULL) {
            c->oom = 1;
            return;
        }
        c->errs = ne;
        c->aerr = na;
    }
    c->errs[c->nerr].text = strdup(text);
    if (c->errs[c->nerr].text == NULL) {
        c->oom = 1;
        return;
    }
    c->errs[c->nerr].line = line < 1 ? 1 : line;
    c->errs[c->nerr].col = col < 1 ? 1 : col;
    c->errs[c->nerr].seq = c->nerr;
    c->nerr++;
}

/* Report a problem at the current path: at its key when at_key (unknown
 * members), else at its value. */
static void config_verr(config_ctx *c, int at_key, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static void config_verr(config_ctx *c, int at_key, const char *fmt, va_list ap)
{
    const config_pos *p = config_find(c, c->path.s);
    char msg[1024];
    config_str t = { 0 };

    vsnprintf(msg, sizeof(msg), fmt, ap);
    config_str_add(&t, c->path.s ? c->path.s : "$", strlen(c->path.s ? c->path.s : "$"));
    config_str_add(&t, ": ", 2);
    config_str_add(&t, msg, strlen(msg));
    if (t.oom) {
        c->oom = 1;
    } else if (p == NULL) {
        config_add_err(c, 1, 1, t.s);
    } else {
        config_add_err(c, at_key ? p->kline : p->vline,
                       at_key ? p->kcol : p->vcol, t.s);
    }
    free(t.s);
}

static void config_err_here(config_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void config_err_here(config_ctx *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    config_verr(c, 0, fmt, ap);
    va_end(ap);
}

static void config_err_key(config_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void config_err_key(config_ctx *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    config_verr(c, 1, fmt, ap);
    va_end(ap);
}

static size_t config_push(config_ctx *c, const char *key)
{
    size_t saved = c->path.len;

    config_str_push_key(&c->path, key);
    if (c->path.oom)
        c->oom = 1;
    return saved;
}

static size_t config_push_index(config_ctx *c, size_t i)
{
    size_t saved = c->path.len;

    config_str_push_index(&c->path, i);
    if (c->path.oom)
        c->oom = 1;
    return saved;
}

static void config_pop(config_ctx *c, size_t saved)
{
    config_str_truncate(&c->path, saved);
}

/* Report a problem at member key of the current object. */
static void config_err_at(config_ctx *c, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void config_err_at(config_ctx *c, const char *key, const char *fmt, ...)
{
    va_list ap;
    size_t saved = config_push(c, key);

    va_start(ap, fmt);
    config_verr(c, 0, fmt, ap);
    va_end(ap);
    config_pop(c, saved);
}

static void config_where(const config_ctx *c, int *line, int *col)
{
    const config_pos *p = config_find(c, c->path.s);

    *line = p ? p->vline : 1;
    *col = p ? p->vcol : 1;
}

static const char *config_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:  return "an object";
    case JSON_ARRAY:   return "an array";
    case JSON_STRING:  return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL:    return "a non-integer number";
    case JSON_TRUE:    return "a boolean";
    case JSON_FALSE:   return "a boolean";
    case JSON_NULL:    return "null";
    }
    return "an unknown value";
}

/* Unknown members are errors, reported at their key with the allowed set. */
static void config_check_keys(config_ctx *c, json_t *obj,
                              const char *const *allowed)
{
    const char *key;
    json_t *val;
    char list[512];
    size_t off = 0, i, saved;

    list[0] = '\0';
    for (i = 0; allowed[i] != NULL; i++) {
        int n = snprintf(list + off, sizeof(list) - off, "%s%s",
                         i ? ", " : "", allowed[i]);
        if (n < 0 || (size_t)n >= sizeof(list) - off)
            break;
        off += (size_t)n;
    }
    json_object_foreach(obj, key, val) {
        for (i = 0; allowed[i] != NULL; i++)
            if (strcmp(key, allowed[i]) == 0)
                break;
        if (allowed[i] != NULL)
            continue;
        saved = config_push(c, key);
        config_err_key(c, "unknown key (expected one of: %s)", list);
        config_pop(c, saved);
    }
}

/* Member getters.  Each returns 1 when the member is present and valid, 0
 * when it is absent and optional (output untouched, so it keeps its default),
 * and -1 when a problem was reported. */

static json_t *config_member(config_ctx *c, json_t *obj, const char *key,
                             int required)
{
    json_t *v = json_object_get(obj, key);

    if (v == NULL && required)
        config_err_here(c, "missing required key \"%s\"", key);
    return v;
}

static int config_get_str(config_ctx *c, json_t *obj, const char *key,
                          int required, const char **out)
{
    json_t *v = config_member(c, obj, key, required);

    if (v == NULL)
        return required ? -1 : 0;
    if (!json_is_string(v)) {
        config_err_at(c, key, "expected a string, got %s", config_type_name(v));
        return -1;
    }
    *out = json_string_value(v);
    return 1;
}

static int config_get_int(config_ctx *c, json_t *obj, const char *key,
                          long min, long max, long *out)
{
    json_t *v = config_member(c, obj, key, 0);
    json_int_t n;

    if (v == NULL)
        return 0;
    if (!json_is_integer(v)) {
        config_err_at(c, key, "expected an integer, got %s",
                      config_type_name(v));
        return -1;
    }
    n = json_integer_value(v);
    if (n < min || n > max) {
        config_err_at(c, key, "must be between %ld and %ld, got %lld",
                      min, max, (long long)n);
        return -1;
    }
    *out = (long)n;
    return 1;
}

static int config_get_bool(config_ctx *c, json_t *obj, const char *key,
                           bool *out)
{
    json_t *v = config_member(c, obj, key, 0);

    if (v == NULL)
        return 0;
    if (!json_is_boolean(v)) {
        config_err_at(c, key, "expected true or false, got %s",
                      config_type_name(v));
        return -1;
    }
    *out = json_is_true(v);
    return 1;
}

/* An object member; absent optional members yield NULL without error. */
static json_t *config_get_obj(config_ctx *c, json_t *obj, const char *key,
                              int *bad)
{
    json_t *v = config_member(c, obj, key, 0);

    *bad = 0;
    if (v != NULL && !json_is_object(v)) {
        config_err_at(c, key, "expected an object, got %s",
                      config_type_name(v));
        *bad = 1;
        return NULL;
    }
    return v;
}

static char *config_dup(config_ctx *c, const char *s)
{
    char *d;

    if (s == NULL)
        return NULL;
    d = strdup(s);
    if (d == NULL)
        c->oom = 1;
    return d;
}

static int config_valid_name(const char *s)
{
    size_t i;

    for (i = 0; s[i] != '\0'; i++) {
        char ch = s[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
              (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
            return 0;
    }
    return i >= 1 && i <= CONFIG_NAME_MAX;
}

static int config_get_name(config_ctx *c, json_t *obj, const char *key,
                           char **out)
{
    const char *s = NULL;
    int r = config_get_str(c, obj, key, 1, &s);

    if (r != 1)
        return -1;
    if (!config_valid_name(s)) {
        config_err_at(c, key, "invalid name: use 1 to %d characters from "
                      "A-Z a-z 0-9 . _ -", CONFIG_NAME_MAX);
        return -1;
    }
    *out = config_dup(c, s);
    return *out ? 1 : -1;
}

static int config_get_profile(config_ctx *c, json_t *obj, const char *key,
                              char **out)
{
    const char *s = TG_DEFAULT_TLS_PROFILE;
    size_t i;
    int r = config_get_str(c, obj, key, 0, &s);

    if (r < 0)
        return -1;
    for (i = 0; config_tls_profiles[i] != NULL; i++)
        if (strcmp(s, config_tls_profiles[i]) == 0)
            break;
    if (config_tls_profiles[i] == NULL) {
        config_err_at(c, key, "unknown TLS profile (known: cryptrec-strict, "
                      "cryptrec-recommended, cryptrec-high)");
        return -1;
    }
    *out = config_dup(c, s);
    return *out ? r : -1;
}

/* A file named by the config: resolved against the config's directory when
 * relative, and required to exist as a regular file.  Never opened, so
 * secrets are not read here (and permission checks happen where they are). */
/* Report at member key of the current object, or at the current path when
 * key is NULL (array elements). */
static void config_err_key_or_here(config_ctx *c, const char *key,
                                   const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void config_err_key_or_here(config_ctx *c, const char *key,
                                   const char *fmt, ...)
{
    va_list ap;
    size_t saved = key ? config_push(c, key) : c->path.len;

    va_start(ap, fmt);
    config_verr(c, 0, fmt, ap);
    va_end(ap);
    config_pop(c, saved);
}

/* Resolve a configured path s (relative to the config file's directory)
 * and check that it names a regular file (or, with may_be_absent, a file
 * that can be created in an existing directory).  Returns 1 with a new
 * string in *out, or -1 after reporting at key (or here, key NULL). */
static int config_resolve_path(config_ctx *c, const char *key, const char *s,
                               int may_be_absent, char **out)
{
    config_str full = { 0 };
    struct stat st;
    char *slash;
    size_t i;
    int r;

    if (s[0] == '\0') {
        config_err_key_or_here(c, key, "must not be empty");
        return -1;
    }
    for (i = 0; s[i] != '\0'; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            config_err_key_or_here(c, key, "must not contain control characters");
            return -1;
        }
    }
    if (s[0] != '/') {
        config_str_add(&full, c->dir, strlen(c->dir));
        if (full.len == 0 || full.s[full.len - 1] != '/')
            config_str_add(&full, "/", 1);
    }
    config_str_add(&full, s, strlen(s));
    if (full.oom) {
        c->oom = 1;
        goto fail;
    }
    if (stat(full.s, &st) != 0) {
        if (errno == ENOENT && may_be_absent) {
            /* It will be created there: the directory must exist. */
            slash = strrchr(full.s, '/');
            *slash = '\0';
            r = stat(slash == full.s ? "/" : full.s, &st);
            *slash = '/';
            if (r == 0 && S_ISDIR(st.st_mode)) {
                *out = full.s;
                return 1;
            }
            errno = r == 0 ? ENOTDIR : errno;
        }
        config_err_key_or_here(c, key, "%s: %s", full.s, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        config_err_key_or_here(c, key, "%s: not a regular file", full.s);
        goto fail;
    }
    *out = full.s;
    return 1;
fail:
    free(full.s);
    return -1;
}

static int config_get_path(config_ctx *c, json_t *obj, const char *key,
                           int required, int may_be_absent, char **out)
{
    const char *s = NULL;
    int r = config_get_str(c, obj, key, required, &s);

    if (r != 1)
        return r;
    return config_resolve_path(c, key, s, may_be_absent, out);
}

/* ------------------------------------------------------------------------
 * Addresses and URLs.
 */

/* Decimal port 1..65535, digits only (no sign, no spaces). */
static int config_parse_port(const char *s, size_t n, int *out)
{
    char tmp[8];
    char *end;
    long v;
    size_t i;

    if (n == 0 || n > 5)
        return -1;
    for (i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return -1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    errno = 0;
    v = strtol(tmp, &end, 10);
    if (errno != 0 || *end != '\0' || v < 1 || v > 65535)
        return -1;
    *out = (int)v;
    return 0;
}

static int config_listener_address(config_ctx *c, json_t *obj,
                                   tg_listener_conf *l)
{
    const char *a = NULL;
    const char *colon, *hb, *he;
    char host[INET6_ADDRSTRLEN + 1], canon[INET6_ADDRSTRLEN];
    char portbuf[8];
    unsigned char bin[16];
    int family, port;
    size_t hn;

    if (config_get_str(c, obj, "address", 1, &a) != 1)
        return -1;
    if (a[0] == '[') {
        hb = a + 1;
        he = strchr(hb, ']');
        if (he == NULL || he[1] != ':') {
            config_err_at(c, "address", "expected \"HOST:PORT\" with a bracketed "
                          "IPv6 host, e.g. \"[::1]:8443\"");
            return -1;
        }
        colon = he + 1;
        family = AF_INET6;
    } else {
        colon = strrchr(a, ':');
        if (colon == NULL) {
            config_err_at(c, "address", "expected \"HOST:PORT\", e.g. "
                          "\"127.0.0.1:8443\" or \"[::1]:8443\"");
            return -1;
        }
        hb = a;
        he = colon;
        family = AF_INET;
        if (memchr(a, ':', (size_t)(colon - a)) != NULL) {
            config_err_at(c, "address", "an IPv6 host must be in brackets, "
                          "e.g. \"[::1]:8443\"");
            return -1;
        }
    }
    hn = (size_t)(he - hb);
    if (hn == 0 || hn >= sizeof(host)) {
        config_err_at(c, "address", "host must be a numeric IPv4 or "
                      "bracketed IPv6 address");
        return -1;
    }
    memcpy(host, hb, hn);
    host[hn] = '\0';
    if (inet_pton(family, host, bin) != 1 ||
        inet_ntop(family, bin, canon, sizeof(canon)) == NULL) {
        config_err_at(c, "address", "host must be a numeric IPv4 or "
                      "bracketed IPv6 address");
        return -1;
    }
    if (config_parse_port(colon + 1, strlen(colon + 1), &port) != 0) {
        config_err_at(c, "address", "port must be a number from 1 to 65535");
        return -1;
    }
    snprintf(portbuf, sizeof(portbuf), "%d", port);
    l->address = config_dup(c, a);
    l->host = config_dup(c, canon);
    l->port = config_dup(c, portbuf);
    return l->address && l->host && l->port ? 1 : -1;
}

static int config_host_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch >= '0' && ch <= '9') || ch == '-' || ch == '.';
}

/* Host name (LDH labels) or IPv4 literal.  Lowercases in place. */
static int config_valid_hostname(char *h)
{
    size_t i, label = 0, n = strlen(h);

    if (n == 0 || n > 253)
        return 0;
    for (i = 0; i < n; i++) {
        if (!config_host_char(h[i]))
            return 0;
        if (h[i] >= 'A' && h[i] <= 'Z')
            h[i] = (char)(h[i] - 'A' + 'a');
        if (h[i] == '.') {
            if (label == 0)
                return 0;
            label = 0;
        } else if (++label > 63) {
            return 0;
        }
    }
    /* No trailing dot: certificate name checks differ on it between
     * stacks, and the vendor's certificate never carries one. */
    return label > 0;
}

static int config_upstream_url(config_ctx *c, json_t *obj, tg_upstream_conf *u)
{
    const char *url = NULL, *p, *auth, *aend, *hend, *path;
    char host[256];
    unsigned char bin[16];
    size_t n, plen;
    int port = 443;

    if (config_get_str(c, obj, "url", 1, &url) != 1)
        return -1;
    p = strstr(url, "://");
    if (p == NULL) {
        config_err_at(c, "url", "expected an absolute https:// URL, e.g. "
                      "\"https://api.deepl.com\"");
        return -1;
    }
    n = (size_t)(p - url);
    if (n == 4 && strncasecmp(url, "http", 4) == 0) {
        config_err_at(c, "url", "http:// is not allowed: TLS is required on "
                      "every leg; use https://");
        return -1;
    }
    if (n != 5 || strncasecmp(url, "https", 5) != 0) {
        config_err_at(c, "url", "unsupported scheme \"%.*s\"; use https://",
                      (int)(n > 16 ? 16 : n), url);
        return -1;
    }
    for (p = url; *p != '\0'; p++) {
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
            config_err_at(c, "url", "must be ASCII without spaces or control "
                          "characters (punycode for host names, "
                          "percent-encoding in the path)");
            return -1;
        }
    }
    if (strchr(url, '?') != NULL) {
        config_err_at(c, "url", "a query (?...) is not allowed in the base URL");
        return -1;
    }
    if (strchr(url, '#') != NULL) {
        config_err_at(c, "url", "a fragment (#...) is not allowed in the base URL");
        return -1;
    }
    auth = url + 8;
    aend = strchr(auth, '/');
    if (aend == NULL)
        aend = auth + strlen(auth);
    if (memchr(auth, '@', (size_t)(aend - auth)) != NULL) {
        config_err_at(c, "url", "userinfo (user@) is not allowed in the URL; "
                      "put credentials in api_key_file");
        return -1;
    }
    if (*auth == '[') {
        hend = memchr(auth, ']', (size_t)(aend - auth));
        if (hend == NULL || (size_t)(hend - auth - 1) >= sizeof(host)) {
            config_err_at(c, "url", "invalid IPv6 literal host");
            return -1;
        }
        n = (size_t)(hend - auth - 1);
        memcpy(host, auth + 1, n);
        host[n] = '\0';
        if (inet_pton(AF_INET6, host, bin) != 1) {
            config_err_at(c, "url", "invalid IPv6 literal host");
            return -1;
        }
        hend++;
        if (hend != aend && *hend != ':') {
            config_err_at(c, "url", "invalid IPv6 literal host");
            return -1;
        }
    } else {
        hend = memchr(auth, ':', (size_t)(aend - auth));
        if (hend != NULL && memchr(hend + 1, ':', (size_t)(aend - hend - 1))) {
            config_err_at(c, "url", "an IPv6 literal host must be in "
                          "brackets, e.g. \"https://[2001:db8::1]\"");
            return -1;
        }
        if (hend == NULL)
            hend = aend;
        n = (size_t)(hend - auth);
        if (n >= sizeof(host)) {
            config_err_at(c, "url", "invalid host name");
            return -1;
        }
        memcpy(host, auth, n);
        host[n] = '\0';
        if (!config_valid_hostname(host)) {
            config_err_at(c, "url", n == 0 ? "missing host" : "invalid host name");
            return -1;
        }
    }
    if (hend != aend &&
        config_parse_port(hend + 1, (size_t)(aend - hend - 1), &port) != 0) {
        config_err_at(c, "url", "port must be a number from 1 to 65535");
        return -1;
    }
    path = aend;
    plen = strlen(path);
    while (plen > 0 && path[plen - 1] == '/')
        plen--;
    u->url = config_dup(c, url);
    u->scheme_host = config_dup(c, host);
    u->port = port;
    u->base_path = strndup(path, plen);
    if (u->base_path == NULL)
        c->oom = 1;
    return u->url && u->scheme_host && u->base_path ? 1 : -1;
}

static int config_valid_lang(const char *s)
{
    size_t i = 0, n;

    /* "EN", "ZH", "PT-BR", "zh-Hans": two or three letters, optional subtag. */
    while ((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z'))
        i++;
    if (i < 2 || i > 3)
        return 0;
    if (s[i] == '\0')
        return 1;
    if (s[i] != '-')
        return 0;
    for (n = 0, i++; s[i] != '\0'; i++, n++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= '0' && s[i] <= '9')))
            return 0;
    return n >= 1 && n <= 8;
}

/* ------------------------------------------------------------------------
 * Sections.
 */

static void config_log_section(config_ctx *c, json_t *root, tg_config *cfg)
{
    static const char *const keys[] = { "level", "syslog", NULL };
    const char *lvl = NULL;
    size_t saved;
    int bad;
    json_t *o = config_get_obj(c, root, "log", &bad);

    if (o == NULL)
        return;
    saved = config_push(c, "log");
    config_check_keys(c, o, keys);
    if (config_get_str(c, o, "level", 0, &lvl) == 1 &&
        log_level_parse(lvl, &cfg->log_level) != 0)
        config_err_at(c, "level", "unknown level (known: error, warning, "
                      "info, debug)");
    config_get_bool(c, o, "syslog", &cfg->log_syslog);
    config_pop(c, saved);
}

static void config_limits_section(config_ctx *c, json_t *root, tg_config *cfg)
{
    static const char *const keys[] = {
        "max_body_bytes", "max_connections", "max_inflight",
        "handshake_timeout_ms", "idle_timeout_ms", "drain_timeout_ms", NULL
    };
    long v;
    size_t saved;
    int bad;
    json_t *o = config_get_obj(c, root, "limits", &bad);

    if (o == NULL)
        return;
    saved = config_push(c, "limits");
    config_check_keys(c, o, keys);
    v = (long)cfg->max_body_bytes;
    if (config_get_int(c, o, "max_body_bytes", 1024, 64L * 1024 * 1024, &v) == 1)
        cfg->max_body_bytes = (size_t)v;
    v = cfg->max_connections;
    if (config_get_int(c, o, "max_connections", 1, 1000000, &v) == 1)
        cfg->max_connections = (int)v;
    v = cfg->max_inflight;
    if (config_get_int(c, o, "max_inflight", 1, 1000000, &v) == 1)
        cfg->max_inflight = (int)v;
    config_get_int(c, o, "handshake_timeout_ms", 100, 600000,
                   &cfg->handshake_timeout_ms);
    config_get_int(c, o, "idle_timeout_ms", 1000, 3600000,
                   &cfg->idle_timeout_ms);
    config_get_int(c, o, "drain_timeout_ms", 0, 600000,
                   &cfg->drain_timeout_ms);
    config_pop(c, saved);
}

/* Check that key holds an array of objects with 1..max elements.  Returns
 * the array (borrowed) or NULL after reporting. */
static void config_policy_section(config_ctx *c, json_t *root, tg_config *cfg)
{
    static const char *const keys[] = { "rules", "placeholder_loss", NULL };
    int bad = 0;
    json_t *o = config_get_obj(c, root, "policy", &bad);
    json_t *rules;
    const char *s = NULL;
    size_t base, saved, i;

    if (o == NULL)
        return;
    base = config_push(c, "policy");
    config_check_keys(c, o, keys);
    rules = json_object_get(o, "rules");
    if (rules != NULL) {
        if (!json_is_array(rules) || json_array_size(rules) == 0 ||
            json_array_size(rules) > 64) {
            config_err_at(c, "rules", "expected an array of 1 to 64 rule pack paths");
        } else {
            cfg->policy_rules = calloc(json_array_size(rules), sizeof(char *));
            if (cfg->policy_rules == NULL) {
                c->oom = 1;
            } else {
                cfg->n_policy_rules = json_array_size(rules);
                saved = config_push(c, "rules");
                for (i = 0; i < json_array_size(rules); i++) {
                    json_t *e = json_array_get(rules, i);
                    size_t s2 = config_push_index(c, i);
                    if (!json_is_string(e))
                        config_err_here(c, "expected a string, got %s",
                                        config_type_name(e));
                    else
                        config_resolve_path(c, NULL, json_string_value(e), 0,
                                            &cfg->policy_rules[i]);
                    config_pop(c, s2);
                }
                config_pop(c, saved);
            }
        }
    }
    if (config_get_str(c, o, "placeholder_loss", 0, &s) == 1) {
        if (strcmp(s, "best_effort") == 0)
            cfg->placeholder_best_effort = true;
        else if (strcmp(s, "fail") != 0)
            config_err_at(c, "placeholder_loss", "expected \"fail\" or \"best_effort\"");
    }
    config_pop(c, base);
}

static json_t *config_get_list(config_ctx *c, json_t *root, const char *key,
                               size_t max, const char *what)
{
    json_t *a = config_member(c, root, key, 1);

    if (a == NULL)
        return NULL;
    if (!json_is_array(a)) {
        config_err_at(c, key, "expected an array of %s objects, got %s",
                      what, config_type_name(a));
        return NULL;
    }
    if (json_array_size(a) == 0) {
        config_err_at(c, key, "at least one %s is required", what);
        return NULL;
    }
    if (json_array_size(a) > max) {
        config_err_at(c, key, "at most %zu %ss are allowed, got %zu",
                      max, what, json_array_size(a));
        return NULL;
    }
    return a;
}

/* An optional array of 1..max strings at key, each checked by ok() (may be
 * NULL).  Returns 1 with a new NULL-free array in *out and its size in *n,
 * 0 when absent, -1 after reporting. */
static int config_get_strings(config_ctx *c, json_t *obj, const char *key,
                              size_t max, int (*ok)(const char *),
                              const char *what, char ***out, size_t *n)
{
    json_t *a = config_member(c, obj, key, 0);
    size_t i, saved;
    char **v;
    int bad = 0;

    if (a == NULL)
        return 0;
    if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > max) {
        config_err_at(c, key, "expected an array of 1 to %zu %s", max, what);
        return -1;
    }
    v = calloc(json_array_size(a), sizeof(*v));
    if (v == NULL) {
        c->oom = 1;
        return -1;
    }
    saved = config_push(c, key);
    for (i = 0; i < json_array_size(a); i++) {
        json_t *e = json_array_get(a, i);
        size_t s2 = config_push_index(c, i);
        if (!json_is_string(e)) {
            config_err_here(c, "expected a string, got %s", config_type_name(e));
            bad = 1;
        } else if (ok != NULL && !ok(json_string_value(e))) {
            config_err_here(c, "not a valid %s", what);
            bad = 1;
        } else {
            v[i] = config_dup(c, json_string_value(e));
        }
        config_pop(c, s2);
    }
    config_pop(c, saved);
    if (bad || c->oom) {
        for (i = 0; i < json_array_size(a); i++)
            free(v[i]);
        free(v);
        return -1;
    }
    *out = v;
    *n = json_array_size(a);
    return 1;
}

/* "sha256//" followed by the base64 of a 32-byte digest (44 characters). */
static int config_valid_pin(const char *s)
{
    size_t i;

    if (strncmp(s, "sha256//", 8) != 0 || strlen(s) != 8 + 44 || s[8 + 43] != '=')
        return 0;
    for (i = 8; i < 8 + 43; i++) {
        char ch = s[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
              (ch >= '0' && ch <= '9') || ch == '+' || ch == '/'))
            return 0;
    }
    return 1;
}

/* A certificate subject CN: printable ASCII without '/', ',' or '=' (so it
 * cannot be confused with a DN), 1 to 64 characters. */
static int config_valid_cn(const char *s)
{
    size_t i, n = strlen(s);

    if (n == 0 || n > 64)
        return 0;
    for (i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e ||
            s[i] == '/' || s[i] == ',' || s[i] == '=')
            return 0;
    return 1;
}

/* Parse "ADDRESS/PREFIX" (IPv4 or IPv6, numeric).  Host bits must be zero
 * so a typo cannot silently widen or shift the network.  Returns 0 or -1. */
static int config_parse_cidr(const char *s, tg_cidr *out)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(s, '/');
    size_t hl;
    int maxp, bits, i;
    char *end = NULL;
    long p;

    if (slash == NULL || (hl = (size_t)(slash - s)) == 0 || hl >= sizeof(host))
        return -1;
    memcpy(host, s, hl);
    host[hl] = '\0';
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, host, out->addr) == 1) {
        out->family = AF_INET;
        maxp = 32;
    } else if (inet_pton(AF_INET6, host, out->addr) == 1) {
        out->family = AF_INET6;
        maxp = 128;
    } else {
        return -1;
    }
    if (slash[1] < '0' || slash[1] > '9')
        return -1;
    errno = 0;
    p = strtol(slash + 1, &end, 10);
    if (errno != 0 || *end != '\0' || p < 0 || p > maxp)
        return -1;
    out->prefix = (int)p;
    for (bits = (int)p, i = 0; i < maxp / 8; i++, bits -= 8) {
        unsigned char mask = bits >= 8 ? 0xff : bits <= 0 ? 0 : (unsigned char)(0xff << (8 - bits));
        if (out->addr[i] & (unsigned char)~mask)
            return -1;
    }
    return 0;
}

static int config_valid_cidr(const char *s)
{
    tg_cidr tmp;
    return config_parse_cidr(s, &tmp) == 0;
}

int config_cidr_match(const tg_cidr *net, int family, const unsigned char *addr)
{
    int bits = net->prefix, i;

    if (family != net->family)
        return 0;
    for (i = 0; bits > 0; i++, bits -= 8) {
        unsigned char mask = bits >= 8 ? 0xff : (unsigned char)(0xff << (8 - bits));
        if ((addr[i] & mask) != net->addr[i])
            return 0;
    }
    return 1;
}

/* "udp:HOST:PORT" or "tcp:HOST:PORT" with a numeric host (IPv6 in brackets). */
static int config_valid_syslog(const char *s)
{
    char host[INET6_ADDRSTRLEN + 1];
    unsigned char tmp[16];
    const char *h, *colon;
    size_t hl;
    int port;

    if (strncmp(s, "udp:", 4) != 0 && strncmp(s, "tcp:", 4) != 0)
        return 0;
    h = s + 4;
    if (*h == '[') {
        const char *rb = strchr(h, ']');
        if (rb == NULL || rb[1] != ':')
            return 0;
        hl = (size_t)(rb - h - 1);
        if (hl == 0 || hl >= sizeof(host))
            return 0;
        memcpy(host, h + 1, hl);
        host[hl] = '\0';
        colon = rb + 1;
        if (inet_pton(AF_INET6, host, tmp) != 1)
            return 0;
    } else {
        colon = strrchr(h, ':');
        if (colon == NULL || (hl = (size_t)(colon - h)) == 0 || hl >= sizeof(host))
            return 0;
        memcpy(host, h, hl);
        host[hl] = '\0';
        if (inet_pton(AF_INET, host, tmp) != 1)
            return 0;
    }
    return config_parse_port(colon + 1, strlen(colon + 1), &port) == 0;
}

static void config_admin_section(config_ctx *c, json_t *root, tg_config *cfg)
{
    static const char *const keys[] = { "socket", NULL };
    int bad = 0;
    json_t *o = config_get_obj(c, root, "admin", &bad);
    const char *sock = NULL;
    size_t base;

    if (o == NULL)
        return;
    base = config_push(c, "admin");
    config_check_keys(c, o, keys);
    if (config_get_str(c, o, "socket", 1, &sock) == 1) {
        config_str full = { 0 };
        if (sock[0] == '\0' || strlen(sock) > 100) {
            config_err_at(c, "socket", "expected a path of 1 to 100 bytes "
                          "(a UNIX socket address is short)");
        } else {
            if (sock[0] != '/') {
                config_str_add(&full, c->dir, strlen(c->dir));
                config_str_add(&full, "/", 1);
            }
            config_str_add(&full, sock, strlen(sock));
            if (full.oom)
                c->oom = 1;
            else
                cfg->admin_socket = full.s;
        }
    }
    config_pop(c, base);
}

static void config_audit_section(config_ctx *c, json_t *root, tg_config *cfg)
{
    static const char *const keys[] = {
        "path", "key_file", "fsync", "fsync_interval_ms", "batch_ms",
        "queue_size", "on_failure", "syslog", NULL
    };
    int bad = 0;
    json_t *o = config_get_obj(c, root, "audit", &bad);
    const char *s = NULL;
    size_t base;

    cfg->audit_fsync_interval_ms = 1000;
    cfg->audit_batch_ms = TG_AUDIT_BATCH_MS_DEFAULT;
    cfg->audit_queue_size = 65536;
    if (o == NULL)
        return;
    base = config_push(c, "audit");
    config_check_keys(c, o, keys);
    /* The trail is created if absent; its directory must exist. */
    config_get_path(c, o, "path", 1, 1, &cfg->audit_path);
    config_get_path(c, o, "key_file", 1, 0, &cfg->audit_key_file);
    if (config_get_str(c, o, "fsync", 0, &s) == 1) {
        if (strcmp(s, "always") == 0)
            cfg->audit_fsync = 0;
        else if (strcmp(s, "interval") == 0)
            cfg->audit_fsync = 1;
        else if (strcmp(s, "never") == 0)
            cfg->audit_fsync = 2;
        else
            config_err_at(c, "fsync", "expected \"always\", \"interval\" or \"never\"");
    }
    config_get_int(c, o, "fsync_interval_ms", 10, 60000, &cfg->audit_fsync_interval_ms);
    config_get_int(c, o, "batch_ms", 0, 1000, &cfg->audit_batch_ms);
    config_get_int(c, o, "queue_size", 16, 10000000, &cfg->audit_queue_size);
    s = NULL;
    if (config_get_str(c, o, "on_failure", 0, &s) == 1) {
        if (strcmp(s, "continue") == 0)
            cfg->audit_continue_on_failure = true;
        else if (strcmp(s, "refuse") != 0)
            config_err_at(c, "on_failure", "expected \"refuse\" or \"continue\"");
    }
    s = NULL;
    if (config_get_str(c, o, "syslog", 0, &s) == 1) {
        if (!config_valid_syslog(s))
            config_err_at(c, "syslog", "expected \"udp:HOST:PORT\" or \"tcp:HOST:PORT\" "
                          "with a numeric host");
        else
            cfg->audit_syslog = config_dup(c, s);
    }
    config_pop(c, base);
}

static void config_listeners(config_ctx *c, json_t *root, tg_config *cfg)
{
    static const char *const keys[] = {
        "address", "certificate", "private_key", "tls_profile", "client_auth",
        "client_ca_file", "crl_file", NULL
    };
    json_t *a = config_get_list(c, root, "listeners", CONFIG_MAX_LISTENERS,
                                "listener");
    size_t i, j, base, saved;

    if (a == NULL)
        return;
    cfg->listeners = calloc(json_array_size(a), sizeof(*cfg->listeners));
    if (cfg->listeners == NULL) {
        c->oom = 1;
        return;
    }
    cfg->n_listeners = json_array_size(a);
    base = config_push(c, "listeners");
    for (i = 0; i < cfg->n_listeners; i++) {
        tg_listener_conf *l = &cfg->listeners[i];
        json_t *o = json_array_get(a, i);

        saved = config_push_index(c, i);
        config_where(c, &l->line, &l->column);
        if (!json_is_object(o)) {
            config_err_here(c, "expected a listener object, got %s",
                            config_type_name(o));
            config_pop(c, saved);
            continue;
        }
        config_check_keys(c, o, keys);
        if (config_listener_address(c, o, l) == 1) {
            for (j = 0; j < i; j++) {
                const tg_listener_conf *p = &cfg->listeners[j];
                if (p->host && p->port && strcmp(p->host, l->host) == 0 &&
                    strcmp(p->port, l->port) == 0) {
                    config_err_at(c, "address", "duplicate listener address "
                                  "(also $.listeners[%zu] at line %d)",
                                  j, p->line);
                    break;
                }
            }
        }
        config_get_path(c, o, "certificate", 1, 0, &l->certificate);
        config_get_path(c, o, "private_key", 1, 0, &l->private_key);
        config_get_profile(c, o, "tls_profile", &l->tls_profile);
        {
            const char *ca = NULL;
            if (config_get_str(c, o, "client_auth", 0, &ca) == 1) {
                if (strcmp(ca, "required") == 0)
                    l->client_auth = TG_CLIENT_AUTH_REQUIRED;
                else if (strcmp(ca, "optional") == 0)
                    l->client_auth = TG_CLIENT_AUTH_OPTIONAL;
                else if (strcmp(ca, "none") != 0)
                    config_err_at(c, "client_auth",
                                  "expected \"none\", \"optional\" or \"required\"");
            }
        }
        config_get_path(c, o, "client_ca_file", l->client_auth != TG_CLIENT_AUTH_NONE,
                        0, &l->client_ca_file);
        config_get_path(c, o, "crl_file", 0, 0, &l->crl_file);
        if (l->client_auth == TG_CLIENT_AUTH_NONE &&
            (json_object_get(o, "client_ca_file") || json_object_get(o, "crl_file")))
            config_err_at(c, json_object_get(o, "client_ca_file") ? "client_ca_file" : "crl_file",
                          "client certificates are not asked for: set client_auth");
        config_pop(c, saved);
    }
    config_pop(c, base);
}

static void config_upstreams(config_ctx *c, json_t *root, tg_config *cfg)
{
    static const char *const keys[] = {
        "name", "adapter", "url", "api_key_file", "ca_file", "tls_profile",
        "connect_timeout_ms", "timeout_ms", "max_retries", "retry_backoff_ms",
        "max_connections", "default_source_lang", "clearance", "pins", "proxy",
        "suspended", NULL
    };
    json_t *a = config_get_list(c, root, "upstreams", CONFIG_MAX_UPSTREAMS,
                                "upstream");
    size_t i, j, base, saved;

    if (a == NULL)
        return;
    cfg->upstreams = calloc(json_array_size(a), sizeof(*cfg->upstreams));
    if (cfg->upstreams == NULL) {
        c->oom = 1;
        return;
    }
    cfg->n_upstreams = json_array_size(a);
    base = config_push(c, "upstreams");
    for (i = 0; i < cfg->n_upstreams; i++) {
        tg_upstream_conf *u = &cfg->upstreams[i];
        json_t *o = json_array_get(a, i);
        const char *s = NULL;
        long v;
        int tr, cr;

        u->connect_timeout_ms = 3000;
        u->timeout_ms = 30000;
        u->max_retries = 2;
        u->retry_backoff_ms = 200;
        u->max_connections = 64;
        u->clearance = 1;
        saved = config_push_index(c, i);
        config_where(c, &u->line, &u->column);
        if (!json_is_object(o)) {
            config_err_here(c, "expected an upstream object, got %s",
                            config_type_name(o));
            config_pop(c, saved);
            continue;
        }
        config_check_keys(c, o, keys);
        if (config_get_name(c, o, "name", &u->name) == 1) {
            for (j = 0; j < i; j++) {
                if (cfg->upstreams[j].name &&
                    strcmp(cfg->upstreams[j].name, u->name) == 0) {
                    config_err_at(c, "name", "duplicate upstream name \"%s\" "
                                  "(also $.upstreams[%zu] at line %d)",
                                  u->name, j, cfg->upstreams[j].line);
                    break;
                }
            }
        }
        if (config_get_str(c, o, "adapter", 1, &s) == 1) {
            if (strcmp(s, "deepl") == 0)
                u->adapter = TG_ADAPTER_DEEPL;
            else if (strcmp(s, "apertium") == 0)
                u->adapter = TG_ADAPTER_APERTIUM;
            else
                config_err_at(c, "adapter", "unknown adapter (known: deepl, "
                              "apertium)");
        }
        config_upstream_url(c, o, u);
        config_get_path(c, o, "api_key_file", 0, 0, &u->api_key_file);
        config_get_path(c, o, "ca_file", 0, 0, &u->ca_file);
        config_get_profile(c, o, "tls_profile", &u->tls_profile);
        cr = config_get_int(c, o, "connect_timeout_ms", 100, 600000,
                            &u->connect_timeout_ms);
        tr = config_get_int(c, o, "timeout_ms", 100, 3600000, &u->timeout_ms);
        if (cr >= 0 && tr >= 0 && u->timeout_ms < u->connect_timeout_ms)
            config_err_at(c, tr == 1 ? "timeout_ms" : "connect_timeout_ms",
                          "timeout_ms (%ld) must not be less than "
                          "connect_timeout_ms (%ld)",
                          u->timeout_ms, u->connect_timeout_ms);
        v = u->max_retries;
        if (config_get_int(c, o, "max_retries", 0, 10, &v) == 1)
            u->max_retries = (int)v;
        config_get_int(c, o, "retry_backoff_ms", 0, 60000, &u->retry_backoff_ms);
        v = u->max_connections;
        if (config_get_int(c, o, "max_connections", 1, 10000, &v) == 1)
            u->max_connections = (int)v;
        s = NULL;
        if (config_get_str(c, o, "default_source_lang", 0, &s) == 1) {
            if (!config_valid_lang(s))
                config_err_at(c, "default_source_lang", "expected a language "
                              "code such as \"EN\" or \"PT-BR\"");
            else
                u->default_source_lang = config_dup(c, s);
        }
        /* 機密性3 never leaves, whatever the vendor's contract says. */
        v = u->clearance;
        if (config_get_int(c, o, "clearance", 1, 2, &v) == 1)
            u->clearance = (int)v;
        config_get_strings(c, o, "pins", 16, config_valid_pin,
                           "\"sha256//<base64 of 32 bytes>\" public key pin",
                           &u->pins, &u->n_pins);
        s = NULL;
        if (config_get_str(c, o, "proxy", 0, &s) == 1) {
            /* An http:// proxy tunnels TLS (CONNECT): the vendor leg stays
             * end-to-end encrypted and verified through it. */
            if (strncmp(s, "http://", 7) != 0 || strlen(s) > 512 ||
                strpbrk(s + 7, "@ \t\r\n/?#") != NULL)
                config_err_at(c, "proxy", "expected \"http://HOST:PORT\" without "
                              "credentials or path");
            else
                u->proxy = config_dup(c, s);
        }
        config_get_bool(c, o, "suspended", &u->suspended);
        config_pop(c, saved);
    }
    config_pop(c, base);
}

static void config_clients(config_ctx *c, json_t *root, tg_config *cfg,
                           int check_refs)
{
    static const char *const keys[] = {
        "name", "api_key_hashes", "upstream", "disabled", "default_level",
        "clearance", "cert_cn", "source_networks", "limits", NULL
    };
    static const char *const limit_keys[] = {
        "max_concurrent", "requests_per_second", "chars_per_day", NULL
    };
    json_t *a = config_get_list(c, root, "clients", CONFIG_MAX_CLIENTS,
                                "client");
    size_t i, j, base, saved;

    if (a == NULL)
        return;
    cfg->clients = calloc(json_array_size(a), sizeof(*cfg->clients));
    if (cfg->clients == NULL) {
        c->oom = 1;
        return;
    }
    cfg->n_clients = json_array_size(a);
    base = config_push(c, "clients");
    for (i = 0; i < cfg->n_clients; i++) {
        tg_client_conf *cl = &cfg->clients[i];
        json_t *o = json_array_get(a, i);
        long v;

        cl->default_level = 2;   /* unlabelled is not 機密性1 */
        cl->clearance = 2;
        saved = config_push_index(c, i);
        config_where(c, &cl->line, &cl->column);
        if (!json_is_object(o)) {
            config_err_here(c, "expected a client object, got %s",
                            config_type_name(o));
            config_pop(c, saved);
            continue;
        }
        config_check_keys(c, o, keys);
        if (config_get_name(c, o, "name", &cl->name) == 1) {
            for (j = 0; j < i; j++) {
                if (cfg->clients[j].name &&
                    strcmp(cfg->clients[j].name, cl->name) == 0) {
                    config_err_at(c, "name", "duplicate client name \"%s\" "
                                  "(also $.clients[%zu] at line %d)",
                                  cl->name, j, cfg->clients[j].line);
                    break;
                }
            }
        }
        config_get_strings(c, o, "cert_cn", 64, config_valid_cn,
                           "certificate subject CN", &cl->cert_cn, &cl->n_cert_cn);
        /* A client proves itself with a key, a certificate, or both. */
        config_get_path(c, o, "api_key_hashes", 0,
                        (c->flags & CONFIG_ALLOW_MISSING_KEY_HASHES) != 0,
                        &cl->api_key_hashes);
        if (json_object_get(o, "api_key_hashes") == NULL &&
            json_object_get(o, "cert_cn") == NULL)
            config_err_here(c, "a client needs \"api_key_hashes\", \"cert_cn\" or both");
        {
            char **nets = NULL;
            size_t nn = 0;
            if (config_get_strings(c, o, "source_networks", 256, config_valid_cidr,
                                   "network such as \"10.1.0.0/16\" or \"2001:db8::/32\" "
                                   "(host bits zero)", &nets, &nn) == 1) {
                cl->networks = calloc(nn, sizeof(*cl->networks));
                if (cl->networks == NULL)
                    c->oom = 1;
                for (j = 0; cl->networks != NULL && j < nn; j++)
                    config_parse_cidr(nets[j], &cl->networks[j]);
                if (cl->networks != NULL)
                    cl->n_networks = nn;
                for (j = 0; j < nn; j++)
                    free(nets[j]);
                free(nets);
            }
        }
        {
            int lbad = 0;
            json_t *lim = config_get_obj(c, o, "limits", &lbad);
            if (lim != NULL) {
                size_t s2 = config_push(c, "limits");
                long cpd = 0;
                config_check_keys(c, lim, limit_keys);
                config_get_int(c, lim, "max_concurrent", 0, 1000000, &cl->max_concurrent);
                config_get_int(c, lim, "requests_per_second", 0, 1000000,
                               &cl->requests_per_second);
                if (config_get_int(c, lim, "chars_per_day", 0, 2000000000L, &cpd) == 1)
                    cl->chars_per_day = cpd;
                config_pop(c, s2);
            }
        }
        if (config_get_name(c, o, "upstream", &cl->upstream) == 1 &&
            check_refs && config_upstream_index(cfg, cl->upstream) < 0)
            config_err_at(c, "upstream", "no upstream named \"%s\" is defined",
                          cl->upstream);
        config_get_bool(c, o, "disabled", &cl->disabled);
        v = cl->default_level;
        if (config_get_int(c, o, "default_level", 1, 3, &v) == 1)
            cl->default_level = (int)v;
        v = cl->clearance;
        if (config_get_int(c, o, "clearance", 1, 2, &v) == 1)
            cl->clearance = (int)v;
        config_pop(c, saved);
    }
    config_pop(c, base);
}

/* ------------------------------------------------------------------------
 * Loading.
 */

static int config_err_cmp(const void *a, const void *b)
{
    const config_err *x = a, *y = b;

    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return x->seq < y->seq ? -1 : (x->seq > y->seq);
}

/* One diagnostic per line whatever a message holds. */
static void config_put_line(FILE *errs, const char *file, int line, int col,
                            const char *text)
{
    size_t i;

    fprintf(errs, "%s:%d:%d: ", file, line, col);
    for (i = 0; text[i] != '\0'; i++)
        fputc((unsigned char)text[i] < 0x20 ? ' ' : text[i], errs);
    fputc('\n', errs);
}

static char *config_read_file(const char *path, size_t *len, char *why,
                              size_t whylen)
{
    struct stat st;
    char *buf = NULL;
    size_t n = 0;
    ssize_t r;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

    if (fd < 0) {
        snprintf(why, whylen, "cannot open: %s", strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) != 0) {
        snprintf(why, whylen, "cannot stat: %s", strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, whylen, "not a regular file");
        goto fail;
    }
    buf = malloc(CONFIG_MAX_FILE + 1);
    if (buf == NULL) {
        snprintf(why, whylen, "out of memory");
        goto fail;
    }
    for (;;) {
        r = read(fd, buf + n, CONFIG_MAX_FILE + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(why, whylen, "cannot read: %s", strerror(errno));
            goto fail;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > CONFIG_MAX_FILE) {
            snprintf(why, whylen, "larger than %d bytes", CONFIG_MAX_FILE);
            goto fail;
        }
    }
    close(fd);
    buf[n] = '\0';
    *len = n;
    return buf;
fail:
    free(buf);
    close(fd);
    return NULL;
}

/* Absolute directory of path, without trailing slash ("/" for the root). */
static char *config_dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    config_str d = { 0 };
    char *cwd = NULL;

    if (slash == NULL || path[0] != '/') {
        cwd = getcwd(NULL, 0);
        if (cwd == NULL)
            return NULL;
        config_str_add(&d, cwd, strlen(cwd));
        free(cwd);
        if (slash != NULL) {
            if (d.len == 0 || d.s[d.len - 1] != '/')
                config_str_add(&d, "/", 1);
            config_str_add(&d, path, (size_t)(slash - path));
        }
    } else if (slash == path) {
        config_str_add(&d, "/", 1);
    } else {
        config_str_add(&d, path, (size_t)(slash - path));
    }
    if (d.oom) {
        free(d.s);
        return NULL;
    }
    return d.s;
}

tg_config *config_load(const char *path, FILE *errs)
{
    return config_load_opts(path, 0, errs);
}

tg_config *config_load_opts(const char *path, unsigned flags, FILE *errs)
{
    static const char *const keys[] = {
        "workers", "user", "admin", "log", "limits", "policy", "audit",
        "listeners", "upstreams", "clients", NULL
    };
    config_ctx c;
    config_scan s;
    tg_config *cfg = NULL;
    json_t *root = NULL;
    json_error_t jerr;
    char why[256];
    char *text = NULL;
    size_t len = 0, i;
    long workers = 0;
    int ok = 0;

    memset(&c, 0, sizeof(c));
    memset(&s, 0, sizeof(s));
    c.file = path;
    c.flags = flags;
    text = config_read_file(path, &len, why, sizeof(why));
    if (text == NULL) {
        fprintf(errs, "%s:1:1: $: %s\n", path, why);
        goto fail;
    }
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        config_str t = { 0 };

        config_str_add(&t, "$: ", 3);
        config_str_add(&t, jerr.text, strlen(jerr.text));
        if (t.oom) {
            fprintf(errs, "%s:1:1: $: out of memory\n", path);
        } else {
            config_put_line(errs, path, jerr.line < 1 ? 1 : jerr.line,
                            jerr.column < 1 ? 1 : jerr.column, t.s);
        }
        free(t.s);
        goto fail;
    }

    s.p = (const unsigned char *)text;
    s.end = s.p + len;
    s.line = 1;
    s.col = 1;
    config_str_add(&s.path, "$", 1);
    scan_ws(&s);
    scan_value(&s, -1, -1, 0);
    if (!s.fail) {
        qsort(s.v, s.n, sizeof(*s.v), config_pos_cmp);
        c.pos = s.v;
        c.npos = s.n;
    }
    /* On a scanner failure positions default to 1:1; diagnostics still
     * name the path, so the load itself does not fail for it. */

    c.dir = config_dir_of(path);
    config_str_add(&c.path, "$", 1);
    cfg = calloc(1, sizeof(*cfg));
    if (c.dir == NULL || cfg == NULL || c.path.oom) {
        c.oom = 1;
        goto report;
    }
    cfg->path = config_dup(&c, path);
    cfg->log_level = TG_LOG_INFO;
    cfg->max_body_bytes = TG_DEFAULT_MAX_BODY;
    cfg->max_connections = 4096;
    cfg->max_inflight = 4096;
    cfg->handshake_timeout_ms = 10000;
    cfg->idle_timeout_ms = 60000;
    cfg->drain_timeout_ms = 15000;

    if (!json_is_object(root)) {
        config_err_here(&c, "expected an object at the top level, got %s",
                        config_type_name(root));
        goto report;
    }
    config_check_keys(&c, root, keys);
    if (config_get_int(&c, root, "workers", 0, 64, &workers) == 1)
        cfg->workers = (int)workers;
    {
        const char *u = NULL;
        if (config_get_str(&c, root, "user", 0, &u) == 1) {
            if (!config_valid_name(u) || u[0] == '-')
                config_err_at(&c, "user", "expected an account name");
            else
                cfg->user = config_dup(&c, u);
        }
    }
    config_admin_section(&c, root, cfg);
    config_log_section(&c, root, cfg);
    config_limits_section(&c, root, cfg);
    config_policy_section(&c, root, cfg);
    config_audit_section(&c, root, cfg);
    config_listeners(&c, root, cfg);
    config_upstreams(&c, root, cfg);
    /* Without a usable upstream list every client would also be reported
     * as dangling: one cause, one diagnostic. */
    config_clients(&c, root, cfg, cfg->upstreams != NULL);

report:
    if (c.nerr > 0) {
        qsort(c.errs, c.nerr, sizeof(*c.errs), config_err_cmp);
        for (i = 0; i < c.nerr; i++)
            config_put_line(errs, path, c.errs[i].line, c.errs[i].col,
                            c.errs[i].text);
    }
    if (c.oom)
        fprintf(errs, "%s:1:1: $: out of memory while loading\n", path);
    ok = c.nerr == 0 && !c.oom;

fail:
    for (i = 0; i < c.nerr; i++)
        free(c.errs[i].text);
    free(c.errs);
    for (i = 0; i < s.n; i++)
        free(s.v[i].path);
    free(s.v);
    free(s.path.s);
    free(s.key.s);
    free(c.path.s);
    free(c.dir);
    json_decref(root);
    free(text);
    if (!ok) {
        config_free(cfg);
        return NULL;
    }
    return cfg;
}

void config_free(tg_config *cfg)
{
    size_t i;

    if (cfg == NULL)
        return;
    for (i = 0; i < cfg->n_listeners; i++) {
        free(cfg->listeners[i].address);
        free(cfg->listeners[i].host);
        free(cfg->listeners[i].port);
        free(cfg->listeners[i].certificate);
        free(cfg->listeners[i].private_key);
        free(cfg->listeners[i].tls_profile);
        free(cfg->listeners[i].client_ca_file);
        free(cfg->listeners[i].crl_file);
    }
    free(cfg->listeners);
    for (i = 0; i < cfg->n_upstreams; i++) {
        free(cfg->upstreams[i].name);
        free(cfg->upstreams[i].url);
        free(cfg->upstreams[i].scheme_host);
        free(cfg->upstreams[i].base_path);
        free(cfg->upstreams[i].api_key_file);
        free(cfg->upstreams[i].ca_file);
        free(cfg->upstreams[i].tls_profile);
        free(cfg->upstreams[i].default_source_lang);
        for (size_t k = 0; k < cfg->upstreams[i].n_pins; k++)
            free(cfg->upstreams[i].pins[k]);
        free(cfg->upstreams[i].pins);
        free(cfg->upstreams[i].proxy);
    }
    free(cfg->upstreams);
    for (i = 0; i < cfg->n_clients; i++) {
        free(cfg->clients[i].name);
        free(cfg->clients[i].api_key_hashes);
        free(cfg->clients[i].upstream);
        for (size_t k = 0; k < cfg->clients[i].n_cert_cn; k++)
            free(cfg->clients[i].cert_cn[k]);
        free(cfg->clients[i].cert_cn);
        free(cfg->clients[i].networks);
    }
    free(cfg->clients);
    for (i = 0; cfg->policy_rules != NULL && i < cfg->n_policy_rules; i++)
        free(cfg->policy_rules[i]);
    free(cfg->policy_rules);
    free(cfg->audit_path);
    free(cfg->audit_key_file);
    free(cfg->audit_syslog);
    free(cfg->user);
    free(cfg->admin_socket);
    free(cfg->path);
    free(cfg);
}

int config_upstream_index(const tg_config *cfg, const char *name)
{
    size_t i;

    if (cfg == NULL || name == NULL)
        return -1;
    for (i = 0; i < cfg->n_upstreams; i++)
        if (cfg->upstreams[i].name != NULL &&
            strcmp(cfg->upstreams[i].name, name) == 0)
            return (int)i;
    return -1;
}

const tg_upstream_conf *config_upstream(const tg_config *cfg, const char *name)
{
    int i = config_upstream_index(cfg, name);

    return i < 0 ? NULL : &cfg->upstreams[i];
}

static const char *config_level_name(tg_log_level l)
{
    switch (l) {
    case TG_LOG_ERR:   return "error";
    case TG_LOG_WARN:  return "warning";
    case TG_LOG_INFO:  return "info";
    case TG_LOG_DEBUG: return "debug";
    }
    return "?";
}

static const char *config_adapter_name(tg_adapter_kind k)
{
    switch (k) {
    case TG_ADAPTER_DEEPL:    return "deepl";
    case TG_ADAPTER_APERTIUM: return "apertium";
    }
    return "?";
}

int config_print(const tg_config *cfg, FILE *out)
{
    size_t i;

    fprintf(out, "config: %s\n", cfg->path);
    if (cfg->workers == 0)
        fprintf(out, "workers: 0 (one per CPU)\n");
    else
        fprintf(out, "workers: %d\n", cfg->workers);
    fprintf(out, "user: %s\n", cfg->user ? cfg->user : "(unchanged)");
    fprintf(out, "admin socket: %s\n", cfg->admin_socket ? cfg->admin_socket : "(none)");
    fprintf(out, "log:\n  level: %s\n  syslog: %s\n",
            config_level_name(cfg->log_level),
            cfg->log_syslog ? "true" : "false");
    fprintf(out, "limits:\n"
            "  max_body_bytes: %zu\n"
            "  max_connections: %d\n"
            "  max_inflight: %d\n"
            "  handshake_timeout_ms: %ld\n"
            "  idle_timeout_ms: %ld\n"
            "  drain_timeout_ms: %ld\n",
            cfg->max_body_bytes, cfg->max_connections, cfg->max_inflight,
            cfg->handshake_timeout_ms, cfg->idle_timeout_ms,
            cfg->drain_timeout_ms);
    fprintf(out, "policy:\n  rules:");
    if (cfg->n_policy_rules == 0)
        fprintf(out, " (default pack)\n");
    else
        fprintf(out, "\n");
    for (i = 0; i < cfg->n_policy_rules; i++)
        fprintf(out, "    - %s\n", cfg->policy_rules[i]);
    fprintf(out, "  placeholder_loss: %s\n",
            cfg->placeholder_best_effort ? "best_effort" : "fail");
    if (cfg->audit_path != NULL)
        fprintf(out, "audit:\n  path: %s\n  key_file: %s\n  fsync: %s\n"
                "  fsync_interval_ms: %ld\n  batch_ms: %ld\n  queue_size: %ld\n"
                "  on_failure: %s\n  syslog: %s\n", cfg->audit_path, cfg->audit_key_file,
                cfg->audit_fsync == 0 ? "always" : cfg->audit_fsync == 1 ? "interval" : "never",
                cfg->audit_fsync_interval_ms, cfg->audit_batch_ms, cfg->audit_queue_size,
                cfg->audit_continue_on_failure ? "continue" : "refuse",
                cfg->audit_syslog ? cfg->audit_syslog : "(none)");
    else
        fprintf(out, "audit: (none)\n");
    fprintf(out, "listeners:\n");
    for (i = 0; i < cfg->n_listeners; i++) {
        const tg_listener_conf *l = &cfg->listeners[i];
        fprintf(out, "  - address: %s\n"
                "    host: %s\n"
                "    port: %s\n"
                "    certificate: %s\n"
                "    private_key: %s\n"
                "    tls_profile: %s\n"
                "    client_auth: %s\n"
                "    client_ca_file: %s\n"
                "    crl_file: %s\n",
                l->address, l->host, l->port, l->certificate, l->private_key,
                l->tls_profile,
                l->client_auth == TG_CLIENT_AUTH_REQUIRED ? "required" :
                l->client_auth == TG_CLIENT_AUTH_OPTIONAL ? "optional" : "none",
                l->client_ca_file ? l->client_ca_file : "(none)",
                l->crl_file ? l->crl_file : "(none)");
    }
    fprintf(out, "upstreams:\n");
    for (i = 0; i < cfg->n_upstreams; i++) {
        const tg_upstream_conf *u = &cfg->upstreams[i];
        fprintf(out, "  - name: %s\n"
                "    adapter: %s\n"
                "    url: %s\n"
                "    host: %s\n"
                "    port: %d\n"
                "    base_path: \"%s\"\n"
                "    api_key_file: %s\n"
                "    ca_file: %s\n"
                "    tls_profile: %s\n"
                "    connect_timeout_ms: %ld\n"
                "    timeout_ms: %ld\n"
                "    max_retries: %d\n"
                "    retry_backoff_ms: %ld\n"
                "    max_connections: %d\n"
                "    default_source_lang: %s\n"
                "    clearance: %d\n",
                u->name, config_adapter_name(u->adapter), u->url,
                u->scheme_host, u->port, u->base_path,
                u->api_key_file ? u->api_key_file : "(none)",
                u->ca_file ? u->ca_file : "(system store)",
                u->tls_profile, u->connect_timeout_ms, u->timeout_ms,
                u->max_retries, u->retry_backoff_ms, u->max_connections,
                u->default_source_lang ? u->default_source_lang : "(none)",
                u->clearance);
        fprintf(out, "    suspended: %s\n", u->suspended ? "true" : "false");
        fprintf(out, "    proxy: %s\n    pins:", u->proxy ? u->proxy : "(none)");
        if (u->n_pins == 0)
            fprintf(out, " (none)");
        for (size_t k = 0; k < u->n_pins; k++)
            fprintf(out, " %s", u->pins[k]);
        fprintf(out, "\n");
    }
    fprintf(out, "clients:\n");
    for (i = 0; i < cfg->n_clients; i++) {
        const tg_client_conf *cl = &cfg->clients[i];
        fprintf(out, "  - name: %s\n"
                "    upstream: %s\n"
                "    api_key_hashes: %s\n"
                "    disabled: %s\n"
                "    default_level: %d\n"
                "    clearance: %d\n",
                cl->name, cl->upstream,
                cl->api_key_hashes ? cl->api_key_hashes : "(none)",
                cl->disabled ? "true" : "false", cl->default_level, cl->clearance);
        fprintf(out, "    cert_cn:");
        if (cl->n_cert_cn == 0)
            fprintf(out, " (none)");
        for (size_t k = 0; k < cl->n_cert_cn; k++)
            fprintf(out, " %s", cl->cert_cn[k]);
        fprintf(out, "\n    source_networks:");
        if (cl->n_networks == 0)
            fprintf(out, " (any)");
        for (size_t k = 0; k < cl->n_networks; k++) {
            char a[INET6_ADDRSTRLEN];
            inet_ntop(cl->networks[k].family, cl->networks[k].addr, a, sizeof(a));
            fprintf(out, " %s/%d", a, cl->networks[k].prefix);
        }
        fprintf(out, "\n    limits: max_concurrent %ld, requests_per_second %ld, "
                "chars_per_day %lld (0: unlimited)\n",
                cl->max_concurrent, cl->requests_per_second, cl->chars_per_day);
    }
    return ferror(out) ? -1 : 0;
}
