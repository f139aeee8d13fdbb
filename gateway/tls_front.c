#include "tls_front.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <microhttpd.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "http.h"
#include "log.h"
#include "tg_buf.h"

static void conn_pump(front_conn *c);

/* Wipe what a relay buffer held and give it back to the worker's pool
 * (the allocator would otherwise see two 8 KiB allocations per request).
 * NULL-safe. */
static void buf_drop(worker *w, char **b, size_t used)
{
    if (*b == NULL)
        return;
    /* All of it: compaction may have left older bytes past `used`. */
    (void)used;
    tg_wipe(*b, FRONT_BUF);
    if (w->n_relay_pool < sizeof(w->relay_pool) / sizeof(w->relay_pool[0]))
        w->relay_pool[w->n_relay_pool++] = *b;
    else
        free(*b);
    *b = NULL;
}

static int buf_need(worker *w, char **b)
{
    if (*b == NULL)
        *b = w->n_relay_pool > 0 ? w->relay_pool[--w->n_relay_pool] : malloc(FRONT_BUF);
    return *b != NULL ? 0 : -1;
}

/* MHD closed its end.  Ours goes too, so epoll stops reporting the hangup
 * while the last response bytes drain to the terminal. */
static void pair_gone(front_conn *c)
{
    c->pair_eof = 1;
    if (c->pair_fd >= 0) {
        if (!c->pair_hup)
            worker_unwatch(c->w, c->pair_fd);
        close(c->pair_fd);
        c->pair_fd = -1;
    }
}

static void conn_free(front_conn *c)
{
    worker *w = c->w;

    timer_cancel(&w->timers, &c->timer);
    if (c->req != NULL) {
        /* The terminal is gone or we are shutting down: the request must
         * not wait for a vendor nobody will read. */
        http_abort(c->req);
        c->req = NULL;
    }
    if (c->mhd_ctx != NULL) {
        *c->mhd_ctx = NULL;
        c->mhd_ctx = NULL;
    }
    if (c->pair_fd >= 0) {
        if (!c->pair_hup)
            worker_unwatch(w, c->pair_fd);
        close(c->pair_fd);
    }
    if (c->net_fd >= 0) {
        worker_unwatch(w, c->net_fd);
        close(c->net_fd);
    }
    SSL_free(c->ssl);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    w->n_conns--;
    w->mhd_run_pending = 1;
    /* Relay buffers held request and response text. */
    buf_drop(c->w, &c->in, c->in_len);
    buf_drop(c->w, &c->out, c->out_len);
    c->net_h.dead = 1;
    c->pair_h.dead = 1;
    worker_bury(w, c);
}

void front_conn_close(front_conn *c)
{
    conn_free(c);
}

int front_conn_idle(const front_conn *c)
{
    return c->req == NULL && c->in_len == c->in_off && c->out_len == c->out_off;
}

static void handshake_expired(tg_timer *t, void *arg)
{
    front_conn *c = arg;

    (void)t;
    c->w->stats.handshake_failures++;
    log_debug("worker %d: TLS handshake from %s timed out", c->w->id,
              c->peer_str);
    conn_free(c);
}

static void set_interest(front_conn *c)
{
    uint32_t net = EPOLLRDHUP, pair = 0;

    if (!c->relaying) {
        /* During the handshake the last SSL call decides. */
        net |= c->rd_wants_write ? EPOLLOUT : EPOLLIN;
    } else {
        if (c->in_len < FRONT_BUF || c->wr_wants_read)
            net |= EPOLLIN;
        if (c->rd_wants_write || (c->wr_blocked && c->out_len > c->out_off))
            net |= EPOLLOUT;
        if (!c->pair_eof && c->out_len < FRONT_BUF)
            pair |= EPOLLIN;
        if (c->in_len > c->in_off)
            pair |= EPOLLOUT;
    }
    if (net != c->net_ev) {
        worker_rewatch(c->w, c->net_fd, net, &c->net_h);
        c->net_ev = net;
    }
    if (c->relaying && c->pair_fd >= 0 && !c->pair_hup && pair != c->pair_ev) {
        worker_rewatch(c->w, c->pair_fd, pair, &c->pair_h);
        c->pair_ev = pair;
    }
}

/* Handshake done: create the socketpair and give one end to MHD. */
static int conn_attach(front_conn *c)
{
    worker *w = c->w;
    struct sockaddr_un local;
    int sv[2];

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
        log_warn("worker %d: socketpair: %s", w->id, strerror(errno));
        return -1;
    }
    c->pair_fd = sv[0];
    w->adding = c;
    /* MHD sees the socketpair for what it is (AF_UNIX): it then skips the
     * TCP options it would otherwise try, and fail, on every response.
     * The terminal's address lives in the front connection. */
    memset(&local, 0, sizeof(local));
    local.sun_family = AF_UNIX;
    if (MHD_add_connection(w->mhd, sv[1], (const struct sockaddr *)&local,
                           sizeof(local)) != MHD_YES) {
        /* MHD has closed sv[1] already. */
        w->adding = NULL;
        log_warn("worker %d: HTTP layer refused a connection", w->id);
        return -1;
    }
    w->adding = NULL;
    w->mhd_run_pending = 1;
    if (worker_watch(w, c->pair_fd, 0, &c->pair_h) != 0)
        return -1;
    c->pair_ev = 0;
    c->relaying = 1;
    return 0;
}

/* Record the verified terminal certificate, if any: CN and fingerprint
 * are identities, not secrets. */
static void peer_identity(front_conn *c)
{
    X509 *peer = SSL_get0_peer_certificate(c->ssl);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    static const char hex[] = "0123456789abcdef";

    if (peer == NULL || SSL_get_verify_result(c->ssl) != X509_V_OK)
        return;
    if (X509_digest(peer, EVP_sha256(), md, &mdlen) != 1 || mdlen != 32)
        return;
    for (unsigned i = 0; i < mdlen; i++) {
        c->cert_sha256[2 * i] = hex[md[i] >> 4];
        c->cert_sha256[2 * i + 1] = hex[md[i] & 15];
    }
    c->cert_sha256[64] = '\0';
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName,
                                  c->cert_cn, sizeof(c->cert_cn)) < 0)
        c->cert_cn[0] = '\0';
    c->has_cert = 1;
}

static void conn_handshake(front_conn *c)
{
    int r;

    ERR_clear_error();
    r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        timer_cancel(&c->w->timers, &c->timer);
        peer_identity(c);
        c->rd_wants_write = 0;
        if (conn_attach(c) != 0) {
            conn_free(c);
            return;
        }
        conn_pump(c);
        return;
    }
    switch (SSL_get_error(c->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        c->rd_wants_write = 0;
        set_interest(c);
        return;
    case SSL_ERROR_WANT_WRITE:
        c->rd_wants_write = 1;
        set_interest(c);
        return;
    default: {
        /* Refused versions and suites end here; the reason is useful to
         * operators and holds no request data. */
        unsigned long e = ERR_peek_error();
        c->w->stats.handshake_failures++;
        log_debug("worker %d: TLS handshake from %s failed: %s", c->w->id,
                  c->peer_str, e ? ERR_reason_error_string(e) : "connection closed");
        ERR_clear_error();
        conn_free(c);
        return;
    }
    }
}

/* Move bytes as far as they go in both directions.  Returns -1 when the
 * connection was freed. */
static int relay_once(front_conn *c, int *progress)
{
    ssize_t n;
    int r;

    /* terminal -> MHD */
    if (c->in_off == c->in_len)
        c->in_off = c->in_len = 0;
    /* Read only when the socket or OpenSSL may have something: a call
     * that can only say "would block" is a wasted system call. */
    if (c->in_len < FRONT_BUF && (!c->net_rd_blocked || SSL_has_pending(c->ssl))) {
        if (buf_need(c->w, &c->in) != 0) {
            conn_free(c);
            return -1;
        }
        ERR_clear_error();
        r = SSL_read(c->ssl, c->in + c->in_len, (int)(FRONT_BUF - c->in_len));
        if (r > 0) {
            c->in_len += (size_t)r;
            c->rd_wants_write = 0;
            c->wr_wants_read = 0;
            *progress = 1;
        } else {
            switch (SSL_get_error(c->ssl, r)) {
            case SSL_ERROR_WANT_READ:
                c->rd_wants_write = 0;
                c->net_rd_blocked = 1;
                break;
            case SSL_ERROR_WANT_WRITE:
                c->rd_wants_write = 1;
                break;
            default:
                /* EOF, reset or protocol error from the terminal: it has
                 * left, whatever it had sent is abandoned. */
                ERR_clear_error();
                conn_free(c);
                return -1;
            }
        }
    }
    if (c->in_len > c->in_off && c->pair_fd >= 0 && !c->pair_wr_blocked) {
        size_t want = c->in_len - c->in_off;
        n = write(c->pair_fd, c->in + c->in_off, want);
        if (n > 0) {
            c->in_off += (size_t)n;
            *progress = 1;
            c->w->mhd_run_pending = 1;
            if ((size_t)n < want)
                c->pair_wr_blocked = 1;
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            c->pair_wr_blocked = errno == EAGAIN;
        } else if (n < 0) {
            conn_free(c);
            return -1;
        }
        if (c->in_off > 0 && c->in_off < c->in_len && c->in_len == FRONT_BUF) {
            memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
            c->in_len -= c->in_off;
            c->in_off = 0;
        }
    }

    /* MHD -> terminal */
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    if (!c->pair_eof && c->out_len < FRONT_BUF && !c->pair_rd_blocked) {
        size_t want = FRONT_BUF - c->out_len;
        if (buf_need(c->w, &c->out) != 0) {
            conn_free(c);
            return -1;
        }
        n = read(c->pair_fd, c->out + c->out_len, want);
        if (n > 0) {
            c->out_len += (size_t)n;
            *progress = 1;
            c->w->mhd_run_pending = 1;
            /* A short read drained the socket (unless it hung up, in
             * which case the end must still be read). */
            if ((size_t)n < want && !c->pair_hup)
                c->pair_rd_blocked = 1;
        } else if (n < 0 && errno == EAGAIN) {
            c->pair_rd_blocked = !c->pair_hup;
        } else if (n == 0 || errno != EINTR) {
            pair_gone(c);
            *progress = 1;
        }
    }
    if (c->out_len > c->out_off) {
        ERR_clear_error();
        r = SSL_write(c->ssl, c->out + c->out_off, (int)(c->out_len - c->out_off));
        if (r > 0) {
            c->out_off += (size_t)r;
            c->wr_blocked = 0;
            c->wr_wants_read = 0;
            *progress = 1;
        } else {
            switch (SSL_get_error(c->ssl, r)) {
            case SSL_ERROR_WANT_WRITE:
                c->wr_blocked = 1;
                break;
            case SSL_ERROR_WANT_READ:
                c->wr_wants_read = 1;
                break;
            default:
                ERR_clear_error();
                conn_free(c);
                return -1;
            }
        }
        if (c->out_off > 0 && c->out_off < c->out_len && c->out_len == FRONT_BUF) {
            memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
            c->out_len -= c->out_off;
            c->out_off = 0;
        }
    }
    return 0;
}

static void conn_pump(front_conn *c)
{
    int progress;

    if (!c->relaying) {
        conn_handshake(c);
        return;
    }
    do {
        progress = 0;
        if (relay_once(c, &progress) != 0)
            return;
    } while (progress);
    if (c->in_off == c->in_len) {
        buf_drop(c->w, &c->in, c->in_len);
        c->in_off = c->in_len = 0;
    }
    if (c->out_off == c->out_len) {
        buf_drop(c->w, &c->out, c->out_len);
        c->out_off = c->out_len = 0;
    }
    if (c->pair_eof && c->out_len == c->out_off) {
        /* MHD finished with the connection and everything is flushed. */
        ERR_clear_error();
        SSL_shutdown(c->ssl);
        ERR_clear_error();
        conn_free(c);
        return;
    }
    set_interest(c);
}

static void on_net(ev_handler *h, uint32_t events)
{
    front_conn *c = container_of(h, front_conn, net_h);

    if (events & (EPOLLERR | EPOLLHUP)) {
        conn_free(c);
        return;
    }
    if (events & EPOLLIN)
        c->net_rd_blocked = 0;
    if ((events & EPOLLRDHUP) && c->relaying && c->in_len == FRONT_BUF) {
        /* Gone, and we cannot even read its last bytes: abort. */
        conn_free(c);
        return;
    }
    conn_pump(c);
}

static void on_pair(ev_handler *h, uint32_t events)
{
    front_conn *c = container_of(h, front_conn, pair_h);

    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
        c->pair_rd_blocked = 0;
    if (events & (EPOLLOUT | EPOLLERR))
        c->pair_wr_blocked = 0;
    if ((events & (EPOLLERR | EPOLLHUP)) && !c->pair_hup) {
        /* MHD hung up, possibly with response bytes still queued.  epoll
         * would report the hangup forever, so stop watching; relay_once
         * still reads the rest whenever the terminal makes room. */
        worker_unwatch(c->w, c->pair_fd);
        c->pair_hup = 1;
    }
    conn_pump(c);
}

static void accept_one(front_listener *l, int fd, struct sockaddr_storage *ss,
                       socklen_t sl)
{
    worker *w = l->w;
    front_conn *c;
    int one = 1;

    if (w->n_conns >= w->rt->cfg->max_connections || w->state != WORKER_RUNNING) {
        close(fd);
        return;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        return;
    }
    c->w = w;
    c->net_fd = fd;
    c->pair_fd = -1;
    c->net_h.fn = on_net;
    c->pair_h.fn = on_pair;
    memcpy(&c->peer, ss, sl);
    c->peer_len = sl;
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, c->peer_str, sizeof(c->peer_str));
    } else if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &s4->sin_addr, c->peer_str, sizeof(c->peer_str));
    } else {
        snprintf(c->peer_str, sizeof(c->peer_str), "unknown");
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->ssl = SSL_new(l->ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, fd) != 1) {
        SSL_free(c->ssl);
        close(fd);
        free(c);
        return;
    }
    SSL_set_accept_state(c->ssl);
    c->next = w->conns;
    if (w->conns != NULL)
        w->conns->prev = c;
    w->conns = c;
    w->n_conns++;
    w->stats.connections++;
    timer_init(&c->timer, handshake_expired, c);
    timer_arm(&w->timers, &c->timer,
              tg_now_ms() + (uint64_t)w->rt->cfg->handshake_timeout_ms);
    c->net_ev = EPOLLIN | EPOLLRDHUP;
    if (worker_watch(w, fd, c->net_ev, &c->net_h) != 0) {
        conn_free(c);
        return;
    }
}

static void on_accept(ev_handler *h, uint32_t events)
{
    front_listener *l = container_of(h, front_listener, h);

    (void)events;
    /* Bounded so one busy listener cannot starve the rest of the loop. */
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                log_warn("worker %d: accept: %s", l->w->id, strerror(errno));
            return;
        }
        accept_one(l, fd, &ss, sl);
    }
}

int front_listen(worker *w, front_listener *l, const tg_listener_conf *conf,
                 SSL_CTX *ctx)
{
    struct addrinfo hints, *ai = NULL;
    int fd = -1, one = 1, rc;

    l->w = w;
    l->ctx = ctx;
    l->h.fn = on_accept;
    l->fd = -1;
    memset(&hints, 0, sizeof(hints));
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(conf->host, conf->port, &hints, &ai);
    if (rc != 0) {
        log_err("listener %s: %s", conf->address, gai_strerror(rc));
        return -1;
    }
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)
        goto fail;
    if (ai->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0)
        goto fail;
    if (worker_watch(w, fd, EPOLLIN, &l->h) != 0)
        goto fail;
    freeaddrinfo(ai);
    l->fd = fd;
    return 0;
fail:
    log_err("listener %s: %s", conf->address, strerror(errno));
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    return -1;
}

void front_listener_close(worker *w, front_listener *l)
{
    if (l->fd < 0)
        return;
    worker_unwatch(w, l->fd);
    close(l->fd);
    l->fd = -1;
}

void front_notify_started(worker *w, void **socket_context)
{
    front_conn *c = w->adding;

    *socket_context = c;
    if (c != NULL)
        c->mhd_ctx = socket_context;
}

void front_notify_closed(void **socket_context)
{
    front_conn *c = *socket_context;

    if (c != NULL) {
        c->mhd_ctx = NULL;
        *socket_context = NULL;
    }
}
