/*
 * suspend: the suspend switch (OPS-1): stop forwarding to one upstream, or
 * all forwarding, at once, without a restart or a reload.
 *
 * One state for the whole process, shared by every worker thread (not a
 * per-worker copy), so a change is seen by the very next request on any
 * worker.  Requests already sent to a vendor finish; a request that would be
 * forwarded afterwards is refused (503 upstream_suspended) before anything
 * leaves.  Two independent switches:
 *
 *   - per upstream, by name: suspended "at run time" (the admin plane) or
 *     by the configuration ("suspended": true, applied at start and on each
 *     reload).  Effective when either says so; a run-time resume cannot lift
 *     a suspension the configuration imposes.
 *   - all forwarding (run time only).  Lifting it leaves the upstreams that
 *     are suspended on their own suspended.
 *
 * Run-time state is keyed by upstream name and survives a reload (SIGHUP);
 * an upstream the reload removes drops out.  It lives in memory only: a
 * restart starts with what the configuration says (docs/admin.md).
 *
 * Thread-safe.  Checking is one atomic load while nothing is suspended, and
 * a short lock while something is.
 */
#ifndef TG_SUSPEND_H
#define TG_SUSPEND_H

#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#include "config.h"

typedef enum suspend_err {
    SUSPEND_OK = 0,
    SUSPEND_ERR_UNKNOWN_UPSTREAM = 1, /* no upstream of that name is configured */
    SUSPEND_ERR_BY_CONFIG = 2,        /* resume refused: the configuration
                                         suspends that upstream */
    SUSPEND_ERR_NOMEM = 3
} suspend_err;

/* A fixed English description.  Cannot fail. */
const char *suspend_strerror(suspend_err e);

/* What a request would run into. */
typedef enum suspend_scope {
    SUSPEND_NONE = 0,       /* forward */
    SUSPEND_UPSTREAM = 1,   /* this upstream is suspended */
    SUSPEND_ALL = 2         /* all forwarding is suspended */
} suspend_scope;

/* Who asked for a run-time change: the admin plane's peer credentials
 * (SO_PEERCRED).  -1 where unknown. */
typedef struct suspend_actor {
    long uid, gid, pid;
} suspend_actor;

typedef struct suspend_state suspend_state;

/* A state with no upstream and nothing suspended.  Returns NULL when out of
 * memory. */
suspend_state *suspend_new(void);

/* Free.  NULL-safe. */
void suspend_free(suspend_state *s);

/* One change of effective state made by suspend_configure, for the audit
 * trail and the diagnostics: upstream (borrowed, valid during the call)
 * became suspended (1) or not (0); removed is 1 when the reload removed the
 * upstream (its suspension dropped out with it). */
typedef void (*suspend_change_fn)(void *arg, const char *upstream,
                                  int suspended, int removed);

/* Bind the state to cfg's upstreams (at start, and on each reload before
 * the workers switch): run-time suspensions of upstreams that remain are
 * kept, those of removed upstreams dropped, and each upstream's
 * "suspended" key applied.  on_change (may be NULL) is called once per
 * change of effective state, under no lock of the state's.  Returns
 * SUSPEND_OK or SUSPEND_ERR_NOMEM (the state is then unchanged). */
suspend_err suspend_configure(suspend_state *s, const tg_config *cfg,
                              suspend_change_fn on_change, void *arg);

/* Suspend (suspended 1) or resume (0) the upstream named upstream, or all
 * forwarding when upstream is NULL, at run time.  *changed (may be NULL) is
 * set to 1 when the effective state changed.  Returns SUSPEND_OK,
 * SUSPEND_ERR_UNKNOWN_UPSTREAM, or SUSPEND_ERR_BY_CONFIG (resume only; the
 * run-time flag is cleared all the same, so the upstream resumes once the
 * configuration stops suspending it). */
suspend_err suspend_set(suspend_state *s, const char *upstream, int suspended,
                        const suspend_actor *who, int *changed);

/* Whether a request for upstream may be forwarded now.  Cannot fail. */
suspend_scope suspend_check(suspend_state *s, const char *upstream);

/* 1 when the upstream is configured (known to the state).  Cannot fail. */
int suspend_known(suspend_state *s, const char *upstream);

/* The whole state for the admin plane: a new reference, or NULL when out of
 * memory.  {"forwarding": {"state": "active"|"suspended", ...},
 *  "upstreams": [{"name", "state", "runtime", "configuration", ...}]}
 * (see docs/admin.md).  With upstream non-NULL, that upstream's object
 * alone (NULL when unknown). */
json_t *suspend_status(suspend_state *s, const char *upstream);

#endif
