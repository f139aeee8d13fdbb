#include "suspend.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"

/* Tombstones kept for suspended upstreams a reload removed (see below). */
#define SUSPEND_MAX_TOMBSTONES 1024

typedef struct suspend_entry {
    char name[TG_NAME_MAX + 1];
    int runtime;                /* suspended at run time (admin plane) */
    int configured;             /* "suspended": true in the configuration */
    /* Removed by a reload while suspended.  Requests that began under the
     * configuration that still named it (their body was arriving during
     * the reload) look it up by that name: they stay refused.  Not shown,
     * not settable; a reload that brings the name back replaces it. */
    int tombstone;
    struct timespec since;      /* when it became suspended (UTC) */
    suspend_actor who;          /* run time: who suspended it */
} suspend_entry;

struct suspend_state {
    pthread_mutex_t mu;         /* writers, and readers while anything is
                                   suspended */
    atomic_int all;             /* all forwarding suspended */
    atomic_size_t suspended;    /* entries that refuse (tombstones included):
                                   0 lets suspend_check skip the lock */
    suspend_entry *e;           /* under mu */
    size_t n;
    struct timespec all_since;  /* under mu */
    suspend_actor all_who;
};

typedef struct suspend_change {
    char name[TG_NAME_MAX + 1];
    int suspended, removed;
} suspend_change;

const char *suspend_strerror(suspend_err e)
{
    switch (e) {
    case SUSPEND_OK:
        return "ok";
    case SUSPEND_ERR_UNKNOWN_UPSTREAM:
        return "no upstream of that name in the running configuration";
    case SUSPEND_ERR_BY_CONFIG:
        return "the configuration suspends this upstream (\"suspended\": true): "
               "remove the key and reload to resume it";
    case SUSPEND_ERR_NOMEM:
        return "out of memory";
    }
    return "unknown suspend error";
}

static int effective(const suspend_entry *e)
{
    return e->tombstone || e->runtime || e->configured;
}

/* Under mu: republish the count the lock-free check reads. */
static void recount(suspend_state *s)
{
    size_t c = 0;

    for (size_t i = 0; i < s->n; i++)
        c += effective(&s->e[i]) ? 1 : 0;
    atomic_store(&s->suspended, c);
}

/* Under mu.  tombstones: 1 to look among them as well. */
static suspend_entry *find(suspend_state *s, const char *name, int tombstones)
{
    for (size_t i = 0; i < s->n; i++)
        if ((tombstones || !s->e[i].tombstone) && strcmp(s->e[i].name, name) == 0)
            return &s->e[i];
    return NULL;
}

suspend_state *suspend_new(void)
{
    suspend_state *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    pthread_mutex_init(&s->mu, NULL);
    atomic_init(&s->all, 0);
    atomic_init(&s->suspended, 0);
    s->all_who.uid = s->all_who.gid = s->all_who.pid = -1;
    return s;
}

void suspend_free(suspend_state *s)
{
    if (s == NULL)
        return;
    pthread_mutex_destroy(&s->mu);
    free(s->e);
    free(s);
}

suspend_err suspend_configure(suspend_state *s, const tg_config *cfg,
                              suspend_change_fn on_change, void *arg)
{
    size_t cap = cfg->n_upstreams + s->n + 1, n = 0, nch = 0, ntomb = 0;
    suspend_entry *ne = calloc(cap, sizeof(*ne));
    suspend_change *ch = calloc(cap, sizeof(*ch));
    struct timespec now;

    if (ne == NULL || ch == NULL) {
        free(ne);
        free(ch);
        return SUSPEND_ERR_NOMEM;
    }
    clock_gettime(CLOCK_REALTIME, &now);
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < cfg->n_upstreams; i++) {
        const tg_upstream_conf *u = &cfg->upstreams[i];
        const suspend_entry *old = find(s, u->name, 0);
        suspend_entry *e = &ne[n++];
        int was = old != NULL && effective(old);

        snprintf(e->name, sizeof(e->name), "%s", u->name);
        e->configured = u->suspended;
        e->who.uid = e->who.gid = e->who.pid = -1;
        if (old != NULL) {
            e->runtime = old->runtime;
            e->who = old->who;
            e->since = old->since;
        }
        if (effective(e) != was) {
            e->since = now;
            snprintf(ch[nch].name, sizeof(ch[nch].name), "%s", e->name);
            ch[nch++].suspended = effective(e);
        }
    }
    for (size_t i = 0; i < s->n; i++) {
        suspend_entry *old = &s->e[i];

        if (config_upstream_index(cfg, old->name) >= 0 || !effective(old))
            continue;   /* still configured (done above), or nothing to keep */
        if (!old->tombstone) {
            snprintf(ch[nch].name, sizeof(ch[nch].name), "%s", old->name);
            ch[nch].suspended = 0;
            ch[nch++].removed = 1;
        }
        /* Newest first (configured entries precede tombstones), so past the
         * cap the oldest tombstones drop out. */
        if (ntomb++ >= SUSPEND_MAX_TOMBSTONES)
            continue;
        ne[n] = *old;
        ne[n].tombstone = 1;
        ne[n].runtime = ne[n].configured = 0;
        n++;
    }
    free(s->e);
    s->e = ne;
    s->n = n;
    recount(s);
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; on_change != NULL && i < nch; i++)
        on_change(arg, ch[i].name, ch[i].suspended, ch[i].removed);
    free(ch);
    return SUSPEND_OK;
}

suspend_err suspend_set(suspend_state *s, const char *upstream, int suspended,
                        const suspend_actor *who, int *changed)
{
    suspend_actor nobody = { -1, -1, -1 };
    suspend_err rc = SUSPEND_OK;
    int was, now;

    if (who == NULL)
        who = &nobody;
    pthread_mutex_lock(&s->mu);
    if (upstream == NULL) {
        was = atomic_load(&s->all);
        atomic_store(&s->all, suspended ? 1 : 0);
        now = suspended;
        if (now && !was) {
            clock_gettime(CLOCK_REALTIME, &s->all_since);
            s->all_who = *who;
        }
    } else {
        suspend_entry *e = find(s, upstream, 0);

        if (e == NULL) {
            pthread_mutex_unlock(&s->mu);
            if (changed != NULL)
                *changed = 0;
            return SUSPEND_ERR_UNKNOWN_UPSTREAM;
        }
        was = effective(e);
        if (suspended && !e->runtime) {
            /* The first run-time suspension is the one on record. */
            e->who = *who;
            if (!was)
                clock_gettime(CLOCK_REALTIME, &e->since);
        }
        e->runtime = suspended ? 1 : 0;
        now = effective(e);
        if (!suspended && e->configured)
            rc = SUSPEND_ERR_BY_CONFIG;
        recount(s);
    }
    pthread_mutex_unlock(&s->mu);
    if (changed != NULL)
        *changed = was != now;
    return rc;
}

suspend_scope suspend_check(suspend_state *s, const char *upstream)
{
    const suspend_entry *e;
    int hit;

    if (atomic_load(&s->all))
        return SUSPEND_ALL;
    if (atomic_load(&s->suspended) == 0)
        return SUSPEND_NONE;
    pthread_mutex_lock(&s->mu);
    e = find(s, upstream, 1);
    hit = e != NULL && effective(e);
    pthread_mutex_unlock(&s->mu);
    return hit ? SUSPEND_UPSTREAM : SUSPEND_NONE;
}

int suspend_known(suspend_state *s, const char *upstream)
{
    int known;

    pthread_mutex_lock(&s->mu);
    known = find(s, upstream, 0) != NULL;
    pthread_mutex_unlock(&s->mu);
    return known;
}

/* Add "since" and, when known, who to o.  Returns 0 or -1. */
static int add_since(json_t *o, const struct timespec *since,
                     const suspend_actor *who)
{
    char ts[32];

    audit_format_time(since, ts);
    if (json_object_set_new(o, "since", json_string(ts)) != 0)
        return -1;
    if (who != NULL && who->uid >= 0 &&
        (json_object_set_new(o, "peer_uid", json_integer(who->uid)) != 0 ||
         json_object_set_new(o, "peer_gid", json_integer(who->gid)) != 0 ||
         json_object_set_new(o, "peer_pid", json_integer(who->pid)) != 0))
        return -1;
    return 0;
}

/* Under mu. */
static json_t *entry_status(const suspend_entry *e)
{
    json_t *o = json_pack("{s:s, s:s, s:b, s:b}", "name", e->name,
                          "state", effective(e) ? "suspended" : "active",
                          "runtime", e->runtime, "configuration", e->configured);

    if (o != NULL && effective(e) &&
        add_since(o, &e->since, e->runtime ? &e->who : NULL) != 0) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

json_t *suspend_status(suspend_state *s, const char *upstream)
{
    json_t *root = NULL, *fw = NULL, *list = NULL;

    pthread_mutex_lock(&s->mu);
    if (upstream != NULL) {
        const suspend_entry *e = find(s, upstream, 0);
        root = e != NULL ? entry_status(e) : NULL;
        goto out;
    }
    fw = json_pack("{s:s}", "state", atomic_load(&s->all) ? "suspended" : "active");
    list = json_array();
    if (fw == NULL || list == NULL)
        goto fail;
    if (atomic_load(&s->all) && add_since(fw, &s->all_since, &s->all_who) != 0)
        goto fail;
    for (size_t i = 0; i < s->n; i++) {
        if (s->e[i].tombstone)
            continue;
        if (json_array_append_new(list, entry_status(&s->e[i])) != 0)
            goto fail;
    }
    root = json_pack("{s:o, s:o}", "forwarding", fw, "upstreams", list);
    fw = list = NULL;
    goto out;
fail:
    json_decref(fw);
    json_decref(list);
out:
    pthread_mutex_unlock(&s->mu);
    return root;
}
