/*
 * audit: the writer side of the tamper-evident trail.
 *
 * Workers build a record's text (audit_rec: one allocation, no Jansson
 * tree), then only take a lock, store the pointer and a timestamp in a ring
 * and signal; stamping, chaining, writing, syncing and forwarding to syslog
 * happen on the writer thread, so a slow disk never holds a request longer
 * than the lock.  The chain state (last seq, last mac) belongs to the
 * writer alone.
 *
 * Records that have been chained but not yet written sit in `pend`,
 * already in their final bytes.  A failed write is retried with the same
 * bytes, so the chain never forks; a partial write keeps the complete lines
 * it got out and truncates the file back to the end of the last one.
 */
#include "audit.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timex.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "log.h"
#include "secret.h"
#include "tg_buf.h"

#define AUDIT_DEFAULT_QUEUE     65536
#define AUDIT_MAX_QUEUE         (16u * 1024 * 1024)
#define AUDIT_BATCH             2048         /* records per write */
#define AUDIT_BATCH_BYTES       (1u << 20)   /* soft bytes per write */
#define AUDIT_MAX_BATCH_MS      1000
#define AUDIT_RB_MAX            (4u << 20)   /* record ring bytes, at most */
#define AUDIT_PENDING_CAP       (AUDIT_BATCH_BYTES + 8 * AUDIT_LINE_MAX)
#define AUDIT_RETRY_MIN_MS      200
#define AUDIT_RETRY_MAX_MS      2000
#define AUDIT_CLOSE_RETRY_MS    3000         /* how long close keeps trying */
#define AUDIT_SYSLOG_BACKLOG    (1u << 20)   /* TCP bytes held for the server */
#define AUDIT_SYSLOG_RETRY_MS   5000
#define AUDIT_KEY_HEX_MIN       64
#define AUDIT_KEY_HEX_MAX       256
#define AUDIT_MAC_SUFFIX_LEN    74           /* ,"mac":"<64 hex>"} */

static const char audit_zero_chain[65] =
    "0000000000000000000000000000000000000000000000000000000000000000";

/* A queued record, already text: "{...}" from audit_rec or from Jansson on
 * the submitting thread, so the writer neither serialises nor frees object
 * trees.  body NULL stands for a record that could not be built: len is
 * then the size it needed (written as record_oversize), or 0 when memory
 * ran out (record_unserializable). */
typedef struct audit_entry {
    char *body;                     /* malloc'd, or in the record ring */
    size_t len;
    size_t rb_span;                 /* in the ring: bytes it holds there
                                       (its length, plus the ring's end
                                       when it wrapped); 0: malloc'd */
    struct timespec ts;
} audit_entry;

typedef struct audit_syslog {
    int type;                       /* SOCK_DGRAM or SOCK_STREAM */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    int fd;
    int connecting;
    long long retry_at_ms;          /* monotonic; reconnect not before */
    tg_buf backlog;                 /* TCP: whole frames not yet sent */
    size_t backlog_sent;            /* bytes of backlog already sent */
    size_t backlog_frames;
    int failing;                    /* a diagnostic was logged */
    char host[256];
    long pid;
} audit_syslog;

struct audit_log {
    /* Shared with the workers, under mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv_work;         /* the writer waits here */
    pthread_cond_t cv_done;         /* audit_flush waits here */
    audit_entry *ring;
    size_t cap, head, count, reserved;
    unsigned long long lost_pending; /* lost events not yet reported */
    unsigned long long enqueued;     /* ring entries ever queued */
    unsigned long long processed;    /* ring entries written */
    int stop, reopen_req;
    int idle;                       /* the writer waits for records: the
                                       next push wakes it (once) */
    int flushers;                   /* audit_flush callers waiting: no
                                       batch window */
    /* The record ring: queued record text is copied here, in queue order,
     * by the thread that queues it, and the writer releases it in the same
     * order once formatted.  A body allocated on a worker and freed on the
     * writer met the worker's malloc arena lock and made its heap shrink
     * and grow again; the ring crosses threads without malloc.  A record
     * that does not fit keeps its own allocation. */
    char *rb;
    size_t rb_cap, rb_head, rb_tail, rb_used;
    size_t batch_wake;              /* during a batch window, the push
                                       that makes count this wakes the
                                       writer early */
    int refuse_on_failure;
    long long full_logged_ms;       /* when a full queue was last reported */
    unsigned long long full_refusals; /* since then */

    /* Lock-free reads for audit_healthy. */
    atomic_int failing;
    atomic_size_t used;             /* count + reserved */
    atomic_ullong st_written, st_lost, st_errors, st_sys_sent, st_sys_drop;
    atomic_ullong st_seq;
    atomic_int st_errno;

    /* Writer thread only. */
    pthread_t thread;
    int thread_started;
    char *path;
    int fd;
    off_t good_off;                 /* file size up to the last full line */
    int need_truncate;
    char chain[65];
    uint64_t seq;
    char *pend;                     /* chained lines not yet written */
    size_t pend_len;                /* bytes in pend (capacity AUDIT_PENDING_CAP) */
    size_t pend_done;               /* bytes of pend already in the file */
    unsigned long long pending_entries; /* ring entries inside pend */
    audit_entry *carry;             /* taken from the ring, not yet in pend */
    size_t carry_n, carry_off;
    int retry_ms;
    long long retry_at_ms;
    long long stop_deadline_ms;
    audit_fsync fsync_policy;
    long fsync_interval_ms;
    long batch_ms;
    long long batch_deadline_ms;    /* 0, or the end of the open window */
    size_t rb_rel_span;             /* ring bytes formatted, to release */
    size_t rb_rel_tail;             /* the ring's tail after that release */
    time_t ts_sec;                  /* the second ts_prefix was made for */
    char ts_prefix[32];             /* "2026-11-22T08:30:01" */
    int dirty;                      /* written since the last fsync */
    long long last_sync_ms;
    int have_syslog;
    audit_syslog sys;

    /* Read-only after open. */
    audit_keys keys;
    EVP_MAC *mac;
    /* Keyed once: a copy of it is all a text digest needs (no digest
     * look-up or key schedule per text); workers share it read-only. */
    EVP_MAC_CTX *text_tmpl;
    unsigned long long gen;         /* tells trails apart, see audit_tl_ctx */
    /* The writer's chain context, keyed once and re-initialised with that
     * key for each record: no copy and no allocation per record.  Writer
     * thread only. */
    EVP_MAC_CTX *chain_ctx;
};

/* ---- Small helpers ------------------------------------------------------ */

static long long audit_now_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void audit_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int audit_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int audit_is_mac_hex(const char *s, size_t n)
{
    if (n != 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* Decimal digits of u, then a NUL; returns their count (at most 20). */
static size_t audit_ulltoa(unsigned long long u, char *out)
{
    char tmp[24];
    size_t n = 0, i = 0;

    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    while (n > 0)
        out[i++] = tmp[--n];
    out[i] = '\0';
    return i;
}

/* The same for a signed value (at most 21 characters). */
static size_t audit_lltoa(long long v, char out[24])
{
    if (v >= 0)
        return audit_ulltoa((unsigned long long)v, out);
    out[0] = '-';
    return 1 + audit_ulltoa(0ULL - (unsigned long long)v, out + 1);
}

void audit_format_time(const struct timespec *ts, char out[32])
{
    struct tm tm;
    size_t n;

    gmtime_r(&ts->tv_sec, &tm);
    n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)(ts->tv_nsec / 1000000L) % 1000);
}

/* audit_format_time for the writer thread, which stamps thousands of
 * records a second: the date and time of day are formatted once per
 * second, the milliseconds by hand. */
static void audit_format_ts(audit_log *a, const struct timespec *ts, char out[32])
{
    int ms = (int)(ts->tv_nsec / 1000000L) % 1000;
    size_t n;

    if (a->ts_prefix[0] == '\0' || ts->tv_sec != a->ts_sec) {
        audit_format_time(ts, out);
        n = strlen(out);
        n = n >= 5 ? n - 5 : 0;         /* without ".mmmZ" */
        memcpy(a->ts_prefix, out, n);
        a->ts_prefix[n] = '\0';
        a->ts_sec = ts->tv_sec;
        return;
    }
    n = strlen(a->ts_prefix);
    memcpy(out, a->ts_prefix, n);
    out[n] = '.';
    out[n + 1] = (char)('0' + ms / 100);
    out[n + 2] = (char)('0' + ms / 10 % 10);
    out[n + 3] = (char)('0' + ms % 10);
    out[n + 4] = 'Z';
    out[n + 5] = '\0';
}

/* ---- Keys and MACs -------------------------------------------------------- */

static int audit_hmac(EVP_MAC *mac, const unsigned char key[32],
                      const void *a, size_t alen, const void *b, size_t blen,
                      const void *c, size_t clen, unsigned char out[32])
{
    OSSL_PARAM params[2];
    EVP_MAC_CTX *ctx = NULL;
    size_t outl = 0;
    int rc = -1;

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 (char *)(uintptr_t)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    ctx = EVP_MAC_CTX_new(mac);
    if (ctx == NULL)
        goto fail;
    if (!EVP_MAC_init(ctx, key, 32, params))
        goto fail;
    if (alen > 0 && !EVP_MAC_update(ctx, a, alen))
        goto fail;
    if (blen > 0 && !EVP_MAC_update(ctx, b, blen))
        goto fail;
    if (clen > 0 && !EVP_MAC_update(ctx, c, clen))
        goto fail;
    if (!EVP_MAC_final(ctx, out, &outl, 32) || outl != 32)
        goto fail;
    rc = 0;
fail:
    EVP_MAC_CTX_free(ctx);
    return rc;
}

/* A keyed HMAC-SHA256 context to copy from.  NULL when OpenSSL cannot
 * allocate. */
static EVP_MAC_CTX *audit_hmac_keyed(EVP_MAC *mac, const unsigned char key[32])
{
    OSSL_PARAM params[2];
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 (char *)(uintptr_t)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    if (ctx != NULL && !EVP_MAC_init(ctx, key, 32, params)) {
        EVP_MAC_CTX_free(ctx);
        ctx = NULL;
    }
    return ctx;
}

/* Same result as audit_hmac with the template's key.  The template is
 * only read, so workers may share it.  Returns 0 or -1. */
static int audit_hmac_from(const EVP_MAC_CTX *tmpl, const void *a, size_t alen,
                           const void *b, size_t blen, const void *c, size_t clen,
                           unsigned char out[32])
{
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup(tmpl);
    size_t outl = 0;
    int rc = -1;

    if (ctx == NULL)
        return -1;
    if ((alen == 0 || EVP_MAC_update(ctx, a, alen)) &&
        (blen == 0 || EVP_MAC_update(ctx, b, blen)) &&
        (clen == 0 || EVP_MAC_update(ctx, c, clen)) &&
        EVP_MAC_final(ctx, out, &outl, 32) && outl == 32)
        rc = 0;
    EVP_MAC_CTX_free(ctx);
    return rc;
}

static EVP_MAC *audit_mac_fetch(void)
{
    return EVP_MAC_fetch(NULL, "HMAC", NULL);
}

/* HMAC-SHA256 with a key of any length (the master key). */
static int audit_hmac_anykey(const unsigned char *key, size_t keylen,
                             const char *label, unsigned char out[32])
{
    OSSL_PARAM params[2];
    EVP_MAC *mac = audit_mac_fetch();
    EVP_MAC_CTX *ctx = NULL;
    size_t outl = 0;
    int rc = -1;

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 (char *)(uintptr_t)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    if (mac == NULL || (ctx = EVP_MAC_CTX_new(mac)) == NULL)
        goto fail;
    if (!EVP_MAC_init(ctx, key, keylen, params) ||
        !EVP_MAC_update(ctx, (const unsigned char *)label, strlen(label)) ||
        !EVP_MAC_final(ctx, out, &outl, 32) || outl != 32)
        goto fail;
    rc = 0;
fail:
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return rc;
}

void audit_keys_wipe(audit_keys *k)
{
    if (k != NULL)
        tg_wipe(k, sizeof(*k));
}

int audit_keys_load(const char *path, audit_keys *k, char *err, size_t errlen)
{
    unsigned char raw[AUDIT_KEY_HEX_MAX / 2];
    char *text = secret_read(path, err, errlen);
    size_t n, i;
    int rc = -1;

    audit_keys_wipe(k);
    if (text == NULL)
        return -1;
    n = strlen(text);
    if (n < AUDIT_KEY_HEX_MIN || n > AUDIT_KEY_HEX_MAX || n % 2 != 0) {
        snprintf(err, errlen, "%s: an audit key is %d to %d hexadecimal "
                 "digits (an even number); this file holds %zu characters "
                 "(make one with 'transgate audit keygen')", path,
                 AUDIT_KEY_HEX_MIN, AUDIT_KEY_HEX_MAX, n);
        goto fail;
    }
    for (i = 0; i < n; i += 2) {
        int hi = audit_hexval(text[i]), lo = audit_hexval(text[i + 1]);

        if (hi < 0 || lo < 0) {
            snprintf(err, errlen, "%s: not hexadecimal at character %zu",
                     path, hi < 0 ? i + 1 : i + 2);
            goto fail;
        }
        raw[i / 2] = (unsigned char)(hi << 4 | lo);
    }
    if (audit_hmac_anykey(raw, n / 2, "transgate audit chain v1", k->chain) != 0 ||
        audit_hmac_anykey(raw, n / 2, "transgate text digest v1", k->text) != 0) {
        snprintf(err, errlen, "%s: cannot derive the audit subkeys (OpenSSL)",
                 path);
        goto fail;
    }
    rc = 0;
fail:
    if (rc != 0)
        audit_keys_wipe(k);
    tg_wipe(raw, sizeof(raw));
    tg_free_secret(text);
    return rc;
}

int audit_keygen(const char *path, char *err, size_t errlen)
{
    unsigned char raw[32];
    char hex[66];
    size_t off = 0;
    int fd = -1, rc = -1;

    if (RAND_priv_bytes(raw, sizeof(raw)) != 1) {
        snprintf(err, errlen, "cannot generate a key: random number "
                 "generator failed");
        goto fail;
    }
    audit_hex(raw, sizeof(raw), hex);
    hex[64] = '\n';
    hex[65] = '\0';
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s%s", path, strerror(errno),
                 errno == EEXIST ? " (refusing to overwrite a key)" : "");
        goto fail;
    }
    if (fchmod(fd, 0600) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto fail_unlink;
    }
    while (off < 65) {
        ssize_t w = write(fd, hex + off, 65 - off);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            snprintf(err, errlen, "%s: %s", path,
                     w < 0 ? strerror(errno) : "short write");
            goto fail_unlink;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        fd = -1;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto fail_unlink;
    }
    fd = -1;
    rc = 0;
    goto fail;
fail_unlink:
    unlink(path);
fail:
    if (fd >= 0)
        close(fd);
    tg_wipe(raw, sizeof(raw));
    tg_wipe(hex, sizeof(hex));
    return rc;
}

int audit_keys_text_mac(const audit_keys *k, const void *text, size_t len,
                        char out[65])
{
    unsigned char md[32];
    EVP_MAC *mac = audit_mac_fetch();
    int rc = -1;

    out[0] = '\0';
    if (mac != NULL && audit_hmac(mac, k->text, text, len, NULL, 0, NULL, 0,
                                  md) == 0) {
        audit_hex(md, 32, out);
        rc = 0;
    }
    EVP_MAC_free(mac);
    return rc;
}

int audit_chain_mac(const audit_keys *k, const char prev[65],
                    const char *body, size_t len, char out[65])
{
    unsigned char md[32];
    EVP_MAC *mac = audit_mac_fetch();
    int rc = -1;

    out[0] = '\0';
    if (mac != NULL && audit_hmac(mac, k->chain, prev, 64, "\n", 1, body, len,
                                  md) == 0) {
        audit_hex(md, 32, out);
        rc = 0;
    }
    EVP_MAC_free(mac);
    return rc;
}

/* Each thread that digests texts keeps a context keyed for one trail and
 * re-initialises it per text (one digest-state copy), rather than copying
 * the shared template (a new context and three copies).  gen tells trails
 * apart even when one is freed and another allocated at its address. */
typedef struct audit_tl_mac {
    unsigned long long gen;
    EVP_MAC_CTX *ctx;
} audit_tl_mac;

static pthread_key_t audit_tl_key;
static pthread_once_t audit_tl_once = PTHREAD_ONCE_INIT;
static int audit_tl_ok;
static atomic_ullong audit_gen_next;

static void audit_tl_free(void *p)
{
    audit_tl_mac *t = p;

    EVP_MAC_CTX_free(t->ctx);
    free(t);
}

static void audit_tl_init(void)
{
    audit_tl_ok = pthread_key_create(&audit_tl_key, audit_tl_free) == 0;
}

/* This thread's context for a's text key, or NULL (the template is then
 * copied as before). */
static EVP_MAC_CTX *audit_tl_ctx(const audit_log *a)
{
    audit_tl_mac *t;

    pthread_once(&audit_tl_once, audit_tl_init);
    if (!audit_tl_ok)
        return NULL;
    t = pthread_getspecific(audit_tl_key);
    if (t == NULL) {
        t = calloc(1, sizeof(*t));
        if (t == NULL)
            return NULL;
        if (pthread_setspecific(audit_tl_key, t) != 0) {
            free(t);
            return NULL;
        }
    }
    if (t->ctx == NULL || t->gen != a->gen) {
        EVP_MAC_CTX_free(t->ctx);
        t->ctx = EVP_MAC_CTX_dup(a->text_tmpl);
        t->gen = a->gen;
    }
    return t->ctx;
}

void audit_text_mac(const audit_log *a, const char *text, size_t len,
                    char out[65])
{
    unsigned char md[32];
    EVP_MAC_CTX *ctx = audit_tl_ctx(a);
    size_t outl = 0;
    int rc;

    if (ctx != NULL)
        rc = EVP_MAC_init(ctx, NULL, 0, NULL) &&
             (len == 0 || EVP_MAC_update(ctx, (const unsigned char *)text, len)) &&
             EVP_MAC_final(ctx, md, &outl, sizeof(md)) && outl == 32 ? 0 : -1;
    else
        rc = audit_hmac_from(a->text_tmpl, text, len, NULL, 0, NULL, 0, md);
    if (rc != 0) {
        /* Only when OpenSSL cannot allocate: an empty digest, never a
         * plausible-looking wrong one. */
        out[0] = '\0';
        log_err("audit: cannot compute a text digest (OpenSSL allocation)");
        return;
    }
    audit_hex(md, 32, out);
}

/* ---- The last record of an existing file -------------------------------- */

/* Check the fixed tail of a record line (without its newline) and return
 * the position of its mac, or NULL. */
static const char *audit_line_mac(const char *line, size_t len)
{
    const char *m;

    if (len < AUDIT_MAC_SUFFIX_LEN + 2 || line[0] != '{')
        return NULL;
    m = line + len - AUDIT_MAC_SUFFIX_LEN;
    if (memcmp(m, ",\"mac\":\"", 8) != 0 || memcmp(line + len - 2, "\"}", 2) != 0)
        return NULL;
    if (!audit_is_mac_hex(m + 8, 64))
        return NULL;
    return m + 8;
}

/* Read the chain state to continue from: the seq and mac of the last line
 * of fd (size bytes).  Returns 0, or -1 after writing why to errs. */
static int audit_read_tail(int fd, off_t size, const char *path,
                           char chain[65], uint64_t *seq, FILE *errs)
{
    size_t want = size > (off_t)AUDIT_LINE_MAX ? AUDIT_LINE_MAX + 1 : (size_t)size;
    char *buf = NULL, *start;
    size_t got = 0, linelen;
    const char *mac;
    json_t *rec = NULL, *jseq;
    json_error_t jerr;
    off_t base;
    int rc = -1;

    if (size == 0) {
        memcpy(chain, audit_zero_chain, 65);
        *seq = 0;
        return 0;
    }
    buf = malloc(want);
    if (buf == NULL) {
        fprintf(errs, "%s: out of memory\n", path);
        return -1;
    }
    base = size - (off_t)want;
    while (got < want) {
        ssize_t r = pread(fd, buf + got, want - got, base + (off_t)got);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            fprintf(errs, "%s: cannot read the last record: %s\n", path,
                    r < 0 ? strerror(errno) : "file shrank");
            goto fail;
        }
        got += (size_t)r;
    }
    if (buf[want - 1] != '\n') {
        char *nl = memrchr(buf, '\n', want);
        off_t keep = nl != NULL ? base + (nl - buf) + 1 : -1;

        if (keep >= 0)
            fprintf(errs, "%s: the last record is truncated (no newline at "
                    "the end: a crash or a full disk cut it short).  Keep a "
                    "copy of the file, then either remove the partial line "
                    "with 'truncate -s %lld %s' or move the file aside to "
                    "start a new chain; see docs/audit.md\n", path,
                    (long long)keep, path);
        else
            fprintf(errs, "%s: the last record is truncated or the file is "
                    "not an audit trail (no newline in its last %zu bytes); "
                    "move it aside to start a new chain\n", path, want);
        goto fail;
    }
    start = want >= 2 ? memrchr(buf, '\n', want - 1) : NULL;
    if (start == NULL && base > 0) {
        fprintf(errs, "%s: the last line is longer than %d bytes: not an "
                "audit trail\n", path, AUDIT_LINE_MAX);
        goto fail;
    }
    start = start != NULL ? start + 1 : buf;
    linelen = (size_t)(buf + want - 1 - start);
    mac = audit_line_mac(start, linelen);
    rec = mac != NULL ? json_loadb(start, linelen, JSON_REJECT_DUPLICATES, &jerr)
                      : NULL;
    jseq = rec != NULL ? json_object_get(rec, "seq") : NULL;
    if (mac == NULL || !json_is_integer(jseq) || json_integer_value(jseq) < 1) {
        fprintf(errs, "%s: the last line is not an audit record (offset "
                "%lld); not continuing a chain from it: move the file aside\n",
                path, (long long)(size - (off_t)linelen - 1));
        goto fail;
    }
    memcpy(chain, mac, 64);
    chain[64] = '\0';
    *seq = (uint64_t)json_integer_value(jseq);
    rc = 0;
fail:
    json_decref(rec);
    free(buf);
    return rc;
}

/* ---- Syslog forwarding ----------------------------------------------------- */

/* Parse "udp:HOST:PORT" or "tcp:HOST:PORT" (numeric host, IPv6 in
 * brackets).  Returns 0, or -1 with a message in err. */
static int audit_syslog_parse(const char *spec, audit_syslog *s, char *err,
                              size_t errlen)
{
    char host[64], port[8];
    const char *p, *colon;
    struct addrinfo hints, *res = NULL;
    size_t hl;
    int gai;

    if (strncmp(spec, "udp:", 4) == 0)
        s->type = SOCK_DGRAM;
    else if (strncmp(spec, "tcp:", 4) == 0)
        s->type = SOCK_STREAM;
    else {
        snprintf(err, errlen, "syslog target must start with udp: or tcp:");
        return -1;
    }
    p = spec + 4;
    if (*p == '[') {
        const char *close = strchr(p, ']');

        if (close == NULL || close[1] != ':') {
            snprintf(err, errlen, "syslog target: IPv6 address needs "
                     "[ADDRESS]:PORT");
            return -1;
        }
        hl = (size_t)(close - p - 1);
        p++;
        colon = close + 1;
    } else {
        colon = strrchr(p, ':');
        if (colon == NULL) {
            snprintf(err, errlen, "syslog target needs HOST:PORT");
            return -1;
        }
        hl = (size_t)(colon - p);
    }
    if (hl == 0 || hl >= sizeof(host) || strlen(colon + 1) == 0 ||
        strlen(colon + 1) >= sizeof(port) ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1)) {
        snprintf(err, errlen, "syslog target needs a numeric address and "
                 "port");
        return -1;
    }
    memcpy(host, p, hl);
    host[hl] = '\0';
    snprintf(port, sizeof(port), "%s", colon + 1);
    memset(&hints, 0, sizeof(hints));
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    hints.ai_socktype = s->type;
    gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0 || res == NULL || res->ai_addrlen > sizeof(s->addr)) {
        snprintf(err, errlen, "syslog target: %s is not a numeric address "
                 "and port (%s)", spec, gai != 0 ? gai_strerror(gai) : "none");
        if (res != NULL)
            freeaddrinfo(res);
        return -1;
    }
    memcpy(&s->addr, res->ai_addr, res->ai_addrlen);
    s->addrlen = (socklen_t)res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static void audit_syslog_close(audit_syslog *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    s->connecting = 0;
}

static void audit_syslog_fail(audit_log *a, const char *what, int err)
{
    audit_syslog *s = &a->sys;

    if (s->backlog_frames > 0)
        atomic_fetch_add(&a->st_sys_drop, s->backlog_frames);
    s->backlog.len = 0;
    s->backlog_sent = 0;
    s->backlog_frames = 0;
    audit_syslog_close(s);
    s->retry_at_ms = audit_now_ms() + AUDIT_SYSLOG_RETRY_MS;
    if (!s->failing)
        log_warn("audit: syslog forwarding failed (%s: %s); records stay in "
                 "the file; retrying every %d s", what, strerror(err),
                 AUDIT_SYSLOG_RETRY_MS / 1000);
    s->failing = 1;
}

/* Make sure there is a socket.  Returns 0 when usable (TCP: maybe still
 * connecting), -1 when not now. */
static int audit_syslog_connect(audit_log *a)
{
    audit_syslog *s = &a->sys;

    if (s->fd >= 0)
        return 0;
    if (audit_now_ms() < s->retry_at_ms)
        return -1;
    s->fd = socket(s->addr.ss_family, s->type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0) {
        audit_syslog_fail(a, "socket", errno);
        return -1;
    }
    if (connect(s->fd, (const struct sockaddr *)&s->addr, s->addrlen) != 0) {
        if (errno != EINPROGRESS) {
            audit_syslog_fail(a, "connect", errno);
            return -1;
        }
        s->connecting = 1;
    }
    return 0;
}

/* TCP: push the backlog out without blocking. */
static void audit_syslog_flush(audit_log *a)
{
    audit_syslog *s = &a->sys;

    if (s->type != SOCK_STREAM || s->backlog_sent >= s->backlog.len)
        return;
    if (audit_syslog_connect(a) != 0)
        return;
    while (s->backlog_sent < s->backlog.len) {
        ssize_t w = send(s->fd, s->backlog.data + s->backlog_sent,
                         s->backlog.len - s->backlog_sent,
                         MSG_NOSIGNAL | MSG_DONTWAIT);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (w < 0) {
            audit_syslog_fail(a, "send", errno);
            return;
        }
        s->connecting = 0;
        s->backlog_sent += (size_t)w;
    }
    atomic_fetch_add(&a->st_sys_sent, s->backlog_frames);
    s->backlog.len = 0;
    s->backlog_sent = 0;
    s->backlog_frames = 0;
    if (s->failing)
        log_info("audit: syslog forwarding works again");
    s->failing = 0;
}

/* Forward one written record (line without its newline). */
static void audit_syslog_send(audit_log *a, const char *line, size_t len,
                              const char *ts)
{
    audit_syslog *s = &a->sys;
    char head[512];
    int pri, hl;

    /* authpriv (10); notice (5) for events, info (6) for exchanges. */
    pri = 10 * 8 + (memmem(line, len, "\"event\":", 8) != NULL ? 5 : 6);
    hl = snprintf(head, sizeof(head), "<%d>1 %s %s transgate %ld audit - ",
                  pri, ts, s->host, s->pid);
    if (hl < 0 || (size_t)hl >= sizeof(head))
        return;
    if (s->type == SOCK_DGRAM) {
        struct iovec iov[2] = {
            { head, (size_t)hl },
            { (void *)(uintptr_t)line, len },
        };
        struct msghdr mh;
        ssize_t w;

        if (audit_syslog_connect(a) != 0) {
            atomic_fetch_add(&a->st_sys_drop, 1);
            return;
        }
        memset(&mh, 0, sizeof(mh));
        mh.msg_iov = iov;
        mh.msg_iovlen = 2;
        do
            w = sendmsg(s->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        while (w < 0 && errno == EINTR);
        if (w < 0) {
            atomic_fetch_add(&a->st_sys_drop, 1);
            /* A full socket buffer or a record too long for a datagram
             * concerns this record only; anything else, the server. */
            if (errno == EMSGSIZE)
                log_warn("audit: a record of %zu bytes is too long for a "
                         "syslog datagram; not forwarded", len);
            else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS)
                audit_syslog_fail(a, "send", errno);
            return;
        }
        atomic_fetch_add(&a->st_sys_sent, 1);
        if (s->failing)
            log_info("audit: syslog forwarding works again");
        s->failing = 0;
        return;
    } else {
        char len_prefix[24];
        int pl = snprintf(len_prefix, sizeof(len_prefix), "%zu ",
                          (size_t)hl + len);

        if (s->backlog.len + (size_t)pl + (size_t)hl + len > AUDIT_SYSLOG_BACKLOG) {
            atomic_fetch_add(&a->st_sys_drop, 1);
            return;
        }
        if (tg_buf_add(&s->backlog, len_prefix, (size_t)pl) != 0 ||
            tg_buf_add(&s->backlog, head, (size_t)hl) != 0 ||
            tg_buf_add(&s->backlog, line, len) != 0) {
            /* A failed append emptied the buffer: count what it held. */
            atomic_fetch_add(&a->st_sys_drop, s->backlog_frames + 1);
            s->backlog_sent = 0;
            s->backlog_frames = 0;
            return;
        }
        s->backlog_frames++;
    }
}

/* ---- Records built as text ------------------------------------------------ */

#define AUDIT_REC_START 1024            /* most records fit: one allocation */

/* Append n bytes, or only count them once the record is too long for a
 * line (the writer then records its size) or memory ran out. */
/* Room for n more bytes at the end of the record, or NULL once it has
 * failed or passed AUDIT_LINE_MAX (want still counts them). */
static char *audit_rec_room(audit_rec *r, size_t n)
{
    char *at;

    r->want += n;
    if (r->failed || r->data == NULL)
        return NULL;
    if (r->want > AUDIT_LINE_MAX) {
        free(r->data);
        r->data = NULL;
        r->len = r->alloc = 0;
        return NULL;
    }
    if (r->len + n + 1 > r->alloc) {
        size_t na = r->alloc;
        char *d;

        while (na < r->len + n + 1)
            na *= 2;
        /* Metadata only, nothing to wipe: realloc may move it. */
        d = realloc(r->data, na);
        if (d == NULL) {
            free(r->data);
            r->data = NULL;
            r->len = r->alloc = 0;
            r->failed = 1;
            return NULL;
        }
        r->data = d;
        r->alloc = na;
    }
    at = r->data + r->len;
    r->len += n;
    return at;
}

static void audit_rec_put(audit_rec *r, const void *p, size_t n)
{
    char *at = audit_rec_room(r, n);

    if (at != NULL)
        memcpy(at, p, n);
}

/* How many leading characters of s need no escaping. */
static size_t audit_plain_len(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    while (*p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
        p++;
    return (size_t)(p - (const unsigned char *)s);
}

static int audit_rec_dump_cb(const char *buf, size_t size, void *data)
{
    audit_rec *r = data;

    audit_rec_put(r, buf, size);
    return r->failed ? -1 : 0;
}

void audit_rec_init(audit_rec *r)
{
    memset(r, 0, sizeof(*r));
    r->data = malloc(AUDIT_REC_START);
    if (r->data == NULL) {
        r->failed = 1;
        return;
    }
    r->alloc = AUDIT_REC_START;
    r->data[0] = '{';
    r->len = r->want = 1;
}

void audit_rec_free(audit_rec *r)
{
    free(r->data);
    memset(r, 0, sizeof(*r));
}

/* The same escaping as Jansson's dump with JSON_ENSURE_ASCII, so a record
 * has one byte form whichever way it was built: \" \\ \b \f \n \r \t,
 * other control characters and everything above 0x7F as \uXXXX (upper-case
 * hex, UTF-16 surrogate pairs beyond the BMP).  A byte that is not valid
 * UTF-8 (never expected: names and rule ids come from validated JSON)
 * becomes \uFFFD rather than breaking the line. */
static void audit_rec_string(audit_rec *r, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t plain = audit_plain_len(s);

    if (s[plain] == '\0') {
        /* Nothing to escape (names, codes, digests): one append. */
        char *at = audit_rec_room(r, plain + 2);

        if (at != NULL) {
            at[0] = '"';
            memcpy(at + 1, s, plain);
            at[plain + 1] = '"';
        }
        return;
    }
    audit_rec_put(r, "\"", 1);
    while (*p != '\0') {
        const unsigned char *run = p;
        char esc[16];
        uint32_t cp;
        size_t need, i;

        while (*p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
            p++;
        if (p > run)
            audit_rec_put(r, run, (size_t)(p - run));
        if (*p == '\0')
            break;
        switch (*p) {
        case '"':  audit_rec_put(r, "\\\"", 2); p++; continue;
        case '\\': audit_rec_put(r, "\\\\", 2); p++; continue;
        case '\b': audit_rec_put(r, "\\b", 2); p++; continue;
        case '\f': audit_rec_put(r, "\\f", 2); p++; continue;
        case '\n': audit_rec_put(r, "\\n", 2); p++; continue;
        case '\r': audit_rec_put(r, "\\r", 2); p++; continue;
        case '\t': audit_rec_put(r, "\\t", 2); p++; continue;
        default:   break;
        }
        if (*p < 0x80) {
            cp = *p;
            need = 0;
        } else if (*p >= 0xC2 && *p <= 0xDF) {
            cp = *p & 0x1F;
            need = 1;
        } else if (*p >= 0xE0 && *p <= 0xEF) {
            cp = *p & 0x0F;
            need = 2;
        } else if (*p >= 0xF0 && *p <= 0xF4) {
            cp = *p & 0x07;
            need = 3;
        } else {
            cp = 0xFFFD;
            need = (size_t)-1;
        }
        for (i = 1; need != (size_t)-1 && i <= need; i++) {
            if ((p[i] & 0xC0) != 0x80) {
                cp = 0xFFFD;
                need = (size_t)-1;
                break;
            }
            cp = cp << 6 | (p[i] & 0x3F);
        }
        if (need != (size_t)-1 &&
            ((need == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
             (need == 3 && (cp < 0x10000 || cp > 0x10FFFF)))) {
            cp = 0xFFFD;
            need = (size_t)-1;
        }
        p += need == (size_t)-1 ? 1 : need + 1;
        if (cp < 0x10000) {
            snprintf(esc, sizeof(esc), "\\u%04X", (unsigned)cp);
        } else {
            cp -= 0x10000;
            snprintf(esc, sizeof(esc), "\\u%04X\\u%04X",
                     (unsigned)(0xD800 | (cp >> 10)),
                     (unsigned)(0xDC00 | (cp & 0x3FF)));
        }
        audit_rec_put(r, esc, strlen(esc));
    }
    audit_rec_put(r, "\"", 1);
}

/* The separator and key before a value. */
static void audit_rec_key(audit_rec *r, const char *key)
{
    size_t klen;
    char *at;

    if (key != NULL && key[klen = audit_plain_len(key)] == '\0') {
        /* The common case in one append: ,"key": */
        at = audit_rec_room(r, (r->comma ? 1 : 0) + klen + 3);
        if (at != NULL) {
            if (r->comma)
                *at++ = ',';
            at[0] = '"';
            memcpy(at + 1, key, klen);
            at[klen + 1] = '"';
            at[klen + 2] = ':';
        }
        r->comma = 1;
        return;
    }
    if (r->comma)
        audit_rec_put(r, ",", 1);
    r->comma = 1;
    if (key != NULL) {
        audit_rec_string(r, key);
        audit_rec_put(r, ":", 1);
    }
}

void audit_rec_str(audit_rec *r, const char *key, const char *val)
{
    audit_rec_key(r, key);
    if (val == NULL)
        audit_rec_put(r, "null", 4);
    else
        audit_rec_string(r, val);
}

void audit_rec_int(audit_rec *r, const char *key, long long v)
{
    char num[24];
    size_t n = audit_lltoa(v, num);

    audit_rec_key(r, key);
    audit_rec_put(r, num, n);
}

void audit_rec_null(audit_rec *r, const char *key)
{
    audit_rec_key(r, key);
    audit_rec_put(r, "null", 4);
}

void audit_rec_bool(audit_rec *r, const char *key, int v)
{
    audit_rec_key(r, key);
    if (v)
        audit_rec_put(r, "true", 4);
    else
        audit_rec_put(r, "false", 5);
}

void audit_rec_open(audit_rec *r, const char *key, char kind)
{
    audit_rec_key(r, key);
    audit_rec_put(r, kind == '[' ? "[" : "{", 1);
    r->comma = 0;
}

void audit_rec_close(audit_rec *r, char kind)
{
    audit_rec_put(r, kind == ']' ? "]" : "}", 1);
    r->comma = 1;
}

/* ---- Formatting ------------------------------------------------------------ */

/* Append to pend (allocated once at open, so this never allocates).
 * Callers keep AUDIT_LINE_MAX bytes of room before formatting a record:
 * running out is a broken invariant, hence abort. */
static void audit_pend_add(audit_log *a, const void *p, size_t n)
{
    if (n > AUDIT_PENDING_CAP - a->pend_len)
        abort();
    memcpy(a->pend + a->pend_len, p, n);
    a->pend_len += n;
}

/* Append one chained line for the entry's record stamped with its time,
 * advancing seq and chain.  Returns 0, or -1 when OpenSSL cannot allocate
 * (nothing appended, chain unchanged: the caller retries later). */
static int audit_format_one(audit_log *a, const audit_entry *e)
{
    char tsbuf[32], head[96], small[80], mac[65];
    unsigned char md[32];
    const char *body = e->body;
    size_t dlen = e->len, hl, start = a->pend_len, outl = 0;

    audit_format_ts(a, &e->ts, tsbuf);
    if (body == NULL && dlen == 0) {
        snprintf(small, sizeof(small), "{\"event\":\"record_unserializable\"}");
        body = small;
        dlen = strlen(small);
    }
    hl = strlen(tsbuf);
    memcpy(head, "{\"ts\":\"", 7);
    memcpy(head + 7, tsbuf, hl);
    memcpy(head + 7 + hl, "\",\"seq\":", 8);
    hl += 15;
    hl += audit_ulltoa((unsigned long long)(a->seq + 1), head + hl);
    /* The line is head + ("," + body without '{' | "}") + ,"mac":"..."} \n */
    if (body == NULL || hl + dlen + AUDIT_MAC_SUFFIX_LEN > AUDIT_LINE_MAX) {
        log_err("audit: a record of %zu bytes exceeds the %d-byte line "
                "limit; writing a record_oversize event in its place", dlen,
                AUDIT_LINE_MAX);
        snprintf(small, sizeof(small),
                 "{\"event\":\"record_oversize\",\"bytes\":%zu}", dlen);
        body = small;
        dlen = strlen(body);
    }
    audit_pend_add(a, head, hl);
    if (dlen > 2) {
        audit_pend_add(a, ",", 1);
        audit_pend_add(a, body + 1, dlen - 1);
    } else {
        audit_pend_add(a, "}", 1);
    }
    if (!EVP_MAC_init(a->chain_ctx, NULL, 0, NULL) ||
        !EVP_MAC_update(a->chain_ctx, (const unsigned char *)a->chain, 64) ||
        !EVP_MAC_update(a->chain_ctx, (const unsigned char *)"\n", 1) ||
        !EVP_MAC_update(a->chain_ctx, (const unsigned char *)a->pend + start,
                        a->pend_len - start) ||
        !EVP_MAC_final(a->chain_ctx, md, &outl, sizeof(md)) || outl != 32) {
        a->pend_len = start;
        return -1;
    }
    audit_hex(md, 32, mac);
    /* Replace the final '}' by ,"mac":"<hex>"} and end the line. */
    a->pend_len--;
    audit_pend_add(a, ",\"mac\":\"", 8);
    audit_pend_add(a, mac, 64);
    audit_pend_add(a, "\"}\n", 3);
    memcpy(a->chain, mac, 65);
    a->seq++;
    atomic_store(&a->st_seq, a->seq);
    return 0;
}

/* Serialise rec (stolen; NULL or a non-object gives an entry for
 * record_unserializable) into e, on the calling thread.  Cannot fail. */
static void audit_entry_from_json(json_t *rec, audit_entry *e)
{
    const size_t flags = JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII;
    audit_rec r;

    e->body = NULL;
    e->len = 0;
    if (json_is_object(rec)) {
        /* The trail's own fields are stamped by the writer, never taken
         * from the caller. */
        json_object_del(rec, "ts");
        json_object_del(rec, "seq");
        json_object_del(rec, "mac");
        audit_rec_init(&r);
        if (!r.failed)
            r.len = r.want = 0; /* json_dump_callback writes the braces */
        if (json_dump_callback(rec, audit_rec_dump_cb, &r, flags) != 0)
            r.failed = 1;
        if (r.failed || (r.data == NULL && r.want <= AUDIT_LINE_MAX)) {
            log_err("audit: a record could not be serialised; writing a "
                    "record_unserializable event in its place");
            audit_rec_free(&r);
        } else {
            e->body = r.data;
            e->len = r.data != NULL ? r.len : r.want;
        }
    }
    json_decref(rec);
}

/* Format a writer-made event (reopen, records_lost).  Returns 0 or -1. */
static int audit_format_event(audit_log *a, json_t *ev)
{
    audit_entry e;
    int rc;

    if (ev == NULL)
        return -1;
    audit_entry_from_json(ev, &e);
    clock_gettime(CLOCK_REALTIME, &e.ts);
    rc = e.body != NULL ? audit_format_one(a, &e) : -1;
    free(e.body);
    return rc;
}

/* ---- The record ring ------------------------------------------------------ */

/* Under mu: n contiguous bytes of the record ring, or NULL when they do
 * not fit.  *span is what they take from the ring: n, plus the end of the
 * ring skipped over when they wrap to its start. */
static char *audit_rb_alloc(audit_log *a, size_t n, size_t *span)
{
    size_t off;

    if (a->rb == NULL || n == 0 || n > a->rb_cap)
        return NULL;
    if (a->rb_used == 0)
        a->rb_head = a->rb_tail = 0;
    if (a->rb_head > a->rb_tail || a->rb_used == 0) {
        if (n <= a->rb_cap - a->rb_head) {
            off = a->rb_head;
            *span = n;
        } else if (n <= a->rb_tail) {
            off = 0;
            *span = a->rb_cap - a->rb_head + n;
        } else {
            return NULL;
        }
    } else if (a->rb_head < a->rb_tail && n <= a->rb_tail - a->rb_head) {
        off = a->rb_head;
        *span = n;
    } else {
        return NULL;    /* head == tail with bytes in use: full */
    }
    a->rb_head = off + n;
    a->rb_used += *span;
    return a->rb + off;
}

/* Under mu: give back what the writer has formatted since it last held
 * the lock. */
static void audit_rb_release(audit_log *a)
{
    if (a->rb_rel_span == 0)
        return;
    a->rb_used -= a->rb_rel_span;
    a->rb_tail = a->rb_rel_tail;
    a->rb_rel_span = 0;
    if (a->rb_used == 0)
        a->rb_head = a->rb_tail = 0;
}

/* ---- Writing ---------------------------------------------------------------- */

static void audit_forward(audit_log *a, size_t from, size_t to)
{
    char ts[32];

    while (a->have_syslog && from < to) {
        const char *line = a->pend + from;
        const char *nl = memchr(line, '\n', to - from);
        size_t len = (size_t)(nl - line);

        /* Every line starts {"ts":"<24 characters>" */
        memcpy(ts, line + 7, 24);
        ts[24] = '\0';
        audit_syslog_send(a, line, len, ts);
        from += len + 1;
    }
    if (a->have_syslog)
        audit_syslog_flush(a);
}

static unsigned long long audit_count_lines(const char *p, size_t n)
{
    unsigned long long c = 0;
    const char *end = p + n;

    while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        c++;
        p++;
    }
    return c;
}

/* Account for pend[from, to) being in the file. */
static void audit_written(audit_log *a, size_t from, size_t to)
{
    atomic_fetch_add(&a->st_written, audit_count_lines(a->pend + from, to - from));
    a->good_off += (off_t)(to - from);
    a->pend_done = to;
    a->dirty = 1;
    audit_forward(a, from, to);
}

/* Write pend[pend_done, pend_len).  Returns 0 when all of it is in the
 * file, or -1 with errno set after keeping the complete lines that made it
 * and truncating a partial one away, so the file always ends at a line. */
static int audit_write_pending(audit_log *a)
{
    size_t start = a->pend_done, off = start, keep;
    const char *nl;
    int err = 0;

    if (a->fd < 0) {
        errno = EBADF;
        return -1;
    }
    if (a->need_truncate) {
        if (ftruncate(a->fd, a->good_off) != 0)
            return -1;
        a->need_truncate = 0;
    }
    while (off < a->pend_len) {
        ssize_t w = write(a->fd, a->pend + off, a->pend_len - off);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            err = w < 0 ? errno : EIO;
            break;
        }
        off += (size_t)w;
    }
    if (err == 0) {
        audit_written(a, start, off);
        return 0;
    }
    nl = off > start ? memrchr(a->pend + start, '\n', off - start) : NULL;
    keep = nl != NULL ? (size_t)(nl - a->pend) + 1 : start;
    if (keep > start)
        audit_written(a, start, keep);
    if (off > keep && ftruncate(a->fd, a->good_off) != 0)
        a->need_truncate = 1;
    errno = err;
    return -1;
}

static int audit_sync(audit_log *a)
{
    if (!a->dirty || a->fd < 0)
        return 0;
    if (fdatasync(a->fd) != 0)
        return -1;
    a->dirty = 0;
    a->last_sync_ms = audit_now_ms();
    return 0;
}

/* fsync the directory holding path, so a new file's name is durable. */
static void audit_sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    int fd;

    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == path)
        snprintf(dir, sizeof(dir), "/");
    else if ((size_t)(slash - path) < sizeof(dir))
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    else
        return;
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

static void audit_set_failing(audit_log *a, const char *what, int err)
{
    size_t held;

    atomic_fetch_add(&a->st_errors, 1);
    atomic_store(&a->st_errno, err);
    a->retry_at_ms = audit_now_ms() + a->retry_ms;
    if (a->retry_ms < AUDIT_RETRY_MAX_MS)
        a->retry_ms = a->retry_ms * 2 > AUDIT_RETRY_MAX_MS ? AUDIT_RETRY_MAX_MS
                                                          : a->retry_ms * 2;
    if (atomic_load(&a->failing))
        return;
    pthread_mutex_lock(&a->mu);
    held = a->count;
    pthread_mutex_unlock(&a->mu);
    held += (a->carry_n - a->carry_off) +
            (size_t)audit_count_lines(a->pend + a->pend_done,
                                      a->pend_len - a->pend_done);
    log_err("audit: cannot %s %s: %s; %zu records held in memory; %s", what,
            a->path, strerror(err), held,
            a->refuse_on_failure
                ? "new requests are refused until it recovers"
                : "requests continue while the queue has room "
                  "(refuse_on_failure is off)");
    atomic_store(&a->failing, 1);
}

static void audit_set_ok(audit_log *a)
{
    a->retry_ms = AUDIT_RETRY_MIN_MS;
    if (!atomic_load(&a->failing))
        return;
    atomic_store(&a->failing, 0);
    atomic_store(&a->st_errno, 0);
    log_info("audit: writing to %s again; the trail is healthy", a->path);
}

/* Open path for appending.  Returns the descriptor or -1 (errno set). */
static int audit_open_file(const char *path, struct stat *st)
{
    int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW |
                        O_NOCTTY, 0600);

    if (fd < 0)
        return -1;
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
        int e = S_ISREG(st->st_mode) ? errno : EINVAL;

        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* SIGUSR1 after logrotate: the old descriptor (its pending records already
 * written) is closed, path opened afresh and a reopen event chained to the
 * last record of the previous file.  Returns 0 or -1 (errno set). */
static int audit_do_reopen(audit_log *a)
{
    struct stat st, old;
    int fd = audit_open_file(a->path, &st);
    json_t *ev;

    if (fd < 0)
        return -1;
    if (a->fd >= 0) {
        if (fstat(a->fd, &old) == 0 &&
            (old.st_dev != st.st_dev || old.st_ino != st.st_ino) &&
            st.st_size > 0)
            log_warn("audit: %s already holds %lld bytes after reopening; "
                     "appending, the chain continues from the previous file",
                     a->path, (long long)st.st_size);
        if (a->fsync_policy != AUDIT_FSYNC_NEVER && a->dirty &&
            fdatasync(a->fd) != 0)
            log_err("audit: fsync of the previous file failed: %s",
                    strerror(errno));
        close(a->fd);
    }
    if (st.st_size == 0)
        audit_sync_dir(a->path);
    a->fd = fd;
    a->good_off = st.st_size;
    a->need_truncate = 0;
    a->dirty = 0;
    ev = json_object();
    if (ev == NULL ||
        json_object_set_new(ev, "event", json_string("reopen")) != 0 ||
        json_object_set_new(ev, "prev_seq", json_integer((json_int_t)a->seq)) != 0 ||
        json_object_set_new(ev, "prev_mac", json_string(a->chain)) != 0) {
        json_decref(ev);
        return 0;   /* no memory: the next record still chains correctly */
    }
    (void)audit_format_event(a, ev);
    return 0;
}

static void audit_abs_time(long long deadline_ms, struct timespec *abs)
{
    abs->tv_sec = (time_t)(deadline_ms / 1000);
    abs->tv_nsec = (long)(deadline_ms % 1000) * 1000000L;
}

/* Everything written and synced (per policy): the ring entries in pend
 * count as processed for audit_flush. */
static void audit_batch_done(audit_log *a)
{
    a->pend_len = a->pend_done = 0;
    if (a->pending_entries > 0) {
        pthread_mutex_lock(&a->mu);
        a->processed += a->pending_entries;
        pthread_cond_broadcast(&a->cv_done);
        pthread_mutex_unlock(&a->mu);
        a->pending_entries = 0;
    }
}

/* Write pend and sync per policy.  Returns 0, or -1 after marking the
 * trail failing. */
static int audit_flush_pend(audit_log *a)
{
    if (a->pend_done < a->pend_len && audit_write_pending(a) != 0) {
        audit_set_failing(a, "write", errno);
        return -1;
    }
    if (a->fsync_policy == AUDIT_FSYNC_ALWAYS && audit_sync(a) != 0) {
        audit_set_failing(a, "fsync", errno);
        return -1;
    }
    audit_batch_done(a);
    return 0;
}

/* Wait for work.  Called and returns with mu held; sets *now. */
static void audit_wait_once(audit_log *a, long long *now);

/* Wait for work.  Called and returns with mu held; sets *now.  Whatever
 * ends the wait, the records then queued are taken: the next record opens
 * a new window. */
static void audit_wait(audit_log *a, long long *now)
{
    audit_wait_once(a, now);
    a->batch_deadline_ms = 0;
}

static void audit_wait_once(audit_log *a, long long *now)
{
    for (;;) {
        long long deadline = -1;
        int work;

        *now = audit_now_ms();
        if (a->stop && a->stop_deadline_ms == 0)
            a->stop_deadline_ms = *now + AUDIT_CLOSE_RETRY_MS;
        /* Work that does not wait for a batch window to end. */
        work = a->carry_n > a->carry_off || a->reopen_req ||
               a->lost_pending > 0 || a->pend_len > 0 ||
               (a->fsync_policy == AUDIT_FSYNC_ALWAYS && a->dirty);
        if (atomic_load(&a->failing)) {
            /* Retrying on a timer; new records do not hurry it. */
            deadline = a->retry_at_ms;
            if (a->stop && a->stop_deadline_ms < deadline)
                deadline = a->stop_deadline_ms;
        } else if (work || a->stop ||
                   (a->count > 0 && (a->batch_ms == 0 || a->flushers > 0 ||
                                     a->count >= a->batch_wake))) {
            return;
        } else {
            if (a->count > 0) {
                /* The batch window: records keep arriving without waking
                 * the writer, which then writes (and syncs) them together.
                 * One wake-up and one sync per window instead of one per
                 * record or two; see docs/audit.md. */
                if (a->batch_deadline_ms == 0)
                    a->batch_deadline_ms = *now + a->batch_ms;
                deadline = a->batch_deadline_ms;
            }
            /* The other timers keep their time during a window. */
            if (a->have_syslog && a->sys.backlog_sent < a->sys.backlog.len &&
                (deadline < 0 || *now + AUDIT_RETRY_MIN_MS < deadline))
                deadline = *now + AUDIT_RETRY_MIN_MS;
            if (a->fsync_policy == AUDIT_FSYNC_INTERVAL && a->dirty) {
                long long d = a->last_sync_ms + a->fsync_interval_ms;

                if (deadline < 0 || d < deadline)
                    deadline = d;
            }
        }
        if (deadline >= 0 && *now >= deadline)
            return;
        /* While failing, records wait for the retry timer; during a
         * batch window, for its end (or a full batch). */
        a->idle = !atomic_load(&a->failing) && a->count == 0;
        if (deadline < 0) {
            pthread_cond_wait(&a->cv_work, &a->mu);
        } else {
            struct timespec abs;

            audit_abs_time(deadline, &abs);
            pthread_cond_timedwait(&a->cv_work, &a->mu, &abs);
        }
        a->idle = 0;
    }
}

/* Writer: the entry is in pend; its text is no longer needed.  Ring bytes
 * are given back at the writer's next turn under the lock. */
static void audit_entry_done(audit_log *a, audit_entry *e)
{
    if (e->rb_span > 0) {
        a->rb_rel_span += e->rb_span;
        a->rb_rel_tail = (size_t)(e->body - a->rb) + e->len;
        e->rb_span = 0;
    } else {
        free(e->body);
    }
    e->body = NULL;
}

/* The writer thread. */
static void *audit_writer(void *arg)
{
    audit_log *a = arg;

    for (;;) {
        unsigned long long lost;
        int stop, reopen, failing;
        size_t formatted = 0;
        long long now;

        pthread_mutex_lock(&a->mu);
        audit_rb_release(a);
        audit_wait(a, &now);
        stop = a->stop;
        reopen = a->reopen_req;
        failing = atomic_load(&a->failing);
        /* Refill the carry array from the ring, in queue order. */
        if (a->carry_off == a->carry_n) {
            a->carry_n = a->carry_off = 0;
            while (a->carry_n < AUDIT_BATCH && a->count > 0) {
                a->carry[a->carry_n++] = a->ring[a->head];
                a->ring[a->head].body = NULL;
                a->head = (a->head + 1) % a->cap;
                a->count--;
            }
            atomic_store(&a->used, a->count + a->reserved);
        }
        pthread_mutex_unlock(&a->mu);

        if (failing && stop && now >= a->stop_deadline_ms)
            break;

        /* 1. Whatever is already chained goes out first, unchanged. */
        if (a->pend_len > 0 ||
            (a->fsync_policy == AUDIT_FSYNC_ALWAYS && a->dirty)) {
            if (audit_flush_pend(a) != 0)
                continue;
            audit_set_ok(a);
        }

        /* 2. Rotation, once the old file has everything chained before. */
        if (reopen) {
            if (audit_do_reopen(a) != 0) {
                audit_set_failing(a, "reopen", errno);
                continue;
            }
            audit_set_ok(a);
            pthread_mutex_lock(&a->mu);
            a->reopen_req = 0;
            pthread_mutex_unlock(&a->mu);
        }

        /* 3. Events lost to a full queue are accounted for in the chain. */
        pthread_mutex_lock(&a->mu);
        lost = a->lost_pending;
        a->lost_pending = 0;
        pthread_mutex_unlock(&a->mu);
        if (lost > 0 &&
            audit_format_event(a, json_pack("{s:s,s:I}", "event", "records_lost",
                                            "count", (json_int_t)lost)) != 0) {
            pthread_mutex_lock(&a->mu);
            a->lost_pending += lost;
            pthread_mutex_unlock(&a->mu);
        }

        /* 4. The queued records, while they fit. */
        while (a->carry_off < a->carry_n &&
               a->pend_len + AUDIT_LINE_MAX <= AUDIT_PENDING_CAP &&
               a->pend_len < AUDIT_BATCH_BYTES) {
            audit_entry *e = &a->carry[a->carry_off];

            if (audit_format_one(a, e) != 0) {
                audit_set_failing(a, "format a record for", ENOMEM);
                break;
            }
            audit_entry_done(a, e);
            a->carry_off++;
            formatted++;
        }
        a->pending_entries += formatted;

        /* 5. Write. */
        if (a->pend_len > 0) {
            if (audit_flush_pend(a) != 0)
                continue;
            audit_set_ok(a);
        }
        if (a->fsync_policy == AUDIT_FSYNC_INTERVAL && a->dirty &&
            audit_now_ms() - a->last_sync_ms >= a->fsync_interval_ms &&
            audit_sync(a) != 0) {
            audit_set_failing(a, "fsync", errno);
            continue;
        }
        if (a->have_syslog)
            audit_syslog_flush(a);

        if (stop) {
            int done;

            pthread_mutex_lock(&a->mu);
            done = a->count == 0 && !a->reopen_req && a->lost_pending == 0;
            pthread_mutex_unlock(&a->mu);
            if (done && a->carry_off == a->carry_n && a->pend_len == 0)
                break;
        }
    }
    return NULL;
}

/* ---- Public interface ------------------------------------------------------ */

static void audit_free(audit_log *a)
{
    if (a == NULL)
        return;
    if (a->ring != NULL)
        for (size_t i = 0; i < a->count; i++)
            if (a->ring[(a->head + i) % a->cap].rb_span == 0)
                free(a->ring[(a->head + i) % a->cap].body);
    if (a->carry != NULL)
        for (size_t i = a->carry_off; i < a->carry_n; i++)
            if (a->carry[i].rb_span == 0)
                free(a->carry[i].body);
    free(a->rb);
    free(a->ring);
    free(a->carry);
    free(a->pend);
    if (a->fd >= 0)
        close(a->fd);
    audit_syslog_close(&a->sys);
    tg_buf_free(&a->sys.backlog);
    EVP_MAC_CTX_free(a->text_tmpl);
    EVP_MAC_CTX_free(a->chain_ctx);
    EVP_MAC_free(a->mac);
    audit_keys_wipe(&a->keys);
    free(a->path);
    pthread_cond_destroy(&a->cv_work);
    pthread_cond_destroy(&a->cv_done);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

audit_log *audit_open(const audit_conf *conf, FILE *errs)
{
    audit_log *a = NULL;
    pthread_condattr_t ca;
    sigset_t all, old;
    struct stat st;
    char err[512];
    int created;

    if (conf == NULL || conf->path == NULL || conf->key_file == NULL) {
        fprintf(errs, "audit: path and key_file are required\n");
        return NULL;
    }
    if (conf->fsync != AUDIT_FSYNC_ALWAYS && conf->fsync != AUDIT_FSYNC_INTERVAL &&
        conf->fsync != AUDIT_FSYNC_NEVER) {
        fprintf(errs, "audit: unknown fsync policy %d\n", (int)conf->fsync);
        return NULL;
    }
    if (conf->queue_size > AUDIT_MAX_QUEUE || conf->fsync_interval_ms < 0 ||
        conf->batch_ms < 0 || conf->batch_ms > AUDIT_MAX_BATCH_MS) {
        fprintf(errs, "audit: queue_size is at most %u records, "
                "fsync_interval_ms not negative and batch_ms 0 to %d\n",
                AUDIT_MAX_QUEUE, AUDIT_MAX_BATCH_MS);
        return NULL;
    }
    a = calloc(1, sizeof(*a));
    if (a == NULL)
        goto oom;
    a->fd = -1;
    a->sys.fd = -1;
    tg_buf_init(&a->sys.backlog, AUDIT_SYSLOG_BACKLOG);
    pthread_mutex_init(&a->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&a->cv_work, &ca);
    pthread_cond_init(&a->cv_done, &ca);
    pthread_condattr_destroy(&ca);
    a->cap = conf->queue_size > 0 ? conf->queue_size : AUDIT_DEFAULT_QUEUE;
    a->refuse_on_failure = conf->refuse_on_failure;
    a->fsync_policy = conf->fsync;
    a->fsync_interval_ms = conf->fsync_interval_ms > 0 ? conf->fsync_interval_ms
                                                       : 1000;
    a->batch_ms = conf->batch_ms;
    /* A batch of AUDIT_BATCH records (or a quarter of the queue) does not
     * wait for the window to end. */
    a->batch_wake = a->cap / 4 < AUDIT_BATCH ? a->cap / 4 : AUDIT_BATCH;
    if (a->batch_wake == 0)
        a->batch_wake = 1;
    a->retry_ms = AUDIT_RETRY_MIN_MS;
    a->path = strdup(conf->path);
    a->ring = calloc(a->cap, sizeof(*a->ring));
    /* About 1 KiB per queued record, at most 4 MiB: the writer empties it
     * every batch_ms; a record that finds no room keeps its allocation. */
    a->rb_cap = a->cap < AUDIT_RB_MAX / 1024 ? a->cap * 1024 : AUDIT_RB_MAX;
    if (a->rb_cap < AUDIT_LINE_MAX)
        a->rb_cap = AUDIT_LINE_MAX;
    a->rb = malloc(a->rb_cap);
    a->carry = calloc(AUDIT_BATCH, sizeof(*a->carry));
    a->pend = malloc(AUDIT_PENDING_CAP);
    a->mac = audit_mac_fetch();
    if (a->path == NULL || a->ring == NULL || a->carry == NULL ||
        a->pend == NULL || a->mac == NULL)
        goto oom;
    if (audit_keys_load(conf->key_file, &a->keys, err, sizeof(err)) != 0) {
        fprintf(errs, "audit: %s\n", err);
        goto fail;
    }
    a->text_tmpl = audit_hmac_keyed(a->mac, a->keys.text);
    a->gen = atomic_fetch_add(&audit_gen_next, 1) + 1;
    a->chain_ctx = audit_hmac_keyed(a->mac, a->keys.chain);
    if (a->text_tmpl == NULL || a->chain_ctx == NULL)
        goto oom;
    if (conf->syslog != NULL) {
        if (audit_syslog_parse(conf->syslog, &a->sys, err, sizeof(err)) != 0) {
            fprintf(errs, "audit: %s\n", err);
            goto fail;
        }
        a->have_syslog = 1;
        a->sys.pid = (long)getpid();
        if (gethostname(a->sys.host, sizeof(a->sys.host) - 1) != 0 ||
            a->sys.host[0] == '\0')
            snprintf(a->sys.host, sizeof(a->sys.host), "-");
        /* RFC 5424 HOSTNAME is PRINTUSASCII without spaces. */
        for (char *h = a->sys.host; *h != '\0'; h++)
            if (*h <= 32 || *h >= 127)
                *h = '-';
    }
    a->fd = audit_open_file(a->path, &st);
    if (a->fd < 0) {
        fprintf(errs, "audit: %s: %s\n", a->path, strerror(errno));
        goto fail;
    }
    created = st.st_size == 0;
    if (audit_read_tail(a->fd, st.st_size, a->path, a->chain, &a->seq, errs) != 0)
        goto fail;
    if (created)
        audit_sync_dir(a->path);
    a->good_off = st.st_size;
    atomic_store(&a->st_seq, a->seq);
    /* The writer takes no signals: SIGUSR1 and friends belong to the main
     * thread, and a file-size limit must give it EFBIG, not SIGXFSZ's
     * default action (the process should also ignore SIGXFSZ). */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    if (pthread_create(&a->thread, NULL, audit_writer, a) != 0) {
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        fprintf(errs, "audit: cannot start the writer thread\n");
        goto fail;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    a->thread_started = 1;
    return a;
oom:
    fprintf(errs, "audit: out of memory\n");
fail:
    audit_free(a);
    return NULL;
}

void audit_close(audit_log *a)
{
    if (a == NULL)
        return;
    if (a->thread_started) {
        pthread_mutex_lock(&a->mu);
        a->stop = 1;
        pthread_cond_signal(&a->cv_work);
        pthread_mutex_unlock(&a->mu);
        pthread_join(a->thread, NULL);
    }
    {
        unsigned long long left = a->pend_len > a->pend_done
            ? audit_count_lines(a->pend + a->pend_done, a->pend_len - a->pend_done)
            : 0;

        left += a->count + (a->carry_n - a->carry_off);
        if (left > 0)
            log_err("audit: closing with %llu records that could not be "
                    "written to %s (%s)", left, a->path,
                    strerror(atomic_load(&a->st_errno)));
    }
    if (a->fd >= 0 && a->fsync_policy != AUDIT_FSYNC_NEVER && a->dirty &&
        fdatasync(a->fd) != 0)
        log_err("audit: fsync of %s failed: %s", a->path, strerror(errno));
    audit_free(a);
}

/* Under mu: whether one more record fits.  A full queue is reported at
 * most every 10 s, with the number of refusals (the caller logs when *warn
 * is set, after unlocking). */
static int audit_room(audit_log *a, unsigned long long *warn)
{
    long long now;

    if (a->count + a->reserved < a->cap)
        return 1;
    a->full_refusals++;
    now = audit_now_ms();
    if (a->full_logged_ms == 0 || now - a->full_logged_ms >= 10000) {
        a->full_logged_ms = now;
        *warn = a->full_refusals;
        a->full_refusals = 0;
    }
    return 0;
}

static void audit_warn_full(const audit_log *a, unsigned long long n)
{
    log_err("audit: the queue of %zu records is full (%s %s): %llu "
            "record%s refused since the last report", a->cap,
            atomic_load(&a->failing) ? "cannot write to" : "writing lags behind on",
            a->path, n, n == 1 ? "" : "s");
}

int audit_reserve(audit_log *a)
{
    unsigned long long warn = 0;
    int rc = -1;

    pthread_mutex_lock(&a->mu);
    if (!(a->refuse_on_failure && atomic_load(&a->failing)) &&
        audit_room(a, &warn)) {
        a->reserved++;
        atomic_store(&a->used, a->count + a->reserved);
        rc = 0;
    }
    pthread_mutex_unlock(&a->mu);
    if (warn)
        audit_warn_full(a, warn);
    return rc;
}

/* Under mu: queue the record text of *in.  It is copied into the record
 * ring when it fits, and *in->body is then the caller's to free (after
 * unlocking: *own_free set); otherwise the queue takes the allocation
 * over.  Returns 1 when the caller must wake the writer, which it does
 * after unlocking: woken under the lock, the writer would only block on it
 * again (two more context switches per record), and a busy writer needs
 * no signal at all. */
static int audit_push(audit_log *a, const audit_entry *in, int *own_free)
{
    int wake = a->idle || a->count + 1 == a->batch_wake;
    audit_entry *e = &a->ring[(a->head + a->count) % a->cap];
    char *copy = in->body != NULL ? audit_rb_alloc(a, in->len, &e->rb_span) : NULL;

    *own_free = copy != NULL;
    if (copy != NULL) {
        memcpy(copy, in->body, in->len);
        e->body = copy;
    } else {
        e->body = in->body;
        e->rb_span = 0;
    }
    e->len = in->len;
    /* Stamped under the lock, so time follows queue (and seq) order. */
    clock_gettime(CLOCK_REALTIME, &e->ts);
    a->count++;
    a->enqueued++;
    atomic_store(&a->used, a->count + a->reserved);
    a->idle = 0;
    return wake;
}

static void audit_commit_entry(audit_log *a, const audit_entry *e)
{
    int wake, own_free;

    pthread_mutex_lock(&a->mu);
    if (a->reserved == 0)
        abort();    /* commit without reserve: a caller bug */
    a->reserved--;
    wake = audit_push(a, e, &own_free);
    pthread_mutex_unlock(&a->mu);
    if (own_free)
        free(e->body);
    if (wake)
        pthread_cond_signal(&a->cv_work);
}

void audit_commit(audit_log *a, json_t *rec)
{
    audit_entry e;

    audit_entry_from_json(rec, &e);
    audit_commit_entry(a, &e);
}

void audit_commit_rec(audit_log *a, audit_rec *r)
{
    audit_entry e;

    audit_rec_put(r, "}", 1);
    e.body = r->failed ? NULL : r->data;
    e.len = r->failed ? 0 : r->data != NULL ? r->len : r->want;
    if (r->failed)
        log_err("audit: no memory to build a record; writing a "
                "record_unserializable event in its place");
    r->data = NULL;
    audit_rec_free(r);
    audit_commit_entry(a, &e);
}

void audit_release(audit_log *a)
{
    pthread_mutex_lock(&a->mu);
    if (a->reserved == 0)
        abort();
    a->reserved--;
    atomic_store(&a->used, a->count + a->reserved);
    pthread_mutex_unlock(&a->mu);
}

int audit_submit(audit_log *a, json_t *rec)
{
    unsigned long long warn = 0;
    audit_entry e;
    int wake, own_free;

    audit_entry_from_json(rec, &e);
    pthread_mutex_lock(&a->mu);
    if (!audit_room(a, &warn)) {
        a->lost_pending++;
        pthread_mutex_unlock(&a->mu);
        if (warn)
            audit_warn_full(a, warn);
        atomic_fetch_add(&a->st_lost, 1);
        free(e.body);
        return -1;
    }
    wake = audit_push(a, &e, &own_free);
    pthread_mutex_unlock(&a->mu);
    if (own_free)
        free(e.body);
    if (wake)
        pthread_cond_signal(&a->cv_work);
    return 0;
}

int audit_healthy(const audit_log *a)
{
    return !atomic_load(&a->failing) && atomic_load(&a->used) < a->cap;
}

void audit_reopen(audit_log *a)
{
    pthread_mutex_lock(&a->mu);
    a->reopen_req = 1;
    pthread_cond_signal(&a->cv_work);
    pthread_mutex_unlock(&a->mu);
}

int audit_flush(audit_log *a, long timeout_ms)
{
    struct timespec abs;
    unsigned long long target;
    int rc = 0;

    audit_abs_time(audit_now_ms() + timeout_ms, &abs);
    pthread_mutex_lock(&a->mu);
    target = a->enqueued;
    a->flushers++;
    pthread_cond_signal(&a->cv_work);
    while (a->processed < target) {
        if (pthread_cond_timedwait(&a->cv_done, &a->mu, &abs) == ETIMEDOUT &&
            a->processed < target) {
            rc = -1;
            break;
        }
    }
    a->flushers--;
    pthread_mutex_unlock(&a->mu);
    return rc;
}

void audit_get_stats(audit_log *a, audit_stats *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&a->mu);
    out->queued = a->count;
    out->reserved = a->reserved;
    pthread_mutex_unlock(&a->mu);
    out->queue_size = a->cap;
    out->written = atomic_load(&a->st_written);
    out->lost = atomic_load(&a->st_lost);
    out->write_errors = atomic_load(&a->st_errors);
    out->syslog_sent = atomic_load(&a->st_sys_sent);
    out->syslog_dropped = atomic_load(&a->st_sys_drop);
    out->last_seq = atomic_load(&a->st_seq);
    out->healthy = audit_healthy(a);
    out->last_errno = atomic_load(&a->st_errno);
}

int audit_check(const audit_conf *conf, FILE *errs)
{
    audit_keys k;
    audit_syslog s;
    char err[512], dir[4096];
    const char *slash;
    struct stat st;
    int rc = 0;

    if (conf->path == NULL || conf->key_file == NULL) {
        fprintf(errs, "audit: path and key_file are required\n");
        return -1;
    }
    if (audit_keys_load(conf->key_file, &k, err, sizeof(err)) != 0) {
        fprintf(errs, "audit: %s\n", err);
        rc = -1;
    }
    audit_keys_wipe(&k);
    memset(&s, 0, sizeof(s));
    if (conf->syslog != NULL &&
        audit_syslog_parse(conf->syslog, &s, err, sizeof(err)) != 0) {
        fprintf(errs, "audit: %s\n", err);
        rc = -1;
    }
    slash = strrchr(conf->path, '/');
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == conf->path)
        snprintf(dir, sizeof(dir), "/");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - conf->path), conf->path);
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(errs, "audit: %s: the trail's directory %s does not exist\n",
                conf->path, dir);
        rc = -1;
    }
    if (lstat(conf->path, &st) == 0 && !S_ISREG(st.st_mode)) {
        fprintf(errs, "audit: %s: not a regular file\n", conf->path);
        rc = -1;
    }
    return rc;
}

int audit_clock_synced(void)
{
    struct timex tx;
    int st;

    memset(&tx, 0, sizeof(tx));
    st = adjtimex(&tx);
    if (st < 0)
        return -1;
    return (st == TIME_ERROR || (tx.status & STA_UNSYNC)) ? 0 : 1;
}
