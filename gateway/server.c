#include "server.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "admin.h"
#include "audit.h"
#include "config.h"
#include "log.h"
#include "runtime.h"
#include "suspend.h"
#include "tls_front.h"
#include "worker.h"

/* Each terminal costs its TCP connection plus, while its request is with a
 * vendor, a vendor connection. */
static void raise_nofile(const tg_config *cfg, int nworkers)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)cfg->max_connections * (rlim_t)nworkers * 2 + 256;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur >= want)
        return;
    rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want)
        log_warn("open files limited to %llu; %llu wanted for the configured connections",
                 (unsigned long long)rl.rlim_cur, (unsigned long long)want);
}

/* Started as root: after the sockets are bound and the secrets read, run
 * as the configured account (OPS-8).  Returns 0 or -1 after logging. */
static int drop_privileges(const tg_config *cfg)
{
    struct passwd *pw;

    if (geteuid() != 0) {
        if (cfg->user != NULL)
            log_info("not started as root: \"user\" %s ignored", cfg->user);
        return 0;
    }
    if (cfg->user == NULL) {
        log_warn("running as root: set \"user\" to an unprivileged account");
        return 0;
    }
    pw = getpwnam(cfg->user);
    if (pw == NULL) {
        log_err("user %s: no such account", cfg->user);
        return -1;
    }
    if (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 ||
        setuid(pw->pw_uid) != 0 || setuid(0) == 0) {
        log_err("cannot switch to user %s: %s", cfg->user, strerror(errno));
        return -1;
    }
    log_info("running as %s (uid %u)", cfg->user, (unsigned)pw->pw_uid);
    return 0;
}

void server_audit_conf(const tg_config *cfg, audit_conf *ac)
{
    memset(ac, 0, sizeof(*ac));
    ac->path = cfg->audit_path;
    ac->key_file = cfg->audit_key_file;
    ac->fsync = cfg->audit_fsync == 0 ? AUDIT_FSYNC_ALWAYS
              : cfg->audit_fsync == 1 ? AUDIT_FSYNC_INTERVAL : AUDIT_FSYNC_NEVER;
    ac->fsync_interval_ms = cfg->audit_fsync_interval_ms;
    ac->batch_ms = cfg->audit_batch_ms;
    ac->queue_size = (size_t)cfg->audit_queue_size;
    ac->refuse_on_failure = !cfg->audit_continue_on_failure;
    ac->syslog = cfg->audit_syslog;
}

/* SHA-256 (hex) of the configuration file's bytes, for the start and
 * reload events.  "" when it cannot be read. */
static void file_digest(const char *path, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE], buf[8192];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    FILE *f = fopen(path, "rb");
    size_t n;

    out[0] = '\0';
    if (ctx == NULL || f == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
        goto done;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        EVP_DigestUpdate(ctx, buf, n);
    if (EVP_DigestFinal_ex(ctx, md, &mdlen) == 1)
        for (unsigned i = 0; i < mdlen && i < 32; i++)
            snprintf(out + 2 * i, 3, "%02x", md[i]);
done:
    if (f != NULL)
        fclose(f);
    EVP_MD_CTX_free(ctx);
}

/* A lifecycle event with the configuration's and rule packs' digests. */
static void audit_lifecycle(audit_log *a, const char *event, const tg_runtime *rt,
                            const char *path)
{
    char digest[65];
    json_t *ev;

    if (a == NULL)
        return;
    file_digest(path, digest);
    ev = json_pack("{s:s, s:s, s:s, s:s}", "event", event, "version", TG_VERSION,
                   "config_digest", digest, "rules_digest",
                   pol_engine_digest(rt->policy));
    if (ev != NULL && strcmp(event, "start") == 0) {
        int synced = audit_clock_synced();
        json_object_set_new(ev, "clock_synced",
                            synced < 0 ? json_null() : json_boolean(synced));
    }
    if (ev == NULL || audit_submit(a, ev) != 0)
        log_err("audit: could not queue the %s event", event);
}

/* A change of an upstream's suspension made by the configuration (its
 * "suspended" key at start or reload, or its removal): said in the
 * diagnostics and recorded in the trail (LOG-2). */
static void on_config_suspension(void *arg, const char *upstream, int suspended,
                                 int removed)
{
    audit_log *a = arg;
    json_t *ev;

    if (removed)
        log_warn("upstream %s: removed from the configuration while suspended; "
                 "its suspension ends with it", upstream);
    else
        log_warn("upstream %s: %s by the configuration", upstream,
                 suspended ? "suspended" : "no longer suspended");
    if (a == NULL)
        return;
    ev = json_pack("{s:s, s:s, s:b, s:s}", "event",
                   suspended ? "upstream_suspended" : "upstream_resumed",
                   "upstream", upstream, "all", 0, "via", "configuration");
    if (ev != NULL && removed)
        json_object_set_new(ev, "removed", json_true());
    if (ev == NULL || audit_submit(a, ev) != 0)
        log_err("audit: could not queue the %s event of upstream %s",
                suspended ? "upstream_suspended" : "upstream_resumed", upstream);
}

/* Listener addresses are bound once; a reload may change everything else. */
static int same_listeners(const tg_config *a, const tg_config *b)
{
    if (a->n_listeners != b->n_listeners)
        return 0;
    for (size_t i = 0; i < a->n_listeners; i++)
        if (strcmp(a->listeners[i].host, b->listeners[i].host) != 0 ||
            strcmp(a->listeners[i].port, b->listeners[i].port) != 0)
            return 0;
    return 1;
}

static int same_str(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* The audit trail is opened once, at start, and a reload cannot move or
 * retune it: a reload whose "audit" section differs from what the trail
 * was opened with says so rather than leaving it unnoticed.  This is what
 * the trail runs with (copied: the runtime it came from goes on reload). */
typedef struct audit_opened {
    char *path, *key_file, *syslog;
    int fsync;
    long fsync_interval_ms, batch_ms, queue_size;
    bool continue_on_failure;
} audit_opened;

static int audit_opened_set(audit_opened *o, const tg_config *c)
{
    memset(o, 0, sizeof(*o));
    o->path = c->audit_path != NULL ? strdup(c->audit_path) : NULL;
    o->key_file = c->audit_key_file != NULL ? strdup(c->audit_key_file) : NULL;
    o->syslog = c->audit_syslog != NULL ? strdup(c->audit_syslog) : NULL;
    o->fsync = c->audit_fsync;
    o->fsync_interval_ms = c->audit_fsync_interval_ms;
    o->batch_ms = c->audit_batch_ms;
    o->queue_size = c->audit_queue_size;
    o->continue_on_failure = c->audit_continue_on_failure;
    return (c->audit_path != NULL && o->path == NULL) ||
           (c->audit_key_file != NULL && o->key_file == NULL) ||
           (c->audit_syslog != NULL && o->syslog == NULL) ? -1 : 0;
}

static void audit_opened_free(audit_opened *o)
{
    free(o->path);
    free(o->key_file);
    free(o->syslog);
    memset(o, 0, sizeof(*o));
}

static int audit_unchanged(const audit_opened *o, const tg_config *c)
{
    return same_str(o->path, c->audit_path) &&
           same_str(o->key_file, c->audit_key_file) &&
           same_str(o->syslog, c->audit_syslog) &&
           o->fsync == c->audit_fsync &&
           o->fsync_interval_ms == c->audit_fsync_interval_ms &&
           o->batch_ms == c->audit_batch_ms &&
           o->queue_size == c->audit_queue_size &&
           o->continue_on_failure == c->audit_continue_on_failure;
}

/* SIGHUP: validate the file again, build a complete new runtime, and only
 * then hand it over.  Any problem keeps the running configuration.
 * Returns the new runtime (one reference) or NULL. */
static const tg_runtime *reload(const char *path, const tg_runtime *cur,
                                const audit_opened *opened)
{
    tg_config *cfg;
    tg_runtime *next;
    char *msg = NULL;
    size_t msglen = 0;
    FILE *errs = open_memstream(&msg, &msglen);

    if (errs == NULL)
        errs = stderr;
    cfg = config_load(path, errs);
    next = cfg ? runtime_load(cfg, errs) : NULL;
    if (next != NULL && !same_listeners(cur->cfg, next->cfg)) {
        fprintf(errs, "%s: listener addresses changed; restart to apply\n", path);
        runtime_free(next);
        next = NULL;
    }
    if (errs != stderr)
        fclose(errs);
    if (next == NULL) {
        /* One diagnostic per problem, as `check` prints them. */
        for (char *line = msg, *nl; line != NULL && *line != '\0'; line = nl ? nl + 1 : NULL) {
            nl = strchr(line, '\n');
            if (nl != NULL)
                *nl = '\0';
            log_err("reload refused, configuration unchanged: %s", line);
        }
        free(msg);
        return NULL;
    }
    free(msg);
    log_info("configuration reloaded from %s", path);
    if (!audit_unchanged(opened, next->cfg))
        log_warn("reload: the \"audit\" section changed; the trail keeps its "
                 "settings until the gateway is restarted");
    return next;
}

int server_run(const char *config_path)
{
    tg_config *cfg;
    tg_runtime *rt;
    worker *workers = NULL;
    audit_log *audit = NULL;
    suspend_state *susp = NULL;
    admin *ad = NULL;
    audit_conf ac;
    audit_opened opened;
    int nworkers = 0, started = 0, rc = 1;
    sigset_t set;

    memset(&opened, 0, sizeof(opened));
    cfg = config_load(config_path, stderr);
    if (cfg == NULL)
        return 1;
    log_init(cfg->log_level, cfg->log_syslog);
    rt = runtime_load(cfg, stderr);
    if (rt == NULL)
        return 1;
    /* Before the audit trail is opened: a second instance started by
     * mistake on the same configuration must neither share the listeners
     * nor write into the running one's trail. */
    for (size_t i = 0; i < rt->cfg->n_listeners; i++)
        if (front_address_free(&rt->cfg->listeners[i]) != 0)
            goto out;
    if (audit_opened_set(&opened, rt->cfg) != 0) {
        log_err("out of memory");
        goto out;
    }
    if (rt->cfg->audit_path == NULL) {
#ifdef TG_BENCH_NO_AUDIT
        log_warn("BENCHMARK BUILD: serving without an audit trail");
#else
        log_err("%s: no \"audit\" section: every exchange must be recorded; "
                "see docs/audit.md", config_path);
        goto out;
#endif
    } else {
        server_audit_conf(rt->cfg, &ac);
        audit = audit_open(&ac, stderr);
        if (audit == NULL)
            goto out;
        audit_lifecycle(audit, "start", rt, config_path);
    }
    susp = suspend_new();
    if (susp == NULL ||
        suspend_configure(susp, rt->cfg, on_config_suspension, audit) != SUSPEND_OK) {
        log_err("out of memory");
        goto out;
    }
    nworkers = rt->cfg->workers;
    if (nworkers <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        nworkers = n > 0 ? (int)n : 1;
    }
    raise_nofile(rt->cfg, nworkers);

    /* Signals go to this thread only, through sigwait; workers inherit the
     * mask. */
    signal(SIGPIPE, SIG_IGN);
    /* A file-size limit must turn into a write error the audit trail
     * handles (refusing traffic), not kill the process. */
    signal(SIGXFSZ, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    workers = calloc((size_t)nworkers, sizeof(*workers));
    if (workers == NULL)
        goto out;
    for (int i = 0; i < nworkers; i++) {
        if (worker_init(&workers[i], i, rt, audit, susp) != 0) {
            for (int j = 0; j < i; j++)
                worker_join(&workers[j]);
            goto out;
        }
    }
    if (drop_privileges(rt->cfg) != 0) {
        for (int j = 0; j < nworkers; j++)
            worker_join(&workers[j]);
        goto out;
    }
    for (int i = 0; i < nworkers; i++) {
        if (worker_start(&workers[i]) != 0) {
            for (int j = i; j < nworkers; j++)
                worker_join(&workers[j]);
            goto out;
        }
        started++;
    }
    if (rt->cfg->admin_socket != NULL) {
        ad = admin_start(rt->cfg->admin_socket, workers, started, audit, susp);
        if (ad == NULL)
            goto out;
    }
    log_info("transgate %s serving: %zu listener(s), %d worker(s)", TG_VERSION,
             rt->cfg->n_listeners, nworkers);
    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGTERM || sig == SIGINT) {
            log_info("received %s: draining", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            break;
        }
        if (sig == SIGUSR1 && audit != NULL) {
            audit_reopen(audit);
            log_info("SIGUSR1: audit trail reopened");
        }
        if (sig == SIGHUP) {
            const tg_runtime *next = reload(config_path, rt, &opened);
            if (next == NULL) {
                json_t *ev = json_pack("{s:s, s:s}", "event", "reload", "result", "refused");
                if (ev != NULL && (audit == NULL || audit_submit(audit, ev) != 0))
                    log_err("audit: could not queue the reload event");
            } else {
                audit_lifecycle(audit, "reload", next, config_path);
                /* Before the workers switch, so that an upstream the new
                 * configuration suspends is refused from now on. */
                if (suspend_configure(susp, next->cfg, on_config_suspension,
                                      audit) != SUSPEND_OK)
                    log_err("reload: out of memory applying the upstreams' "
                            "\"suspended\" keys; suspensions unchanged");
                for (int i = 0; i < started; i++)
                    worker_set_runtime(&workers[i], next);
                runtime_unref(rt);
                rt = (tg_runtime *)(uintptr_t)next;
            }
        }
    }
    rc = 0;
out:
    admin_set_draining(ad);
    for (int i = 0; i < started; i++)
        worker_drain(&workers[i]);
    for (int i = 0; i < started; i++)
        worker_join(&workers[i]);
    admin_stop(ad);
    free(workers);
    suspend_free(susp);
    if (audit != NULL) {
        json_t *ev = json_pack("{s:s, s:s}", "event", "stop", "reason",
                               rc == 0 ? "signal" : "start-up failed");
        if (ev != NULL && audit_submit(audit, ev) != 0)
            log_err("audit: could not queue the stop event");
        audit_close(audit);
    }
    runtime_unref(rt);
    audit_opened_free(&opened);
    if (rc == 0)
        log_info("stopped");
    return rc;
}
