#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "secret.h"
#include "tg_buf.h"

#define AUTH_DIGEST_LEN   32
#define AUTH_KEY_RAW      32
#define AUTH_PREFIX       "tg_"
#define AUTH_HASH_PREFIX  "sha256:"

typedef struct auth_entry {
    unsigned char digest[AUTH_DIGEST_LEN];
    unsigned client;      /* index in cfg->clients */
    unsigned disabled;    /* 0 or 1 */
    int line;             /* in the client's hashes file, for diagnostics */
} auth_entry;

struct auth_table {
    auth_entry *e;
    size_t n;
};

static int auth_digest(const void *p, size_t n,
                       unsigned char out[AUTH_DIGEST_LEN])
{
    unsigned int len = 0;

    if (EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) != 1 ||
        len != AUTH_DIGEST_LEN)
        return -1;
    return 0;
}

static int auth_hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;          /* upper case is not the stored form */
}

/* Parse exactly "sha256:<64 lowercase hex>" of length n.  Returns 0 or -1. */
static int auth_parse_hash(const char *s, size_t n,
                           unsigned char out[AUTH_DIGEST_LEN])
{
    size_t plen = sizeof(AUTH_HASH_PREFIX) - 1, i;

    if (n != plen + 2 * AUTH_DIGEST_LEN ||
        memcmp(s, AUTH_HASH_PREFIX, plen) != 0)
        return -1;
    for (i = 0; i < AUTH_DIGEST_LEN; i++) {
        int hi = auth_hexval(s[plen + 2 * i]);
        int lo = auth_hexval(s[plen + 2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

static void auth_format_hash(const unsigned char d[AUTH_DIGEST_LEN],
                             char hash_out[72])
{
    static const char hex[] = "0123456789abcdef";
    size_t plen = sizeof(AUTH_HASH_PREFIX) - 1, i;

    memcpy(hash_out, AUTH_HASH_PREFIX, plen);
    for (i = 0; i < AUTH_DIGEST_LEN; i++) {
        hash_out[plen + 2 * i] = hex[d[i] >> 4];
        hash_out[plen + 2 * i + 1] = hex[d[i] & 15];
    }
    hash_out[plen + 2 * AUTH_DIGEST_LEN] = '\0';
}

static int auth_add(auth_table *t, size_t *alloc, const auth_entry *e)
{
    auth_entry *ne;
    size_t na;

    if (t->n == *alloc) {
        na = *alloc ? *alloc * 2 : 16;
        /* Not realloc: the old block holds credentials and must be wiped. */
        ne = calloc(na, sizeof(*ne));
        if (ne == NULL)
            return -1;
        if (t->e != NULL) {
            memcpy(ne, t->e, t->n * sizeof(*ne));
            tg_wipe(t->e, *alloc * sizeof(*ne));
            free(t->e);
        }
        t->e = ne;
        *alloc = na;
    }
    t->e[t->n++] = *e;
    return 0;
}

/* Parse one client's hashes file.  Returns the number of problems reported
 * (0 when every line is good), or -1 when out of memory. */
static int auth_load_client(auth_table *t, size_t *alloc, const tg_config *cfg,
                            size_t ci, FILE *errs)
{
    const tg_client_conf *cl = &cfg->clients[ci];
    char err[512];
    char *text, *p, *nl;
    size_t n;
    int line = 0, bad = 0, rc = 0;
    auth_entry e;

    text = secret_read(cl->api_key_hashes, err, sizeof(err));
    if (text == NULL) {
        fprintf(errs, "%s (client \"%s\")\n", err, cl->name);
        return 1;
    }
    memset(&e, 0, sizeof(e));
    for (p = text; p != NULL; p = nl ? nl + 1 : NULL) {
        line++;
        nl = strchr(p, '\n');
        n = nl ? (size_t)(nl - p) : strlen(p);
        if (nl == NULL && n == 0)
            break;
        while (n > 0 && (p[0] == ' ' || p[0] == '\t')) {
            p++;
            n--;
        }
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' ||
                         p[n - 1] == '\r'))
            n--;
        if (n == 0 || p[0] == '#')
            continue;
        if (auth_parse_hash(p, n, e.digest) != 0) {
            /* Name the place, never the content: a wrong line may well be
             * a raw key pasted by mistake. */
            fprintf(errs, "%s:%d: malformed line for client \"%s\" (expected "
                    "sha256: and 64 lowercase hex digits)\n",
                    cl->api_key_hashes, line, cl->name);
            bad++;
            continue;
        }
        e.client = (unsigned)ci;
        e.disabled = cl->disabled ? 1u : 0u;
        e.line = line;
        if (auth_add(t, alloc, &e) != 0) {
            rc = -1;
            goto fail;
        }
    }
    rc = bad;
fail:
    tg_wipe(&e, sizeof(e));
    tg_free_secret(text);
    return rc;
}

/* By digest, then by client and line, so that the first of a run of equal
 * digests is a stable reference for the diagnostics. */
static int auth_entry_cmp(const void *a, const void *b)
{
    const auth_entry *x = *(const auth_entry *const *)a;
    const auth_entry *y = *(const auth_entry *const *)b;
    int r = memcmp(x->digest, y->digest, AUTH_DIGEST_LEN);

    if (r != 0)
        return r;
    if (x->client != y->client)
        return x->client < y->client ? -1 : 1;
    return (x->line > y->line) - (x->line < y->line);
}

/* One key listed for two clients would make the identity of a request
 * depend on table order: refuse it (a repeat within one client is harmless).
 * Returns the number reported, -1 on allocation failure. */
static int auth_check_dups(const auth_table *t, const tg_config *cfg,
                           FILE *errs)
{
    const auth_entry **v;
    const auth_entry *first;
    size_t i;
    int bad = 0;

    if (t->n < 2)
        return 0;
    v = malloc(t->n * sizeof(*v));
    if (v == NULL)
        return -1;
    for (i = 0; i < t->n; i++)
        v[i] = &t->e[i];
    qsort(v, t->n, sizeof(*v), auth_entry_cmp);
    first = v[0];
    for (i = 1; i < t->n; i++) {
        if (memcmp(first->digest, v[i]->digest, AUTH_DIGEST_LEN) != 0) {
            first = v[i];
            continue;
        }
        if (v[i]->client == first->client)
            continue;
        fprintf(errs, "%s:%d: key hash is also listed for client \"%s\" "
                "(%s:%d)\n", cfg->clients[v[i]->client].api_key_hashes,
                v[i]->line, cfg->clients[first->client].name,
                cfg->clients[first->client].api_key_hashes, first->line);
        bad++;
    }
    free(v);
    return bad;
}

auth_table *auth_load(const tg_config *cfg, FILE *errs)
{
    auth_table *t = calloc(1, sizeof(*t));
    size_t alloc = 0, i;
    int bad = 0, r = -1;

    if (t == NULL)
        goto fail;
    for (i = 0; i < cfg->n_clients; i++) {
        if (cfg->clients[i].api_key_hashes == NULL)
            continue;
        r = auth_load_client(t, &alloc, cfg, i, errs);
        if (r < 0)
            goto fail;
        bad += r;
    }
    r = auth_check_dups(t, cfg, errs);
    if (r < 0)
        goto fail;
    bad += r;
    if (bad > 0)
        goto fail;
    return t;
fail:
    if (r < 0)
        fprintf(errs, "auth: out of memory loading client key hashes\n");
    auth_free(t);
    return NULL;
}

void auth_free(auth_table *t)
{
    if (t == NULL)
        return;
    if (t->e != NULL) {
        tg_wipe(t->e, t->n * sizeof(*t->e));
        free(t->e);
    }
    free(t);
}

int auth_lookup(const auth_table *t, const char *key, size_t keylen,
                int *disabled)
{
    unsigned char d[AUTH_DIGEST_LEN];
    unsigned found = 0, idx = 0, dis = 0, eq, m;
    size_t i;

    if (disabled != NULL)
        *disabled = 0;
    if (t == NULL || key == NULL || auth_digest(key, keylen, d) != 0)
        return -1;
    /* Visit every entry and select without branching on the comparison, so
     * timing does not reveal where (or whether) a match was found. */
    for (i = 0; i < t->n; i++) {
        eq = (unsigned)(CRYPTO_memcmp(d, t->e[i].digest, AUTH_DIGEST_LEN) == 0);
        m = 0u - eq;
        found |= eq;
        idx = (idx & ~m) | (t->e[i].client & m);
        dis = (dis & ~m) | (t->e[i].disabled & m);
    }
    tg_wipe(d, sizeof(d));
    if (!found)
        return -1;
    if (dis) {
        if (disabled != NULL)
            *disabled = 1;
        return -1;
    }
    return (int)idx;
}

void auth_key_hash(const char *key, size_t keylen, char hash_out[72])
{
    unsigned char d[AUTH_DIGEST_LEN];

    /* EVP_Digest of SHA-256 only fails if the library is unusable; an empty
     * result never matches a stored hash, so the caller fails closed. */
    if (auth_digest(key, keylen, d) != 0) {
        hash_out[0] = '\0';
        return;
    }
    auth_format_hash(d, hash_out);
    tg_wipe(d, sizeof(d));
}

int auth_key_new(char key_out[48], char hash_out[72])
{
    static const char b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char raw[AUTH_KEY_RAW + 1];   /* one pad byte for the last group */
    size_t i, o = sizeof(AUTH_PREFIX) - 1;
    unsigned long v;

    if (RAND_bytes(raw, AUTH_KEY_RAW) != 1) {
        tg_wipe(raw, sizeof(raw));
        return -1;
    }
    raw[AUTH_KEY_RAW] = 0;
    memcpy(key_out, AUTH_PREFIX, o);
    /* 32 bytes: ten full 3-byte groups (40 chars) and 2 bytes (3 chars),
     * unpadded base64url: 43 characters. */
    for (i = 0; i < AUTH_KEY_RAW; i += 3) {
        v = (unsigned long)raw[i] << 16 | (unsigned long)raw[i + 1] << 8;
        if (i + 2 < AUTH_KEY_RAW)
            v |= raw[i + 2];
        key_out[o++] = b64[(v >> 18) & 63];
        key_out[o++] = b64[(v >> 12) & 63];
        key_out[o++] = b64[(v >> 6) & 63];
        if (i + 2 < AUTH_KEY_RAW)
            key_out[o++] = b64[v & 63];
    }
    key_out[o] = '\0';
    tg_wipe(&v, sizeof(v));
    tg_wipe(raw, sizeof(raw));
    auth_key_hash(key_out, o, hash_out);
    if (hash_out[0] == '\0') {
        tg_wipe(key_out, 48);
        return -1;
    }
    return 0;
}

static int auth_write_all(int fd, const char *p, size_t n)
{
    ssize_t r;

    while (n > 0) {
        r = write(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int auth_append_hash(const char *path, const char *hash, char *err,
                     size_t errlen)
{
    unsigned char d[AUTH_DIGEST_LEN];
    char line[80];
    char last = '\n';
    struct stat st;
    size_t n;
    int fd;

    if (hash == NULL || auth_parse_hash(hash, strlen(hash), d) != 0) {
        snprintf(err, errlen, "%s: refusing to append a malformed hash "
                 "(expected sha256: and 64 lowercase hex digits)", path);
        return -1;
    }
    tg_wipe(d, sizeof(d));
    fd = secret_open_fd(path, O_RDWR | O_APPEND | O_CREAT, &st, err, errlen);
    if (fd < 0)
        return -1;
    /* Keep one hash per line even if the operator left no final newline. */
    if (st.st_size > 0 && pread(fd, &last, 1, st.st_size - 1) != 1) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto fail;
    }
    n = 0;
    if (last != '\n')
        line[n++] = '\n';
    memcpy(line + n, hash, strlen(hash));
    n += strlen(hash);
    line[n++] = '\n';
    if (auth_write_all(fd, line, n) != 0 || fsync(fd) != 0) {
        snprintf(err, errlen, "%s: write failed: %s", path, strerror(errno));
        goto fail;
    }
    tg_wipe(line, sizeof(line));
    if (close(fd) != 0) {
        snprintf(err, errlen, "%s: close failed: %s", path, strerror(errno));
        return -1;
    }
    return 0;
fail:
    tg_wipe(line, sizeof(line));
    close(fd);
    return -1;
}
