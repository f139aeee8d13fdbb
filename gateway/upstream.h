/*
 * upstream: the vendor leg's HTTP/1.1 client, one per worker, driven by the
 * worker's epoll.  A job is a set of HTTP exchanges with one vendor (see
 * adapter.h), run concurrently over kept-alive TLS connections, with bounded
 * retries and backoff on connection failures, 429 and 5xx.
 *
 * Connections are pooled per worker and upstream (at most max_connections;
 * exchanges beyond it wait for one), opened non-blocking to the addresses
 * resolved at load, optionally through an HTTP CONNECT proxy, and verified
 * with the upstream's TLS context (runtime.h): chain, host name, pins.  A
 * connection opened under one runtime never serves another's requests.
 *
 * A job ends in exactly one way: its completion callback runs once, or the
 * caller cancels it and the callback never runs.
 */
#ifndef TG_UPSTREAM_H
#define TG_UPSTREAM_H

#include <stddef.h>

#include "adapter.h"
#include "runtime.h"
#include "worker.h"

typedef enum upstream_err {
    UPSTREAM_OK = 0,
    UPSTREAM_ERR_NOMEM = 1,
    UPSTREAM_ERR_CONNECT = 2,     /* vendor unreachable (refused, reset, DNS) */
    UPSTREAM_ERR_TLS = 3,         /* handshake or certificate verification failed */
    UPSTREAM_ERR_TIMEOUT = 4,     /* vendor did not answer in time */
    UPSTREAM_ERR_IO = 5,          /* connection broke mid-exchange */
    UPSTREAM_ERR_TOO_LARGE = 6,   /* reply exceeded the cap */
    UPSTREAM_ERR_CERT_EXPIRED = 7,   /* vendor certificate expired or not yet valid */
    UPSTREAM_ERR_CERT_NAME = 8,      /* vendor certificate is for another host */
    UPSTREAM_ERR_CERT_UNTRUSTED = 9, /* vendor chain does not verify (CA, revoked...) */
    UPSTREAM_ERR_PIN = 10,           /* vendor key does not match a configured pin */
    UPSTREAM_ERR_PROTOCOL = 11       /* reply is not well-formed HTTP/1.1 */
} upstream_err;

/* Fixed description.  Never NULL. */
const char *upstream_strerror(upstream_err e);

/* Stable code for responses and metrics, e.g. "vendor_unreachable". */
const char *upstream_code(upstream_err e);

typedef struct upstream_info {
    char address[64];      /* vendor address actually used ("" if none) */
    long last_status;      /* last HTTP status seen, 0 if none */
    int attempts;          /* total attempts over all exchanges */
    double elapsed_ms;     /* from add to completion */
} upstream_info;

/* Completion: err is UPSTREAM_OK when every exchange got an HTTP answer
 * (whatever its status); replies[i] answers exchange i.  All borrowed for
 * the duration of the call. */
typedef void (*upstream_done_fn)(void *arg, upstream_err err,
                                 const adapter_reply *replies, size_t n,
                                 const upstream_info *info);

typedef struct upstream_ctx upstream_ctx;
typedef struct upstream_job upstream_job;

/* Create a worker's client.  Returns NULL on failure. */
upstream_ctx *upstream_init(worker *w);

/* Cancel every job (no callbacks) and free.  NULL-safe. */
void upstream_close(upstream_ctx *u);

/* Start a job of n exchanges against vendor up.  Steals reqs (the array and
 * its contents) in every case.  Returns the job, or NULL when it could not
 * be started (nothing will be called back). */
upstream_job *upstream_add(upstream_ctx *u, const rt_upstream *up,
                           adapter_http *reqs, size_t n, upstream_done_fn fn,
                           void *arg);

/* Abandon a job: transfers stop, buffers are wiped, fn is never called.
 * Cannot fail. */
void upstream_cancel(upstream_ctx *u, upstream_job *job);

/* Number of jobs in progress.  Cannot fail. */
size_t upstream_pending(const upstream_ctx *u);

/* The worker switched runtimes: idle connections of the old one are
 * closed, busy ones close when their exchange ends.  Cannot fail. */
void upstream_runtime_changed(upstream_ctx *u);

/* The vendor contexts' new-session callback (SSL_CTX_sess_set_new_cb):
 * keeps the newest resumable session per worker and upstream. */
int upstream_session_cb(SSL *ssl, SSL_SESSION *sess);

#endif
