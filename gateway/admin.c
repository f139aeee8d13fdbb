#include "admin.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <microhttpd.h>

#include "log.h"
#include "tg_buf.h"

struct admin {
    struct MHD_Daemon *mhd;
    char *path;
    worker *workers;
    int n;
    audit_log *audit;
    atomic_int draining;
};

static unsigned long long rd(const uint64_t *p)
{
    /* Counters written by the worker threads; a relaxed read is enough
     * for monitoring. */
    return (unsigned long long)__atomic_load_n(p, __ATOMIC_RELAXED);
}

static void metrics(admin *ad, tg_buf *b)
{
    unsigned long long req = 0, conns = 0, hs = 0, cls[6] = { 0 };
    int active = 0, inflight = 0;

    for (int i = 0; i < ad->n; i++) {
        worker *w = &ad->workers[i];
        req += rd(&w->stats.requests);
        conns += rd(&w->stats.connections);
        hs += rd(&w->stats.handshake_failures);
        for (int c = 1; c < 6; c++)
            cls[c] += rd(&w->stats.responses_by_class[c]);
        active += __atomic_load_n(&w->n_active, __ATOMIC_RELAXED);
        inflight += __atomic_load_n(&w->n_inflight, __ATOMIC_RELAXED);
    }
    tg_buf_printf(b, "# TYPE transgate_requests_total counter\n"
                     "transgate_requests_total %llu\n", req);
    tg_buf_printf(b, "# TYPE transgate_responses_total counter\n");
    for (int c = 1; c < 6; c++)
        tg_buf_printf(b, "transgate_responses_total{class=\"%dxx\"} %llu\n", c, cls[c]);
    tg_buf_printf(b, "# TYPE transgate_connections_total counter\n"
                     "transgate_connections_total %llu\n"
                     "# TYPE transgate_tls_handshake_failures_total counter\n"
                     "transgate_tls_handshake_failures_total %llu\n"
                     "# TYPE transgate_requests_active gauge\n"
                     "transgate_requests_active %d\n"
                     "# TYPE transgate_requests_waiting_on_vendor gauge\n"
                     "transgate_requests_waiting_on_vendor %d\n",
                  conns, hs, active, inflight);
    if (ad->audit != NULL) {
        audit_stats st;
        audit_get_stats(ad->audit, &st);
        tg_buf_printf(b, "# TYPE transgate_audit_records_written_total counter\n"
                         "transgate_audit_records_written_total %llu\n"
                         "# TYPE transgate_audit_records_lost_total counter\n"
                         "transgate_audit_records_lost_total %llu\n"
                         "# TYPE transgate_audit_write_errors_total counter\n"
                         "transgate_audit_write_errors_total %llu\n"
                         "# TYPE transgate_audit_queued gauge\n"
                         "transgate_audit_queued %zu\n"
                         "# TYPE transgate_audit_healthy gauge\n"
                         "transgate_audit_healthy %d\n",
                      st.written, st.lost, st.write_errors, st.queued, st.healthy);
    }
}

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned status,
                              const char *type, tg_buf *b)
{
    struct MHD_Response *resp;
    enum MHD_Result rc;

    if (b->data == NULL)
        return MHD_NO;
    resp = MHD_create_response_from_buffer(b->len, b->data, MHD_RESPMEM_MUST_COPY);
    tg_buf_free(b);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    rc = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    admin *ad = cls;
    tg_buf b;

    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)con_cls;
    tg_buf_init(&b, 64 * 1024);
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0) {
        tg_buf_adds(&b, "{\"message\":\"Method not allowed\"}\n");
        return answer(conn, 405, "application/json", &b);
    }
    if (strcmp(url, "/healthz") == 0) {
        tg_buf_adds(&b, "{\"status\":\"ok\"}\n");
        return answer(conn, 200, "application/json", &b);
    }
    if (strcmp(url, "/readyz") == 0) {
        const char *why = NULL;
        if (atomic_load(&ad->draining))
            why = "draining";
        else if (ad->audit != NULL && !audit_healthy(ad->audit))
            why = "audit_unavailable";
        if (why != NULL) {
            tg_buf_printf(&b, "{\"ready\":false,\"reason\":\"%s\"}\n", why);
            return answer(conn, 503, "application/json", &b);
        }
        tg_buf_adds(&b, "{\"ready\":true}\n");
        return answer(conn, 200, "application/json", &b);
    }
    if (strcmp(url, "/metrics") == 0) {
        metrics(ad, &b);
        return answer(conn, 200, "text/plain; version=0.0.4", &b);
    }
    tg_buf_adds(&b, "{\"message\":\"Not found\"}\n");
    return answer(conn, 404, "application/json", &b);
}

static void admin_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    (void)ap;
    log_debug("admin http layer: %s", fmt);
}

admin *admin_start(const char *path, worker *workers, int n, audit_log *audit)
{
    struct sockaddr_un sa;
    admin *ad = calloc(1, sizeof(*ad));
    int fd = -1;

    if (ad == NULL)
        return NULL;
    if (strlen(path) >= sizeof(sa.sun_path)) {
        log_err("admin socket %s: path too long", path);
        goto fail;
    }
    ad->path = strdup(path);
    ad->workers = workers;
    ad->n = n;
    ad->audit = audit;
    atomic_init(&ad->draining, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || ad->path == NULL)
        goto fail_errno;
    /* A socket left by a previous run; anything else is not ours to remove. */
    {
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
            unlink(path);
    }
    {
        mode_t old = umask(0177);   /* created 0600: owner only */
        int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
        umask(old);
        if (rc != 0)
            goto fail_errno;
    }
    if (listen(fd, 16) != 0)
        goto fail_errno;
    ad->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
                               0, NULL, NULL, on_request, ad,
                               MHD_OPTION_EXTERNAL_LOGGER, admin_log, ad,
                               MHD_OPTION_LISTEN_SOCKET, fd,
                               MHD_OPTION_CONNECTION_LIMIT, 16u,
                               MHD_OPTION_CONNECTION_TIMEOUT, 10u,
                               MHD_OPTION_END);
    if (ad->mhd == NULL) {
        log_err("admin socket %s: cannot start its HTTP layer", path);
        goto fail;
    }
    log_info("admin plane on %s", path);
    return ad;
fail_errno:
    log_err("admin socket %s: %s", path, strerror(errno));
fail:
    if (fd >= 0)
        close(fd);
    free(ad->path);
    free(ad);
    return NULL;
}

void admin_set_draining(admin *ad)
{
    if (ad != NULL)
        atomic_store(&ad->draining, 1);
}

void admin_stop(admin *ad)
{
    if (ad == NULL)
        return;
    MHD_stop_daemon(ad->mhd);   /* closes the listen socket */
    unlink(ad->path);
    free(ad->path);
    free(ad);
}
