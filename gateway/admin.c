#include "admin.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

#include "config.h"
#include "log.h"
#include "tg_buf.h"

/* How long a suspend or resume waits for its audit event to be written
 * (and synced, under fsync "always") before answering "queued". */
#define ADMIN_AUDIT_WAIT_MS 2000

struct admin {
    struct MHD_Daemon *mhd;
    char *path;
    worker *workers;
    int n;
    audit_log *audit;
    suspend_state *susp;
    atomic_int draining;
};

static unsigned long long rd(const uint64_t *p)
{
    /* Counters written by the worker threads; a relaxed read is enough
     * for monitoring. */
    return (unsigned long long)__atomic_load_n(p, __ATOMIC_RELAXED);
}

/* 1 when a status object (suspend_status) says "suspended". */
static int suspended_state(const json_t *o)
{
    const char *st = json_string_value(json_object_get(o, "state"));

    return st != NULL && strcmp(st, "suspended") == 0;
}

static void metrics(admin *ad, tg_buf *b)
{
    unsigned long long req = 0, conns = 0, hs = 0, cls[6] = { 0 }, susp = 0;
    json_t *sus, *u;
    size_t k;
    int active = 0, inflight = 0;

    for (int i = 0; i < ad->n; i++) {
        worker *w = &ad->workers[i];
        req += rd(&w->stats.requests);
        conns += rd(&w->stats.connections);
        hs += rd(&w->stats.handshake_failures);
        for (int c = 1; c < 6; c++)
            cls[c] += rd(&w->stats.responses_by_class[c]);
        susp += rd(&w->stats.refused_suspended);
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
    tg_buf_printf(b, "# TYPE transgate_requests_refused_suspended_total counter\n"
                     "transgate_requests_refused_suspended_total %llu\n", susp);
    sus = suspend_status(ad->susp, NULL);
    if (sus != NULL) {
        tg_buf_printf(b, "# TYPE transgate_forwarding_suspended gauge\n"
                         "transgate_forwarding_suspended %d\n"
                         "# TYPE transgate_upstream_suspended gauge\n",
                      suspended_state(json_object_get(sus, "forwarding")));
        json_array_foreach(json_object_get(sus, "upstreams"), k, u)
            tg_buf_printf(b, "transgate_upstream_suspended{upstream=\"%s\"} %d\n",
                          json_string_value(json_object_get(u, "name")),
                          suspended_state(u));
        json_decref(sus);
    }
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

static int dump_to_buf(const char *p, size_t n, void *data)
{
    return tg_buf_add(data, p, n) == 0 ? 0 : -1;
}

/* Answer with a JSON value (stolen; NULL means out of memory: 500). */
static enum MHD_Result answer_json(struct MHD_Connection *conn, unsigned status,
                                   json_t *j)
{
    tg_buf b;

    tg_buf_init(&b, 1u << 20);
    if (j == NULL ||
        json_dump_callback(j, dump_to_buf, &b, JSON_COMPACT | JSON_PRESERVE_ORDER) != 0 ||
        tg_buf_adds(&b, "\n") != 0) {
        tg_buf_free(&b);
        status = 500;
        tg_buf_adds(&b, "{\"message\":\"Out of memory\"}\n");
    }
    json_decref(j);
    return answer(conn, status, "application/json", &b);
}

static enum MHD_Result answer_error(struct MHD_Connection *conn, unsigned status,
                                    const char *message, const char *code)
{
    return answer_json(conn, status, json_pack("{s:s, s:s}", "message", message,
                                               "code", code));
}

/* The credentials of the process at the other end of the admin socket:
 * who suspended or resumed, for the audit trail.  -1 where unknown. */
static void peer_of(struct MHD_Connection *conn, suspend_actor *who)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    struct ucred cr;
    socklen_t len = sizeof(cr);

    who->uid = who->gid = who->pid = -1;
    if (ci != NULL &&
        getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0 &&
        len == sizeof(cr)) {
        who->uid = (long)cr.uid;
        who->gid = (long)cr.gid;
        who->pid = (long)cr.pid;
    }
}

/* A name as the configuration allows it (docs/config.md, "Names"): the
 * only thing from the request path that may appear in an answer or a
 * diagnostic. */
static int valid_name(const char *s, size_t n)
{
    if (n == 0 || n > TG_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_' ||
              s[i] == '-'))
            return 0;
    return 1;
}

/* Record a suspend or resume in the audit trail and say how far it got:
 * "recorded" (written, and synced under fsync "always"), "queued" (in the
 * trail's queue, not yet written: the trail cannot write at the moment),
 * "not_recorded" (no room: counted in a records_lost event).  reserved: a
 * slot was taken with audit_reserve.  ev is stolen. */
static const char *record_action(admin *ad, json_t *ev, int reserved)
{
    if (ad->audit == NULL) {    /* benchmark builds only */
        json_decref(ev);
        return "not_recorded";
    }
    if (reserved) {
        audit_commit(ad->audit, ev);
    } else if (audit_submit(ad->audit, ev) != 0) {
        log_err("admin: the audit trail's queue is full: this action is not "
                "recorded in the trail (it took effect)");
        return "not_recorded";
    }
    if (audit_flush(ad->audit, ADMIN_AUDIT_WAIT_MS) != 0) {
        log_warn("admin: the action's audit event is queued but not yet "
                 "written (the trail cannot write at the moment)");
        return "queued";
    }
    return "recorded";
}

/* POST /upstreams/NAME/(suspend|resume), POST /forwarding/(suspend|resume).
 * name NULL: all forwarding.
 *
 * A suspension takes effect first and is recorded after, whatever the
 * trail's state: stopping traffic must never wait for, or fail on, the
 * trail (the answer says whether it was recorded).  A resume reopens the
 * flow, so it must be on record: it needs a slot in the trail's queue
 * (audit_reserve), and is refused (503, nothing changes) without one. */
static enum MHD_Result change(admin *ad, struct MHD_Connection *conn,
                              const char *name, int suspend)
{
    suspend_actor who;
    suspend_err e;
    json_t *ev, *out;
    const char *how, *state;
    char msg[160];
    int changed = 0, reserved = 0;

    peer_of(conn, &who);
    if (name != NULL && !suspend_known(ad->susp, name)) {
        snprintf(msg, sizeof(msg), "No upstream named %s in the running "
                 "configuration", name);
        return answer_error(conn, 404, msg, "unknown_upstream");
    }
    if (!suspend && ad->audit != NULL) {
        if (audit_reserve(ad->audit) != 0)
            return answer_error(conn, 503, "The audit trail cannot record a "
                                "resume at the moment; nothing was changed",
                                "audit_unavailable");
        reserved = 1;
    }
    e = suspend_set(ad->susp, name, suspend, &who, &changed);
    if (e == SUSPEND_ERR_UNKNOWN_UPSTREAM) {   /* a reload removed it just now */
        if (reserved)
            audit_release(ad->audit);
        snprintf(msg, sizeof(msg), "No upstream named %s in the running "
                 "configuration", name);
        return answer_error(conn, 404, msg, "unknown_upstream");
    }
    state = (suspend || e == SUSPEND_ERR_BY_CONFIG) ? "suspended" : "active";
    log_warn("admin: %s%s %s by uid %ld pid %ld%s", name ? "upstream " : "forwarding",
             name ? name : "", suspend ? "suspended" : "resumed", who.uid, who.pid,
             e == SUSPEND_ERR_BY_CONFIG ? " at run time; still suspended by the "
                                          "configuration"
                                        : changed ? "" : " (no change)");
    ev = json_pack("{s:s, s:o, s:b, s:s, s:I, s:I, s:I, s:b, s:s}",
                   "event", suspend ? "upstream_suspended" : "upstream_resumed",
                   "upstream", name != NULL ? json_string(name) : json_null(),
                   "all", name == NULL, "via", "admin",
                   "peer_uid", (json_int_t)who.uid, "peer_gid", (json_int_t)who.gid,
                   "peer_pid", (json_int_t)who.pid, "changed", changed,
                   "state", state);
    how = record_action(ad, ev, reserved);
    if (e == SUSPEND_ERR_BY_CONFIG)
        return answer_json(conn, 409, json_pack(
            "{s:s, s:s, s:s, s:s, s:b, s:s}", "message", suspend_strerror(e),
            "code", "suspended_by_configuration", "upstream", name,
            "state", state, "changed", changed, "audit", how));
    out = json_pack("{s:s, s:o, s:s, s:b, s:s}", "scope", name ? "upstream" : "all",
                    "upstream", name != NULL ? json_string(name) : json_null(),
                    "state", state, "changed", changed, "audit", how);
    return answer_json(conn, 200, out);
}

/* Routes for the suspend switch (docs/admin.md).  Returns MHD_YES/NO, or
 * -1 when url is not one of them. */
static int suspend_routes(admin *ad, struct MHD_Connection *conn, const char *url,
                          int is_get, int is_post)
{
    const char *rest, *slash;
    char name[TG_NAME_MAX + 1];
    size_t n;

    if (strcmp(url, "/upstreams") == 0 || strcmp(url, "/forwarding") == 0) {
        json_t *st;

        if (!is_get)
            return answer_error(conn, 405, "Method not allowed", "method_not_allowed");
        st = suspend_status(ad->susp, NULL);
        if (st != NULL && url[1] == 'f') {
            json_t *fw = json_incref(json_object_get(st, "forwarding"));
            json_decref(st);
            st = fw;
        }
        return answer_json(conn, 200, st);
    }
    if (strcmp(url, "/forwarding/suspend") == 0 || strcmp(url, "/forwarding/resume") == 0) {
        if (!is_post)
            return answer_error(conn, 405, "Method not allowed: use POST",
                                "method_not_allowed");
        return change(ad, conn, NULL, url[12] == 's');
    }
    if (strncmp(url, "/upstreams/", 11) != 0)
        return -1;
    rest = url + 11;
    slash = strchr(rest, '/');
    n = slash != NULL ? (size_t)(slash - rest) : strlen(rest);
    if (!valid_name(rest, n))
        return answer_error(conn, 400, "Not an upstream name (1 to 64 of "
                            "A-Z a-z 0-9 . _ -)", "bad_name");
    memcpy(name, rest, n);
    name[n] = '\0';
    if (slash == NULL) {
        if (!is_get)
            return answer_error(conn, 405, "Method not allowed", "method_not_allowed");
        if (!suspend_known(ad->susp, name)) {
            char msg[160];
            snprintf(msg, sizeof(msg), "No upstream named %s in the running "
                     "configuration", name);
            return answer_error(conn, 404, msg, "unknown_upstream");
        }
        return answer_json(conn, 200, suspend_status(ad->susp, name));
    }
    if (strcmp(slash, "/suspend") != 0 && strcmp(slash, "/resume") != 0)
        return -1;
    if (!is_post)
        return answer_error(conn, 405, "Method not allowed: use POST",
                            "method_not_allowed");
    return change(ad, conn, name, slash[1] == 's');
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    admin *ad = cls;
    int is_get = strcmp(method, MHD_HTTP_METHOD_GET) == 0;
    int is_post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
    int rc;
    tg_buf b;

    (void)version;
    (void)upload_data;
    if (*con_cls == NULL && is_post) {
        /* Answer once the request (no body is expected) has been read:
         * MHD calls again with nothing left to upload. */
        *con_cls = ad;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        *upload_data_size = 0;      /* a body means nothing here: ignored */
        return MHD_YES;
    }
    rc = suspend_routes(ad, conn, url, is_get, is_post);
    if (rc >= 0)
        return (enum MHD_Result)rc;
    tg_buf_init(&b, 64 * 1024);
    if (!is_get) {
        tg_buf_adds(&b, "{\"message\":\"Method not allowed\"}\n");
        return answer(conn, 405, "application/json", &b);
    }
    if (strcmp(url, "/healthz") == 0) {
        tg_buf_adds(&b, "{\"status\":\"ok\"}\n");
        return answer(conn, 200, "application/json", &b);
    }
    if (strcmp(url, "/readyz") == 0) {
        const char *why = NULL;
        json_t *st;
        if (atomic_load(&ad->draining))
            why = "draining";
        else if (ad->audit != NULL && !audit_healthy(ad->audit))
            why = "audit_unavailable";
        if (why != NULL) {
            tg_buf_printf(&b, "{\"ready\":false,\"reason\":\"%s\"}\n", why);
            return answer(conn, 503, "application/json", &b);
        }
        /* Still ready while suspended: terminals get a clear 503 from here,
         * and a load balancer must not move them to an appliance that is
         * not suspended (see docs/admin.md).  The body says what is. */
        st = suspend_status(ad->susp, NULL);
        tg_buf_adds(&b, "{\"ready\":true");
        if (st != NULL) {
            json_t *u;
            size_t i;
            int first = 1;
            if (suspended_state(json_object_get(st, "forwarding")))
                tg_buf_adds(&b, ",\"forwarding\":\"suspended\"");
            json_array_foreach(json_object_get(st, "upstreams"), i, u) {
                if (!suspended_state(u))
                    continue;
                tg_buf_printf(&b, "%s\"%s\"", first ? ",\"suspended_upstreams\":[" : ",",
                              json_string_value(json_object_get(u, "name")));
                first = 0;
            }
            if (!first)
                tg_buf_adds(&b, "]");
            json_decref(st);
        }
        tg_buf_adds(&b, "}\n");
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

admin *admin_start(const char *path, worker *workers, int n, audit_log *audit,
                   suspend_state *susp)
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
    ad->susp = susp;
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
