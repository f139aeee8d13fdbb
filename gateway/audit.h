/*
 * audit: the tamper-evident, content-free audit trail (JSON Lines).
 *
 * One record per exchange plus lifecycle and security events.  Records are
 * built by the caller as Jansson objects holding metadata only (never text,
 * masked values, placeholders, keys or credentials); this module stamps each
 * with its UTC time to the millisecond ("ts"), a monotonic sequence number
 * ("seq") and an HMAC-SHA256 chained over the previous record's MAC and the
 * record itself ("mac"), and writes it from a dedicated thread fed by a
 * bounded queue.
 *
 * Loss-free by reservation: a request reserves its record's queue slot
 * before anything is forwarded (audit_reserve), so the record of a forwarded
 * exchange always has room.  When records cannot be written (disk full, I/O
 * error) the writer keeps them queued and retries; meanwhile the trail is
 * unhealthy and, under the default policy, reservations fail so new requests
 * are refused (503).
 *
 * Thread-safe: every function may be called from any worker thread.
 */
#ifndef TG_AUDIT_H
#define TG_AUDIT_H

#include <stddef.h>
#include <stdio.h>
#include <time.h>

#include <jansson.h>

typedef enum audit_fsync {
    AUDIT_FSYNC_ALWAYS = 0,    /* fsync after every batch written (default) */
    AUDIT_FSYNC_INTERVAL = 1,  /* fsync at most every fsync_interval_ms */
    AUDIT_FSYNC_NEVER = 2      /* leave it to the kernel */
} audit_fsync;

typedef struct audit_conf {
    const char *path;          /* the JSON Lines file (appended to) */
    const char *key_file;      /* secret file: the audit key (>= 32 bytes) */
    audit_fsync fsync;
    long fsync_interval_ms;    /* for AUDIT_FSYNC_INTERVAL, default 1000 */
    long batch_ms;             /* how long the writer gathers records after
                                  the first before writing (and syncing)
                                  them; 0: at once.  The answers never wait
                                  for it. */
    size_t queue_size;         /* records, default 65536 */
    int refuse_on_failure;     /* 1 (default): unhealthy -> reservations fail */
    const char *syslog;        /* NULL, or "udp:HOST:PORT" / "tcp:HOST:PORT"
                                  (numeric host, IPv6 in brackets): each record
                                  is also sent to that log server as an
                                  RFC 5424 message (TCP: octet counting,
                                  RFC 6587) */
} audit_conf;

typedef struct audit_log audit_log;

/* Open (create with mode 0600, or append to) the trail, load the key, find
 * the chain value to continue from (the last record's "mac" in the file; a
 * new file starts from the all-zero chain value) and start the writer
 * thread.  Returns NULL after writing one line per problem to errs (paths
 * and reasons, never key material). */
audit_log *audit_open(const audit_conf *conf, FILE *errs);

/* Write everything queued, stop the writer and free (wiping the key).
 * NULL-safe. */
void audit_close(audit_log *a);

/* Reserve room for one record.  Returns 0, or -1 when the trail is
 * unhealthy and the policy is to refuse, or the queue is full. */
int audit_reserve(audit_log *a);

/* Queue a record into a slot taken by audit_reserve.  Steals rec.  Cannot
 * fail: the slot is there.  (A NULL or non-object rec is written as a
 * record_unserializable event, so the exchange keeps its place; committing
 * without a reservation is a caller bug and aborts.)  The record is
 * serialised on the calling thread; the request path builds its records
 * with audit_rec instead (below), which costs one allocation. */
void audit_commit(audit_log *a, json_t *rec);

/* A record built directly as the text the trail writes: compact JSON, ASCII
 * only (non-ASCII as \uXXXX escapes), fields in the order added -- the very
 * bytes json_dumps gives with JSON_COMPACT | JSON_ENSURE_ASCII |
 * JSON_PRESERVE_ORDER.  The request path uses it because a Jansson object
 * costs some sixty allocations per record on the worker and as many frees
 * on the writer thread (whose frees then contend for the workers' malloc
 * arenas); this costs one.  Metadata only, like every record, so the
 * buffer is not wiped.
 *
 * Usage: audit_rec_init, then audit_rec_str/int/null/open/close for each
 * field (key NULL for the elements of an array), then audit_commit_rec or
 * audit_rec_free.  The functions cannot fail: a record that runs out of
 * memory is committed as a record_unserializable event, one longer than
 * AUDIT_LINE_MAX as a record_oversize event, so the exchange keeps its
 * place in the chain either way.  Never add "ts", "seq" or "mac": the trail
 * stamps those. */
typedef struct audit_rec {
    char *data;         /* "{..." while building; NULL after a failure */
    size_t len, alloc;
    size_t want;        /* bytes the record needs, counted past the cap too */
    int failed;         /* out of memory */
    int comma;          /* a value precedes at the current level */
} audit_rec;

void audit_rec_init(audit_rec *r);
void audit_rec_str(audit_rec *r, const char *key, const char *val); /* NULL: null */
void audit_rec_int(audit_rec *r, const char *key, long long v);
void audit_rec_null(audit_rec *r, const char *key);
void audit_rec_bool(audit_rec *r, const char *key, int v);
void audit_rec_open(audit_rec *r, const char *key, char kind);      /* '{' or '[' */
void audit_rec_close(audit_rec *r, char kind);                      /* '}' or ']' */

/* Discard a record that will not be committed.  Cannot fail. */
void audit_rec_free(audit_rec *r);

/* audit_commit for a record built with audit_rec: closes it and queues its
 * text into the slot taken by audit_reserve.  Takes over r's buffer (r is
 * left empty).  Cannot fail (committing without a reservation aborts, as
 * with audit_commit). */
void audit_commit_rec(audit_log *a, audit_rec *r);

/* Give back an unused reservation.  Cannot fail. */
void audit_release(audit_log *a);

/* Queue a record without a reservation (lifecycle and security events).
 * Steals rec.  Returns 0, or -1 when the queue is full (the record is
 * counted as lost and a "records_lost" event is written once the trail
 * recovers). */
int audit_submit(audit_log *a, json_t *rec);

/* 1 when the last write succeeded and the queue has room, else 0.
 * Cannot fail. */
int audit_healthy(const audit_log *a);

/* Ask the writer to reopen the file (SIGUSR1 after logrotate moved it).
 * The first record in the new file is a "reopen" event whose chain
 * continues from the last record of the previous file.  Cannot fail (if the
 * new file cannot be opened the trail is unhealthy until it can).  Takes a
 * mutex: call it from the thread that sigwait()s, not a signal handler. */
void audit_reopen(audit_log *a);

/* HMAC-SHA256 (lower-case hex, 64 characters + NUL) of a text under the
 * audit key's text-digest subkey: lets an investigator who holds the key
 * check whether a given document was sent, without storing it.
 * Cannot fail. */
void audit_text_mac(const audit_log *a, const char *text, size_t len,
                    char out[65]);

/* `transgate audit ...` (argv[0] is "audit"): `verify [--key FILE] FILE...`,
 * `mac --key FILE [--strip-newline] [FILE|-]` and `keygen FILE`.  Returns
 * the exit status (for verify: AUDIT_VERIFY_*). */
int cmd_audit(int argc, char **argv);

/* ---- Additions (beyond the original contract) ---------------------------
 *
 * Longest record line accepted by the writer and by verify, newline
 * included.  A record that would serialise longer is replaced by a
 * {"event":"record_oversize","bytes":N} record (and a diagnostic), so the
 * sequence stays gap-free. */
#define AUDIT_LINE_MAX 65536

/* The two subkeys derived from the audit key file:
 *   chain = HMAC-SHA256(key, "transgate audit chain v1")
 *   text  = HMAC-SHA256(key, "transgate text digest v1")
 * The key material itself is wiped as soon as they are derived. */
typedef struct audit_keys {
    unsigned char chain[32];
    unsigned char text[32];
} audit_keys;

/* Load the audit key file (permission-checked like every secret file:
 * 64 to 256 hexadecimal digits, i.e. 32 to 128 bytes of key, one optional
 * trailing newline) and derive the subkeys into k.  Returns 0, or -1 with a
 * message (path and reason, never key material) in err; k is wiped on
 * failure. */
int audit_keys_load(const char *path, audit_keys *k, char *err, size_t errlen);

/* Overwrite the subkeys with zeros.  Cannot fail. */
void audit_keys_wipe(audit_keys *k);

/* Create path (which must not exist) holding a new random key: 64 hex
 * digits and a newline, mode 0600.  Returns 0, or -1 with a message in
 * err. */
int audit_keygen(const char *path, char *err, size_t errlen);

/* HMAC-SHA256 of text under k->text, as audit_text_mac.  Returns 0, or -1
 * (out set to "") when OpenSSL cannot allocate. */
int audit_keys_text_mac(const audit_keys *k, const void *text, size_t len,
                        char out[65]);

/* The chain MAC of one record: hex(HMAC-SHA256(k->chain, prev || "\n" ||
 * body)), where prev is the previous record's mac (64 hex digits; 64 '0' at
 * the start of a chain) and body the record's bytes without the mac (see
 * docs/audit.md).  Returns 0, or -1 (out set to "") when OpenSSL cannot
 * allocate. */
int audit_chain_mac(const audit_keys *k, const char prev[65],
                    const char *body, size_t len, char out[65]);

/* Validate a configuration without opening the trail: the key file, the
 * syslog target and that the trail's directory exists.  Returns 0, or -1
 * after writing one line per problem to errs.  For `transgate check`. */
int audit_check(const audit_conf *conf, FILE *errs);

/* Wait until every record queued before the call has been written (and
 * synced, under AUDIT_FSYNC_ALWAYS), for at most timeout_ms.  Returns 0,
 * or -1 on timeout (records stay queued; nothing is lost). */
int audit_flush(audit_log *a, long timeout_ms);

typedef struct audit_stats {
    unsigned long long written;        /* records written to the file */
    unsigned long long lost;           /* events refused by audit_submit */
    unsigned long long write_errors;   /* failed write, fsync or open attempts */
    unsigned long long syslog_sent;    /* records handed to the log server */
    unsigned long long syslog_dropped; /* records not delivered to it */
    unsigned long long last_seq;       /* seq of the last record formatted */
    size_t queued;                     /* records waiting in the queue */
    size_t reserved;                   /* slots reserved, not yet committed */
    size_t queue_size;
    int healthy;                       /* as audit_healthy */
    int last_errno;                    /* errno of the last failure, or 0 */
} audit_stats;

/* A consistent snapshot of the counters (for /metrics and /readyz).
 * Cannot fail. */
void audit_get_stats(audit_log *a, audit_stats *out);

/* ts as the trail writes it: RFC 3339 UTC with milliseconds,
 * "2026-11-22T08:30:01.123Z".  Cannot fail. */
void audit_format_time(const struct timespec *ts, char out[32]);

/* Whether the kernel considers the system clock synchronised (LOG-5):
 * 1 yes, 0 no (STA_UNSYNC), -1 unknown.  For the "start" event.
 * Cannot fail. */
int audit_clock_synced(void);

/* Exit statuses of `transgate audit verify` and audit_verify_files. */
enum {
    AUDIT_VERIFY_INTACT = 0,     /* every record and link checked */
    AUDIT_VERIFY_BROKEN = 1,     /* a record is edited, missing, reordered,
                                    truncated or malformed */
    AUDIT_VERIFY_ERROR = 2,      /* usage, unreadable file or key */
    AUDIT_VERIFY_PARTIAL = 3     /* no problem found, but not everything
                                    could be checked: no key, or the first
                                    record's predecessor is not given */
};

/* Verify the chain across files (oldest first) with keys (NULL: structure
 * and sequence only).  Writes the first problem, or a summary, to out.
 * Returns an AUDIT_VERIFY_* status. */
int audit_verify_files(const char *const *paths, size_t n,
                       const audit_keys *keys, FILE *out);

#endif
