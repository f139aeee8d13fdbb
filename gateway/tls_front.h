/*
 * tls_front: the terminal-facing side of one worker: TLS and HTTP/1.1.
 *
 * Accepts TCP connections, runs non-blocking OpenSSL handshakes, reads the
 * decrypted stream straight into the h1 codec (request head, then the body
 * by Content-Length or chunked), hands each request to http, and writes
 * the response http prepares.  One request at a time per connection:
 * nothing more is read from a terminal while its request waits on a vendor
 * or its response is being written, which is the backpressure.
 *
 * The front owns the terminal's lifetime: a terminal that leaves aborts the
 * request it has in progress (http_abort) before the stream is closed.
 */
#ifndef TG_TLS_FRONT_H
#define TG_TLS_FRONT_H

#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "config.h"
#include "h1.h"
#include "worker.h"

/* Decrypted request bytes buffered per connection: one request head at
 * most (H1_MAX_HEAD); bodies pass through to the request's own buffer. */
#define FRONT_BUF 8192

/* Lingering close: at most this long and this many bytes dropped. */
#define FRONT_LINGER_MS 2000
#define FRONT_LINGER_BYTES (1u << 20)

typedef enum front_phase {
    FRONT_HANDSHAKE = 0,
    FRONT_HEAD,          /* waiting for (the rest of) a request head */
    FRONT_BODY,          /* reading the body of c->req */
    FRONT_WAIT,          /* c->req is with http (a vendor); nothing is read */
    FRONT_RESPOND,       /* writing the response; then back to FRONT_HEAD */
    FRONT_LINGER         /* answered and shut down for writing: what the
                          * terminal still sends is read and dropped for a
                          * moment, so that closing does not reset the
                          * connection before it has read the answer */
} front_phase;

struct http_req;

typedef struct front_listener {
    ev_handler h;
    worker *w;
    int fd;
    SSL_CTX *ctx;
} front_listener;

typedef struct front_conn {
    ev_handler net_h;
    worker *w;
    struct front_conn *prev, *next;
    int net_fd;
    SSL *ssl;
    front_phase phase;
    uint32_t net_ev;             /* registered interest */
    unsigned rd_wants_write : 1; /* SSL_read asked for writability */
    unsigned wr_wants_read : 1;  /* SSL_write asked for readability */
    unsigned wr_blocked : 1;     /* SSL_write asked for writability */
    unsigned net_rd_blocked : 1; /* the socket was drained: wait for EPOLLIN */
    unsigned close_after : 1;    /* close once the response is written */
    unsigned in_pump : 1;        /* conn_pump is on the stack */
    unsigned out_static : 1;     /* out points at a constant (100 Continue) */
    unsigned in_idle_seen : 1;   /* EPOLLIN fired while nothing may be read */
    unsigned out_tried : 1;      /* SSL_write has been called on out */
    unsigned answer_lost : 1;    /* no answer could be built (out of memory) */
    tg_timer timer;              /* handshake, then idle deadline */
    uint64_t last_active;        /* monotonic ms of the last progress */
    uint64_t req_start;          /* first byte of the request being read, or 0 */
    size_t lingered;             /* bytes dropped while lingering */
    struct http_req *req;        /* request in progress, NULL between requests */
    struct sockaddr_storage peer;
    socklen_t peer_len;
    char peer_str[64];           /* "address" without port, for audit/logs */
    int has_cert;                /* a verified terminal certificate was sent */
    char cert_cn[65];            /* its subject CN ("" if none) */
    char cert_sha256[65];        /* its SHA-256 fingerprint, hex */
    /* Request framing while phase == FRONT_BODY. */
    int chunked;
    uint64_t body_left;          /* Content-Length bytes still to come */
    h1_chunked ch;
    /* FRONT_BUF bytes, taken from the worker's pool while a request is
     * being read and given back (wiped) when empty, so thousands of
     * connections waiting on a vendor hold none. */
    char *in;
    size_t in_off, in_len;
    /* The response being written (owned unless out_static; wiped). */
    char *out;
    size_t out_off, out_len;
    char *pend;                  /* the answer, queued behind a 100 Continue */
    size_t pend_len;
} front_conn;

/* Check, before the workers open their SO_REUSEPORT listeners, that no
 * other process holds conf's address: the kernel would otherwise let both
 * listen and share the connections between them.  Returns 0, or -1 after
 * logging the address and the reason. */
int front_address_free(const tg_listener_conf *conf);

/* Open one SO_REUSEPORT listener for conf in worker w and start accepting.
 * Returns 0, or -1 after logging the address and the reason. */
int front_listen(worker *w, front_listener *l, const tg_listener_conf *conf,
                 SSL_CTX *ctx);

/* Stop accepting on l (drain).  Cannot fail. */
void front_listener_close(worker *w, front_listener *l);

/* Close a connection now, aborting its request if any.  Cannot fail. */
void front_conn_close(front_conn *c);

/* True when the connection has no request in progress and nothing
 * buffered: it can be closed without losing anything. */
int front_conn_idle(const front_conn *c);

/* Called by http when the response to c->req is ready: the front takes
 * bytes[0..len) (a malloc'd buffer it wipes and frees) and writes it; with
 * close set, the connection ends after it.  bytes NULL: no answer could be
 * made; the connection is closed and the request finished as not
 * delivered.  Cannot fail (on a write error
 * the connection is closed and the request finished as not delivered). */
void front_respond(front_conn *c, char *bytes, size_t len, int close);

#endif
