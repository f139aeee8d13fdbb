/*
 * tls_front: the terminal-facing TLS listener of one worker.
 *
 * Accepts TCP connections, runs non-blocking OpenSSL handshakes, and hands
 * each decrypted stream to libmicrohttpd through one end of a socketpair
 * (MHD_add_connection), relaying bytes both ways with bounded buffers: when
 * one side stops reading, the other side stops being read.
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
#include "worker.h"

#define FRONT_BUF 8192

struct http_req;

typedef struct front_listener {
    ev_handler h;
    worker *w;
    int fd;
    SSL_CTX *ctx;
} front_listener;

typedef struct front_conn {
    ev_handler net_h;
    ev_handler pair_h;
    worker *w;
    struct front_conn *prev, *next;
    int net_fd;
    int pair_fd;                 /* our end; MHD owns the other */
    SSL *ssl;
    int relaying;                /* handshake done, MHD attached */
    uint32_t net_ev, pair_ev;    /* registered interest */
    unsigned rd_wants_write : 1; /* SSL_read asked for writability */
    unsigned wr_wants_read : 1;  /* SSL_write asked for readability */
    unsigned wr_blocked : 1;     /* SSL_write asked for writability */
    unsigned pair_eof : 1;       /* MHD closed its end, all of it read */
    unsigned pair_hup : 1;       /* MHD hung up; pair fd no longer watched */
    tg_timer timer;              /* handshake deadline */
    void **mhd_ctx;              /* MHD's socket context slot pointing at us */
    struct http_req *req;        /* active request, NULL when idle */
    struct sockaddr_storage peer;
    socklen_t peer_len;
    char peer_str[64];           /* "address" without port, for audit/logs */
    int has_cert;                /* a verified terminal certificate was sent */
    char cert_cn[65];            /* its subject CN ("" if none) */
    char cert_sha256[65];        /* its SHA-256 fingerprint, hex */
    unsigned net_rd_blocked : 1; /* SSL_read wanted data: wait for EPOLLIN */
    unsigned pair_rd_blocked : 1;/* the pair was drained: wait for EPOLLIN */
    unsigned pair_wr_blocked : 1;/* the pair is full: wait for EPOLLOUT */
    size_t in_off, in_len;       /* terminal -> MHD plaintext */
    size_t out_off, out_len;     /* MHD -> terminal plaintext */
    /* FRONT_BUF bytes each, allocated while data passes and released when
     * drained, so thousands of connections waiting on a vendor hold none. */
    char *in;
    char *out;
} front_conn;

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

/* Called from MHD's connection notification while MHD_add_connection runs:
 * links the MHD connection to the front connection being added. */
void front_notify_started(worker *w, void **socket_context);

/* Called when MHD closes a connection: unlinks it.  Cannot fail. */
void front_notify_closed(void **socket_context);

#endif
