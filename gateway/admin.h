/*
 * admin: the management plane, on its own listener, separate from the
 * terminals' (DEP-2): a UNIX socket (mode 0600), so only the service
 * account and root reach it, with no TLS to configure and nothing on the
 * network (AC-4).
 *
 *   GET /healthz   200 while the process serves
 *   GET /readyz    200 when it can take requests: not draining and the
 *                  audit trail writable; else 503 with the reason.  Names
 *                  what is suspended, but stays 200 (docs/admin.md)
 *   GET /metrics   Prometheus text: requests, responses by class,
 *                  connections, handshake failures, audit trail state,
 *                  suspensions
 *
 * The suspend switch (OPS-1; see suspend.h):
 *   GET  /upstreams                    every upstream's state, and all
 *                                      forwarding's
 *   GET  /upstreams/NAME               one upstream's
 *   POST /upstreams/NAME/suspend|resume
 *   GET  /forwarding                   all forwarding's
 *   POST /forwarding/suspend|resume
 * Each POST writes an upstream_suspended / upstream_resumed event with the
 * caller's uid, gid and pid (SO_PEERCRED) to the audit trail.
 *
 * Answers hold counters and states only, never request data.
 */
#ifndef TG_ADMIN_H
#define TG_ADMIN_H

#include "audit.h"
#include "suspend.h"
#include "worker.h"

typedef struct admin admin;

/* Bind the socket at path (replacing a stale one) and serve from a thread
 * of its own.  workers (n of them), audit (may be NULL) and susp are
 * borrowed and must outlive the admin plane.  Returns NULL after logging
 * why. */
admin *admin_start(const char *path, worker *workers, int n, audit_log *audit,
                   suspend_state *susp);

/* Tell readiness the gateway is draining.  Thread-safe; cannot fail. */
void admin_set_draining(admin *ad);

/* Stop serving, remove the socket and free.  NULL-safe. */
void admin_stop(admin *ad);

#endif
