#include "http.h"

#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include <openssl/rand.h>

#include "access.h"
#include "adapter.h"
#include "audit.h"
#include "api.h"
#include "auth.h"
#include "log.h"
#include "pol.h"
#include "suspend.h"
#include "tg_buf.h"
#include "tls_front.h"
#include "upstream.h"

#define RESP_CAP (64u << 20)

typedef enum http_route {
    ROUTE_NONE = 0,
    ROUTE_TRANSLATE,
    ROUTE_LANGUAGES,
    ROUTE_USAGE
} http_route;

typedef struct http_req {
    worker *w;
    const tg_runtime *rt;        /* snapshot this request runs under (a reference) */
    front_conn *fc;              /* weak: cleared when the terminal leaves */
    char id[33];
    http_route route;
    int client;                  /* index in cfg->clients, -1 before auth */
    int is_post;
    api_body_kind kind;
    int kind_ok;
    tg_buf body;
    int too_large;
    int keep_alive;              /* the terminal may send another request */
    int head_only;               /* HEAD: the answer has no body (RFC 9110 9.3.2) */
    int close;                   /* close the connection after the answer */
    int has_length;              /* the head declared Content-Length */
    unsigned long long length;   /* its value */
    int lang_type_arg;           /* 1: type given in the query, -1: malformed */
    char lang_type_q[8];
    upstream_job *job;
    tg_translate_req treq;
    int lang_type;
    /* The answer, once prepared; written by the front (deliver). */
    unsigned resp_status;
    int resp_ready;
    int delivered;               /* handed to the front */
    tg_buf resp;
    uint64_t t0;
    pol_session *pol;            /* masking state; NULL until policy ran */
    int masked;                  /* placeholders were sent: restore replies */
    size_t chars_in;             /* characters the terminal sent (usage) */
    size_t discarded;            /* body bytes read and dropped after an error */
    int entered;                 /* holds a client slot (access_enter) */
    /* For the audit record: metadata only, never text. */
    int audit_reserved;          /* a slot is held for this exchange's record */
    const char *endpoint;        /* static */
    const char *reason;          /* static: the response's code, "ok" */
    int forwarded;               /* something was sent to a vendor */
    int refused;                 /* refused by an operator's decision (the
                                    suspend switch), whatever the status */
    char source[64];
    char cert_fp[65];
    char (*text_macs)[65];       /* digests of the original texts */
    size_t n_text_macs;
    unsigned *detections;        /* values found per entity type of r->rt's
                                    policy; NULL until the policy ran */
    int level;
    const char *rule;            /* borrowed from r->rt's policy engine */
    int upstream;                /* index in cfg->upstreams, -1 */
    char vendor_addr[64];
    char source_lang[16];        /* as requested (validated codes) */
    char target_lang[16];
    long vendor_status;
    double upstream_ms;
    size_t chars_out;
} http_req;

/* ------------------------------------------------------------------ */
/* Responses                                                            */

/* Prepare the answer (body as the DeepL API defines it); deliver() writes
 * it.  Takes body's contents. */
static void set_response(http_req *r, unsigned status, tg_buf *body)
{
    tg_buf_free(&r->resp);
    r->resp = *body;
    tg_buf_init(body, body->cap);
    r->resp_status = status;
    r->resp_ready = 1;
    if (status < 400)
        r->reason = "ok";
}

static void set_error(http_req *r, unsigned status, const char *msg,
                      const char *code)
{
    tg_buf b;

    tg_buf_init(&b, 4096);
    if (api_encode_error(msg, code, NULL, &b) != 0)
        tg_buf_free(&b);
    set_response(r, status, &b);
    r->reason = code;
}

/* Hand the prepared answer to the front, with the head in front of the
 * body in one buffer (one TLS record, one write for a usual answer).
 * Does nothing before an answer is prepared, or twice.  Cannot fail: when
 * memory runs out the connection is closed unanswered. */
static void deliver(http_req *r)
{
    front_conn *fc = r->fc;
    char head[320], date[30];
    tg_buf out;
    int n, close;
    unsigned cls = r->resp_status / 100;
    size_t blen = r->resp.len;

    if (!r->resp_ready || r->delivered || fc == NULL)
        return;
    r->delivered = 1;
    close = r->close || !r->keep_alive || r->w->state != WORKER_RUNNING;
    h1_date(date);
    /* No Server header: no version banner. */
    n = snprintf(head, sizeof(head),
                 "HTTP/1.1 %u %s\r\n"
                 "Date: %.29s\r\n"
                 "Content-Type: application/json; charset=utf-8\r\n"
                 "Content-Length: %zu\r\n"
                 "X-Request-Id: %s\r\n"
                 "Cache-Control: no-store\r\n"
                 "%s\r\n",
                 r->resp_status, h1_reason(r->resp_status), date, blen, r->id,
                 close ? "Connection: close\r\n" : "");
    tg_buf_init(&out, (size_t)n + blen + 1);
    if (n < 0 || (size_t)n >= sizeof(head) || tg_buf_add(&out, head, (size_t)n) != 0 ||
        (blen > 0 && !r->head_only && tg_buf_add(&out, r->resp.data, blen) != 0)) {
        tg_buf_free(&out);
        tg_buf_free(&r->resp);
        log_warn("request %s: out of memory writing the answer", r->id);
        front_respond(fc, NULL, 0, 1);
        return;
    }
    tg_buf_free(&r->resp);
    if (cls < 6)
        r->w->stats.responses_by_class[cls]++;
    log_debug("request %s: %u", r->id, r->resp_status);
    {
        size_t len;
        char *bytes = tg_buf_steal(&out, &len);
        front_respond(fc, bytes, len, close);
    }
}

/* ------------------------------------------------------------------ */
/* Upstream completion                                                  */

static unsigned status_for_upstream(upstream_err e)
{
    return e == UPSTREAM_ERR_TIMEOUT ? 504 : 502;
}

static void vendor_status_error(http_req *r, long status)
{
    if (status == 429)
        set_error(r, 429, "Too many requests: the translation service is rate limiting",
                  "vendor_rate_limited");
    else if (status == 456)
        set_error(r, 456, "Quota exceeded at the translation service", "vendor_quota");
    else if (status == 403 || status == 401)
        set_error(r, 502, "The translation service refused the gateway's credentials",
                  "vendor_auth_failed");
    else
        set_error(r, 502, "The translation service returned an error", "vendor_error");
}

/* Put every masked value back into the vendor's translations (in place).
 * Returns 0, or -1 with the response set: a lost, duplicated or unknown
 * placeholder fails the request closed unless the operator chose best
 * effort. */
static int restore_translations(http_req *r, tg_translation *tr)
{
    int best_effort = r->rt->cfg->placeholder_best_effort;

    for (size_t i = 0; i < r->treq.n_texts; i++) {
        char *out = NULL;
        size_t len = 0;
        pol_err e = pol_session_restore_field(r->pol, i, tr[i].text, tr[i].len,
                                              best_effort, &out, &len);
        if (e != POL_OK) {
            log_warn("request %s: text %zu: %s", r->id, i, pol_strerror(e));
            if (e == POL_ERR_PH_LOST || e == POL_ERR_PH_DUPLICATED ||
                e == POL_ERR_PH_UNKNOWN)
                set_error(r, 502, "The translation service did not return every "
                          "masked value intact; nothing was returned",
                          "placeholder_lost");
            else
                set_error(r, 502, "The translation could not be restored",
                          "restore_failed");
            return -1;
        }
        tg_wipe(tr[i].text, tr[i].len);
        free(tr[i].text);
        tr[i].text = out;
        tr[i].len = len;
    }
    return 0;
}

/* What the audit record says about the vendor leg. */
static void note_vendor(http_req *r, const upstream_info *info)
{
    snprintf(r->vendor_addr, sizeof(r->vendor_addr), "%s", info->address);
    r->vendor_status = info->last_status;
    r->upstream_ms = info->elapsed_ms;
}

static void on_translate_done(void *arg, upstream_err err,
                              const adapter_reply *replies, size_t n,
                              const upstream_info *info)
{
    http_req *r = arg;
    const rt_upstream *up = &r->rt->upstreams[config_upstream_index(
        r->rt->cfg, r->rt->cfg->clients[r->client].upstream)];
    tg_translation *tr = NULL;
    adapter_err aerr;
    tg_buf out;

    r->job = NULL;
    r->w->n_inflight--;
    note_vendor(r, info);
    if (err != UPSTREAM_OK) {
        set_error(r, status_for_upstream(err), upstream_strerror(err),
                  upstream_code(err));
        goto done;
    }
    aerr = adapter_parse_translate(up->conf, &r->treq, replies, n, &tr);
    if (aerr != ADAPTER_OK) {
        long st = 0;
        for (size_t i = 0; i < n; i++)
            if (replies[i].status < 200 || replies[i].status > 299)
                st = replies[i].status;
        if (aerr == ADAPTER_ERR_VENDOR_STATUS || aerr == ADAPTER_ERR_VENDOR_QUOTA)
            vendor_status_error(r, aerr == ADAPTER_ERR_VENDOR_QUOTA ? 456 : st);
        else if (aerr == ADAPTER_ERR_UNSUPPORTED_LANG)
            set_error(r, 400, "Bad request: the translation service does not support this language pair",
                      "unsupported_language");
        else
            set_error(r, 502, adapter_strerror(aerr), "vendor_bad_reply");
        goto done;
    }
    if (r->masked && restore_translations(r, tr) != 0)
        goto free_tr;
    for (size_t i = 0; i < r->treq.n_texts; i++)
        r->chars_out += api_utf8_len(tr[i].text, tr[i].len) == (size_t)-1
                            ? 0 : api_utf8_len(tr[i].text, tr[i].len);
    tg_buf_init(&out, RESP_CAP);
    if (api_encode_translations(tr, r->treq.n_texts,
                                r->treq.show_billed_characters == 1, &out) != 0) {
        tg_buf_free(&out);
        set_error(r, 500, "Internal error", "internal_error");
    } else {
        set_response(r, 200, &out);
    }
free_tr:
    adapter_translations_free(tr, r->treq.n_texts);
done:
    log_debug("request %s: vendor %s status %ld after %d attempt(s), %.0f ms",
              r->id, info->address, info->last_status, info->attempts,
              info->elapsed_ms);
    api_translate_req_free(&r->treq);
    pol_session_free(r->pol);
    r->pol = NULL;
    deliver(r);
}

static void on_languages_done(void *arg, upstream_err err,
                              const adapter_reply *replies, size_t n,
                              const upstream_info *info)
{
    http_req *r = arg;
    const rt_upstream *up = &r->rt->upstreams[config_upstream_index(
        r->rt->cfg, r->rt->cfg->clients[r->client].upstream)];
    adapter_err aerr;
    tg_buf out;

    r->job = NULL;
    r->w->n_inflight--;
    note_vendor(r, info);
    if (err != UPSTREAM_OK || n != 1) {
        set_error(r, status_for_upstream(err), upstream_strerror(err),
                  upstream_code(err));
        goto done;
    }
    tg_buf_init(&out, RESP_CAP);
    aerr = adapter_parse_languages(up->conf, r->lang_type, &replies[0], &out);
    if (aerr == ADAPTER_OK) {
        set_response(r, 200, &out);
    } else if (aerr == ADAPTER_ERR_VENDOR_STATUS || aerr == ADAPTER_ERR_VENDOR_QUOTA) {
        tg_buf_free(&out);
        vendor_status_error(r, replies[0].status);
    } else {
        tg_buf_free(&out);
        set_error(r, 502, adapter_strerror(aerr), "vendor_bad_reply");
    }
done:
    deliver(r);
}

/* ------------------------------------------------------------------ */
/* Request handling                                                     */

static const rt_upstream *client_upstream(http_req *r)
{
    const tg_config *cfg = r->rt->cfg;
    int i = config_upstream_index(cfg, cfg->clients[r->client].upstream);
    return i < 0 ? NULL : &r->rt->upstreams[i];
}

/* The suspend switch (OPS-1), checked just before a request would leave:
 * a suspended upstream, or all forwarding suspended, refuses it with a
 * 503 that says so, and nothing is sent.  Returns 0 to go on, or -1 with
 * the response set. */
static int check_suspended(http_req *r, const rt_upstream *up)
{
    suspend_scope sc = suspend_check(r->w->susp, up->conf->name);

    if (sc == SUSPEND_NONE)
        return 0;
    r->upstream = (int)(up - r->rt->upstreams);
    r->refused = 1;
    r->w->stats.refused_suspended++;
    set_error(r, 503, sc == SUSPEND_ALL
              ? "Forwarding is suspended by the gateway's operator; retry later"
              : "Forwarding to this terminal's translation service is suspended "
                "by the gateway's operator; retry later",
              "upstream_suspended");
    /* Debug only: while suspended every request would log a line; the
     * audit trail and the metrics count them. */
    log_debug("request %s: refused: %s suspended", r->id,
              sc == SUSPEND_ALL ? "forwarding" : "upstream");
    return -1;
}

static int admit_inflight(http_req *r)
{
    if (r->w->state != WORKER_RUNNING) {
        set_error(r, 503, "The gateway is shutting down; retry on another instance",
                  "draining");
        return -1;
    }
    if (r->w->n_inflight >= r->rt->cfg->max_inflight) {
        set_error(r, 503, "The gateway is overloaded; retry later", "overloaded");
        return -1;
    }
    return 0;
}

static int start_job(http_req *r, const rt_upstream *up, adapter_http *reqs,
                     size_t n, upstream_done_fn fn)
{
    r->job = upstream_add(r->w->up, up, reqs, n, fn, r);
    r->upstream = (int)(up - r->rt->upstreams);
    if (r->job != NULL)
        r->forwarded = 1;
    if (r->job == NULL) {
        set_error(r, 500, "Internal error", "internal_error");
        return -1;
    }
    r->w->n_inflight++;
    return 0;
}

/* Point *field (of *len bytes) at a new masked copy; the original stays
 * with its owner.  Returns POL_OK or the engine's error. */
static pol_err mask_field(pol_session *ps, char **field, size_t *len)
{
    char *masked = NULL;
    size_t mlen = 0;
    pol_err e = pol_session_process(ps, *field, *len, &masked, &mlen);

    if (e != POL_OK)
        return e;
    *field = masked;
    *len = mlen;
    return POL_OK;
}

/* Add the placeholder element to a comma-separated tag list.  Returns 0 or
 * -1 when out of memory. */
static int add_ignore_tag(char **list)
{
    tg_buf b;

    tg_buf_init(&b, 64 * 1024);
    if (*list != NULL && (*list)[0] != '\0') {
        tg_buf_adds(&b, *list);
        tg_buf_adds(&b, ",");
    }
    if (tg_buf_adds(&b, POL_XML_TAG) != 0)
        return -1;
    free(*list);
    *list = tg_buf_steal(&b, NULL);
    return 0;
}

/* Counts per entity type, level and deciding rule for the audit record. */
static void note_policy(http_req *r, const pol_decision *d)
{
    const pol_engine *pe = r->rt->policy;

    r->level = d->level;
    r->rule = d->rule_id;
    free(r->detections);
    r->detections = calloc(pol_engine_ntypes(pe) + 1, sizeof(*r->detections));
    for (size_t i = 0; r->detections != NULL && i < pol_engine_ntypes(pe); i++)
        r->detections[i] = pol_session_count(r->pol, i);
}

/* A security event in the audit trail, beside the exchange record. */
static void audit_event(http_req *r, const char *event, const char *reason)
{
    json_t *ev = json_pack("{s:s, s:s, s:s, s:s}", "event", event, "request_id", r->id,
                           "source", r->source, "reason", reason);

    if (ev != NULL && r->client >= 0)
        json_object_set_new(ev, "client", json_string(r->rt->cfg->clients[r->client].name));
    if (r->w->audit == NULL) {   /* benchmark builds only */
        json_decref(ev);
        return;
    }
    if (ev == NULL || audit_submit(r->w->audit, ev) != 0)
        log_warn("request %s: audit trail full: %s event not recorded", r->id, event);
}

/* Classify and mask every field that goes upstream.  Returns 0 to go on, or
 * -1 with the response set (refusal or error); nothing has been sent. */
static int apply_policy(http_req *r, const rt_upstream *up)
{
    const tg_client_conf *cl = &r->rt->cfg->clients[r->client];
    tg_translate_req *q = &r->treq;
    pol_ph_style style;
    pol_decision d;
    pol_err e = POL_OK;
    char **fields, **originals = NULL;
    size_t *lens, n = q->n_texts + (q->context != NULL ? 1 : 0);
    size_t ctx_len = q->context ? strlen(q->context) : 0;
    int rc = -1;

    memset(&d, 0, sizeof(d));
    if (up->conf->adapter == TG_ADAPTER_APERTIUM)
        style = POL_PH_TOKEN;
    else if (q->tag_handling != NULL)
        style = POL_PH_XML_MARKUP;   /* the terminal already sends markup */
    else
        style = POL_PH_XML;
    r->pol = pol_session_new(r->rt->policy, style);
    fields = calloc(n, sizeof(*fields));
    lens = calloc(n, sizeof(*lens));
    if (r->pol == NULL || fields == NULL || lens == NULL) {
        e = POL_ERR_NOMEM;
        goto fail;
    }
    /* Texts first, then the context: restoration numbers fields in the
     * order they were processed. */
    for (size_t i = 0; i < q->n_texts; i++) {
        fields[i] = q->texts[i];
        lens[i] = q->text_lens[i];
    }
    if (q->context != NULL) {
        fields[q->n_texts] = q->context;
        lens[q->n_texts] = ctx_len;
    }
    originals = calloc(n, sizeof(*originals));
    if (originals == NULL) {
        e = POL_ERR_NOMEM;
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        originals[i] = fields[i];
        e = mask_field(r->pol, &fields[i], &lens[i]);
        if (e != POL_OK)
            goto fail;
    }
    e = pol_decide(r->pol, cl->default_level, cl->clearance, up->conf->clearance, &d);
    note_policy(r, &d);
    /* Only restoration is left: the scanning arena goes now rather than
     * wait with the request for the vendor (thousands may wait at once). */
    r->pol = pol_session_compact(r->pol);
    if (e != POL_OK || d.refuse) {
        tg_buf b;
        tg_buf_init(&b, 4096);
        if (api_encode_error("Refused by policy: the request may not leave the agency "
                             "(see the rule)", "policy_refused",
                             d.rule_id ? d.rule_id : "policy_error", &b) != 0)
            tg_buf_free(&b);
        set_response(r, 403, &b);
        r->reason = "policy_refused";
        log_info("request %s: refused by policy rule %s (level %d)", r->id,
                 d.rule_id ? d.rule_id : "policy_error", d.level);
        audit_event(r, "policy_refused", d.rule_id ? d.rule_id : "policy_error");
        e = POL_OK;
        goto fail;
    }
    r->masked = pol_session_total(r->pol) > 0;
    if (!r->masked) {
        /* Nothing to hide: the vendor gets the texts exactly as sent, with
         * no placeholder handling to alter its behaviour. */
        pol_session_free(r->pol);
        r->pol = NULL;
        rc = 0;
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        tg_wipe(originals[i], i < q->n_texts ? q->text_lens[i] : ctx_len);
        free(originals[i]);
        originals[i] = NULL;
        if (i < q->n_texts) {
            q->texts[i] = fields[i];
            q->text_lens[i] = lens[i];
        } else {
            q->context = fields[i];
        }
        fields[i] = NULL;
    }
    if (up->conf->adapter == TG_ADAPTER_DEEPL) {
        if (q->tag_handling == NULL) {
            q->tag_handling = strdup("xml");
            if (q->tag_handling == NULL) {
                e = POL_ERR_NOMEM;
                goto fail;
            }
        }
        if (add_ignore_tag(&q->ignore_tags) != 0) {
            e = POL_ERR_NOMEM;
            goto fail;
        }
    }
    rc = 0;
fail:
    /* Masked copies not taken over by the request are wiped; originals
     * still belong to it. */
    for (size_t i = 0; fields != NULL && i < n; i++) {
        if (fields[i] != NULL && (originals == NULL || fields[i] != originals[i])) {
            tg_wipe(fields[i], lens[i]);
            free(fields[i]);
        }
    }
    free(fields);
    free(lens);
    free(originals);
    if (e != POL_OK) {
        log_warn("request %s: policy: %s", r->id, pol_strerror(e));
        if (e == POL_ERR_UTF8)
            set_error(r, 400, "Bad request: a text is not valid UTF-8", "malformed_request");
        else if (e == POL_ERR_TOO_LARGE)
            set_error(r, 413, "Request too large for the policy engine", "body_too_large");
        else
            set_error(r, 500, "The policy engine could not check this request; "
                      "nothing was sent", "policy_error");
        rc = -1;
    }
    return rc;
}

static void handle_translate(http_req *r)
{
    const rt_upstream *up = client_upstream(r);
    const char *field = NULL;
    adapter_http *reqs = NULL;
    size_t n = 0;
    adapter_err aerr;
    api_err e;
    char msg[160];

    if (!r->kind_ok) {
        set_error(r, 415,
                  "Unsupported Content-Type: use application/x-www-form-urlencoded or application/json",
                  "bad_content_type");
        return;
    }
    e = api_parse_translate(r->kind, r->body.data ? r->body.data : "", r->body.len,
                            &r->treq, &field);
    tg_buf_free(&r->body);
    if (e != API_OK) {
        if (field != NULL)
            snprintf(msg, sizeof(msg), "Bad request: %s: parameter '%s'",
                     api_strerror(e), field);
        else
            snprintf(msg, sizeof(msg), "Bad request: %s", api_strerror(e));
        set_error(r, e == API_ERR_NOMEM ? 500 : 400, msg,
                  e == API_ERR_NOMEM ? "internal_error" : "malformed_request");
        return;
    }
    r->chars_in = api_count_chars(&r->treq);
    snprintf(r->source_lang, sizeof(r->source_lang), "%s",
             r->treq.source_lang ? r->treq.source_lang : "");
    snprintf(r->target_lang, sizeof(r->target_lang), "%s",
             r->treq.target_lang ? r->treq.target_lang : "");
    if (r->w->audit != NULL && r->treq.n_texts > 0) {
        r->text_macs = calloc(r->treq.n_texts, sizeof(*r->text_macs));
        for (size_t i = 0; r->text_macs != NULL && i < r->treq.n_texts; i++)
            audit_text_mac(r->w->audit, r->treq.texts[i], r->treq.text_lens[i],
                           r->text_macs[i]);
        r->n_text_macs = r->text_macs != NULL ? r->treq.n_texts : 0;
    }
    if (apply_policy(r, up) != 0)
        goto fail;
    if (check_suspended(r, up) != 0)
        goto fail;
    if (admit_inflight(r) != 0)
        goto fail;
    if (access_charge(r->rt, r->client, r->chars_in) != ACCESS_OK) {
        set_error(r, 429, "Too many requests: this terminal's daily character allowance "
                  "is used up", access_code(ACCESS_DAILY_CHARS));
        goto fail;
    }
    aerr = adapter_build_translate(up->conf, up->vendor_key, &r->treq, &reqs, &n);
    if (aerr != ADAPTER_OK) {
        if (aerr == ADAPTER_ERR_NOMEM) {
            set_error(r, 500, "Internal error", "internal_error");
        } else if (aerr == ADAPTER_ERR_BAD_KEY) {
            /* The operator's vendor key file is unusable; not the terminal's fault. */
            log_err("upstream %s: vendor key is not usable in a header", up->conf->name);
            set_error(r, 502, "The gateway's credentials for the translation service are unusable",
                      "vendor_auth_failed");
        } else {
            snprintf(msg, sizeof(msg), "Bad request: %s", adapter_strerror(aerr));
            set_error(r, 400, msg, "unsupported_language");
        }
        goto fail;
    }
    if (start_job(r, up, reqs, n, on_translate_done) != 0)
        goto fail;
    return;
fail:
    api_translate_req_free(&r->treq);
    pol_session_free(r->pol);
    r->pol = NULL;
}

static void handle_languages(http_req *r)
{
    const rt_upstream *up = client_upstream(r);
    const char *type = r->lang_type_arg > 0 ? r->lang_type_q : NULL;
    adapter_http *req;
    adapter_err aerr;

    if (r->lang_type_arg < 0) {
        set_error(r, 400, "Bad request: parameter 'type' must be source or target",
                  "malformed_request");
        return;
    }

    /* POST /v2/languages carries type in a form body. */
    if (type == NULL && r->is_post && r->body.len > 0) {
        if (strcmp(r->body.data, "type=target") == 0)
            type = "target";
        else if (strcmp(r->body.data, "type=source") == 0)
            type = "source";
        else {
            set_error(r, 400, "Bad request: parameter 'type' must be source or target",
                      "malformed_request");
            return;
        }
    }
    r->lang_type = api_languages_type(type);
    tg_buf_free(&r->body);
    if (r->lang_type < 0) {
        set_error(r, 400, "Bad request: parameter 'type' must be source or target",
                  "malformed_request");
        return;
    }
    if (check_suspended(r, up) != 0)
        return;
    if (admit_inflight(r) != 0)
        return;
    req = calloc(1, sizeof(*req));
    if (req == NULL) {
        set_error(r, 500, "Internal error", "internal_error");
        return;
    }
    aerr = adapter_build_languages(up->conf, up->vendor_key, r->lang_type, req);
    if (aerr != ADAPTER_OK) {
        free(req);
        set_error(r, 500, "Internal error", "internal_error");
        return;
    }
    start_job(r, up, req, 1, on_languages_done);
}

static void handle_usage(http_req *r)
{
    unsigned long long used, limit;
    tg_buf b;

    access_usage(r->rt, r->client, &used, &limit);
    tg_buf_init(&b, 256);
    /* DeepL clients expect a limit; "unlimited" is a very large one. */
    tg_buf_printf(&b, "{\"character_count\":%llu,\"character_limit\":%llu}",
                  used, limit ? limit : 1000000000000ULL);
    set_response(r, 200, &b);
}

/* Checks that need only the request line and headers.  Returns 0 to go on
 * reading the body, -1 when a response has been prepared. */
static int check_headers(http_req *r, const h1_head *h)
{
    const tg_runtime *rt = r->rt;
    const char *auth, *ct, *key = NULL;
    size_t keylen = 0;
    int claimed = -1;
    access_err ae;
    int is_get = strcmp(h->method, "GET") == 0;

    r->is_post = strcmp(h->method, "POST") == 0;
    if (strcmp(h->path, "/v2/translate") == 0)
        r->route = ROUTE_TRANSLATE;
    else if (strcmp(h->path, "/v2/languages") == 0)
        r->route = ROUTE_LANGUAGES;
    else if (strcmp(h->path, "/v2/usage") == 0)
        r->route = ROUTE_USAGE;
    /* Never the path as sent: it is the terminal's text. */
    r->endpoint = r->route == ROUTE_TRANSLATE ? "/v2/translate"
                : r->route == ROUTE_LANGUAGES ? "/v2/languages"
                : r->route == ROUTE_USAGE ? "/v2/usage" : "other";
    if (r->route == ROUTE_NONE) {
        set_error(r, 404, "Not found", "not_found");
        return -1;
    }
    if (!r->is_post && !(is_get && r->route != ROUTE_TRANSLATE)) {
        set_error(r, 405, "Method not allowed", "method_not_allowed");
        return -1;
    }
    if (r->route == ROUTE_LANGUAGES) {
        long n = h1_query_arg(h->query, "type", r->lang_type_q, sizeof(r->lang_type_q));
        r->lang_type_arg = n >= 0 ? 1 : n == -1 ? 0 : -1;
    }
    auth = h1_field_get(h, "Authorization");
    if (auth != NULL && strncmp(auth, "DeepL-Auth-Key ", 15) == 0) {
        key = auth + 15;
        keylen = strlen(key);
    }
    ae = access_identify(rt, key, keylen, r->fc->has_cert ? r->fc->cert_cn : NULL,
                         (const struct sockaddr *)&r->fc->peer, &claimed);
    if (ae != ACCESS_OK) {
        /* One answer for every failure: strangers learn nothing about keys,
         * clients or networks.  The reason is in the diagnostics. */
        set_error(r, 403, "Authorization failed: send a valid Authorization: "
                  "DeepL-Auth-Key <key> from an allowed terminal", "auth_failed");
        log_info("request %s: authentication failed from %s: %s (%s)", r->id,
                 r->fc->peer_str, access_strerror(ae),
                 claimed >= 0 ? rt->cfg->clients[claimed].name : "no client");
        r->client = claimed;
        audit_event(r, "auth_failure", access_reason(ae));
        r->client = -1;
        return -1;
    }
    r->client = claimed;
    ae = access_enter(rt, r->client);
    if (ae != ACCESS_OK) {
        set_error(r, 429, ae == ACCESS_RATE
                  ? "Too many requests: this terminal's request rate limit is reached"
                  : "Too many requests: this terminal has too many requests in progress",
                  access_code(ae));
        log_info("request %s: client %s: %s", r->id, rt->cfg->clients[r->client].name,
                 access_strerror(ae));
        return -1;
    }
    r->entered = 1;
    if (r->w->state != WORKER_RUNNING) {
        set_error(r, 503, "The gateway is shutting down; retry on another instance",
                  "draining");
        return -1;
    }
    if (h->has_length && h->length > rt->cfg->max_body_bytes) {
        set_error(r, 413, "Request body too large", "body_too_large");
        return -1;
    }
    ct = h1_field_get(h, "Content-Type");
    r->kind_ok = api_body_kind_from_content_type(ct, &r->kind) == 0;
    return 0;
}

/* How much of a refused request's body we read and drop before answering. */
static size_t discard_cap(const http_req *r)
{
    size_t cap = r->rt->cfg->max_body_bytes * 4;
    return cap < (1u << 20) ? (1u << 20) : cap;
}

/* May the rest of this refused request be read before answering? */
static int body_discardable(const http_req *r)
{
    if (!r->has_length)
        return 1;   /* chunked (bounded by discard_cap as it arrives) or none */
    return r->length <= discard_cap(r);
}

/* Request ids: unique and unguessable enough to correlate, not secrets.
 * A random prefix per worker (drawn once) and a counter: no system call
 * per request (RAND_bytes checks the process id on every call). */
static void new_request_id(worker *w, char out[33])
{
    static const char hex[] = "0123456789abcdef";
    uint64_t v[2];

    if (w->id_prefix == 0 && RAND_bytes((unsigned char *)&w->id_prefix,
                                        sizeof(w->id_prefix)) != 1)
        w->id_prefix = tg_now_ms() ^ ((uint64_t)w->id << 56);
    v[0] = w->id_prefix;
    v[1] = ++w->id_counter;
    /* Most significant digit first: ids of one worker sort by arrival. */
    for (size_t k = 0; k < 2; k++)
        for (size_t i = 0; i < 16; i++)
            out[16 * k + i] = hex[(v[k] >> (60 - 4 * i)) & 15];
    out[32] = '\0';
}

/* A new request on c (the connection's identity is copied, not kept). */
static http_req *req_new(front_conn *c)
{
    worker *w = c->w;
    http_req *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return NULL;
    r->w = w;
    r->rt = runtime_ref(w->rt);
    r->fc = c;
    c->req = r;
    r->client = -1;
    r->upstream = -1;
    r->t0 = tg_now_ms();
    tg_buf_init(&r->body, w->rt->cfg->max_body_bytes);
    tg_buf_init(&r->resp, RESP_CAP);
    new_request_id(w, r->id);
    w->n_active++;
    w->stats.requests++;
    r->endpoint = "other";
    r->reason = "incomplete";
    snprintf(r->source, sizeof(r->source), "%s", c->peer_str);
    if (c->has_cert)
        memcpy(r->cert_fp, c->cert_sha256, sizeof(r->cert_fp));
    /* No exchange without its record: the slot is taken before anything
     * else happens. */
    if (w->audit != NULL && audit_reserve(w->audit) != 0) {
        set_error(r, 503, "The gateway cannot record requests at the moment; "
                  "retry later", "audit_unavailable");
        return r;
    }
    r->audit_reserved = w->audit != NULL;
    return r;
}

http_req *http_begin(front_conn *c, const h1_head *h, http_next *next)
{
    http_req *r = req_new(c);

    *next = HTTP_READ_BODY;
    if (r == NULL)
        return NULL;
    r->keep_alive = h->keep_alive;
    r->head_only = strcmp(h->method, "HEAD") == 0;
    r->has_length = h->has_length;
    r->length = h->length;
    if (r->resp_ready || check_headers(r, h) != 0) {
        /* Answer after reading the body when it is of a reasonable size,
         * so the terminal is not cut off mid-send and sees the error; a
         * huge declared body is answered (and the connection closed) at
         * once, and so is a terminal waiting for "100 Continue", which
         * must not send its body at all. */
        if (body_discardable(r) && !h->expect_continue)
            return r;
        r->close = 1;
        deliver(r);
        *next = HTTP_RESPONDED;
    }
    return r;
}

int http_body(http_req *r, const char *p, size_t n)
{
    if (!r->resp_ready && !r->too_large) {
        if (tg_buf_add(&r->body, p, n) == 0)
            return 0;
        r->too_large = 1;   /* chunked bodies have no Content-Length */
    }
    r->discarded += n;
    if (r->discarded <= discard_cap(r))
        return 0;
    if (!r->resp_ready)
        set_error(r, 413, "Request body too large", "body_too_large");
    r->close = 1;
    deliver(r);
    return -1;
}

void http_body_end(http_req *r)
{
    if (r->resp_ready) {
        deliver(r);
        return;
    }
    if (r->too_large) {
        set_error(r, 413, "Request body too large", "body_too_large");
        deliver(r);
        return;
    }
    switch (r->route) {
    case ROUTE_TRANSLATE:
        handle_translate(r);
        break;
    case ROUTE_LANGUAGES:
        handle_languages(r);
        break;
    case ROUTE_USAGE:
        handle_usage(r);
        break;
    case ROUTE_NONE:
        set_error(r, 404, "Not found", "not_found");
        break;
    }
    if (r->job == NULL)
        deliver(r);
}

void http_bad_body(http_req *r)
{
    tg_buf_free(&r->body);
    set_error(r, 400, "Bad request: malformed chunked body", "malformed_http");
    r->close = 1;
    deliver(r);
}

/* Error codes for heads the codec refused (docs/api.md). */
static const char *reject_code(h1_err e)
{
    switch (h1_status(e)) {
    case 431: return "header_too_large";
    case 501: return "not_implemented";
    case 505: return "http_version_not_supported";
    default:  return "malformed_http";
    }
}

void http_reject(front_conn *c, h1_err e)
{
    http_req *r = req_new(c);
    char msg[96];

    if (r == NULL) {
        front_respond(c, NULL, 0, 1);
        return;
    }
    r->close = 1;
    if (!r->resp_ready) {
        /* The codec's reason is fixed text: nothing of the request. */
        snprintf(msg, sizeof(msg), "Bad request: %s", h1_strerror(e));
        set_error(r, h1_status(e), msg, reject_code(e));
    }
    log_debug("request %s: refused: %s", r->id, h1_strerror(e));
    deliver(r);
}

static const char *str_or_null(const char *s)
{
    return s != NULL && s[0] != '\0' ? s : NULL;
}

/* Queue the exchange's audit record (metadata only; see docs/audit.md).
 * Built as text, in the field order of the format, without Jansson (one
 * allocation: see audit_rec).  delivered: the answer reached the terminal
 * in full. */
static void commit_exchange_record(http_req *r, int delivered)
{
    const tg_config *cfg = r->rt->cfg;
    const pol_engine *pe = r->rt->policy;
    const char *decision, *reason = r->reason;
    audit_rec rec;

    if (!delivered || r->resp_status == 0) {
        /* The answer did not reach the terminal in full: it left, or the
         * connection broke.  (A terminal that hangs up right after reading
         * a complete answer is not this case.) */
        decision = "failed";
        reason = "terminal_disconnected";
    } else if (r->refused) {
        decision = "refused";
    } else if (r->forwarded) {
        decision = r->resp_status == 200 ? "forwarded" : "failed";
    } else {
        decision = r->resp_status < 400 ? "answered"
                 : r->resp_status < 500 ? "refused" : "failed";
    }
    audit_rec_init(&rec);
    audit_rec_str(&rec, "request_id", r->id);
    audit_rec_str(&rec, "client", r->client >= 0 ? cfg->clients[r->client].name : NULL);
    audit_rec_str(&rec, "cert_fp", str_or_null(r->cert_fp));
    audit_rec_str(&rec, "source", r->source);
    audit_rec_str(&rec, "endpoint", r->endpoint);
    audit_rec_int(&rec, "status", r->resp_status);
    audit_rec_str(&rec, "source_lang", str_or_null(r->source_lang));
    audit_rec_str(&rec, "target_lang", str_or_null(r->target_lang));
    audit_rec_int(&rec, "texts", (long long)r->n_text_macs);
    audit_rec_int(&rec, "chars_in", (long long)r->chars_in);
    audit_rec_int(&rec, "chars_out", (long long)r->chars_out);
    audit_rec_open(&rec, "detections", '{');
    for (size_t i = 0; r->detections != NULL && i < pol_engine_ntypes(pe); i++)
        if (r->detections[i] > 0)
            audit_rec_int(&rec, pol_engine_type_name(pe, i), r->detections[i]);
    audit_rec_close(&rec, '}');
    if (r->level)
        audit_rec_int(&rec, "level", r->level);
    else
        audit_rec_null(&rec, "level");
    audit_rec_str(&rec, "rule", str_or_null(r->rule));
    audit_rec_str(&rec, "decision", decision);
    audit_rec_str(&rec, "reason", reason);
    audit_rec_str(&rec, "upstream", r->upstream >= 0 ? cfg->upstreams[r->upstream].name
                                                     : NULL);
    audit_rec_str(&rec, "vendor_addr", str_or_null(r->vendor_addr));
    if (r->vendor_status)
        audit_rec_int(&rec, "vendor_status", r->vendor_status);
    else
        audit_rec_null(&rec, "vendor_status");
    audit_rec_int(&rec, "latency_ms", (long long)(tg_now_ms() - r->t0));
    audit_rec_int(&rec, "upstream_ms", (long long)r->upstream_ms);
    audit_rec_open(&rec, "text_macs", '[');
    for (size_t i = 0; i < r->n_text_macs; i++)
        audit_rec_str(&rec, NULL, r->text_macs[i]);
    audit_rec_close(&rec, ']');
    audit_commit_rec(r->w->audit, &rec);
}

void http_finish(http_req *r, int delivered)
{
    worker *w = r->w;

    if (r->job != NULL) {
        upstream_cancel(w->up, r->job);
        r->job = NULL;
        w->n_inflight--;
    }
    if (r->fc != NULL && r->fc->req == r)
        r->fc->req = NULL;
    api_translate_req_free(&r->treq);
    pol_session_free(r->pol);
    tg_buf_free(&r->body);
    tg_buf_free(&r->resp);
    if (r->audit_reserved)
        commit_exchange_record(r, delivered);
    free(r->text_macs);
    free(r->detections);
    if (r->entered)
        access_leave(r->rt, r->client);
    runtime_unref(r->rt);
    w->n_active--;
    free(r);
}

void http_abort(http_req *r)
{
    if (r->job != NULL)
        log_info("request %s: terminal disconnected; vendor request cancelled", r->id);
    r->fc = NULL;
    http_finish(r, 0);
}

void http_cancel_all(worker *w)
{
    for (front_conn *c = w->conns; c != NULL; c = c->next) {
        if (c->req != NULL && c->req->job != NULL) {
            http_req *r = c->req;
            upstream_cancel(w->up, r->job);
            r->job = NULL;
            w->n_inflight--;
            set_error(r, 503, "The gateway is shutting down; retry on another instance",
                      "draining");
            deliver(r);
        }
    }
}
