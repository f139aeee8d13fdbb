#include "upstream.h"

#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include <curl/curl.h>
#include <openssl/x509_vfy.h>

#include "log.h"
#include "tg_buf.h"

/* A vendor reply larger than this is refused; translations are at most a
 * few times their source and requests are capped by max_body_bytes. */
#define REPLY_CAP_MIN (1u << 20)

struct transfer {
    upstream_job *job;
    CURL *easy;
    adapter_http req;
    struct curl_slist *hdrs;
    tg_buf resp;
    long status;
    int attempts;
    int done;
    int in_multi;
    tg_timer retry;
    char errbuf[CURL_ERROR_SIZE];  /* curl's detail: host names, never content */
};

struct upstream_job {
    upstream_ctx *u;
    const rt_upstream *up;
    struct transfer *t;
    size_t n;
    size_t n_done;
    upstream_done_fn fn;
    void *arg;
    uint64_t t0;
    upstream_info info;
    upstream_job *prev, *next;
};

struct curl_sock {
    ev_handler h;
    upstream_ctx *u;
    curl_socket_t fd;
};

#define EASY_POOL 64

struct upstream_ctx {
    worker *w;
    CURLM *multi;
    CURLSH *share;
    CURL *pool[EASY_POOL];       /* finished handles, reset, for reuse */
    size_t n_pool;
    tg_timer timer;
    upstream_job *jobs;
    size_t n_jobs;
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
    }
    return "internal_error";
}

static void check_done(upstream_ctx *u);

static void on_sock(ev_handler *h, uint32_t events)
{
    struct curl_sock *cs = container_of(h, struct curl_sock, h);
    upstream_ctx *u = cs->u;
    int flags = 0, running;

    if (events & EPOLLIN)
        flags |= CURL_CSELECT_IN;
    if (events & EPOLLOUT)
        flags |= CURL_CSELECT_OUT;
    if (events & (EPOLLERR | EPOLLHUP))
        flags |= CURL_CSELECT_ERR;
    curl_multi_socket_action(u->multi, cs->fd, flags, &running);
    check_done(u);
}

static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    upstream_ctx *u = userp;
    struct curl_sock *cs = socketp;
    uint32_t ev;

    (void)e;
    if (what == CURL_POLL_REMOVE) {
        if (cs != NULL) {
            worker_unwatch(u->w, s);
            curl_multi_assign(u->multi, s, NULL);
            cs->h.dead = 1;
            worker_bury(u->w, cs);
        }
        return 0;
    }
    ev = ((what & CURL_POLL_IN) ? EPOLLIN : 0) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0);
    if (cs == NULL) {
        cs = calloc(1, sizeof(*cs));
        if (cs == NULL)
            return -1;
        cs->h.fn = on_sock;
        cs->u = u;
        cs->fd = s;
        if (worker_watch(u->w, s, ev, &cs->h) != 0) {
            free(cs);
            return -1;
        }
        curl_multi_assign(u->multi, s, cs);
        return 0;
    }
    return worker_rewatch(u->w, s, ev, &cs->h) == 0 ? 0 : -1;
}

static void on_timer(tg_timer *t, void *arg)
{
    upstream_ctx *u = arg;
    int running;

    (void)t;
    curl_multi_socket_action(u->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(u);
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
    upstream_ctx *u = userp;

    (void)m;
    if (timeout_ms < 0) {
        timer_cancel(&u->w->timers, &u->timer);
        return 0;
    }
    return timer_arm(&u->w->timers, &u->timer, tg_now_ms() + (uint64_t)timeout_ms);
}

upstream_ctx *upstream_init(worker *w)
{
    upstream_ctx *u = calloc(1, sizeof(*u));

    if (u == NULL)
        return NULL;
    u->w = w;
    timer_init(&u->timer, on_timer, u);
    u->multi = curl_multi_init();
    u->share = curl_share_init();
    if (u->multi == NULL || u->share == NULL) {
        upstream_close(u);
        return NULL;
    }
    /* TLS sessions are reused across the worker's transfers; one thread
     * only, so no share locks. */
    curl_share_setopt(u->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_multi_setopt(u->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(u->multi, CURLMOPT_SOCKETDATA, u);
    curl_multi_setopt(u->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(u->multi, CURLMOPT_TIMERDATA, u);
    {
        /* Connections per vendor host (transfers beyond it wait for one),
         * and a cache big enough to keep them all alive between requests. */
        const tg_config *cfg = w->rt->cfg;
        long per_host = 1, total = 0;
        for (size_t i = 0; i < cfg->n_upstreams; i++) {
            if (cfg->upstreams[i].max_connections > per_host)
                per_host = cfg->upstreams[i].max_connections;
            total += cfg->upstreams[i].max_connections;
        }
        curl_multi_setopt(u->multi, CURLMOPT_MAX_HOST_CONNECTIONS, per_host);
        curl_multi_setopt(u->multi, CURLMOPT_MAXCONNECTS, total);
    }
    return u;
}

static void transfer_clear(upstream_ctx *u, struct transfer *t)
{
    timer_cancel(&u->w->timers, &t->retry);
    if (t->easy != NULL) {
        if (t->in_multi)
            curl_multi_remove_handle(u->multi, t->easy);
        /* Reused: creating a handle per request is a good share of the
         * allocator's work.  Reset drops every option (and with it the
         * pointers into this transfer). */
        if (u->n_pool < EASY_POOL) {
            curl_easy_reset(t->easy);
            u->pool[u->n_pool++] = t->easy;
        } else {
            curl_easy_cleanup(t->easy);
        }
        t->easy = NULL;
    }
    t->in_multi = 0;
    curl_slist_free_all(t->hdrs);
    t->hdrs = NULL;
    adapter_http_free(&t->req);
    tg_buf_free(&t->resp);
}

static void job_free(upstream_job *job)
{
    upstream_ctx *u = job->u;

    for (size_t i = 0; i < job->n; i++)
        transfer_clear(u, &job->t[i]);
    if (job->prev != NULL)
        job->prev->next = job->next;
    else
        u->jobs = job->next;
    if (job->next != NULL)
        job->next->prev = job->prev;
    u->n_jobs--;
    free(job->t);
    free(job);
}

void upstream_close(upstream_ctx *u)
{
    if (u == NULL)
        return;
    while (u->jobs != NULL)
        job_free(u->jobs);
    while (u->n_pool > 0)
        curl_easy_cleanup(u->pool[--u->n_pool]);
    if (u->w != NULL)
        timer_cancel(&u->w->timers, &u->timer);
    if (u->multi != NULL)
        curl_multi_cleanup(u->multi);
    if (u->share != NULL)
        curl_share_cleanup(u->share);
    free(u);
}

size_t upstream_pending(const upstream_ctx *u)
{
    return u->n_jobs;
}

void upstream_cancel(upstream_ctx *u, upstream_job *job)
{
    (void)u;
    job_free(job);
}

static void job_finish(upstream_job *job, upstream_err err)
{
    adapter_reply *replies = NULL;

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
    job->fn(job->arg, err, replies, err == UPSTREAM_OK ? job->n : 0, &job->info);
    free(replies);
    job_free(job);
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct transfer *t = userdata;

    if (tg_buf_add(&t->resp, ptr, size * nmemb) != 0)
        return 0;   /* curl fails the transfer with CURLE_WRITE_ERROR */
    return size * nmemb;
}

static int transfer_start(upstream_ctx *u, struct transfer *t)
{
    t->attempts++;
    t->job->info.attempts++;
    if (curl_multi_add_handle(u->multi, t->easy) != CURLM_OK)
        return -1;
    t->in_multi = 1;
    return 0;
}

static void on_retry(tg_timer *tm, void *arg)
{
    struct transfer *t = arg;

    (void)tm;
    if (transfer_start(t->job->u, t) != 0)
        job_finish(t->job, UPSTREAM_ERR_NOMEM);
}

static int transfer_setup(struct transfer *t, const rt_upstream *up,
                          CURLSH *share, size_t reply_cap)
{
    const tg_upstream_conf *c = up->conf;
    tg_buf url;
    CURL *e;
    int rc = -1;

    tg_buf_init(&t->resp, reply_cap);
    timer_init(&t->retry, on_retry, t);
    t->easy = e = t->job->u->n_pool > 0 ? t->job->u->pool[--t->job->u->n_pool]
                                        : curl_easy_init();
    if (e == NULL)
        return -1;
    tg_buf_init(&url, 8192);
    if (tg_buf_adds(&url, up->url_prefix) != 0 || tg_buf_adds(&url, t->req.path) != 0)
        goto fail;
    for (size_t i = 0; i < t->req.n_headers; i++) {
        struct curl_slist *n = curl_slist_append(t->hdrs, t->req.headers[i]);
        if (n == NULL)
            goto fail;
        t->hdrs = n;
    }
    if (t->req.content_type != NULL) {
        char ct[128];
        struct curl_slist *n;
        snprintf(ct, sizeof(ct), "Content-Type: %s", t->req.content_type);
        n = curl_slist_append(t->hdrs, ct);
        if (n == NULL)
            goto fail;
        t->hdrs = n;
    }
    /* No 100-continue round trip; nothing from the terminal's request
     * (addresses, agents, cookies) is forwarded: curl sends only Host,
     * Accept and Content-Length besides these. */
    {
        struct curl_slist *n = curl_slist_append(t->hdrs, "Expect:");
        if (n == NULL)
            goto fail;
        t->hdrs = n;
    }
    if (curl_easy_setopt(e, CURLOPT_URL, url.data) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https") != CURLE_OK)
        goto fail;
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_SHARE, share);
    curl_easy_setopt(e, CURLOPT_RESOLVE, up->resolve);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->hdrs);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    /* Replies are small JSON documents; the default 16 KiB receive buffer
     * per transfer costs memory when thousands are in flight.  A larger
     * reply costs more calls into OpenSSL, not more system calls (vendor
     * TLS reads ahead). */
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 2048L);
    /* Vendor leg: verified, CRYPTREC profile applied to curl's own SSL_CTX
     * by the same code that configures the listeners. */
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    curl_easy_setopt(e, CURLOPT_SSL_CIPHER_LIST, up->profile->tls12_suites);
    curl_easy_setopt(e, CURLOPT_TLS13_CIPHERS, up->profile->tls13_suites);
    curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, runtime_curl_ssl_ctx);
    curl_easy_setopt(e, CURLOPT_SSL_CTX_DATA, (void *)(uintptr_t)up);
    if (up->ca_pem != NULL) {
        /* The configured CAs and nothing else: no default bundle or
         * directory alongside them.  Given as a blob, not through the
         * SSL_CTX callback, because curl compares it when it considers
         * reusing a kept-alive connection: a connection verified against
         * one upstream's CAs is never handed to another's transfer. */
        struct curl_blob blob = { up->ca_pem, up->ca_len, CURL_BLOB_NOCOPY };
        curl_easy_setopt(e, CURLOPT_CAINFO, NULL);
        curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
        curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &blob);
    }
    if (up->pins != NULL)
        curl_easy_setopt(e, CURLOPT_PINNEDPUBLICKEY, up->pins);
    if (c->proxy != NULL) {
        /* CONNECT tunnel: TLS and its verification stay end to end. */
        curl_easy_setopt(e, CURLOPT_PROXY, c->proxy);
        curl_easy_setopt(e, CURLOPT_HTTPPROXYTUNNEL, 1L);
        curl_easy_setopt(e, CURLOPT_PROXYTYPE, (long)CURLPROXY_HTTP);
    }
    if (t->req.content_type != NULL) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->req.body.data ? t->req.body.data : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)t->req.body.len);
    } else {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    }
    rc = 0;
fail:
    tg_buf_free(&url);
    return rc;
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
    if (job->t == NULL)
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
    for (size_t i = 0; i < n; i++) {
        job->t[i].job = job;
        job->t[i].req = reqs[i];   /* moved */
        memset(&reqs[i], 0, sizeof(reqs[i]));
    }
    free(reqs);
    reqs = NULL;
    for (size_t i = 0; i < n; i++) {
        if (transfer_setup(&job->t[i], up, u->share, reply_cap) != 0 ||
            transfer_start(u, &job->t[i]) != 0) {
            job_free(job);
            return NULL;
        }
    }
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

/* Classify a curl failure; *retry says whether another attempt may help. */
static upstream_err classify(CURL *e, CURLcode rc, const char *detail, int *retry)
{
    curl_off_t connect_us = 0;

    *retry = 0;
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
        *retry = 1;
        return UPSTREAM_ERR_CONNECT;
    case CURLE_OPERATION_TIMEDOUT:
        /* Pre-transfer time is set once the request could be sent, on new
         * and reused connections alike; zero means we never got through. */
        curl_easy_getinfo(e, CURLINFO_PRETRANSFER_TIME_T, &connect_us);
        if (connect_us == 0) {
            *retry = 1;
            return UPSTREAM_ERR_CONNECT;
        }
        return UPSTREAM_ERR_TIMEOUT;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        /* A kept-alive connection the vendor closed, or a reset: translation
         * is idempotent, so trying again is safe. */
        *retry = 1;
        return UPSTREAM_ERR_IO;
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        return UPSTREAM_ERR_PIN;
    case CURLE_PEER_FAILED_VERIFICATION: {
        long vr = 0;
        /* curl checks the host name itself after OpenSSL verified the
         * chain, and then reports no specific verify result: its message
         * is the only witness of a name mismatch. */
        curl_easy_getinfo(e, CURLINFO_SSL_VERIFYRESULT, &vr);
        if (vr == X509_V_ERR_CERT_HAS_EXPIRED || vr == X509_V_ERR_CERT_NOT_YET_VALID)
            return UPSTREAM_ERR_CERT_EXPIRED;
        if (vr == X509_V_ERR_HOSTNAME_MISMATCH || vr == X509_V_ERR_IP_ADDRESS_MISMATCH ||
            strstr(detail, "subject name") != NULL ||
            strstr(detail, "does not match") != NULL)
            return UPSTREAM_ERR_CERT_NAME;
        return UPSTREAM_ERR_CERT_UNTRUSTED;
    }
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ENGINE_INITFAILED:
        return UPSTREAM_ERR_TLS;
    case CURLE_WRITE_ERROR:
    case CURLE_FILESIZE_EXCEEDED:
        return UPSTREAM_ERR_TOO_LARGE;
    case CURLE_OUT_OF_MEMORY:
        return UPSTREAM_ERR_NOMEM;
    default:
        return UPSTREAM_ERR_IO;
    }
}

static void transfer_done(upstream_ctx *u, struct transfer *t, CURLcode rc)
{
    upstream_job *job = t->job;
    const tg_upstream_conf *c = job->up->conf;
    upstream_err err = UPSTREAM_OK;
    int retry = 0;
    char *ip = NULL;

    curl_multi_remove_handle(u->multi, t->easy);
    t->in_multi = 0;
    if (curl_easy_getinfo(t->easy, CURLINFO_PRIMARY_IP, &ip) == CURLE_OK &&
        ip != NULL && ip[0] != '\0')
        snprintf(job->info.address, sizeof(job->info.address), "%s", ip);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &t->status);
        job->info.last_status = t->status;
        retry = t->status == 429 || t->status == 500 || t->status == 502 ||
                t->status == 503 || t->status == 504;
    } else {
        err = classify(t->easy, rc, t->errbuf, &retry);
    }
    if (retry && t->attempts <= c->max_retries) {
        uint64_t backoff = (uint64_t)c->retry_backoff_ms << (t->attempts - 1);
        log_debug("upstream %s: attempt %d failed (%s, status %ld); retrying in %llu ms",
                  c->name, t->attempts, rc == CURLE_OK ? "answered" : curl_easy_strerror(rc),
                  t->status, (unsigned long long)backoff);
        tg_buf_free(&t->resp);
        t->status = 0;
        if (timer_arm(&u->w->timers, &t->retry, tg_now_ms() + backoff) != 0)
            job_finish(job, UPSTREAM_ERR_NOMEM);
        return;
    }
    if (err != UPSTREAM_OK) {
        long vr = 0;
        curl_easy_getinfo(t->easy, CURLINFO_SSL_VERIFYRESULT, &vr);
        log_info("upstream %s: %s (%s; certificate check %ld)", c->name,
                 upstream_strerror(err), curl_easy_strerror(rc), vr);
        job_finish(job, err);
        return;
    }
    t->done = 1;
    if (++job->n_done == job->n)
        job_finish(job, UPSTREAM_OK);
}

static void check_done(upstream_ctx *u)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(u->multi, &left)) != NULL) {
        struct transfer *t = NULL;
        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        if (t != NULL)
            transfer_done(u, t, msg->data.result);
    }
}
