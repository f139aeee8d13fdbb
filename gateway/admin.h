/*
 * admin: the management plane, on its own listener, separate from the
 * terminals' (DEP-2): a UNIX socket (mode 0600), so only the service
 * account and root reach it, with no TLS to configure and nothing on the
 * network (AC-4).
 *
 *   GET /healthz   200 while the process serves
 *   GET /readyz    200 when it can take requests: not draining and the
 *                  audit trail writable; else 503 with the reason
 *   GET /metrics   Prometheus text: requests, responses by class,
 *                  connections, handshake failures, audit trail state
 *
 * Answers hold counters and states only, never request data.
 */
#ifndef TG_ADMIN_H
#define TG_ADMIN_H

#include "audit.h"
#include "worker.h"

typedef struct admin admin;

/* Bind the socket at path (replacing a stale one) and serve from a thread
 * of its own.  workers (n of them) and audit (may be NULL) are borrowed
 * and must outlive the admin plane.  Returns NULL after logging why. */
admin *admin_start(const char *path, worker *workers, int n, audit_log *audit);

/* Tell readiness the gateway is draining.  Thread-safe; cannot fail. */
void admin_set_draining(admin *ad);

/* Stop serving, remove the socket and free.  NULL-safe. */
void admin_stop(admin *ad);

#endif
