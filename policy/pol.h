/*
 * pol: the policy engine.  Detects personal data and confidentiality
 * markings in request text, masks the former with reversible placeholders,
 * decides whether a request may leave, and restores the translation.
 *
 * Depends on PCRE2 and Jansson only: no network, TLS or HTTP code.
 *
 * Threading: a pol_engine is immutable once loaded and may be shared
 * read-only by any number of threads.  A pol_session belongs to one request
 * and to one thread at a time; it owns its own PCRE2 match data, match
 * context and JIT stack.  There is no global state.
 *
 * Nothing in this module ever writes request text, masked values or any part
 * of them to a log or stream; error strings are fixed English text.  The
 * rule-pack format is documented in docs/rules.md.
 */
#ifndef TG_POL_H
#define TG_POL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Confidentiality levels (機密性1..3). */
#define POL_LEVEL_MIN 1
#define POL_LEVEL_MAX 3

/* Element name of the XML placeholder (POL_PH_XML / POL_PH_XML_MARKUP).
 * The gateway sends tag_handling=xml and adds this name to ignore_tags. */
#define POL_XML_TAG "tgph"

/* Largest single field the engine scans (bytes).  Larger input is refused
 * with POL_ERR_TOO_LARGE before any scan. */
#define POL_MAX_FIELD ((size_t)16 * 1024 * 1024)

/* Most distinct placeholders in one session. */
#define POL_MAX_PLACEHOLDERS 100000u

/* Rule id reported when the decision comes from the client's default level
 * (unlabelled text). */
#define POL_RULE_DEFAULT_LEVEL "client-default-level"

typedef enum pol_err {
    POL_OK = 0,
    POL_ERR_NOMEM = 1,          /* out of memory */
    POL_ERR_ARG = 2,            /* bad argument (NULL, level out of range) */
    POL_ERR_UTF8 = 3,           /* input is not valid UTF-8: HTTP 400 */
    POL_ERR_TOO_LARGE = 4,      /* field above POL_MAX_FIELD or too many
                                   placeholders: HTTP 413 */
    POL_ERR_MATCH_LIMIT = 5,    /* a pattern hit its match/depth/heap limit:
                                   fail closed, HTTP 500 */
    POL_ERR_MATCH = 6,          /* other PCRE2 matching failure: HTTP 500 */
    POL_ERR_PH_LOST = 7,        /* a placeholder is missing from the
                                   translation: HTTP 502 placeholder_lost */
    POL_ERR_PH_DUPLICATED = 8,  /* a placeholder occurs more often than it
                                   was sent: HTTP 502 placeholder_lost */
    POL_ERR_PH_UNKNOWN = 9,     /* a placeholder that was never sent in this
                                   field: HTTP 502 placeholder_lost */
    POL_ERR_NO_FIELD = 10       /* restore called for a field that was never
                                   processed */
} pol_err;

/* Fixed English description of an error code; never contains text content.
 * Returns "unknown error" for values outside the enum.  Cannot fail. */
const char *pol_strerror(pol_err e);

/* Version string of the policy engine.  Cannot fail. */
const char *pol_version(void);

/* ------------------------------------------------------------------ */
/* Engine: compiled rule packs                                         */
/* ------------------------------------------------------------------ */

typedef struct pol_engine pol_engine;

/* Load, merge and compile rule packs, in order.  A later pack adds to the
 * earlier ones; an entry (detector, marking or allow rule) whose id already
 * exists replaces it in place, and an entry with "enabled": false removes it.
 * Macros are merged by name the same way and expanded after merging.
 * Returns a new engine (free with pol_engine_free), or NULL after writing one
 * line per problem, "FILE:LINE:COL: $.json.path: message", to errs (which
 * may be NULL to stay silent).  Any problem refuses the whole set. */
pol_engine *pol_engine_load(const char *const *files, size_t n, FILE *errs);

/* Same, from packs already in memory; names[i] is used in messages.
 * Same return and ownership rules as pol_engine_load. */
pol_engine *pol_engine_load_mem(const char *const *names,
                                const char *const *data, const size_t *lens,
                                size_t n, FILE *errs);

/* Free an engine.  NULL is accepted.  No session may still use it. */
void pol_engine_free(pol_engine *e);

/* SHA-256 (lower-case hex, 64 characters) over the packs' bytes, in load
 * order, each prefixed by its length as 8 big-endian bytes.  Computed by
 * the engine's own SHA-256 (no OpenSSL in policy/).  Borrowed: valid as long
 * as the engine.  Cannot fail. */
const char *pol_engine_digest(const pol_engine *e);

/* Entity types known to the engine (e.g. "mynumber", "phone"), indexed
 * 0..pol_engine_ntypes()-1 in first-seen order; the index is stable for the
 * life of the engine.  Names are borrowed.  Cannot fail; an out-of-range
 * index gives NULL. */
size_t pol_engine_ntypes(const pol_engine *e);
const char *pol_engine_type_name(const pol_engine *e, size_t i);

/* Numbers of compiled detectors, markings and allow rules.  Cannot fail. */
size_t pol_engine_ndetectors(const pol_engine *e);
size_t pol_engine_nmarkings(const pol_engine *e);
size_t pol_engine_nallow(const pol_engine *e);

/* ------------------------------------------------------------------ */
/* Session: one request                                                */
/* ------------------------------------------------------------------ */

typedef enum pol_ph_style {
    /* <tgph id="N"/> for engines with XML tag handling (DeepL with
     * tag_handling=xml, ignore_tags=tgph).  The input is plain text: the
     * rest of the text is XML-escaped (& < >) on the way out and unescaped
     * on the way back. */
    POL_PH_XML = 0,
    /* ⟦N⟧ (U+27E6, decimal digits, U+27E7) for engines without tag handling;
     * proven to pass unchanged through Apertium APY (send markUnknown=no).
     * Literal ⟦ and ⟧ in the input are themselves masked so they cannot be
     * mistaken for placeholders. */
    POL_PH_TOKEN = 1,
    /* Same tags as POL_PH_XML for a client that already sends XML
     * (tag_handling=xml): no escaping; a literal "<tgph" in the input is
     * masked itself. */
    POL_PH_XML_MARKUP = 2
} pol_ph_style;

typedef struct pol_session pol_session;

/* New session on a loaded engine (borrowed: it must outlive the session).
 * Returns NULL when out of memory or when e is NULL. */
pol_session *pol_session_new(const pol_engine *e, pol_ph_style style);

/* Wipe every masked value and free the session.  NULL is accepted. */
void pol_session_free(pol_session *s);

/* Scan one outbound field (text, context, glossary entry...), record its
 * detections and markings in the session, and return the masked field.
 * Fields are numbered 0, 1, 2... in the order they are processed; the same
 * value gets the same placeholder in every field of the session.
 * On POL_OK, *masked is a new NUL-terminated string (caller frees; it holds
 * no detected value, but the rest of the text) and *masked_len its length.
 * On error *masked is NULL and the session must not be used to send
 * anything (the gateway fails the request): POL_ERR_UTF8 (400, checked
 * before any scan), POL_ERR_TOO_LARGE, POL_ERR_MATCH_LIMIT, POL_ERR_MATCH,
 * POL_ERR_NOMEM, POL_ERR_ARG.  text may hold NUL bytes. */
pol_err pol_session_process(pol_session *s, const char *text, size_t len,
                            char **masked, size_t *masked_len);

/* Release what only scanning needs (PCRE2 match data and JIT stack), then
 * move what restoration and the counts need into a new session sized for it (a few hundred bytes for a usual request
 * instead of the scanning arena's kilobytes), free s and return the new
 * one.  Returns s itself when there is little to gain or no memory for the
 * copy: the result is always usable.  NULL-safe. */
pol_session *pol_session_compact(pol_session *s);

/* Restore the translation of field `field`: replace each placeholder by its
 * value.  Tolerates changed whitespace, digit width and tag case, and
 * placeholders moved within the field.  Unless best_effort is non-zero, the
 * call fails (no output) with POL_ERR_PH_UNKNOWN when a placeholder was not
 * sent in this field, else POL_ERR_PH_DUPLICATED when one occurs more often
 * than it was sent, else POL_ERR_PH_LOST when one is missing.  With
 * best_effort, known placeholders are restored and unknown ones left as they
 * are.  On POL_OK *out is a new NUL-terminated string holding personal data:
 * the caller wipes it before freeing.  Also POL_ERR_NO_FIELD, POL_ERR_UTF8,
 * POL_ERR_NOMEM, POL_ERR_TOO_LARGE, POL_ERR_ARG. */
pol_err pol_session_restore_field(pol_session *s, size_t field,
                                  const char *translated, size_t len,
                                  int best_effort, char **out, size_t *out_len);

/* Restore the next field in processing order: the first call restores field
 * 0, the second field 1, and so on.  Process the fields that come back
 * (texts, in order) before those that do not (context, ...).  Same contract
 * as pol_session_restore_field. */
pol_err pol_session_restore(pol_session *s, const char *translated, size_t len,
                            int best_effort, char **out, size_t *out_len);

/* Highest confidentiality level marked in any processed field (1..3), or 0
 * when no marking was found; *rule_id (may be NULL) receives the id of the
 * deciding marking (first found at that level), borrowed from the engine,
 * or NULL when unlabelled.  Cannot fail. */
int pol_session_level(const pol_session *s, const char **rule_id);

/* Id of the first detector with action "refuse" that matched, or NULL.
 * Borrowed from the engine.  Cannot fail. */
const char *pol_session_refusing_rule(const pol_session *s);

/* Number of detections of entity type i (see pol_engine_type_name) over all
 * processed fields, for the audit trail.  Cannot fail; 0 when out of
 * range. */
unsigned pol_session_count(const pol_session *s, size_t type_index);

/* Total detections over all fields.  Cannot fail. */
unsigned pol_session_total(const pol_session *s);

typedef enum pol_action { POL_ACT_MASK = 0, POL_ACT_REFUSE = 1 } pol_action;

/* One detection, for the `policy test` tool and tests.  Offsets are byte
 * offsets into the field's input.  No content. */
typedef struct pol_detection {
    size_t field;
    size_t start, end;
    size_t type_index;
    const char *type;      /* borrowed from the engine */
    const char *rule_id;   /* borrowed from the engine */
    pol_action action;
    unsigned placeholder;  /* placeholder number N */
} pol_detection;

/* Detections so far, in field then position order.  Borrowed: valid until
 * the next call on the session.  Cannot fail. */
const pol_detection *pol_session_detections(const pol_session *s, size_t *n);

/* Markings found so far (each: field, byte span, level, rule id).  Borrowed
 * like pol_session_detections.  Cannot fail. */
typedef struct pol_marking_hit {
    size_t field;
    size_t start, end;
    int level;
    const char *rule_id;
} pol_marking_hit;
const pol_marking_hit *pol_session_markings(const pol_session *s, size_t *n);

/* ------------------------------------------------------------------ */
/* Decision                                                            */
/* ------------------------------------------------------------------ */

typedef struct pol_decision {
    int refuse;            /* 1: answer 403 policy_refused, send nothing */
    int level;             /* effective level of the request (1..3) */
    const char *rule_id;   /* deciding rule: a refusing detector, a marking,
                              or POL_RULE_DEFAULT_LEVEL; borrowed */
} pol_decision;

/* Decide whether the processed request may go to an upstream.
 * The request's level is the highest marked level, or client_default_level
 * when no field carries a marking.  The request is refused when a detector
 * with action "refuse" matched (rule_id = that detector), or when its level
 * exceeds min(client_clearance, upstream_clearance) (rule_id = the marking,
 * or POL_RULE_DEFAULT_LEVEL).  All three levels must be 1..3 (an upstream
 * used under standard terms has clearance 1).  Returns POL_OK and fills *out,
 * or POL_ERR_ARG (and *out says refuse, fail closed). */
pol_err pol_decide(const pol_session *s, int client_default_level,
                   int client_clearance, int upstream_clearance,
                   pol_decision *out);

#endif
