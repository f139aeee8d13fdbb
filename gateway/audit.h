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
 * fail: the slot is there. */
void audit_commit(audit_log *a, json_t *rec);

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
 * continues from the last record of the previous file.  Cannot fail. */
void audit_reopen(audit_log *a);

/* HMAC-SHA256 (lower-case hex, 64 characters + NUL) of a text under the
 * audit key's text-digest subkey: lets an investigator who holds the key
 * check whether a given document was sent, without storing it.
 * Cannot fail. */
void audit_text_mac(const audit_log *a, const char *text, size_t len,
                    char out[65]);

/* `transgate audit ...` (argv[0] is "audit"): `verify [--key FILE] FILE...`
 * and `mac --key FILE [FILE|-]`.  Returns the exit status. */
int cmd_audit(int argc, char **argv);

#endif
