#include "upstream.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "h1.h"
#include "log.h"
#include "tg_buf.h"

/* A vendor reply larger than this is refused; translations are at most a
 * few times their source and requests are capped by max_body_bytes. */
#define REPLY_CAP_MIN (1u << 20)
/* A reply's status line and headers, and a proxy's answer to CONNECT. */
#define HEAD_CAP (64u << 10)
/* A kept-alive connection idle for longer is closed rather than reused: a
 * vendor or middlebox may drop it silently at about a minute. */
#define IDLE_REUSE_MS 50000
#define READ_CHUNK 16384

enum conn_state {
    C_CONNECT,      /* TCP connect in progress */
    C_PROXY_SEND,   /* sending CONNECT to the proxy */
    C_PROXY_RECV,   /* reading the proxy's answer */
    C_HANDSHAKE,    /* TLS handshake */
    C_IDLE,         /* kept alive, waiting for an exchange */
    C_SEND,         /* writing a request */
    C_RECV          /* reading its reply */
};

/* Reply parser states. */
enum {
    P_HEAD, P_BODY_LEN, P_BODY_EOF, P_CHUNKED, P_DONE
};

/* Outcomes of feeding reply bytes. */
enum { FEED_MORE, FEED_DONE, FEED_EXTRA, FEED_BAD, FEED_TOO_LARGE };

struct pool;
struct conn;

struct transfer {
    upstream_job *job;
    adapter_http req;
    tg_buf resp;
    long status;
    int attempts;
    int done;
    int sent;                  /* this attempt's request began to go out */
    struct conn *conn;         /* connecting for it, or carrying it */
    int queued;                /* waiting for a connection of its pool */
    struct transfer *qprev, *qnext;
    tg_timer retry;            /* backoff before the next attempt */
    tg_timer deadline;         /* timeout_ms of this attempt */
};

struct upstream_job {
    upstream_ctx *u;
    const rt_upstream *up;
    struct pool *pool;
    struct transfer *t;
    size_t n;
    size_t n_done;
    upstream_done_fn fn;
    void *arg;
    uint64_t t0;
    upstream_info info;
    int finishing;             /* outcome decided, callback pending */
    upstream_err result;
    upstream_job *done_next;   /* upstream_ctx.done list */
    upstream_job *prev, *next;
};

struct conn {
    ev_handler h;
    struct pool *pool;
    struct conn *prev, *next;      /* the pool's idle list */
    struct conn *aprev, *anext;    /* every connection of the worker */
    struct transfer *t;            /* the exchange it carries or connects for */
    int fd;
    SSL *ssl;
    enum conn_state st;
    uint32_t ev;                   /* epoll interest */
    size_t ai;                     /* address in use (rt_upstream.addrs) */
    size_t first_ai, tried;        /* addresses are tried from first_ai on */
    uint64_t connect_deadline;     /* connect_timeout_ms, all addresses */
    unsigned served;               /* exchanges completed */
    uint64_t idle_since;
    tg_timer connect_timer;
    tg_buf out;                    /* request (holds the vendor key) or CONNECT */
    size_t out_off;
    /* reply */
    int ps;
    tg_buf head;
    h1_chunked chunk;              /* chunked reply body */
    uint64_t remain;
    int close_after;
    int got_bytes;
    int interim;                   /* 1xx answers before this reply */
};

struct pool {
    upstream_ctx *u;
    const rt_upstream *up;
    uint64_t gen;
    struct pool *next;
    struct conn *idle;             /* most recently used first */
    size_t n_conns;                /* open, in any state */
    size_t n_jobs;                 /* jobs using the pool */
    size_t good_ai;                /* address of the last handshake */
    int kicking;                   /* inside pool_kick */
    struct transfer *qhead, *qtail;
    SSL_SESSION *session;          /* newest resumable session */
};

struct upstream_ctx {
    worker *w;
    struct pool *pools;
    struct conn *conns;
    upstream_job *jobs;
    size_t n_jobs;
    int closing;                   /* upstream_close: open nothing new */
    /* Jobs whose outcome is decided: their callbacks run from done_timer,
     * never from inside this file's own calls (a callback may cancel or
     * start jobs, and the runtime an upstream belongs to may go with it). */
    upstream_job *done_head, *done_tail;
    tg_timer done_timer;
};

const char *upstream_strerror(upstream_err e)
{
    switch (e) {
    case UPSTREAM_OK: return "no error";
    case UPSTREAM_ERR_NOMEM: return "out of memory";
    case UPSTREAM_ERR_CONNECT: return "translation service unreachable";
    case UPSTREAM_ERR_TLS: return "TLS with the translation service failed";
    case UPSTREAM_ERR_TIMEOUT: return "translation service timed out";
    case UPSTREAM_ERR_IO: return "connection to the translation service broke";
    case UPSTREAM_ERR_TOO_LARGE: return "translation service reply too large";
    case UPSTREAM_ERR_CERT_EXPIRED: return "the translation service's certificate has expired";
    case UPSTREAM_ERR_CERT_NAME: return "the translation service's certificate is for another host";
    case UPSTREAM_ERR_CERT_UNTRUSTED: return "the translation service's certificate is not trusted";
    case UPSTREAM_ERR_PIN: return "the translation service's key does not match the configured pin";
    case UPSTREAM_ERR_PROTOCOL: return "the translation service's reply is not valid HTTP";
    }
    return "unknown error";
}

const char *upstream_code(upstream_err e)
{
    switch (e) {
    case UPSTREAM_OK: return "ok";
    case UPSTREAM_ERR_NOMEM: return "internal_error";
    case UPSTREAM_ERR_CONNECT: return "vendor_unreachable";
    case UPSTREAM_ERR_TLS: return "vendor_tls_failed";
    case UPSTREAM_ERR_TIMEOUT: return "vendor_timeout";
    case UPSTREAM_ERR_IO: return "vendor_connection_broken";
    case UPSTREAM_ERR_TOO_LARGE: return "vendor_reply_too_large";
    case UPSTREAM_ERR_CERT_EXPIRED: return "vendor_cert_expired";
    case UPSTREAM_ERR_CERT_NAME: return "vendor_cert_name_mismatch";
    case UPSTREAM_ERR_CERT_UNTRUSTED: return "vendor_cert_untrusted";
    case UPSTREAM_ERR_PIN: return "vendor_pin_mismatch";
    case UPSTREAM_ERR_PROTOCOL: return "vendor_bad_reply";
    }
    return "internal_error";
}

static void conn_begin(struct conn *c);
static void conn_send(struct conn *c);
static void conn_recv(struct conn *c);
static void conn_handshake(struct conn *c);
static void conn_proxy(struct conn *c);
static int conn_try_address(struct conn *c, char *why, size_t whylen);
static void pool_get(struct pool *p, struct transfer *t);
static void pool_kick(struct pool *p);
static void transfer_failed(struct transfer *t, upstream_err err, int retry,
                            const char *why);
static void transfer_answered(struct transfer *t);

/* ------------------------------------------------------------------ */
/* Connections                                                          */

static void conn_watch(struct conn *c, uint32_t ev)
{
    if (ev != c->ev && worker_rewatch(c->pool->u->w, c->fd, ev, &c->h) == 0)
        c->ev = ev;
}

/* Close c and free it after the current batch.  Its transfer, if any, must
 * have been detached.  Does not hand the free slot to a waiter. */
static void conn_close(struct conn *c)
{
    struct pool *p = c->pool;
    upstream_ctx *u = p->u;

    if (c->st == C_IDLE) {
        if (c->prev != NULL)
            c->prev->next = c->next;
        else
            p->idle = c->next;
        if (c->next != NULL)
            c->next->prev = c->prev;
    }
    if (c->aprev != NULL)
        c->aprev->anext = c->anext;
    else
        u->conns = c->anext;
    if (c->anext != NULL)
        c->anext->aprev = c->aprev;
    timer_cancel(&u->w->timers, &c->connect_timer);
    if (c->t != NULL)
        c->t->conn = NULL;
    if (c->ssl != NULL) {
        SSL_set_app_data(c->ssl, NULL);
        SSL_free(c->ssl);
    }
    if (c->fd >= 0) {
        worker_unwatch(u->w, c->fd);
        close(c->fd);
    }
    tg_buf_free(&c->out);
    tg_buf_free(&c->head);
    p->n_conns--;
    c->h.dead = 1;
    worker_bury(u->w, c);
}

/* Detach c's transfer, close c, let a waiter have the slot, and fail the
 * transfer's attempt. */
static void conn_fail(struct conn *c, upstream_err err, int retry, const char *why)
{
    struct transfer *t = c->t;
    struct pool *p = c->pool;

    if (t != NULL) {
        t->conn = NULL;
        c->t = NULL;
    }
    conn_close(c);
    pool_kick(p);
    if (t != NULL)
        transfer_failed(t, err, retry, why);
}

/* The connection can carry an exchange: give it to its transfer, a waiter,
 * or the idle list. */
static void conn_release(struct conn *c)
{
    struct pool *p = c->pool;
    struct transfer *t;

    if (c->t != NULL) {
        conn_begin(c);
        return;
    }
    /* Bytes already buffered after a complete reply can only be a lying
     * vendor's: whatever they are, they must not answer the next request. */
    if (p->gen != p->u->w->rt->gen || SSL_has_pending(c->ssl)) {
        conn_close(c);
        pool_kick(p);
        return;
    }
    t = p->qhead;
    if (t != NULL) {
        p->qhead = t->qnext;
        if (p->qhead != NULL)
            p->qhead->qprev = NULL;
        else
            p->qtail = NULL;
        t->queued = 0;
        t->qprev = t->qnext = NULL;
        c->t = t;
        t->conn = c;
        conn_begin(c);
        return;
    }
    if (p->u->w->state != WORKER_RUNNING) {
        conn_close(c);
        return;
    }
    c->st = C_IDLE;
    c->idle_since = tg_now_ms();
    c->prev = NULL;
    c->next = p->idle;
    if (p->idle != NULL)
        p->idle->prev = c;
    p->idle = c;
    conn_watch(c, EPOLLIN | EPOLLRDHUP);
}

static void on_connect_timeout(tg_timer *tm, void *arg)
{
    struct conn *c = arg;
    char why[160];

    (void)tm;
    snprintf(why, sizeof(why), "no connection to %s within connect_timeout_ms",
             c->pool->up->addrs[c->ai].text);
    if (c->st == C_CONNECT && c->tried + 1 < c->pool->up->n_addrs) {
        /* This address used its share of the time: on to the next. */
        worker_unwatch(c->pool->u->w, c->fd);
        close(c->fd);
        c->fd = -1;
        c->tried++;
        if (conn_try_address(c, why, sizeof(why)) == 0)
            return;
    }
    conn_fail(c, UPSTREAM_ERR_CONNECT, 1, why);
}

/* Open a connection for t (which must not be queued).  Returns 0 (in
 * progress; t hears back), or -1 with nothing left open and why set. */
static int conn_open(struct pool *p, struct transfer *t, char *why, size_t whylen)
{
    upstream_ctx *u = p->u;
    struct conn *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    c->h.fn = NULL;
    c->pool = p;
    c->fd = -1;
    c->st = C_CONNECT;
    timer_init(&c->connect_timer, on_connect_timeout, c);
    tg_buf_init(&c->head, HEAD_CAP + READ_CHUNK);
    tg_buf_init(&c->out, HEAD_CAP);
    c->anext = u->conns;
    if (u->conns != NULL)
        u->conns->aprev = c;
    u->conns = c;
    p->n_conns++;
    c->t = t;
    t->conn = c;
    c->connect_deadline = tg_now_ms() + (uint64_t)p->up->conf->connect_timeout_ms;
    c->first_ai = p->good_ai < p->up->n_addrs ? p->good_ai : 0;
    if (conn_try_address(c, why, whylen) != 0) {
        c->t = NULL;
        t->conn = NULL;
        conn_close(c);
        return -1;
    }
    return 0;
}

static void conn_tls_start(struct conn *c)
{
    const rt_upstream *up = c->pool->up;
    const char *host = up->conf->scheme_host;
    int ok;

    c->ssl = SSL_new(up->ssl_ctx);
    if (c->ssl == NULL) {
        conn_fail(c, UPSTREAM_ERR_NOMEM, 0, "no TLS session");
        return;
    }
    SSL_set_app_data(c->ssl, c);
    ok = SSL_set_fd(c->ssl, c->fd);
    if (up->host_is_ip) {
        ok = ok && X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), host) == 1;
    } else {
        /* The macro casts its argument to void *; OpenSSL copies it. */
        char *sni = (char *)(uintptr_t)host;
        SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = ok && SSL_set_tlsext_host_name(c->ssl, sni) == 1 &&
             SSL_set1_host(c->ssl, host) == 1;
    }
    if (!ok) {
        ERR_clear_error();
        conn_fail(c, UPSTREAM_ERR_TLS, 0, "cannot set up TLS for the host");
        return;
    }
    if (c->pool->session != NULL)
        SSL_set_session(c->ssl, c->pool->session);
    SSL_set_connect_state(c->ssl);
    c->st = C_HANDSHAKE;
    conn_handshake(c);
}

/* Connected to the vendor or the proxy. */
static void conn_connected(struct conn *c)
{
    const rt_upstream *up = c->pool->up;

    /* Proxy and handshake get what is left of connect_timeout_ms. */
    if (timer_arm(&c->pool->u->w->timers, &c->connect_timer, c->connect_deadline) != 0) {
        conn_fail(c, UPSTREAM_ERR_NOMEM, 0, "out of memory");
        return;
    }

    if (c->t != NULL)
        snprintf(c->t->job->info.address, sizeof(c->t->job->info.address), "%s",
                 up->addrs[c->ai].text);
    if (up->conf->proxy == NULL) {
        conn_tls_start(c);
        return;
    }
    /* The proxy learns only the vendor's name and port; everything after
     * its answer is TLS end to end. */
    if (tg_buf_printf(&c->out, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n",
                      up->authority, up->authority) != 0) {
        conn_fail(c, UPSTREAM_ERR_NOMEM, 0, "out of memory");
        return;
    }
    c->out_off = 0;
    c->st = C_PROXY_SEND;
    conn_proxy(c);
}

static void on_conn(ev_handler *h, uint32_t events);

/* Start connecting to the next address not tried yet (from the one that
 * last worked, round the list), giving it an equal share of the connect
 * time left.  Returns 0 (connecting), or -1 with why set when no address
 * is left or none accepted a socket. */
static int conn_try_address(struct conn *c, char *why, size_t whylen)
{
    const rt_upstream *up = c->pool->up;
    worker *w = c->pool->u->w;
    int one = 1;

    for (; c->tried < up->n_addrs; c->tried++) {
        const rt_addr *a;
        uint64_t now = tg_now_ms(), share;
        int fd;
        c->ai = (c->first_ai + c->tried) % up->n_addrs;
        a = &up->addrs[c->ai];
        if (now >= c->connect_deadline) {
            snprintf(why, whylen, "no connection within connect_timeout_ms");
            return -1;
        }
        share = (c->connect_deadline - now) / (up->n_addrs - c->tried);
        if (timer_arm(&w->timers, &c->connect_timer, now + (share ? share : 1)) != 0) {
            snprintf(why, whylen, "out of memory");
            return -1;
        }
        fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            snprintf(why, whylen, "socket: %s", strerror(errno));
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
        if (connect(fd, (const struct sockaddr *)&a->sa, a->len) != 0 &&
            errno != EINPROGRESS) {
            snprintf(why, whylen, "connect to %s: %s", a->text, strerror(errno));
            close(fd);
            continue;
        }
        c->h.fn = on_conn;
        c->h.dead = 0;
        c->fd = fd;
        c->ev = EPOLLOUT;
        if (worker_watch(w, fd, EPOLLOUT, &c->h) != 0) {
            snprintf(why, whylen, "cannot watch the connection");
            close(fd);
            c->fd = -1;
            return -1;
        }
        c->st = C_CONNECT;
        return 0;
    }
    return -1;
}

static void conn_connect_event(struct conn *c)
{
    char why[160];
    int err = 0;
    socklen_t len = sizeof(err);

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err == 0) {
        conn_connected(c);
        return;
    }
    snprintf(why, sizeof(why), "connect to %s: %s", c->pool->up->addrs[c->ai].text,
             strerror(err));
    worker_unwatch(c->pool->u->w, c->fd);
    close(c->fd);
    c->fd = -1;
    c->tried++;
    if (conn_try_address(c, why, sizeof(why)) != 0)
        conn_fail(c, UPSTREAM_ERR_CONNECT, 1, why);
}

/* "HTTP/1.x NNN ..." at s: the status, or -1.  *minor gets x. */
static int status_line(const char *s, size_t len, int *minor)
{
    if (len < 12 || memcmp(s, "HTTP/1.", 7) != 0 || (s[7] != '0' && s[7] != '1') ||
        s[8] != ' ' || s[9] < '1' || s[9] > '5' || s[10] < '0' || s[10] > '9' ||
        s[11] < '0' || s[11] > '9' || (len > 12 && s[12] != ' ' && s[12] != '\r' &&
                                       s[12] != '\n'))
        return -1;
    *minor = s[7] - '0';
    return (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
}

static void conn_proxy(struct conn *c)
{
    if (c->st == C_PROXY_SEND) {
        while (c->out_off < c->out.len) {
            ssize_t n = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off,
                             MSG_NOSIGNAL);
            if (n < 0 && errno == EAGAIN) {
                conn_watch(c, EPOLLOUT);
                return;
            }
            if (n <= 0) {
                char why[96];
                snprintf(why, sizeof(why), "proxy: %s", strerror(errno));
                conn_fail(c, UPSTREAM_ERR_CONNECT, 1, why);
                return;
            }
            c->out_off += (size_t)n;
        }
        tg_buf_free(&c->out);
        c->st = C_PROXY_RECV;
        conn_watch(c, EPOLLIN);
        return;
    }
    for (;;) {
        char buf[1024];
        size_t room = HEAD_CAP - c->head.len, end;
        ssize_t n = recv(c->fd, buf, room < sizeof(buf) ? room : sizeof(buf), 0);
        int minor, st;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            conn_fail(c, UPSTREAM_ERR_CONNECT, 1, n == 0 ? "proxy closed the connection"
                                                       : "proxy connection broke");
            return;
        }
        if (tg_buf_add(&c->head, buf, (size_t)n) != 0) {
            conn_fail(c, UPSTREAM_ERR_CONNECT, 0, "proxy answer too large");
            return;
        }
        end = h1_head_length(c->head.data, c->head.len);
        if (end == 0) {
            if (c->head.len >= HEAD_CAP) {
                conn_fail(c, UPSTREAM_ERR_CONNECT, 0, "proxy answer too large");
                return;
            }
            continue;
        }
        st = status_line(c->head.data, c->head.len, &minor);
        if (st < 200 || st > 299 || end != c->head.len) {
            char why[96];
            snprintf(why, sizeof(why), st < 0 ? "proxy answer is not HTTP"
                     : end != c->head.len ? "proxy sent data after its answer"
                     : "proxy refused the tunnel with status %d", st);
            conn_fail(c, UPSTREAM_ERR_CONNECT, st >= 500, why);
            return;
        }
        tg_buf_free(&c->head);
        conn_tls_start(c);
        return;
    }
}

/* sha256//<base64> of the peer's public key is one of the pins. */
static int pin_matches(const struct conn *c)
{
    const tg_upstream_conf *conf = c->pool->up->conf;
    X509 *peer = SSL_get0_peer_certificate(c->ssl);
    unsigned char *der = NULL, md[SHA256_DIGEST_LENGTH];
    char b64[64];
    int len, ok = 0;

    if (peer == NULL)
        return 0;
    len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(peer), &der);
    if (len <= 0)
        return 0;
    SHA256(der, (size_t)len, md);
    OPENSSL_free(der);
    EVP_EncodeBlock((unsigned char *)b64, md, sizeof(md));
    for (size_t i = 0; i < conf->n_pins && !ok; i++)
        ok = strncmp(conf->pins[i], "sha256//", 8) == 0 &&
             strcmp(conf->pins[i] + 8, b64) == 0;
    return ok;
}

/* The error class of a handshake that failed with SSL_get_error() e.
 * The peer resetting or closing the connection in the middle of it,
 * without a TLS alert and before any certificate check failed, is a
 * transport failure (an overloaded vendor, a balancer dropping
 * connections): UPSTREAM_ERR_CONNECT, retried like a refused connect.  An
 * alert or a failed check is the vendor's TLS itself, and is not. */
static upstream_err handshake_err(const struct conn *c, int e, long *vr)
{
    unsigned long le = ERR_peek_error();

    *vr = SSL_get_verify_result(c->ssl);
    switch (*vr) {
    case X509_V_OK:
        if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN ||
            (e == SSL_ERROR_SSL && ERR_GET_LIB(le) == ERR_LIB_SSL &&
             ERR_GET_REASON(le) == SSL_R_UNEXPECTED_EOF_WHILE_READING))
            return UPSTREAM_ERR_CONNECT;
        return UPSTREAM_ERR_TLS;
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return UPSTREAM_ERR_CERT_EXPIRED;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        return UPSTREAM_ERR_CERT_NAME;
    default:
        return UPSTREAM_ERR_CERT_UNTRUSTED;
    }
}

static void conn_handshake(struct conn *c)
{
    int r, e;

    ERR_clear_error();
    r = SSL_connect(c->ssl);
    if (r == 1) {
        if (c->pool->up->conf->n_pins > 0 && !pin_matches(c)) {
            conn_fail(c, UPSTREAM_ERR_PIN, 0, "public key pin");
            return;
        }
        timer_cancel(&c->pool->u->w->timers, &c->connect_timer);
        c->pool->good_ai = c->ai;
        conn_release(c);
        return;
    }
    e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        conn_watch(c, EPOLLIN);
    } else if (e == SSL_ERROR_WANT_WRITE) {
        conn_watch(c, EPOLLOUT);
    } else {
        char why[96];
        long vr;
        upstream_err err = handshake_err(c, e, &vr);

        ERR_clear_error();
        if (err == UPSTREAM_ERR_CONNECT)
            snprintf(why, sizeof(why), "connection closed during the TLS handshake");
        else
            snprintf(why, sizeof(why), "handshake; certificate check %ld", vr);
        conn_fail(c, err, err == UPSTREAM_ERR_CONNECT, why);
    }
}

/* Build the request of c's transfer and start sending it. */
static void conn_begin(struct conn *c)
{
    struct transfer *t = c->t;
    const rt_upstream *up = c->pool->up;
    const adapter_http *q = &t->req;
    int bad;

    t->sent = 1;
    snprintf(t->job->info.address, sizeof(t->job->info.address), "%s",
             up->addrs[c->ai].text);
    tg_buf_free(&c->out);
    tg_buf_init(&c->out, q->body.len + HEAD_CAP);
    /* Nothing from the terminal's request (addresses, agents, cookies) is
     * forwarded: only these headers and the adapter's. */
    /* q->path already starts with the upstream's base path (adapter.c). */
    bad = tg_buf_printf(&c->out, "%s %s HTTP/1.1\r\nHost: %s\r\n"
                        "Accept: application/json\r\n",
                        q->content_type != NULL ? "POST" : "GET", q->path,
                        up->host_header) != 0;
    for (size_t i = 0; !bad && i < q->n_headers; i++)
        bad = tg_buf_adds(&c->out, q->headers[i]) != 0 || tg_buf_add(&c->out, "\r\n", 2) != 0;
    if (!bad && q->content_type != NULL)
        bad = tg_buf_printf(&c->out, "Content-Type: %s\r\nContent-Length: %zu\r\n",
                            q->content_type, q->body.len) != 0;
    if (!bad)
        bad = tg_buf_add(&c->out, "\r\n", 2) != 0;
    if (!bad && q->body.len > 0)
        bad = tg_buf_add(&c->out, q->body.data, q->body.len) != 0;
    if (bad) {
        conn_fail(c, UPSTREAM_ERR_NOMEM, 0, "request too large");
        return;
    }
    c->out_off = 0;
    c->ps = P_HEAD;
    c->close_after = 0;
    c->got_bytes = 0;
    c->remain = 0;
    c->interim = 0;
    tg_buf_free(&c->head);
    c->st = C_SEND;
    conn_send(c);
}

/* The exchange on c broke.  A kept-alive connection the vendor closed
 * before it read our request is retried at once on a fresh one, without
 * counting an attempt; anything else counts (translation is idempotent). */
static void conn_broken(struct conn *c, const char *why)
{
    struct transfer *t = c->t;
    struct pool *p = c->pool;

    if (t != NULL && c->served > 0 && !c->got_bytes) {
        t->conn = NULL;
        c->t = NULL;
        conn_close(c);
        t->sent = 0;
        pool_get(p, t);
        return;
    }
    conn_fail(c, UPSTREAM_ERR_IO, 1, why);
}

static void conn_send(struct conn *c)
{
    size_t n = 0;
    int r, e;

    ERR_clear_error();
    r = SSL_write_ex(c->ssl, c->out.data + c->out_off, c->out.len - c->out_off, &n);
    if (r == 1) {
        c->out_off += n;
        if (c->out_off < c->out.len) {
            conn_watch(c, EPOLLOUT);
            return;
        }
        tg_buf_free(&c->out);
        c->st = C_RECV;
        conn_watch(c, EPOLLIN);
        return;
    }
    e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_WRITE)
        conn_watch(c, EPOLLOUT);
    else if (e == SSL_ERROR_WANT_READ)
        conn_watch(c, EPOLLIN);
    else {
        ERR_clear_error();
        conn_broken(c, "sending the request");
    }
}

/* Parse the status line and headers head[0..len). */
static int parse_head(struct conn *c, struct transfer *t, const char *head, size_t len)
{
    int minor, st = status_line(head, len, &minor);
    int chunked = 0, other_te = 0, keep_alive = 0, have_len = 0;
    uint64_t clen = 0;
    const char *p = memchr(head, '\n', len), *end = head + len;

    if (st < 0 || p == NULL)
        return -1;
    for (p++; p < end;) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *colon, *v, *ve;
        size_t nl;
        if (eol == NULL)
            eol = end;
        ve = eol;
        if (ve > p && ve[-1] == '\r')
            ve--;
        colon = memchr(p, ':', (size_t)(ve - p));
        if (ve == p || *p == ' ' || *p == '\t' || colon == NULL) {
            if (ve != p && colon == NULL && *p != ' ' && *p != '\t')
                return -1;      /* a header without a colon */
            p = eol + 1;
            continue;
        }
        nl = (size_t)(colon - p);
        for (v = colon + 1; v < ve && (*v == ' ' || *v == '\t'); v++)
            ;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        if (nl == 14 && strncasecmp(p, "content-length", 14) == 0) {
            uint64_t x = 0;
            if (v == ve)
                return -1;
            for (const char *d = v; d < ve; d++) {
                if (*d < '0' || *d > '9' || x > (UINT64_MAX - 9) / 10)
                    return -1;
                x = x * 10 + (uint64_t)(*d - '0');
            }
            if (have_len && x != clen)
                return -1;
            have_len = 1;
            clen = x;
        } else if (nl == 17 && strncasecmp(p, "transfer-encoding", 17) == 0) {
            /* chunked must be the last coding; anything else ends at close */
            size_t vl = (size_t)(ve - v);
            if (vl >= 7 && strncasecmp(ve - 7, "chunked", 7) == 0 &&
                (vl == 7 || ve[-8] == ',' || ve[-8] == ' '))
                chunked = 1;
            else
                other_te = 1;
        } else if (nl == 10 && strncasecmp(p, "connection", 10) == 0) {
            for (const char *k = v; k < ve; k++) {
                if ((size_t)(ve - k) >= 5 && strncasecmp(k, "close", 5) == 0)
                    c->close_after = 1;
                if ((size_t)(ve - k) >= 10 && strncasecmp(k, "keep-alive", 10) == 0)
                    keep_alive = 1;
            }
        }
        p = eol + 1;
    }
    if (st < 200) {
        /* 100 Continue and other interim answers: the real one follows
         * (a few at most; no reason for a vendor to send more). */
        if (st == 101 || ++c->interim > 8)
            return -1;
        c->close_after = 0;
        c->ps = P_HEAD;
        return 0;
    }
    t->status = st;
    if (minor == 0 && !keep_alive)
        c->close_after = 1;
    /* Framing a proxy and the gateway could read differently: answer this
     * one by Transfer-Encoding, then never trust the connection again. */
    if ((chunked || other_te) && (have_len || minor == 0))
        c->close_after = 1;
    if (st == 204 || st == 304) {
        c->ps = P_DONE;
    } else if (chunked && !other_te) {
        /* The terminal side's decoder, with the bounds this client had:
         * a size line under 256 bytes, trailers up to HEAD_CAP. */
        h1_chunked_init(&c->chunk);
        c->chunk.max_line = 255;
        c->chunk.max_trailers = HEAD_CAP;
        c->ps = P_CHUNKED;
    } else if (other_te) {
        c->ps = P_BODY_EOF;
        c->close_after = 1;
    } else if (have_len) {
        c->remain = clen;
        c->ps = clen > 0 ? P_BODY_LEN : P_DONE;
    } else {
        c->ps = P_BODY_EOF;
        c->close_after = 1;
    }
    return 0;
}

static int reply_feed(struct conn *c, struct transfer *t, const char *p, size_t n)
{
    const char *end = p + n;

    while (p < end) {
        switch (c->ps) {
        case P_HEAD: {
            size_t take = (size_t)(end - p), hend;
            /* The buffer's cap leaves room for a read's worth of body
             * behind a head of up to HEAD_CAP. */
            if (tg_buf_add(&c->head, p, take) != 0)
                return FEED_BAD;
            hend = h1_head_length(c->head.data, c->head.len);
            if (hend == 0) {
                if (c->head.len >= HEAD_CAP)
                    return FEED_BAD;     /* head larger than HEAD_CAP */
                p = end;
                break;
            }
            if (hend > HEAD_CAP)
                return FEED_BAD;
            p += take - (c->head.len - hend);
            if (parse_head(c, t, c->head.data, hend) != 0)
                return FEED_BAD;
            tg_buf_free(&c->head);
            break;
        }
        case P_BODY_LEN: {
            size_t take = (size_t)(end - p);
            if (take > c->remain)
                take = (size_t)c->remain;
            if (tg_buf_add(&t->resp, p, take) != 0)
                return FEED_TOO_LARGE;
            p += take;
            c->remain -= take;
            if (c->remain == 0)
                c->ps = P_DONE;
            break;
        }
        case P_BODY_EOF:
            if (tg_buf_add(&t->resp, p, (size_t)(end - p)) != 0)
                return FEED_TOO_LARGE;
            p = end;
            break;
        case P_CHUNKED: {
            const char *data;
            size_t used = 0, dlen = 0;
            if (h1_chunked_step(&c->chunk, p, (size_t)(end - p), &used, &data,
                                &dlen) != H1_OK)
                return FEED_BAD;
            if (dlen > 0 && tg_buf_add(&t->resp, data, dlen) != 0)
                return FEED_TOO_LARGE;
            p += used;
            if (c->chunk.done)
                c->ps = P_DONE;
            break;
        }
        case P_DONE:
            return FEED_EXTRA;
        }
    }
    return c->ps == P_DONE ? FEED_DONE : FEED_MORE;
}

/* The reply on c is complete. */
static void conn_exchange_done(struct conn *c, int reusable)
{
    struct transfer *t = c->t;
    struct pool *p = c->pool;

    t->conn = NULL;
    c->t = NULL;
    c->served++;
    if (reusable) {
        conn_release(c);
    } else {
        conn_close(c);
        pool_kick(p);
    }
    transfer_answered(t);
}

static void conn_recv(struct conn *c)
{
    char buf[READ_CHUNK];

    for (;;) {
        size_t n = 0;
        int r, e, f;
        ERR_clear_error();
        r = SSL_read_ex(c->ssl, buf, sizeof(buf), &n);
        if (r == 1) {
            c->got_bytes = 1;
            f = reply_feed(c, c->t, buf, n);
            tg_wipe(buf, n);
            if (f == FEED_MORE)
                continue;
            if (f == FEED_DONE || f == FEED_EXTRA)
                conn_exchange_done(c, f == FEED_DONE && !c->close_after &&
                                      !SSL_has_pending(c->ssl));
            else if (f == FEED_TOO_LARGE)
                conn_fail(c, UPSTREAM_ERR_TOO_LARGE, 0, "reply exceeds the cap");
            else
                conn_fail(c, UPSTREAM_ERR_PROTOCOL, 0, "malformed reply");
            return;
        }
        e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ) {
            conn_watch(c, EPOLLIN);
            return;
        }
        if (e == SSL_ERROR_WANT_WRITE) {
            conn_watch(c, EPOLLOUT);
            return;
        }
        if (c->ps == P_BODY_EOF &&
            (e == SSL_ERROR_ZERO_RETURN ||
             (e == SSL_ERROR_SSL &&
              ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING))) {
            /* A reply delimited by the end of the connection: complete when
             * the connection ended, with or without close_notify (parsing
             * the body judges a truncation); not on a reset or a TLS
             * error. */
            ERR_clear_error();
            conn_exchange_done(c, 0);
            return;
        }
        ERR_clear_error();
        conn_broken(c, e == SSL_ERROR_ZERO_RETURN ? "vendor closed the connection"
                                                  : "reading the reply");
        return;
    }
}

/* An idle connection became readable: a late TLS 1.3 session ticket
 * (keep it), or the vendor closing it or sending unasked-for data (drop
 * it). */
static void conn_idle_event(struct conn *c, uint32_t events)
{
    char buf[256];
    size_t n = 0;
    int r;

    if (!(events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
        ERR_clear_error();
        r = SSL_read_ex(c->ssl, buf, sizeof(buf), &n);
        if (r != 1 && SSL_get_error(c->ssl, r) == SSL_ERROR_WANT_READ)
            return;
        tg_wipe(buf, sizeof(buf));
        ERR_clear_error();
    }
    conn_close(c);
}

static void on_conn(ev_handler *h, uint32_t events)
{
    struct conn *c = container_of(h, struct conn, h);

    switch (c->st) {
    case C_CONNECT:
        conn_connect_event(c);
        break;
    case C_PROXY_SEND:
    case C_PROXY_RECV:
        conn_proxy(c);
        break;
    case C_HANDSHAKE:
        conn_handshake(c);
        break;
    case C_IDLE:
        conn_idle_event(c, events);
        break;
    case C_SEND:
        conn_send(c);
        break;
    case C_RECV:
        conn_recv(c);
        break;
    }
}

int upstream_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    struct conn *c = SSL_get_app_data(ssl);

    if (c == NULL || !SSL_SESSION_is_resumable(sess))
        return 0;
    if (c->pool->session != NULL)
        SSL_SESSION_free(c->pool->session);
    c->pool->session = sess;
    return 1;
}

/* ------------------------------------------------------------------ */
/* Pools                                                                */

static struct pool *pool_find(upstream_ctx *u, const rt_upstream *up)
{
    struct pool *p;

    for (p = u->pools; p != NULL; p = p->next)
        if (p->up == up && p->gen == up->gen)
            return p;
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->u = u;
    p->up = up;
    p->gen = up->gen;
    p->next = u->pools;
    u->pools = p;
    return p;
}

static void queue_remove(struct pool *p, struct transfer *t)
{
    if (!t->queued)
        return;
    if (t->qprev != NULL)
        t->qprev->qnext = t->qnext;
    else
        p->qhead = t->qnext;
    if (t->qnext != NULL)
        t->qnext->qprev = t->qprev;
    else
        p->qtail = t->qprev;
    t->qprev = t->qnext = NULL;
    t->queued = 0;
}

/* Give t a connection: an idle one, a new one, or a place in the queue. */
static void pool_get(struct pool *p, struct transfer *t)
{
    char why[160];
    uint64_t now = tg_now_ms();
    struct conn *c;

    while ((c = p->idle) != NULL) {
        if (now - c->idle_since <= IDLE_REUSE_MS && !SSL_has_pending(c->ssl)) {
            p->idle = c->next;
            if (p->idle != NULL)
                p->idle->prev = NULL;
            c->next = c->prev = NULL;
            c->st = C_SEND;     /* off the idle list */
            c->t = t;
            t->conn = c;
            conn_begin(c);
            return;
        }
        conn_close(c);
    }
    if (p->n_conns < (size_t)p->up->conf->max_connections) {
        if (conn_open(p, t, why, sizeof(why)) != 0)
            transfer_failed(t, UPSTREAM_ERR_CONNECT, 1, why);
        return;
    }
    t->queued = 1;
    t->qnext = NULL;
    t->qprev = p->qtail;
    if (p->qtail != NULL)
        p->qtail->qnext = t;
    else
        p->qhead = t;
    p->qtail = t;
}

/* Open connections for waiters while the pool has room. */
static void pool_kick(struct pool *p)
{
    if (p->kicking || p->u->closing)
        return;
    p->kicking = 1;
    while (p->qhead != NULL && p->n_conns < (size_t)p->up->conf->max_connections) {
        struct transfer *t = p->qhead;
        queue_remove(p, t);
        pool_get(p, t);
    }
    p->kicking = 0;
}

static void pool_free(struct pool *p)
{
    if (p->session != NULL)
        SSL_SESSION_free(p->session);
    free(p);
}

/* Free the pools of earlier runtimes that nothing uses any more.  Only
 * from the top of an event or timer: callers inside this file hold pool
 * pointers. */
static void pool_sweep(upstream_ctx *u)
{
    struct pool **pp = &u->pools;
    uint64_t gen = u->w->rt->gen;

    while (*pp != NULL) {
        struct pool *p = *pp;
        if (p->gen != gen && p->n_jobs == 0 && p->n_conns == 0 && p->qhead == NULL) {
            *pp = p->next;
            pool_free(p);
        } else {
            pp = &p->next;
        }
    }
}

void upstream_runtime_changed(upstream_ctx *u)
{
    uint64_t gen = u->w->rt->gen;
    struct conn *c, *next;

    /* Connections of an earlier runtime that carry nothing (idle, or still
     * being set up for a transfer that went away) close now: their pool's
     * upstream lives only as long as requests of that runtime do.  Busy
     * ones close when their exchange ends. */
    for (c = u->conns; c != NULL; c = next) {
        next = c->anext;
        if (c->pool->gen != gen && c->t == NULL)
            conn_close(c);
    }
    pool_sweep(u);
}

/* ------------------------------------------------------------------ */
/* Jobs                                                                 */

static void on_done(tg_timer *tm, void *arg);

upstream_ctx *upstream_init(worker *w)
{
    upstream_ctx *u = calloc(1, sizeof(*u));

    if (u == NULL)
        return NULL;
    u->w = w;
    timer_init(&u->done_timer, on_done, u);
    return u;
}

/* Stop everything t has in progress; its buffers stay. */
static void transfer_detach(upstream_ctx *u, struct transfer *t)
{
    timer_cancel(&u->w->timers, &t->retry);
    timer_cancel(&u->w->timers, &t->deadline);
    if (t->queued)
        queue_remove(t->job->pool, t);
    if (t->conn != NULL) {
        struct conn *c = t->conn;
        c->t = NULL;
        t->conn = NULL;
        /* A connection in the middle of an exchange cannot be reused; one
         * still being set up carries on for the pool, unless the pool is
         * of an earlier runtime (which may go away with this job). */
        if (c->st == C_SEND || c->st == C_RECV || c->pool->gen != u->w->rt->gen)
            conn_close(c);
    }
}

static void done_remove(upstream_ctx *u, upstream_job *job)
{
    upstream_job **pp = &u->done_head, *prev = NULL;

    while (*pp != NULL && *pp != job) {
        prev = *pp;
        pp = &(*pp)->done_next;
    }
    if (*pp == NULL)
        return;
    *pp = job->done_next;
    if (u->done_tail == job)
        u->done_tail = prev;
    job->done_next = NULL;
}

/* Take the job out of everything: transfers, connections, queues, lists.
 * Touches the job's pool (and so its upstream) for the last time. */
static void job_detach(upstream_job *job)
{
    upstream_ctx *u = job->u;

    for (size_t i = 0; i < job->n; i++)
        transfer_detach(u, &job->t[i]);
    if (job->finishing)
        done_remove(u, job);
    if (job->prev != NULL)
        job->prev->next = job->next;
    else
        u->jobs = job->next;
    if (job->next != NULL)
        job->next->prev = job->prev;
    u->n_jobs--;
    job->pool->n_jobs--;
    pool_kick(job->pool);
}

/* Wipe and free a detached job. */
static void job_release(upstream_job *job)
{
    for (size_t i = 0; i < job->n; i++) {
        adapter_http_free(&job->t[i].req);
        tg_buf_free(&job->t[i].resp);
    }
    free(job->t);
    free(job);
}

void upstream_close(upstream_ctx *u)
{
    if (u == NULL)
        return;
    u->closing = 1;     /* no new connections for waiters freed next */
    while (u->jobs != NULL) {
        upstream_job *job = u->jobs;
        job_detach(job);
        job_release(job);
    }
    timer_cancel(&u->w->timers, &u->done_timer);
    while (u->conns != NULL)
        conn_close(u->conns);
    while (u->pools != NULL) {
        struct pool *p = u->pools;
        u->pools = p->next;
        pool_free(p);
    }
    free(u);
}

size_t upstream_pending(const upstream_ctx *u)
{
    return u->n_jobs;
}

void upstream_cancel(upstream_ctx *u, upstream_job *job)
{
    (void)u;
    job_detach(job);
    job_release(job);
}

/* Detach the job, run its callback, free it. */
static void job_finish(upstream_job *job)
{
    adapter_reply *replies = NULL;
    upstream_err err = job->result;

    job->info.elapsed_ms = (double)(tg_now_ms() - job->t0);
    if (err == UPSTREAM_OK) {
        replies = calloc(job->n, sizeof(*replies));
        if (replies == NULL)
            err = UPSTREAM_ERR_NOMEM;
    }
    if (err == UPSTREAM_OK) {
        for (size_t i = 0; i < job->n; i++) {
            replies[i].status = job->t[i].status;
            replies[i].body = job->t[i].resp.data ? job->t[i].resp.data : "";
            replies[i].len = job->t[i].resp.len;
        }
    }
    /* Before the callback: it may drop the last reference to the runtime
     * the job's upstream belongs to. */
    job_detach(job);
    job->fn(job->arg, err, replies, err == UPSTREAM_OK ? job->n : 0, &job->info);
    free(replies);
    job_release(job);
}

static void on_done(tg_timer *tm, void *arg)
{
    upstream_ctx *u = arg;
    upstream_job *job;

    (void)tm;
    while ((job = u->done_head) != NULL) {
        u->done_head = job->done_next;
        if (u->done_head == NULL)
            u->done_tail = NULL;
        job->done_next = NULL;
        job->finishing = 0;     /* off the list */
        job_finish(job);
    }
    pool_sweep(u);
}

/* The job's outcome is decided: report it once the current event is over.
 * Further events of its transfers are ignored. */
static void job_complete(upstream_job *job, upstream_err err)
{
    upstream_ctx *u = job->u;

    if (job->finishing)
        return;
    job->finishing = 1;
    job->result = err;
    job->done_next = NULL;
    if (u->done_tail != NULL)
        u->done_tail->done_next = job;
    else
        u->done_head = job;
    u->done_tail = job;
    if (u->done_timer.idx == 0 && timer_arm(&u->w->timers, &u->done_timer, 0) != 0)
        log_err("upstream: out of memory: a finished request waits for the next one");
}

static void on_deadline(tg_timer *tm, void *arg)
{
    struct transfer *t = arg;
    struct conn *c = t->conn;
    int sent = t->sent;

    (void)tm;
    if (c != NULL) {
        struct pool *p = c->pool;
        c->t = NULL;
        t->conn = NULL;
        conn_close(c);
        pool_kick(p);
    }
    queue_remove(t->job->pool, t);
    /* Not yet through to the vendor (no connection or still setting one
     * up): as unreachable, and worth another attempt.  Otherwise the
     * vendor had the request and did not answer in time. */
    if (sent)
        transfer_failed(t, UPSTREAM_ERR_TIMEOUT, 0, "no reply within timeout_ms");
    else
        transfer_failed(t, UPSTREAM_ERR_CONNECT, 1, "no connection within timeout_ms");
}

static void transfer_start(struct transfer *t)
{
    upstream_job *job = t->job;
    upstream_ctx *u = job->u;

    if (job->finishing)
        return;
    t->attempts++;
    job->info.attempts++;
    t->sent = 0;
    t->status = 0;
    tg_buf_free(&t->resp);
    if (timer_arm(&u->w->timers, &t->deadline,
                  tg_now_ms() + (uint64_t)job->up->conf->timeout_ms) != 0) {
        job_complete(job, UPSTREAM_ERR_NOMEM);
        return;
    }
    pool_get(job->pool, t);
}

static void on_retry(tg_timer *tm, void *arg)
{
    (void)tm;
    transfer_start(arg);
}

/* Try t again after its backoff (retry_backoff_ms, doubled on each
 * attempt).  Returns the backoff, for the log. */
static uint64_t transfer_retry(struct transfer *t)
{
    upstream_job *job = t->job;
    uint64_t backoff = (uint64_t)job->up->conf->retry_backoff_ms << (t->attempts - 1);

    if (timer_arm(&job->u->w->timers, &t->retry, tg_now_ms() + backoff) != 0)
        job_complete(job, UPSTREAM_ERR_NOMEM);
    return backoff;
}

static void transfer_failed(struct transfer *t, upstream_err err, int retry,
                            const char *why)
{
    upstream_job *job = t->job;
    upstream_ctx *u = job->u;
    const tg_upstream_conf *c = job->up->conf;

    timer_cancel(&u->w->timers, &t->deadline);
    if (job->finishing)
        return;
    if (retry && t->attempts <= c->max_retries) {
        uint64_t backoff = transfer_retry(t);
        log_debug("upstream %s: attempt %d failed (%s: %s); retrying in %llu ms", c->name,
                  t->attempts, upstream_code(err), why, (unsigned long long)backoff);
        return;
    }
    log_info("upstream %s: %s (%s)", c->name, upstream_strerror(err), why);
    job_complete(job, err);
}

static void transfer_answered(struct transfer *t)
{
    upstream_job *job = t->job;
    upstream_ctx *u = job->u;
    const tg_upstream_conf *c = job->up->conf;

    timer_cancel(&u->w->timers, &t->deadline);
    if (job->finishing)
        return;
    job->info.last_status = t->status;
    if ((t->status == 429 || t->status == 500 || t->status == 502 ||
         t->status == 503 || t->status == 504) && t->attempts <= c->max_retries) {
        tg_buf_free(&t->resp);
        log_debug("upstream %s: attempt %d answered %ld; retrying in %llu ms", c->name,
                  t->attempts, t->status, (unsigned long long)transfer_retry(t));
        return;
    }
    t->done = 1;
    if (++job->n_done == job->n)
        job_complete(job, UPSTREAM_OK);
}

upstream_job *upstream_add(upstream_ctx *u, const rt_upstream *up,
                           adapter_http *reqs, size_t n, upstream_done_fn fn,
                           void *arg)
{
    upstream_job *job = calloc(1, sizeof(*job));
    size_t reply_cap = REPLY_CAP_MIN;
    size_t body_cap = u->w->rt->cfg->max_body_bytes;

    if (body_cap < (SIZE_MAX / 16) && body_cap * 16 > reply_cap)
        reply_cap = body_cap * 16;
    if (job == NULL || n == 0)
        goto fail_reqs;
    job->t = calloc(n, sizeof(*job->t));
    job->pool = pool_find(u, up);
    if (job->t == NULL || job->pool == NULL)
        goto fail_reqs;
    job->u = u;
    job->up = up;
    job->n = n;
    job->fn = fn;
    job->arg = arg;
    job->t0 = tg_now_ms();
    snprintf(job->info.address, sizeof(job->info.address), "%s", up->address);
    job->next = u->jobs;
    if (u->jobs != NULL)
        u->jobs->prev = job;
    u->jobs = job;
    u->n_jobs++;
    job->pool->n_jobs++;
    for (size_t i = 0; i < n; i++) {
        struct transfer *t = &job->t[i];
        t->job = job;
        t->req = reqs[i];   /* moved */
        memset(&reqs[i], 0, sizeof(reqs[i]));
        tg_buf_init(&t->resp, reply_cap);
        timer_init(&t->retry, on_retry, t);
        timer_init(&t->deadline, on_deadline, t);
    }
    free(reqs);
    /* Failures found now are reported from the done timer, after the
     * caller has the job. */
    for (size_t i = 0; i < n && !job->finishing; i++)
        transfer_start(&job->t[i]);
    return job;
fail_reqs:
    if (reqs != NULL) {
        for (size_t i = 0; i < n; i++)
            adapter_http_free(&reqs[i]);
        free(reqs);
    }
    if (job != NULL) {
        free(job->t);
        free(job);
    }
    return NULL;
}
