/*
 * access: who a terminal is and whether it may make this request now.
 *
 * Identity: a gateway-issued API key, a verified certificate (by subject
 * CN), or both; a request must satisfy every check configured for the
 * client it claims to be, including its source networks.  Limits: requests
 * at once, requests per second and characters per UTC day per client,
 * shared by all workers.
 */
#ifndef TG_ACCESS_H
#define TG_ACCESS_H

#include <stddef.h>
#include <sys/socket.h>

#include "runtime.h"

typedef enum access_err {
    ACCESS_OK = 0,
    ACCESS_NO_CREDENTIALS = 1,   /* neither key nor certificate */
    ACCESS_UNKNOWN_KEY = 2,
    ACCESS_UNKNOWN_CERT = 3,     /* a verified certificate no client claims */
    ACCESS_DISABLED = 4,
    ACCESS_KEY_REQUIRED = 5,     /* the client also needs its key */
    ACCESS_CERT_REQUIRED = 6,    /* the client also needs its certificate */
    ACCESS_CERT_MISMATCH = 7,    /* key and certificate name different clients */
    ACCESS_NETWORK = 8,          /* source address outside the client's networks */
    ACCESS_CONCURRENCY = 9,      /* too many requests at once */
    ACCESS_RATE = 10,            /* too many requests per second */
    ACCESS_DAILY_CHARS = 11      /* daily character allowance used up */
} access_err;

/* Fixed description (never request data).  Never NULL. */
const char *access_strerror(access_err e);

/* Stable reason code for responses, diagnostics and the audit trail. */
const char *access_code(access_err e);

/* Specific reason code for the audit trail and diagnostics ("unknown_key",
 * "network_not_allowed", ...): more than a terminal is told. */
const char *access_reason(access_err e);

/* Per-client state shared by the workers. */
typedef struct access_state access_state;

/* Create the shared state for cfg's clients.  Returns NULL when out of
 * memory. */
access_state *access_state_new(const tg_config *cfg);

/* NULL-safe. */
void access_state_free(access_state *st);

/* Decide which client this is.  key (may be NULL) is the value after
 * "DeepL-Auth-Key "; cert_cn is the verified certificate's CN or NULL;
 * peer is the terminal's address.  Returns ACCESS_OK with *client set, or
 * the reason; *client is set whenever a client could be named (for the
 * audit trail), else -1. */
access_err access_identify(const tg_runtime *rt, const char *key, size_t keylen,
                           const char *cert_cn, const struct sockaddr *peer,
                           int *client);

/* Take one request slot for the client: concurrency and rate.  Returns
 * ACCESS_OK (the caller must call access_leave once) or the limit hit. */
access_err access_enter(const tg_runtime *rt, int client);

/* Give the slot back.  Cannot fail. */
void access_leave(const tg_runtime *rt, int client);

/* Count n characters against the client's daily allowance.  Returns
 * ACCESS_OK (counted) or ACCESS_DAILY_CHARS (not counted). */
access_err access_charge(const tg_runtime *rt, int client, size_t n);

/* Characters counted today and the daily limit (0 = unlimited). */
void access_usage(const tg_runtime *rt, int client, unsigned long long *count,
                  unsigned long long *limit);

#endif
