/*
 * http: the terminal-facing HTTP API on libmicrohttpd (one daemon per
 * worker, external epoll mode, no listen socket: connections arrive from
 * tls_front).  Routing, authentication, body limits, the DeepL API, and
 * suspension while a vendor works.
 */
#ifndef TG_HTTP_H
#define TG_HTTP_H

#include "worker.h"

struct http_req;

/* Create w->mhd and register its epoll fd with the worker.  Returns 0 or -1
 * after logging why. */
int http_init(worker *w);

/* Run MHD once (after events or resumes).  Cannot fail. */
void http_run(worker *w);

/* Milliseconds until MHD needs to run again, or -1.  Cannot fail. */
int http_timeout_ms(worker *w);

/* Resume every suspended request with a 503 (drain deadline passed) or
 * cancel them (shutdown).  Cannot fail. */
void http_cancel_all(worker *w);

/* Stop the daemon; every connection must have been resumed.  NULL-safe. */
void http_close(worker *w);

/* The terminal behind this request has gone: cancel any vendor job and let
 * MHD finish the connection.  Cannot fail. */
void http_abort(struct http_req *r);

#endif
