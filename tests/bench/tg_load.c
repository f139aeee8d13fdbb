/*
 * tg_load — HTTP/1.1 load generator for the transgate benchmark.
 *
 * One thread, one epoll loop, N keep-alive connections (plain or TLS), each
 * with at most one request outstanding. Two modes:
 *
 *   closed loop (default): every connection sends its next request as soon as
 *     the previous answer is complete; latency runs from the write of the
 *     request to the last byte of the answer.
 *   open loop (--rate R): requests are put on a fixed timeline, one every
 *     1/R s, whatever the server does; a request waits in a queue when no
 *     connection is free. Latency runs from the request's *scheduled* time,
 *     so a stalled server is charged for the requests it delayed (no
 *     coordinated omission).
 *
 * A run is a warm-up (answers not counted; covers connection set-up) then a
 * measured window. Only requests scheduled (open loop) or sent (closed loop)
 * inside the window count. After the window no new request is started and
 * the measured ones still out are awaited up to the request timeout.
 *
 * Output: one line of key=value on stdout, for scripts. Diagnostics on stderr.
 * Run by hand; never a timed assertion in CI.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define HDR_CAP        16384          /* response head limit */
#define READ_CHUNK     16384
#define TICK_NS        (20 * 1000000LL)
#define BACKOFF_NS     (100 * 1000000LL)
#define QUEUE_CAP      (1u << 20)     /* open-loop backlog limit */
#define MAX_STATUS     600
#define NS_PER_S       1000000000LL

enum conn_state {
    CS_IDLE_CLOSED,   /* no socket; waiting for a reconnect */
    CS_CONNECTING,    /* TCP connect in progress */
    CS_HANDSHAKE,     /* TLS handshake in progress */
    CS_READY,         /* connected, no request outstanding */
    CS_WRITING,       /* request partly written */
    CS_READING        /* request written, answer not complete */
};

enum body_mode { BM_NONE, BM_LENGTH, BM_CHUNKED, BM_CLOSE };

enum chunk_state { CH_SIZE, CH_EXT, CH_DATA, CH_DATA_END, CH_TRAILER };

struct conn {
    int fd;
    SSL *ssl;
    enum conn_state st;
    uint32_t events;          /* current epoll interest */
    int64_t backoff_until;
    int in_idle_list;
    /* request in progress */
    size_t wpos;
    int64_t start_ns;         /* latency origin */
    int measured;
    /* response parser */
    char hbuf[HDR_CAP];
    size_t hlen;
    int in_body;
    int status;
    int close_after;
    enum body_mode bm;
    uint64_t body_left;
    enum chunk_state ch;
    uint64_t ch_size;
    int ch_digits;
    size_t trailer_line;
};

struct opts {
    const char *url;
    const char *method;
    const char *ca_file;
    const char *servername;
    char *body;
    size_t body_len;
    char **headers;
    size_t n_headers;
    int conns;
    double rate;
    double duration_s;
    double warmup_s;
    double timeout_s;
    double ramp_s;
    int tls_max12;
    int quiet;
};

struct target {
    int tls;
    char host[256];
    char port[16];
    char path[2048];
    struct sockaddr_storage addr;
    socklen_t addrlen;
};

struct stats {
    uint64_t requests;        /* measured requests started or scheduled */
    uint64_t ok;
    uint64_t err_status;
    uint64_t err_io;
    uint64_t err_timeout;
    uint64_t err_dropped;
    uint64_t conn_fail;       /* connect or handshake failures, all phases */
    uint64_t connects;        /* successful connections, all phases */
    uint64_t all_ok;          /* 200 answers, all phases (for CPU per request) */
    uint64_t status[MAX_STATUS];
    uint64_t status_other;
    uint32_t *lat_us;
    size_t n_lat, cap_lat;
};

struct loader {
    struct opts o;
    struct target t;
    SSL_CTX *ctx;
    char *req;
    size_t req_len;
    int ep, tfd;
    struct conn *conns;
    int *idle;                /* stack of ready connections (open loop) */
    int n_idle;
    int64_t *queue;           /* ring of scheduled times (open loop) */
    size_t q_head, q_len;
    int64_t t0, t_warm, t_end, t_stop;
    uint64_t n_sched;
    int64_t next_sched;
    int64_t next_tick;
    int outstanding_measured;
    struct stats s;
};

static volatile sig_atomic_t g_interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    g_interrupted = 1;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "tg_load: %s\n", what);
    exit(2);
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (q == NULL)
        die("out of memory");
    return q;
}

/* ---- argument parsing ------------------------------------------------- */

static double parse_double(const char *s, const char *name, double lo, double hi)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= lo && v <= hi)) {
        fprintf(stderr, "tg_load: bad value for %s: '%s' (%g..%g)\n", name, s, lo, hi);
        exit(2);
    }
    return v;
}

static int parse_int(const char *s, const char *name, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "tg_load: bad value for %s: '%s' (%ld..%ld)\n", name, s, lo, hi);
        exit(2);
    }
    return (int)v;
}

static void read_file(const char *path, char **out, size_t *out_len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "tg_load: %s: %s\n", path, strerror(errno));
        exit(2);
    }
    size_t cap = 4096, len = 0;
    char *b = xrealloc(NULL, cap);
    for (;;) {
        if (len == cap) {
            if (cap > (64u << 20))
                die("body file larger than 64 MiB");
            cap *= 2;
            b = xrealloc(b, cap);
        }
        size_t n = fread(b + len, 1, cap - len, f);
        if (n == 0)
            break;
        len += n;
    }
    if (ferror(f)) {
        fprintf(stderr, "tg_load: %s: read error\n", path);
        exit(2);
    }
    fclose(f);
    *out = b;
    *out_len = len;
}

static void usage(FILE *f)
{
    fprintf(f,
        "usage: tg_load --url URL [options]\n"
        "  --url http[s]://HOST[:PORT]/PATH   target (HOST numeric or a name)\n"
        "  --ca FILE             CA bundle for https (peer and host name are verified)\n"
        "  --servername NAME     name for SNI and verification (default: URL host)\n"
        "  --tls12               offer TLS 1.2 only (default: TLS 1.2 and 1.3)\n"
        "  -X, --method M        default POST if a body is given, else GET\n"
        "  -H, --header 'N: V'   extra request header (repeatable)\n"
        "  --body STRING | --body-file FILE\n"
        "  -c, --connections N   concurrent connections (default 16)\n"
        "  -r, --rate R          open loop at R requests/s (default: closed loop)\n"
        "  -d, --duration S      measured window in seconds (default 10)\n"
        "  -w, --warmup S        unmeasured warm-up before the window (default 1)\n"
        "  -t, --timeout S       per-request timeout (default 10)\n"
        "  --ramp S              open the connections evenly over S seconds of the\n"
        "                        warm-up (default 0: all at once)\n"
        "  -q, --quiet           no progress on stderr\n"
        "output: one key=value line on stdout; exit 0 if every measured request\n"
        "got 200 (and there was at least one), 1 otherwise, 2 on usage or set-up errors\n");
}

static void parse_args(struct opts *o, int argc, char **argv)
{
    static const struct option lo[] = {
        {"url", required_argument, NULL, 'u'},
        {"ca", required_argument, NULL, 'C'},
        {"servername", required_argument, NULL, 'S'},
        {"tls12", no_argument, NULL, '2'},
        {"method", required_argument, NULL, 'X'},
        {"header", required_argument, NULL, 'H'},
        {"body", required_argument, NULL, 'b'},
        {"body-file", required_argument, NULL, 'B'},
        {"connections", required_argument, NULL, 'c'},
        {"rate", required_argument, NULL, 'r'},
        {"duration", required_argument, NULL, 'd'},
        {"warmup", required_argument, NULL, 'w'},
        {"timeout", required_argument, NULL, 't'},
        {"ramp", required_argument, NULL, 'R'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}
    };
    memset(o, 0, sizeof *o);
    o->conns = 16;
    o->duration_s = 10;
    o->warmup_s = 1;
    o->timeout_s = 10;
    int c;
    while ((c = getopt_long(argc, argv, "X:H:c:r:d:w:t:qh", lo, NULL)) != -1) {
        switch (c) {
        case 'u': o->url = optarg; break;
        case 'C': o->ca_file = optarg; break;
        case 'S': o->servername = optarg; break;
        case '2': o->tls_max12 = 1; break;
        case 'X': o->method = optarg; break;
        case 'H':
            o->headers = xrealloc(o->headers, (o->n_headers + 1) * sizeof *o->headers);
            o->headers[o->n_headers++] = optarg;
            break;
        case 'b':
            free(o->body);
            o->body_len = strlen(optarg);
            o->body = xrealloc(NULL, o->body_len + 1);
            memcpy(o->body, optarg, o->body_len + 1);
            break;
        case 'B':
            free(o->body);
            read_file(optarg, &o->body, &o->body_len);
            break;
        case 'c': o->conns = parse_int(optarg, "--connections", 1, 100000); break;
        case 'r': o->rate = parse_double(optarg, "--rate", 0.001, 1e7); break;
        case 'd': o->duration_s = parse_double(optarg, "--duration", 0.1, 86400); break;
        case 'w': o->warmup_s = parse_double(optarg, "--warmup", 0, 3600); break;
        case 't': o->timeout_s = parse_double(optarg, "--timeout", 0.01, 3600); break;
        case 'R': o->ramp_s = parse_double(optarg, "--ramp", 0, 3600); break;
        case 'q': o->quiet = 1; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); exit(2);
        }
    }
    if (optind != argc || o->url == NULL) {
        usage(stderr);
        exit(2);
    }
    if (o->method == NULL)
        o->method = o->body != NULL ? "POST" : "GET";
    if (o->ramp_s > o->warmup_s) {
        fprintf(stderr, "tg_load: --ramp must not exceed --warmup\n");
        exit(2);
    }
}

static void parse_url(const char *url, struct target *t)
{
    const char *p = NULL;
    if (strncmp(url, "https://", 8) == 0) {
        t->tls = 1;
        p = url + 8;
    } else if (strncmp(url, "http://", 7) == 0) {
        t->tls = 0;
        p = url + 7;
    } else {
        die("--url must start with http:// or https://");
    }
    const char *host_end;
    const char *after;
    if (*p == '[') {
        host_end = strchr(p, ']');
        if (host_end == NULL)
            die("--url: unterminated [IPv6] host");
        p++;
        after = host_end + 1;
    } else {
        host_end = p + strcspn(p, ":/");
        after = host_end;
    }
    size_t hl = (size_t)(host_end - p);
    if (hl == 0 || hl >= sizeof t->host)
        die("--url: bad host");
    memcpy(t->host, p, hl);
    t->host[hl] = '\0';
    const char *path = strchr(after, '/');
    if (*after == ':') {
        size_t pl = path != NULL ? (size_t)(path - after - 1) : strlen(after + 1);
        if (pl == 0 || pl >= sizeof t->port)
            die("--url: bad port");
        memcpy(t->port, after + 1, pl);
        t->port[pl] = '\0';
    } else if (*after == '/' || *after == '\0') {
        snprintf(t->port, sizeof t->port, "%s", t->tls ? "443" : "80");
    } else {
        die("--url: bad authority");
    }
    if (path == NULL)
        path = "/";
    if (strlen(path) >= sizeof t->path)
        die("--url: path too long");
    snprintf(t->path, sizeof t->path, "%s", path);

    struct addrinfo hints, *res;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(t->host, t->port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "tg_load: %s: %s\n", t->host, gai_strerror(rc));
        exit(2);
    }
    memcpy(&t->addr, res->ai_addr, res->ai_addrlen);
    t->addrlen = res->ai_addrlen;
    freeaddrinfo(res);
}

static void build_request(struct loader *L)
{
    const struct opts *o = &L->o;
    size_t cap = 1024 + strlen(L->t.path) + o->body_len;
    for (size_t i = 0; i < o->n_headers; i++)
        cap += strlen(o->headers[i]) + 2;
    L->req = xrealloc(NULL, cap);
    int have_host = 0;
    for (size_t i = 0; i < o->n_headers; i++)
        if (strncasecmp(o->headers[i], "host:", 5) == 0)
            have_host = 1;
    int n = snprintf(L->req, cap, "%s %s HTTP/1.1\r\n", o->method, L->t.path);
    size_t len = (size_t)n;
    if (!have_host) {
        int v6 = strchr(L->t.host, ':') != NULL;
        n = snprintf(L->req + len, cap - len, "Host: %s%s%s:%s\r\n",
                     v6 ? "[" : "", L->t.host, v6 ? "]" : "", L->t.port);
        len += (size_t)n;
    }
    for (size_t i = 0; i < o->n_headers; i++) {
        n = snprintf(L->req + len, cap - len, "%s\r\n", o->headers[i]);
        len += (size_t)n;
    }
    if (o->body != NULL) {
        n = snprintf(L->req + len, cap - len, "Content-Length: %zu\r\n", o->body_len);
        len += (size_t)n;
    }
    memcpy(L->req + len, "\r\n", 2);
    len += 2;
    if (o->body != NULL) {
        memcpy(L->req + len, o->body, o->body_len);
        len += o->body_len;
    }
    L->req_len = len;
}

/* ---- TLS -------------------------------------------------------------- */

static void tls_init(struct loader *L)
{
    L->ctx = SSL_CTX_new(TLS_client_method());
    if (L->ctx == NULL)
        die("SSL_CTX_new failed");
    SSL_CTX_set_min_proto_version(L->ctx, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(L->ctx, L->o.tls_max12 ? TLS1_2_VERSION : TLS1_3_VERSION);
    SSL_CTX_set_verify(L->ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_session_cache_mode(L->ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_mode(L->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE);
    if (L->o.ca_file != NULL) {
        if (SSL_CTX_load_verify_locations(L->ctx, L->o.ca_file, NULL) != 1) {
            fprintf(stderr, "tg_load: cannot load CA file %s\n", L->o.ca_file);
            ERR_print_errors_fp(stderr);
            exit(2);
        }
    } else if (SSL_CTX_set_default_verify_paths(L->ctx) != 1) {
        die("cannot load the default CA store");
    }
}

static int is_ip_literal(const char *s)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static SSL *tls_new(struct loader *L, int fd)
{
    SSL *ssl = SSL_new(L->ctx);
    if (ssl == NULL)
        return NULL;
    const char *name = L->o.servername != NULL ? L->o.servername : L->t.host;
    int ok = SSL_set_fd(ssl, fd) == 1;
    if (ok && is_ip_literal(name)) {
        ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1;
    } else if (ok) {
        /* The control macro casts away const; the name is not modified. */
        char *sni = (char *)(uintptr_t)name;
        ok = SSL_set_tlsext_host_name(ssl, sni) == 1 && SSL_set1_host(ssl, name) == 1;
    }
    if (!ok) {
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_connect_state(ssl);
    return ssl;
}

/* ---- connections ------------------------------------------------------ */

static void set_interest(struct loader *L, struct conn *c, uint32_t ev)
{
    if (c->events == ev)
        return;
    struct epoll_event e = {.events = ev, .data.u32 = (uint32_t)(c - L->conns)};
    if (epoll_ctl(L->ep, EPOLL_CTL_MOD, c->fd, &e) != 0)
        die("epoll_ctl(MOD) failed");
    c->events = ev;
}

static void conn_close(struct loader *L, struct conn *c, int backoff)
{
    if (c->ssl != NULL) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd);   /* also removes it from epoll */
        c->fd = -1;
    }
    c->st = CS_IDLE_CLOSED;
    c->backoff_until = backoff ? now_ns() + BACKOFF_NS : 0;
    if (c->in_idle_list) {
        for (int i = 0; i < L->n_idle; i++) {
            if (L->idle[i] == (int)(c - L->conns)) {
                L->idle[i] = L->idle[--L->n_idle];
                break;
            }
        }
        c->in_idle_list = 0;
    }
}

static void conn_start(struct loader *L, struct conn *c)
{
    int fd = socket(L->t.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        L->s.conn_fail++;
        c->st = CS_IDLE_CLOSED;
        c->backoff_until = now_ns() + BACKOFF_NS;
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd = fd;
    c->events = EPOLLIN | EPOLLOUT;
    struct epoll_event e = {.events = c->events, .data.u32 = (uint32_t)(c - L->conns)};
    if (epoll_ctl(L->ep, EPOLL_CTL_ADD, fd, &e) != 0)
        die("epoll_ctl(ADD) failed");
    if (connect(fd, (struct sockaddr *)&L->t.addr, L->t.addrlen) != 0 && errno != EINPROGRESS) {
        L->s.conn_fail++;
        conn_close(L, c, 1);
        return;
    }
    c->st = CS_CONNECTING;
}

static void resp_reset(struct conn *c)
{
    c->hlen = 0;
    c->in_body = 0;
    c->status = 0;
    c->close_after = 0;
    c->bm = BM_NONE;
    c->body_left = 0;
    c->ch = CH_SIZE;
    c->ch_size = 0;
    c->ch_digits = 0;
    c->trailer_line = 0;
}

static void record_latency(struct stats *s, int64_t ns)
{
    if (s->n_lat == s->cap_lat) {
        s->cap_lat = s->cap_lat ? s->cap_lat * 2 : 65536;
        s->lat_us = xrealloc(s->lat_us, s->cap_lat * sizeof *s->lat_us);
    }
    int64_t us = ns / 1000;
    if (us < 0)
        us = 0;
    if (us > (int64_t)UINT32_MAX)
        us = UINT32_MAX;
    s->lat_us[s->n_lat++] = (uint32_t)us;
}

/* A measured request failed without an answer (I/O error, timeout). */
static void request_failed(struct loader *L, struct conn *c, uint64_t *counter)
{
    if (c->st == CS_WRITING || c->st == CS_READING) {
        if (c->measured) {
            (*counter)++;
            L->outstanding_measured--;
        }
        c->measured = 0;
    }
}

static void request_send(struct loader *L, struct conn *c, int64_t start_ns, int measured)
{
    c->st = CS_WRITING;
    c->wpos = 0;
    c->start_ns = start_ns;
    c->measured = measured;
    if (measured)
        L->outstanding_measured++;
    resp_reset(c);
}

/* Give a ready connection its next request, if there is one. */
static void dispatch(struct loader *L, struct conn *c)
{
    int64_t now = now_ns();
    if (L->o.rate > 0) {
        if (L->q_len > 0) {
            int64_t sched = L->queue[L->q_head];
            L->q_head = (L->q_head + 1) % QUEUE_CAP;
            L->q_len--;
            request_send(L, c, sched, sched >= L->t_warm && sched < L->t_end);
        } else if (!c->in_idle_list) {
            L->idle[L->n_idle++] = (int)(c - L->conns);
            c->in_idle_list = 1;
        }
        return;
    }
    if (now < L->t_end && !g_interrupted) {
        int measured = now >= L->t_warm;
        if (measured)
            L->s.requests++;
        request_send(L, c, now, measured);
    }
}

/* Parse the head in c->hbuf (c->hlen bytes, ending in CRLFCRLF). */
static int parse_head(struct loader *L, struct conn *c)
{
    char *h = c->hbuf;
    h[c->hlen] = '\0';
    if (c->hlen < 12 || strncmp(h, "HTTP/1.", 7) != 0)
        return -1;
    int http10 = h[7] == '0';
    if (h[8] != ' ')
        return -1;
    char *end;
    long st = strtol(h + 9, &end, 10);
    if (end != h + 12 || st < 100 || st > 999)
        return -1;
    c->status = (int)st;
    c->close_after = http10;
    int have_len = 0, chunked = 0;
    uint64_t clen = 0;
    char *line = strstr(h, "\r\n");
    while (line != NULL) {
        line += 2;
        char *eol = strstr(line, "\r\n");
        if (eol == NULL || eol == line)
            break;
        *eol = '\0';
        char *colon = strchr(line, ':');
        if (colon != NULL) {
            *colon = '\0';
            char *v = colon + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            if (strcasecmp(line, "content-length") == 0) {
                errno = 0;
                unsigned long long n = strtoull(v, &end, 10);
                if (errno != 0 || end == v)
                    return -1;
                clen = n;
                have_len = 1;
            } else if (strcasecmp(line, "transfer-encoding") == 0) {
                if (strcasestr(v, "chunked") != NULL)
                    chunked = 1;
            } else if (strcasecmp(line, "connection") == 0) {
                if (strcasestr(v, "close") != NULL)
                    c->close_after = 1;
                else if (strcasestr(v, "keep-alive") != NULL)
                    c->close_after = 0;
            }
        }
        line = eol;
    }
    if ((st >= 100 && st < 200) || st == 204 || st == 304 ||
        strcmp(L->o.method, "HEAD") == 0) {
        c->bm = BM_NONE;
    } else if (chunked) {
        c->bm = BM_CHUNKED;
    } else if (have_len) {
        c->bm = clen > 0 ? BM_LENGTH : BM_NONE;
        c->body_left = clen;
    } else {
        c->bm = BM_CLOSE;
        c->close_after = 1;
    }
    return 0;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* Feed body bytes; returns 1 when the body is complete, 0 for more, -1 on error.
 * *used gets the number of bytes consumed. */
static int body_feed(struct conn *c, const char *p, size_t n, size_t *used)
{
    size_t i = 0;
    int done = 0;
    switch (c->bm) {
    case BM_NONE:
        done = 1;
        break;
    case BM_CLOSE:
        i = n;
        break;
    case BM_LENGTH: {
        size_t k = n < c->body_left ? n : (size_t)c->body_left;
        c->body_left -= k;
        i = k;
        done = c->body_left == 0;
        break;
    }
    case BM_CHUNKED:
        while (i < n && !done) {
            char ch = p[i];
            switch (c->ch) {
            case CH_SIZE:
            case CH_EXT:
                i++;
                if (c->ch == CH_SIZE && hexval(ch) >= 0) {
                    if (c->ch_digits++ > 15)
                        return -1;
                    c->ch_size = c->ch_size * 16 + (uint64_t)hexval(ch);
                } else if (ch == '\n') {
                    if (c->ch_digits == 0)
                        return -1;
                    c->ch = c->ch_size == 0 ? CH_TRAILER : CH_DATA;
                    c->trailer_line = 0;
                } else if (ch == ';' || ch == ' ' || ch == '\t') {
                    c->ch = CH_EXT;
                } else if (ch != '\r' && c->ch == CH_SIZE) {
                    return -1;
                }
                break;
            case CH_DATA: {
                size_t k = n - i < c->ch_size ? n - i : (size_t)c->ch_size;
                c->ch_size -= k;
                i += k;
                if (c->ch_size == 0)
                    c->ch = CH_DATA_END;
                break;
            }
            case CH_DATA_END:
                i++;
                if (ch == '\n') {
                    c->ch = CH_SIZE;
                    c->ch_digits = 0;
                } else if (ch != '\r') {
                    return -1;
                }
                break;
            case CH_TRAILER:
                i++;
                if (ch == '\n') {
                    if (c->trailer_line == 0)
                        done = 1;
                    c->trailer_line = 0;
                } else if (ch != '\r') {
                    c->trailer_line++;
                }
                break;
            }
        }
        break;
    }
    *used = i;
    return done;
}

static void response_done(struct loader *L, struct conn *c)
{
    int64_t now = now_ns();
    if (c->status == 200)
        L->s.all_ok++;
    if (c->measured) {
        L->outstanding_measured--;
        if (c->status < MAX_STATUS)
            L->s.status[c->status]++;
        else
            L->s.status_other++;
        if (c->status == 200) {
            L->s.ok++;
            record_latency(&L->s, now - c->start_ns);
        } else {
            L->s.err_status++;
        }
    }
    c->measured = 0;
    c->st = CS_READY;
}

/* Feed received bytes; returns 1 when an answer completed, 0 for more, -1 on error. */
static int resp_feed(struct loader *L, struct conn *c, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (!c->in_body) {
            /* copy until the blank line that ends the head */
            while (i < n && c->hlen + 1 < HDR_CAP) {
                c->hbuf[c->hlen++] = p[i++];
                if (c->hlen >= 4 && memcmp(c->hbuf + c->hlen - 4, "\r\n\r\n", 4) == 0)
                    break;
            }
            if (c->hlen >= 4 && memcmp(c->hbuf + c->hlen - 4, "\r\n\r\n", 4) == 0) {
                if (parse_head(L, c) != 0)
                    return -1;
                if (c->status < 200) {   /* interim answer: wait for the real one */
                    resp_reset(c);
                    continue;
                }
                c->in_body = 1;
                if (c->bm == BM_NONE)
                    return i == n ? 1 : -1;
            } else if (c->hlen + 1 >= HDR_CAP) {
                return -1;
            }
            continue;
        }
        size_t used = 0;
        int r = body_feed(c, p + i, n - i, &used);
        if (r < 0)
            return -1;
        i += used;
        if (r == 1)
            return i == n ? 1 : -1;   /* nothing may follow: one request at a time */
    }
    if (c->in_body && c->bm == BM_NONE)
        return 1;
    return 0;
}

static void handle_io_error(struct loader *L, struct conn *c)
{
    request_failed(L, c, &L->s.err_io);
    conn_close(L, c, 0);
    conn_start(L, c);
}

/* Advance a connection as far as it goes without blocking. */
static void conn_drive(struct loader *L, struct conn *c, uint32_t revents)
{
    char buf[READ_CHUNK];
    for (;;) {
        switch (c->st) {
        case CS_IDLE_CLOSED:
            return;
        case CS_CONNECTING: {
            if (!(revents & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
                return;
            int err = 0;
            socklen_t el = sizeof err;
            if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
                L->s.conn_fail++;
                conn_close(L, c, 1);
                return;
            }
            if (L->t.tls) {
                c->ssl = tls_new(L, c->fd);
                if (c->ssl == NULL)
                    die("cannot create a TLS session");
                c->st = CS_HANDSHAKE;
            } else {
                L->s.connects++;
                c->st = CS_READY;
                set_interest(L, c, EPOLLIN);
                dispatch(L, c);
            }
            break;
        }
        case CS_HANDSHAKE: {
            ERR_clear_error();
            int r = SSL_do_handshake(c->ssl);
            if (r == 1) {
                L->s.connects++;
                c->st = CS_READY;
                set_interest(L, c, EPOLLIN);
                dispatch(L, c);
                break;
            }
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ) {
                set_interest(L, c, EPOLLIN);
                return;
            }
            if (e == SSL_ERROR_WANT_WRITE) {
                set_interest(L, c, EPOLLIN | EPOLLOUT);
                return;
            }
            L->s.conn_fail++;
            if (L->s.conn_fail <= 3) {
                unsigned long ec = ERR_peek_error();
                char eb[256];
                ERR_error_string_n(ec, eb, sizeof eb);
                long vr = SSL_get_verify_result(c->ssl);
                fprintf(stderr, "tg_load: TLS handshake failed: %s (verify: %s)\n",
                        ec != 0 ? eb : "connection closed",
                        X509_verify_cert_error_string(vr));
            }
            ERR_clear_error();
            conn_close(L, c, 1);
            return;
        }
        case CS_READY: {
            /* idle: only a close (or unexpected bytes) can arrive */
            if (!(revents & (EPOLLIN | EPOLLERR | EPOLLHUP)))
                return;
            ssize_t n;
            if (c->ssl != NULL) {
                ERR_clear_error();
                int r = SSL_read(c->ssl, buf, sizeof buf);
                if (r <= 0) {
                    int e = SSL_get_error(c->ssl, r);
                    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                        ERR_clear_error();
                        return;
                    }
                }
                n = r;
            } else {
                n = read(c->fd, buf, sizeof buf);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                    return;
            }
            /* EOF, error or unsolicited data: start over */
            ERR_clear_error();
            conn_close(L, c, 0);
            conn_start(L, c);
            return;
        }
        case CS_WRITING: {
            while (c->wpos < L->req_len) {
                ssize_t n;
                if (c->ssl != NULL) {
                    ERR_clear_error();
                    int r = SSL_write(c->ssl, L->req + c->wpos, (int)(L->req_len - c->wpos));
                    if (r <= 0) {
                        int e = SSL_get_error(c->ssl, r);
                        if (e == SSL_ERROR_WANT_WRITE) {
                            set_interest(L, c, EPOLLIN | EPOLLOUT);
                            return;
                        }
                        if (e == SSL_ERROR_WANT_READ) {
                            set_interest(L, c, EPOLLIN);
                            return;
                        }
                        handle_io_error(L, c);
                        return;
                    }
                    n = r;
                } else {
                    n = send(c->fd, L->req + c->wpos, L->req_len - c->wpos, MSG_NOSIGNAL);
                    if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR) {
                            set_interest(L, c, EPOLLIN | EPOLLOUT);
                            return;
                        }
                        handle_io_error(L, c);
                        return;
                    }
                }
                c->wpos += (size_t)n;
            }
            c->st = CS_READING;
            set_interest(L, c, EPOLLIN);
            revents = EPOLLIN;   /* try a read right away; cheap EAGAIN otherwise */
            break;
        }
        case CS_READING: {
            ssize_t n;
            if (c->ssl != NULL) {
                ERR_clear_error();
                int r = SSL_read(c->ssl, buf, sizeof buf);
                if (r <= 0) {
                    int e = SSL_get_error(c->ssl, r);
                    if (e == SSL_ERROR_WANT_READ) {
                        set_interest(L, c, EPOLLIN);
                        return;
                    }
                    if (e == SSL_ERROR_WANT_WRITE) {
                        set_interest(L, c, EPOLLIN | EPOLLOUT);
                        return;
                    }
                    if (e == SSL_ERROR_ZERO_RETURN && c->in_body && c->bm == BM_CLOSE) {
                        response_done(L, c);
                        conn_close(L, c, 0);
                        conn_start(L, c);
                        return;
                    }
                    handle_io_error(L, c);
                    return;
                }
                n = r;
            } else {
                n = read(c->fd, buf, sizeof buf);
                if (n < 0) {
                    if (errno == EAGAIN || errno == EINTR)
                        return;
                    handle_io_error(L, c);
                    return;
                }
                if (n == 0) {
                    if (c->in_body && c->bm == BM_CLOSE) {
                        response_done(L, c);
                        conn_close(L, c, 0);
                        conn_start(L, c);
                        return;
                    }
                    handle_io_error(L, c);
                    return;
                }
            }
            int r = resp_feed(L, c, buf, (size_t)n);
            if (r < 0) {
                handle_io_error(L, c);
                return;
            }
            if (r == 1) {
                int close_after = c->close_after;
                response_done(L, c);
                if (close_after) {
                    conn_close(L, c, 0);
                    conn_start(L, c);
                    return;
                }
                dispatch(L, c);
            }
            break;
        }
        }
    }
}

/* ---- timeline --------------------------------------------------------- */

static void arm_timer(struct loader *L)
{
    int64_t at = L->next_tick;
    if (L->o.rate > 0 && L->next_sched < L->t_end && L->next_sched < at)
        at = L->next_sched;
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    its.it_value.tv_sec = at / NS_PER_S;
    its.it_value.tv_nsec = at % NS_PER_S;
    if (timerfd_settime(L->tfd, TFD_TIMER_ABSTIME, &its, NULL) != 0)
        die("timerfd_settime failed");
}

static void schedule_due(struct loader *L, int64_t now)
{
    while (L->next_sched <= now && L->next_sched < L->t_end && !g_interrupted) {
        int64_t sched = L->next_sched;
        int measured = sched >= L->t_warm;
        if (measured)
            L->s.requests++;
        if (L->n_idle > 0) {
            struct conn *c = &L->conns[L->idle[--L->n_idle]];
            c->in_idle_list = 0;
            request_send(L, c, sched, measured);
            conn_drive(L, c, EPOLLOUT);
        } else if (L->q_len < QUEUE_CAP) {
            L->queue[(L->q_head + L->q_len) % QUEUE_CAP] = sched;
            L->q_len++;
        } else if (measured) {
            L->s.err_dropped++;
        }
        L->n_sched++;
        L->next_sched = L->t0 + (int64_t)((double)L->n_sched * 1e9 / L->o.rate);
    }
}

static void housekeeping(struct loader *L, int64_t now)
{
    int64_t tmo = (int64_t)(L->o.timeout_s * 1e9);
    for (int i = 0; i < L->o.conns; i++) {
        struct conn *c = &L->conns[i];
        if ((c->st == CS_WRITING || c->st == CS_READING) && now - c->start_ns > tmo) {
            request_failed(L, c, &L->s.err_timeout);
            conn_close(L, c, 0);
            conn_start(L, c);
        } else if (c->st == CS_IDLE_CLOSED && now >= c->backoff_until &&
                   now < L->t_end && !g_interrupted) {
            conn_start(L, c);
        }
    }
    /* queued open-loop requests older than the timeout are given up */
    while (L->q_len > 0 && now - L->queue[L->q_head] > tmo) {
        int64_t sched = L->queue[L->q_head];
        if (sched >= L->t_warm && sched < L->t_end)
            L->s.err_timeout++;
        L->q_head = (L->q_head + 1) % QUEUE_CAP;
        L->q_len--;
    }
}

static int queue_has_measured(const struct loader *L)
{
    for (size_t i = 0; i < L->q_len; i++) {
        int64_t s = L->queue[(L->q_head + i) % QUEUE_CAP];
        if (s >= L->t_warm && s < L->t_end)
            return 1;
    }
    return 0;
}

/* ---- report ----------------------------------------------------------- */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_ms(const struct stats *s, double q)
{
    if (s->n_lat == 0)
        return 0;
    size_t k = (size_t)ceil(q * (double)s->n_lat);
    if (k == 0)
        k = 1;
    if (k > s->n_lat)
        k = s->n_lat;
    return s->lat_us[k - 1] / 1000.0;
}

static void report(struct loader *L, double window_s)
{
    struct stats *s = &L->s;
    if (s->n_lat > 0)
        qsort(s->lat_us, s->n_lat, sizeof *s->lat_us, cmp_u32);
    double sum = 0;
    for (size_t i = 0; i < s->n_lat; i++)
        sum += s->lat_us[i];
    uint64_t errors = s->err_status + s->err_io + s->err_timeout + s->err_dropped;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    printf("mode=%s conns=%d rate=%.0f duration_s=%.2f warmup_s=%.2f ramp_s=%.2f tls=%s "
           "requests=%" PRIu64 " ok=%" PRIu64 " errors=%" PRIu64
           " err_status=%" PRIu64 " err_io=%" PRIu64 " err_timeout=%" PRIu64
           " err_dropped=%" PRIu64 " connects=%" PRIu64 " conn_fail=%" PRIu64
           " throughput=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f p999_ms=%.3f"
           " max_ms=%.3f mean_ms=%.3f all_ok=%" PRIu64 " loadgen_cpu_s=%.2f",
           L->o.rate > 0 ? "open" : "closed", L->o.conns, L->o.rate, window_s,
           L->o.warmup_s, L->o.ramp_s, L->t.tls ? (L->o.tls_max12 ? "1.2" : "1.3") : "off",
           s->requests, s->ok, errors, s->err_status, s->err_io, s->err_timeout,
           s->err_dropped, s->connects, s->conn_fail,
           window_s > 0 ? (double)s->ok / window_s : 0.0,
           pct_ms(s, 0.50), pct_ms(s, 0.90), pct_ms(s, 0.99), pct_ms(s, 0.999),
           s->n_lat ? s->lat_us[s->n_lat - 1] / 1000.0 : 0.0,
           s->n_lat ? sum / (double)s->n_lat / 1000.0 : 0.0, s->all_ok, cpu);
    for (int i = 0; i < MAX_STATUS; i++)
        if (s->status[i] != 0)
            printf(" status_%d=%" PRIu64, i, s->status[i]);
    if (s->status_other != 0)
        printf(" status_other=%" PRIu64, s->status_other);
    printf("\n");
    fflush(stdout);
}

static void raise_nofile(int need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = (rlim_t)need + 64;
    if (rl.rlim_cur >= want)
        return;
    rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < want)
        fprintf(stderr, "tg_load: warning: RLIMIT_NOFILE is %llu, %d connections need more\n",
                (unsigned long long)rl.rlim_cur, need);
}

int main(int argc, char **argv)
{
    struct loader L;
    memset(&L, 0, sizeof L);
    parse_args(&L.o, argc, argv);
    parse_url(L.o.url, &L.t);
    build_request(&L);
    if (L.t.tls)
        tls_init(&L);
    raise_nofile(L.o.conns);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    L.ep = epoll_create1(EPOLL_CLOEXEC);
    L.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (L.ep < 0 || L.tfd < 0)
        die("epoll/timerfd creation failed");
    struct epoll_event te = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
    if (epoll_ctl(L.ep, EPOLL_CTL_ADD, L.tfd, &te) != 0)
        die("epoll_ctl(timerfd) failed");

    L.conns = xrealloc(NULL, (size_t)L.o.conns * sizeof *L.conns);
    memset(L.conns, 0, (size_t)L.o.conns * sizeof *L.conns);
    L.idle = xrealloc(NULL, (size_t)L.o.conns * sizeof *L.idle);
    if (L.o.rate > 0)
        L.queue = xrealloc(NULL, QUEUE_CAP * sizeof *L.queue);

    L.t0 = now_ns();
    L.t_warm = L.t0 + (int64_t)(L.o.warmup_s * 1e9);
    L.t_end = L.t_warm + (int64_t)(L.o.duration_s * 1e9);
    L.t_stop = L.t_end + (int64_t)(L.o.timeout_s * 1e9) + NS_PER_S / 10;
    L.next_sched = L.t0;
    L.next_tick = L.t0 + TICK_NS;

    /* A ramp spreads the connections' phases: with a slow upstream and a
     * closed loop, connections opened together stay in lock-step and the
     * server sees bursts instead of a steady rate. */
    for (int i = 0; i < L.o.conns; i++) {
        L.conns[i].fd = -1;
        L.conns[i].st = CS_IDLE_CLOSED;
        L.conns[i].backoff_until = L.t0 + (int64_t)(L.o.ramp_s * 1e9 * i / L.o.conns);
        if (L.conns[i].backoff_until <= L.t0)
            conn_start(&L, &L.conns[i]);
    }
    arm_timer(&L);

    int64_t last_progress = L.t0;
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(L.ep, evs, 256, 1000);
        if (n < 0 && errno != EINTR)
            die("epoll_wait failed");
        for (int i = 0; i < n; i++) {
            uint32_t id = evs[i].data.u32;
            if (id == UINT32_MAX) {
                uint64_t exp;
                while (read(L.tfd, &exp, sizeof exp) > 0)
                    ;
                continue;
            }
            conn_drive(&L, &L.conns[id], evs[i].events);
        }
        int64_t now = now_ns();
        if (L.o.rate > 0) {
            schedule_due(&L, now);
            /* queued requests go to connections that became free */
            while (L.q_len > 0 && L.n_idle > 0) {
                struct conn *c = &L.conns[L.idle[--L.n_idle]];
                c->in_idle_list = 0;
                dispatch(&L, c);
                conn_drive(&L, c, EPOLLOUT);
            }
        }
        if (now >= L.next_tick) {
            housekeeping(&L, now);
            L.next_tick = now + TICK_NS;
            if (!L.o.quiet && now - last_progress >= 5 * NS_PER_S) {
                last_progress = now;
                fprintf(stderr, "tg_load: t=%.0fs connected=%" PRIu64 " ok=%" PRIu64
                        " errors=%" PRIu64 "\n", (double)(now - L.t0) / 1e9,
                        L.s.connects, L.s.ok,
                        L.s.err_status + L.s.err_io + L.s.err_timeout + L.s.err_dropped);
            }
        }
        if (g_interrupted && L.t_end > now) {
            /* cut the window short; report what was measured so far */
            L.t_end = now > L.t_warm ? now : L.t_warm;
            L.t_stop = now + (int64_t)(L.o.timeout_s * 1e9);
        }
        if (now >= L.t_end &&
            ((L.outstanding_measured == 0 && !queue_has_measured(&L)) || now >= L.t_stop))
            break;
        arm_timer(&L);
    }
    /* whatever is still out past the deadline has timed out */
    for (int i = 0; i < L.o.conns; i++)
        request_failed(&L, &L.conns[i], &L.s.err_timeout);
    while (L.q_len > 0) {
        int64_t s = L.queue[L.q_head];
        if (s >= L.t_warm && s < L.t_end)
            L.s.err_timeout++;
        L.q_head = (L.q_head + 1) % QUEUE_CAP;
        L.q_len--;
    }
    double window_s = (double)(L.t_end - L.t_warm) / 1e9;
    report(&L, window_s);
    int failed = L.s.ok == 0 ||
                 L.s.err_status + L.s.err_io + L.s.err_timeout + L.s.err_dropped != 0;
    for (int i = 0; i < L.o.conns; i++)
        conn_close(&L, &L.conns[i], 0);
    SSL_CTX_free(L.ctx);
    free(L.conns);
    free(L.idle);
    free(L.queue);
    free(L.req);
    free(L.s.lat_us);
    free(L.o.body);
    free(L.o.headers);
    close(L.tfd);
    close(L.ep);
    return failed ? 1 : 0;
}
