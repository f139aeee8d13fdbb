#include "tls_front.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "http.h"
#include "log.h"
#include "tg_buf.h"

static void conn_pump(front_conn *c);
static void conn_linger(front_conn *c);

/* Wipe what a read buffer held and give it back to the worker's pool
 * (the allocator would otherwise see an 8 KiB allocation per request).
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

static void out_drop(front_conn *c)
{
    if (c->out != NULL && !c->out_static) {
        /* Responses carry restored personal data. */
        tg_wipe(c->out, c->out_len);
        free(c->out);
    }
    c->out = NULL;
    c->out_static = 0;
    c->out_tried = 0;
    c->out_off = c->out_len = 0;
}

static void conn_free(front_conn *c)
{
    worker *w = c->w;

    timer_cancel(&w->timers, &c->timer);
    if (c->req != NULL) {
        /* The terminal is gone or we are shutting down: the request must
         * not wait for a vendor nobody will read. */
        struct http_req *r = c->req;
        c->req = NULL;
        http_abort(r);
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
    buf_drop(w, &c->in, c->in_len);
    out_drop(c);
    if (c->pend != NULL) {
        tg_wipe(c->pend, c->pend_len);
        free(c->pend);
        c->pend = NULL;
    }
    c->net_h.dead = 1;
    worker_bury(w, c);
}

void front_conn_close(front_conn *c)
{
    conn_free(c);
}

int front_conn_idle(const front_conn *c)
{
    return c->phase == FRONT_LINGER ||
           (c->req == NULL && c->in_len == c->in_off && c->out_len == c->out_off &&
            c->phase != FRONT_HANDSHAKE);
}

static void on_timer(tg_timer *t, void *arg)
{
    front_conn *c = arg;
    worker *w = c->w;
    uint64_t now = tg_now_ms(), limit;

    (void)t;
    if (c->phase == FRONT_HANDSHAKE) {
        w->stats.handshake_failures++;
        log_debug("worker %d: TLS handshake from %s timed out", w->id, c->peer_str);
        conn_free(c);
        return;
    }
    if (c->phase == FRONT_LINGER) {
        conn_free(c);
        return;
    }
    limit = (uint64_t)w->rt->cfg->idle_timeout_ms;
    /* A request with a vendor is bounded by the upstream's own timeouts;
     * the terminal is only timed while it is supposed to send or read:
     * idle for at most `limit`, and a request's head and body must arrive
     * within `limit` of its first byte however slowly they trickle in. */
    if (c->phase == FRONT_WAIT) {
        timer_arm(&w->timers, &c->timer, now + limit);
        return;
    }
    {
        uint64_t from = c->req_start != 0 && (c->phase == FRONT_HEAD || c->phase == FRONT_BODY)
                        ? c->req_start : c->last_active;
        if (now < from + limit) {
            timer_arm(&w->timers, &c->timer, from + limit);
            return;
        }
    }
    log_debug("worker %d: connection from %s idle for %llu ms: closed", w->id,
              c->peer_str, (unsigned long long)limit);
    conn_free(c);
}

static void set_interest(front_conn *c)
{
    uint32_t ev = EPOLLRDHUP;

    switch (c->phase) {
    case FRONT_HANDSHAKE:
        ev |= c->rd_wants_write ? EPOLLOUT : EPOLLIN;
        break;
    case FRONT_HEAD:
    case FRONT_BODY:
        if (c->in_len < FRONT_BUF || c->wr_wants_read)
            ev |= EPOLLIN;
        if (c->rd_wants_write || (c->wr_blocked && c->out_len > c->out_off))
            ev |= EPOLLOUT;
        break;
    case FRONT_LINGER:
        ev |= EPOLLIN;
        break;
    case FRONT_WAIT:
    case FRONT_RESPOND:
        /* Nothing is read while a request is served; EPOLLRDHUP still says
         * when the terminal leaves.  EPOLLIN stays registered until it
         * actually fires (c->in_idle_seen): switching it off and on for
         * every request would cost two epoll_ctl calls per request. */
        if ((c->net_ev & EPOLLIN) && !c->in_idle_seen)
            ev |= EPOLLIN;
        if (c->phase == FRONT_RESPOND) {
            if (c->wr_blocked)
                ev |= EPOLLOUT;
            if (c->wr_wants_read)
                ev |= EPOLLIN;
        }
        break;
    }
    if (ev != c->net_ev && worker_rewatch(c->w, c->net_fd, ev, &c->net_h) == 0)
        c->net_ev = ev;
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
        peer_identity(c);
        c->rd_wants_write = 0;
        c->phase = FRONT_HEAD;
        c->last_active = tg_now_ms();
        timer_arm(&c->w->timers, &c->timer,
                  c->last_active + (uint64_t)c->w->rt->cfg->idle_timeout_ms);
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

void front_respond(front_conn *c, char *bytes, size_t len, int close)
{
    if (c->out_static && c->out_tried) {
        /* A 100 Continue is part-way out (OpenSSL must be called again
         * with the same bytes): the answer follows it. */
        c->pend = bytes;
        c->pend_len = len;
    } else {
        /* A 100 Continue never attempted is superseded by the answer. */
        out_drop(c);
        c->out = bytes;
        c->out_len = len;
    }
    c->answer_lost = bytes == NULL;
    c->close_after = close || c->w->state != WORKER_RUNNING;
    c->phase = FRONT_RESPOND;
    c->last_active = tg_now_ms();
    if (!c->in_pump)
        conn_pump(c);
}

/* The answer is out and the connection ends.  Closing a socket with
 * unread bytes in it makes the kernel send a reset, which may destroy the
 * answer before the terminal has read it (a refused upload, pipelined
 * requests after a framing error).  So: close_notify, shut down our side,
 * and read and drop what still comes for a bounded time and amount. */
static void conn_linger(front_conn *c)
{
    worker *w = c->w;

    ERR_clear_error();
    SSL_shutdown(c->ssl);
    ERR_clear_error();
    if (shutdown(c->net_fd, SHUT_WR) != 0) {
        conn_free(c);
        return;
    }
    buf_drop(w, &c->in, c->in_len);
    c->in_off = c->in_len = 0;
    c->phase = FRONT_LINGER;
    c->lingered = 0;
    timer_arm(&w->timers, &c->timer, tg_now_ms() + FRONT_LINGER_MS);
    set_interest(c);
}

/* Lingering: drop what arrives (still encrypted: it is never looked at). */
static void linger_read(front_conn *c)
{
    char scratch[4096];

    for (;;) {
        ssize_t n = recv(c->net_fd, scratch, sizeof(scratch), 0);
        if (n > 0) {
            c->lingered += (size_t)n;
            if (c->lingered > FRONT_LINGER_BYTES)
                break;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        break;   /* EOF or error: the terminal has read what it wanted */
    }
    conn_free(c);
}

/* Write what is queued.  Returns -1 when the connection was freed. */
static int write_out(front_conn *c, int *progress)
{
    int r;

    while (c->out_len > c->out_off) {
        ERR_clear_error();
        c->out_tried = 1;
        r = SSL_write(c->ssl, c->out + c->out_off, (int)(c->out_len - c->out_off));
        if (r > 0) {
            c->out_off += (size_t)r;
            c->wr_blocked = 0;
            c->wr_wants_read = 0;
            *progress = 1;
            continue;
        }
        switch (SSL_get_error(c->ssl, r)) {
        case SSL_ERROR_WANT_WRITE:
            c->wr_blocked = 1;
            return 0;
        case SSL_ERROR_WANT_READ:
            c->wr_wants_read = 1;
            return 0;
        default:
            ERR_clear_error();
            conn_free(c);
            return -1;
        }
    }
    if (c->out != NULL) {
        out_drop(c);
        if (c->pend != NULL) {
            c->out = c->pend;
            c->out_len = c->pend_len;
            c->pend = NULL;
            c->pend_len = 0;
            *progress = 1;
            return 0;
        }
        if (c->phase == FRONT_RESPOND && c->answer_lost) {
            /* Only a 100 Continue went out: the request ends unanswered
             * (and is recorded so) with the connection. */
            conn_free(c);
            return -1;
        }
        if (c->phase == FRONT_RESPOND) {
            struct http_req *req = c->req;
            c->req = NULL;
            if (req != NULL)
                http_finish(req, 1);
            if (c->close_after || c->w->state != WORKER_RUNNING) {
                c->in_pump = 0;
                conn_linger(c);
                return -1;   /* done with (or freed) c */
            }
            c->phase = FRONT_HEAD;
            c->in_idle_seen = 0;
        }
    }
    return 0;
}

/* Move the unconsumed bytes of a full c->in to its start, so that reading
 * (and EPOLLIN interest, set_interest) can go on: a request head may start
 * mid-buffer after pipelined requests. */
static void in_make_room(front_conn *c)
{
    if (c->in_off > 0 && c->in_len == FRONT_BUF) {
        memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
        c->in_len -= c->in_off;
        c->in_off = 0;
    }
}

/* Read decrypted bytes into c->in.  Returns -1 when the connection was
 * freed (the terminal left or broke the TLS stream). */
static int read_in(front_conn *c, int *progress)
{
    int r;

    if (c->in_off == c->in_len)
        c->in_off = c->in_len = 0;
    in_make_room(c);
    /* Read only when the socket or OpenSSL may have something: a call
     * that can only say "would block" is a wasted system call. */
    if (c->in_len == FRONT_BUF ||
        (c->net_rd_blocked && !c->rd_wants_write && !SSL_has_pending(c->ssl)))
        return 0;
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
        return 0;
    }
    switch (SSL_get_error(c->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        c->rd_wants_write = 0;
        c->net_rd_blocked = 1;
        return 0;
    case SSL_ERROR_WANT_WRITE:
        c->rd_wants_write = 1;
        return 0;
    default:
        /* EOF, reset or protocol error from the terminal: it has left,
         * whatever it had sent is abandoned. */
        ERR_clear_error();
        conn_free(c);
        return -1;
    }
}

/* Never written to or freed (out_static). */
static char continue_100[] = "HTTP/1.1 100 Continue\r\n\r\n";

/* A complete head is buffered: parse it and start the request. */
static void start_request(front_conn *c, size_t head_len)
{
    h1_head h;
    h1_err e = h1_parse_head(c->in + c->in_off, head_len, &h);
    http_next next;

    c->in_off += head_len;
    if (e != H1_OK) {
        http_reject(c, e);
        return;
    }
    c->chunked = h.chunked;
    c->body_left = h.has_length ? h.length : 0;
    if (c->chunked)
        h1_chunked_init(&c->ch);
    c->phase = FRONT_BODY;
    if (http_begin(c, &h, &next) == NULL) {
        c->close_after = 1;
        c->phase = FRONT_RESPOND;   /* nothing to write: closes below */
        return;
    }
    if (next == HTTP_RESPONDED)
        return;
    /* The terminal waits for our go-ahead before sending the body. */
    if (h.expect_continue && (c->chunked || c->body_left > 0) && c->out == NULL) {
        c->out = continue_100;
        c->out_len = sizeof(continue_100) - 1;
        c->out_off = 0;
        c->out_static = 1;
    }
}

/* Feed buffered body bytes to the request. */
static void feed_body(front_conn *c)
{
    struct http_req *r = c->req;

    while (c->phase == FRONT_BODY) {
        const char *p = c->in + c->in_off;
        size_t avail = c->in_len - c->in_off;

        if (!c->chunked) {
            size_t n = avail;
            if ((uint64_t)n > c->body_left)
                n = (size_t)c->body_left;
            if (n > 0) {
                c->in_off += n;
                c->body_left -= n;
                if (http_body(r, p, n) != 0)
                    return;   /* answered; closes after */
            }
            if (c->body_left > 0)
                return;
        } else {
            const char *data;
            size_t used = 0, dlen;
            if (avail == 0 && !c->ch.done)
                return;
            if (!c->ch.done) {
                if (h1_chunked_step(&c->ch, p, avail, &used, &data, &dlen) != H1_OK) {
                    c->in_off += used;
                    http_bad_body(r);
                    return;
                }
                c->in_off += used;
                if (dlen > 0 && http_body(r, data, dlen) != 0)
                    return;
                if (!c->ch.done)
                    continue;
            }
        }
        c->phase = FRONT_WAIT;
        c->req_start = 0;
        http_body_end(r);
    }
}

/* Move the connection as far as it goes.  Returns -1 when it was freed. */
static int pump_once(front_conn *c, int *progress)
{
    if (write_out(c, progress) != 0)
        return -1;
    if (c->phase != FRONT_HEAD && c->phase != FRONT_BODY)
        return 0;
    if (read_in(c, progress) != 0)
        return -1;
    if (c->in == NULL)
        return 0;   /* nothing read yet */
    if (c->phase == FRONT_HEAD) {
        size_t hl;
        /* Empty lines before a request line are tolerated (RFC 9112 2.2). */
        while (c->in_len - c->in_off >= 2 && c->in[c->in_off] == '\r' &&
               c->in[c->in_off + 1] == '\n')
            c->in_off += 2;
        if (c->req_start == 0 && c->in_len > c->in_off)
            c->req_start = tg_now_ms();
        hl = h1_head_length(c->in + c->in_off, c->in_len - c->in_off);
        if (hl == 0) {
            if (c->in_len - c->in_off >= H1_MAX_HEAD)
                http_reject(c, H1_ERR_HEAD_TOO_LARGE);
            else
                in_make_room(c);
            return 0;
        }
        *progress = 1;
        start_request(c, hl);
    }
    if (c->phase == FRONT_BODY)
        feed_body(c);
    return 0;
}

/* Output queued and not waiting on the socket: the loop must go on. */
static int can_write(const front_conn *c)
{
    return c->out_len > c->out_off && !c->wr_blocked && !c->wr_wants_read;
}

static void conn_pump(front_conn *c)
{
    int progress, any = 0;

    if (c->phase == FRONT_HANDSHAKE) {
        conn_handshake(c);
        return;
    }
    if (c->phase == FRONT_LINGER)
        return;
    c->in_pump = 1;
    do {
        progress = 0;
        if (pump_once(c, &progress) != 0)
            return;
        any |= progress;
    } while (progress || can_write(c));
    c->in_pump = 0;
    if (c->phase == FRONT_RESPOND && c->out == NULL) {
        /* Nothing to answer with (out of memory): give up. */
        conn_free(c);
        return;
    }
    if (c->in_off == c->in_len) {
        buf_drop(c->w, &c->in, c->in_len);
        c->in_off = c->in_len = 0;
    }
    if (any)
        c->last_active = tg_now_ms();
    set_interest(c);
}

static void on_net(ev_handler *h, uint32_t events)
{
    front_conn *c = container_of(h, front_conn, net_h);

    if (events & (EPOLLERR | EPOLLHUP)) {
        conn_free(c);
        return;
    }
    if (c->phase == FRONT_LINGER) {
        linger_read(c);
        return;
    }
    if (events & EPOLLIN) {
        c->net_rd_blocked = 0;
        if ((c->phase == FRONT_WAIT || c->phase == FRONT_RESPOND) && !c->wr_wants_read)
            c->in_idle_seen = 1;   /* pipelined bytes wait in the socket */
    }
    if ((events & EPOLLRDHUP) &&
        (c->phase == FRONT_WAIT || c->phase == FRONT_RESPOND || c->in_len == FRONT_BUF)) {
        /* Gone while its request is being served (or with no room to read
         * its last bytes): abort. */
        conn_free(c);
        return;
    }
    conn_pump(c);
}

/* Socket reads under OpenSSL: a read that returned less than asked for
 * drained the socket, so the next SSL_read would only hear "would block"
 * (level-triggered epoll reports any later data). */
static long net_bio_cb(BIO *b, int oper, const char *argp, size_t len, int argi,
                       long argl, int ret, size_t *processed)
{
    (void)argp;
    (void)argi;
    (void)argl;
    if (oper == (BIO_CB_READ | BIO_CB_RETURN) && ret > 0 && processed != NULL &&
        *processed < len) {
        front_conn *c = (front_conn *)(void *)BIO_get_callback_arg(b);
        c->net_rd_blocked = 1;
    }
    return ret;
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
    c->net_h.fn = on_net;
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
    /* One read takes whatever the socket holds (not a record header, then
     * its body), and the callback notes when that drained the socket. */
    SSL_set_read_ahead(c->ssl, 1);
    BIO_set_callback_ex(SSL_get_rbio(c->ssl), net_bio_cb);
    BIO_set_callback_arg(SSL_get_rbio(c->ssl), (char *)c);
    SSL_set_accept_state(c->ssl);
    c->next = w->conns;
    if (w->conns != NULL)
        w->conns->prev = c;
    w->conns = c;
    w->n_conns++;
    w->stats.connections++;
    timer_init(&c->timer, on_timer, c);
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

/* The listener's numeric address, or NULL after logging why not. */
static struct addrinfo *front_resolve(const tg_listener_conf *conf)
{
    struct addrinfo hints, *ai = NULL;
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(conf->host, conf->port, &hints, &ai);
    if (rc != 0) {
        log_err("listener %s: %s", conf->address, gai_strerror(rc));
        return NULL;
    }
    return ai;
}

int front_address_free(const tg_listener_conf *conf)
{
    struct addrinfo *ai = front_resolve(conf);
    int fd, one = 1, err = 0;

    if (ai == NULL)
        return -1;
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        err = errno;
    } else {
        /* SO_REUSEADDR (connections of an earlier run in TIME_WAIT are no
         * obstacle) but not SO_REUSEPORT: a socket that holds the port with
         * SO_REUSEPORT, as every worker's does, makes this bind fail. */
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (ai->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0)
            err = errno;
        close(fd);
    }
    freeaddrinfo(ai);
    if (err == 0)
        return 0;
    if (err == EADDRINUSE)
        log_err("listener %s: address already in use (another transgate, or another "
                "server, listens there)", conf->address);
    else
        log_err("listener %s: %s", conf->address, strerror(err));
    return -1;
}

int front_listen(worker *w, front_listener *l, const tg_listener_conf *conf,
                 SSL_CTX *ctx)
{
    struct addrinfo *ai;
    int fd = -1, one = 1;

    l->w = w;
    l->ctx = ctx;
    l->h.fn = on_accept;
    l->fd = -1;
    ai = front_resolve(conf);
    if (ai == NULL)
        return -1;
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

