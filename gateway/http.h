/*
 * http: the terminal-facing DeepL API on top of the h1 codec.  Routing,
 * authentication, body limits, policy, the vendor call, the response and
 * the exchange's audit record.  The TLS front drives it, one request at a
 * time per connection:
 *
 *   http_begin -> http_body* -> http_body_end -> (vendor) -> front_respond
 *   -> http_finish
 *
 * and http_abort/http_finish(r, 0) when the terminal leaves first.
 */
#ifndef TG_HTTP_H
#define TG_HTTP_H

#include "h1.h"
#include "worker.h"

struct http_req;
struct front_conn;

typedef enum http_next {
    HTTP_READ_BODY = 0,   /* read the body (an error may already be set: its
                           * body is read and dropped, then it is answered) */
    HTTP_RESPONDED        /* answered already (front_respond was called) */
} http_next;

/* A complete request head has arrived on c: create the request (c->req),
 * check what needs only the head, and say what comes next.  Returns NULL
 * when memory runs out (the caller closes the connection). */
struct http_req *http_begin(struct front_conn *c, const h1_head *h, http_next *next);

/* Body bytes.  Returns 0, or -1 when the request has been answered (and
 * the connection must close after the answer): a refused request sent
 * more than the gateway is willing to read and drop.  Cannot fail
 * otherwise. */
int http_body(struct http_req *r, const char *p, size_t n);

/* The body is complete: handle the request.  The answer comes through
 * front_respond, now or when the vendor replies.  Cannot fail. */
void http_body_end(struct http_req *r);

/* The body's chunked framing is malformed: answer 400 and close.
 * Cannot fail. */
void http_bad_body(struct http_req *r);

/* A request head that h1 refused (e) on c: a request is created for the
 * record and answered with the error, then the connection closes.
 * Cannot fail (without memory the connection is just closed). */
void http_reject(struct front_conn *c, h1_err e);

/* The response was written in full (delivered = 1), or the connection
 * ended before that (0): write the audit record and free r.  Cannot fail. */
void http_finish(struct http_req *r, int delivered);

/* The terminal behind this request has gone: cancel any vendor job and
 * finish the request as not delivered (r is freed).  Cannot fail. */
void http_abort(struct http_req *r);

/* Drain deadline passed: answer every request still waiting on a vendor
 * with 503 "draining".  Cannot fail. */
void http_cancel_all(worker *w);

#endif
