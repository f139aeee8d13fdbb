/*
 * pol_session: per-request scanning, masking, restoration and decision.
 *
 * A session owns its PCRE2 match data, match context (with limits) and JIT
 * stack, so sessions on one shared engine run in parallel without locks.
 * Masked values live only in the session and are wiped when it is freed.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "pol_internal.h"

#define POL_MATCH_LIMIT   10000000u
#define POL_DEPTH_LIMIT   10000u
#define POL_HEAP_LIMIT_KB 20000u
#define POL_JIT_STACK_MAX (1024u * 1024u)
#define POL_MAX_RECORDED  200000u     /* detections kept for reporting */
#define POL_MAX_FIELDS    100000u
/* The session's own scratch buffer, where its arena starts: enough for a
 * text of a few kilobytes without another allocation. */
#define POL_ARENA0        (8u * 1024u)
/* Up to this many candidates in a field, overlaps are checked pairwise
 * (no map of the field's bytes to allocate and clear). */
#define POL_FEW_CANDS     32u

typedef struct pol_value {
    char *v;
    size_t len;
    size_t type;
} pol_value;

typedef struct pol_field_ph {
    uint32_t id;
    uint32_t count;
} pol_field_ph;

typedef struct pol_field {
    pol_field_ph *ph;
    size_t n, cap;
} pol_field;

/* A digit cluster: digit runs [first, end) of the field's scan. */
typedef struct pol_clu {
    uint32_t first, end;
    uint32_t nd;               /* its digits (its runs: end - first) */
} pol_clu;

/* Byte range where a match may start: [lo, hi]. */
typedef struct pol_win {
    size_t lo, hi;
} pol_win;

typedef struct pol_cand {
    size_t start, end;
    long det;          /* detector index, -1 for a literal placeholder */
    int accepted;
} pol_cand;

/* Growable byte buffer with a hard cap; wiped when released. */
typedef struct pol_buf {
    char *d;
    size_t len, alloc, cap;
} pol_buf;

struct pol_session {
    const pol_engine *e;
    pol_ph_style style;
    pol_arena ar;              /* the arrays below that grow, values */
    pcre2_match_data *md;
    pcre2_match_context *mc;
    pcre2_match_context *mc_lim;   /* same limits, plus an offset limit */
    pcre2_jit_stack *js;
    pol_value *vals;
    size_t nvals, capvals;
    uint32_t *htab;            /* value index + 1; 0 = empty */
    size_t hcap;
    pol_field *fields;
    size_t nfields, capfields;
    size_t restore_next;
    unsigned counts[POL_MAX_TYPES];
    unsigned total;
    int level;
    const char *level_rule;
    const char *refuse_rule;
    pol_detection *dets;
    size_t ndets, capdets;
    pol_marking_hit *marks;
    size_t nmarks, capmarks;
    pol_cand *cands;
    size_t ncand, capcand;
    pol_cand *ctmp;            /* scratch for sorting cands */
    size_t capctmp;
    unsigned char *claimed;
    size_t claimed_cap;
    pol_scan scan;             /* the field's shared pre-scan */
    pol_clu *clu;              /* digit clusters of every class computed
                                  for this field, one class after another */
    size_t nclu, capclu;
    uint32_t *cls0;            /* per class: its first cluster in clu */
    uint32_t *clsn;            /* per class: number of clusters */
    uint32_t *clsfield;        /* per class: field number + 1 it is for */
    pol_win *wins;             /* windows where one rule may match */
    size_t nwins, capwins;
    pol_win *awins;            /* an anchored detector's anchor windows
                                  while its prefilter's are computed */
    size_t nawins, capawins;
    _Alignas(16) unsigned char arena0[];  /* ar starts here: POL_ARENA0
                                             bytes, or what
                                             pol_session_compact needs */
};

static void pol_wipe(void *p, size_t n)
{
    if (p != NULL && n > 0)
        explicit_bzero(p, n);
}

static void pol_buf_init(pol_buf *b, size_t cap)
{
    b->d = NULL;
    b->len = 0;
    b->alloc = 0;
    b->cap = cap;
}

static void pol_buf_free(pol_buf *b)
{
    if (b->d != NULL) {
        pol_wipe(b->d, b->alloc);
        free(b->d);
    }
    b->d = NULL;
    b->len = b->alloc = 0;
}

/* Append; on failure the buffer is wiped and freed.  0 or POL_ERR_*. */
static pol_err pol_buf_add(pol_buf *b, const void *p, size_t n)
{
    if (n > b->cap || b->len > b->cap - n) {
        pol_buf_free(b);
        return POL_ERR_TOO_LARGE;
    }
    if (b->len + n + 1 > b->alloc) {
        size_t na = b->alloc ? b->alloc : 256;
        char *nd;
        while (na < b->len + n + 1)
            na *= 2;
        /* Grow by copy so the old bytes can be wiped (realloc may move them
         * and leave a copy behind). */
        nd = malloc(na);
        if (nd == NULL) {
            pol_buf_free(b);
            return POL_ERR_NOMEM;
        }
        if (b->d != NULL) {
            memcpy(nd, b->d, b->len);
            pol_wipe(b->d, b->alloc);
            free(b->d);
        }
        b->d = nd;
        b->alloc = na;
    }
    if (n > 0)
        memcpy(b->d + b->len, p, n);
    b->len += n;
    b->d[b->len] = '\0';
    return POL_OK;
}

/* Allocate n bytes ahead (an empty buffer only); 0 or POL_ERR_NOMEM. */
static pol_err pol_buf_reserve(pol_buf *b, size_t n)
{
    if (b->d != NULL || n > b->cap + 1)
        return POL_OK;
    b->d = malloc(n);
    if (b->d == NULL)
        return POL_ERR_NOMEM;
    b->alloc = n;
    b->d[0] = '\0';
    return POL_OK;
}

static pol_err pol_buf_adds(pol_buf *b, const char *s)
{
    return pol_buf_add(b, s, strlen(s));
}

const char *pol_strerror(pol_err e)
{
    switch (e) {
    case POL_OK:
        return "success";
    case POL_ERR_NOMEM:
        return "out of memory";
    case POL_ERR_ARG:
        return "invalid argument";
    case POL_ERR_UTF8:
        return "text is not valid UTF-8";
    case POL_ERR_TOO_LARGE:
        return "text too large or too many masked values";
    case POL_ERR_MATCH_LIMIT:
        return "a rule exceeded its matching limit";
    case POL_ERR_MATCH:
        return "pattern matching failed";
    case POL_ERR_PH_LOST:
        return "a placeholder was lost in translation";
    case POL_ERR_PH_DUPLICATED:
        return "a placeholder was duplicated in translation";
    case POL_ERR_PH_UNKNOWN:
        return "an unknown placeholder appeared in translation";
    case POL_ERR_NO_FIELD:
        return "no such field in this session";
    }
    return "unknown error";
}

pol_session *pol_session_new(const pol_engine *e, pol_ph_style style)
{
    pol_session *s;

    if (e == NULL || (style != POL_PH_XML && style != POL_PH_TOKEN &&
                      style != POL_PH_XML_MARKUP))
        return NULL;
    /* The members are cleared; the arena's buffer is handed out
     * uninitialised, like malloc's. */
    s = malloc(sizeof *s + POL_ARENA0);
    if (s == NULL)
        return NULL;
    memset(s, 0, offsetof(pol_session, arena0));
    pol_arena_init(&s->ar, s->arena0, POL_ARENA0);
    s->scan.ar = &s->ar;
    s->e = e;
    s->style = style;
    s->md = pcre2_match_data_create(e->max_ovec, NULL);
    s->mc = pcre2_match_context_create(NULL);
    s->mc_lim = pcre2_match_context_create(NULL);
    if (s->md == NULL || s->mc == NULL || s->mc_lim == NULL)
        goto fail;
    pcre2_set_match_limit(s->mc, POL_MATCH_LIMIT);
    pcre2_set_depth_limit(s->mc, POL_DEPTH_LIMIT);
    pcre2_set_heap_limit(s->mc, POL_HEAP_LIMIT_KB);
    pcre2_set_match_limit(s->mc_lim, POL_MATCH_LIMIT);
    pcre2_set_depth_limit(s->mc_lim, POL_DEPTH_LIMIT);
    pcre2_set_heap_limit(s->mc_lim, POL_HEAP_LIMIT_KB);
    /* No JIT stack yet: the default 32 KiB on the machine stack suffices
     * for bounded patterns, and an mmap per request would dominate the
     * cost of short texts.  pol_match creates one on first need. */
    return s;
fail:
    pol_session_free(s);
    return NULL;
}

void pol_session_free(pol_session *s)
{
    size_t i;

    if (s == NULL)
        return;
    for (i = 0; i < s->nvals; i++)
        pol_wipe(s->vals[i].v, s->vals[i].len);
    pcre2_match_data_free(s->md);
    pcre2_match_context_free(s->mc);
    pcre2_match_context_free(s->mc_lim);
    pcre2_jit_stack_free(s->js);
    pol_arena_free(&s->ar);
    pol_wipe(s, offsetof(pol_session, arena0));
    free(s);
}

/* Free what only scanning needs and is kept outside the session's arena;
 * pol_session_process makes it again if called. */
static void pol_session_trim(pol_session *s)
{
    /* The JIT stack is 64 KiB or more when a pattern needed one. */
    pcre2_match_data_free(s->md);
    s->md = NULL;
    if (s->js != NULL) {
        /* Back to the default stack before this one goes. */
        pcre2_jit_stack_assign(s->mc, NULL, NULL);
        pcre2_jit_stack_assign(s->mc_lim, NULL, NULL);
        pcre2_jit_stack_free(s->js);
        s->js = NULL;
    }
}

/* Arena bytes pol_copy_array takes for n bytes (none for an empty array). */
static size_t pol_arena_bytes(size_t n)
{
    return n == 0 ? 0 : pol_arena_round(n);
}

/* A copy of the array a[0..n) of sz-byte elements in arena ar, or NULL
 * when n is 0.  The arena was sized for it (pol_session_compact). */
static void *pol_copy_array(pol_arena *ar, const void *a, size_t n, size_t sz)
{
    void *p;

    if (n == 0)
        return NULL;
    p = pol_arena_alloc(ar, n * sz);
    if (p != NULL)
        memcpy(p, a, n * sz);
    return p;
}

pol_session *pol_session_compact(pol_session *s)
{
    pol_session *n;
    size_t need, i;

    if (s == NULL)
        return NULL;
    pol_session_trim(s);
    need = pol_arena_bytes(s->nvals * sizeof *s->vals) +
           pol_arena_bytes(s->hcap * sizeof *s->htab) +
           pol_arena_bytes(s->nfields * sizeof *s->fields) +
           pol_arena_bytes(s->ndets * sizeof *s->dets) +
           pol_arena_bytes(s->nmarks * sizeof *s->marks);
    for (i = 0; i < s->nvals; i++)
        need += pol_arena_bytes(s->vals[i].len + 1);
    for (i = 0; i < s->nfields; i++)
        need += pol_arena_bytes(s->fields[i].n * sizeof *s->fields[i].ph);
    if (need >= POL_ARENA0 / 2)
        return s;   /* little to gain */
    n = malloc(sizeof *n + need);
    if (n == NULL)
        return s;
    /* What restoration, the counts and later processing need; the scan
     * scratch starts again empty, as in a new session. */
    memset(n, 0, offsetof(pol_session, arena0));
    pol_arena_init(&n->ar, n->arena0, need);
    n->scan.ar = &n->ar;
    n->e = s->e;
    n->style = s->style;
    n->mc = s->mc;
    n->mc_lim = s->mc_lim;
    s->mc = s->mc_lim = NULL;
    n->restore_next = s->restore_next;
    memcpy(n->counts, s->counts, sizeof n->counts);
    n->total = s->total;
    n->level = s->level;
    n->level_rule = s->level_rule;
    n->refuse_rule = s->refuse_rule;
    n->vals = pol_copy_array(&n->ar, s->vals, s->nvals, sizeof *s->vals);
    n->nvals = n->capvals = s->nvals;
    for (i = 0; i < s->nvals; i++) {
        n->vals[i].v = pol_arena_alloc(&n->ar, s->vals[i].len + 1);
        memcpy(n->vals[i].v, s->vals[i].v, s->vals[i].len);
        n->vals[i].v[s->vals[i].len] = '\0';
    }
    n->htab = pol_copy_array(&n->ar, s->htab, s->hcap, sizeof *s->htab);
    n->hcap = n->htab != NULL ? s->hcap : 0;
    n->fields = pol_copy_array(&n->ar, s->fields, s->nfields, sizeof *s->fields);
    n->nfields = n->capfields = s->nfields;
    for (i = 0; i < s->nfields; i++) {
        n->fields[i].ph = pol_copy_array(&n->ar, s->fields[i].ph, s->fields[i].n,
                                         sizeof *s->fields[i].ph);
        n->fields[i].cap = s->fields[i].n;
    }
    n->dets = pol_copy_array(&n->ar, s->dets, s->ndets, sizeof *s->dets);
    n->ndets = n->capdets = s->ndets;
    n->marks = pol_copy_array(&n->ar, s->marks, s->nmarks, sizeof *s->marks);
    n->nmarks = n->capmarks = s->nmarks;
    pol_session_free(s);   /* wipes the values' old copies */
    return n;
}

/* Hash of a value for the session's table, eight bytes at a time.  It
 * only places values in the table: placeholder numbers follow the order
 * in which values are first seen. */
static uint32_t pol_hash(const char *p, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n, w;

    for (; n >= 8; p += 8, n -= 8) {
        memcpy(&w, p, sizeof w);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
    }
    w = 0;
    memcpy(&w, p, n);
    h = (h ^ w) * 0x94d049bb133111ebull;
    h ^= h >> 29;
    return (uint32_t)(h ^ (h >> 32));
}

static int pol_rehash(pol_session *s, size_t ncap)
{
    uint32_t *nt = ncap <= SIZE_MAX / sizeof *nt ? pol_arena_alloc(&s->ar, ncap * sizeof *nt)
                                                 : NULL;
    size_t i;

    if (nt == NULL)
        return -1;
    memset(nt, 0, ncap * sizeof *nt);
    for (i = 0; i < s->nvals; i++) {
        size_t h = pol_hash(s->vals[i].v, s->vals[i].len) & (ncap - 1);
        while (nt[h] != 0)
            h = (h + 1) & (ncap - 1);
        nt[h] = (uint32_t)(i + 1);
    }
    s->htab = nt;
    s->hcap = ncap;
    return 0;
}

/* Placeholder number for a value, adding it if new.  0 on error (*err). */
static uint32_t pol_value_id(pol_session *s, const char *v, size_t n, size_t type,
                             pol_err *err)
{
    size_t h;
    char *copy;

    if (s->hcap == 0 || (s->nvals + 1) * 2 > s->hcap) {
        if (pol_rehash(s, s->hcap ? s->hcap * 2 : 64) != 0) {
            *err = POL_ERR_NOMEM;
            return 0;
        }
    }
    h = pol_hash(v, n) & (s->hcap - 1);
    while (s->htab[h] != 0) {
        pol_value *pv = &s->vals[s->htab[h] - 1];
        if (pv->len == n && memcmp(pv->v, v, n) == 0)
            return s->htab[h];
        h = (h + 1) & (s->hcap - 1);
    }
    if (s->nvals >= POL_MAX_PLACEHOLDERS) {
        *err = POL_ERR_TOO_LARGE;
        return 0;
    }
    if (pol_arena_grow(&s->ar, (void **)&s->vals, &s->capvals, s->nvals + 1,
                       sizeof *s->vals) != 0 ||
        n == SIZE_MAX || (copy = pol_arena_alloc(&s->ar, n + 1)) == NULL) {
        *err = POL_ERR_NOMEM;
        return 0;
    }
    memcpy(copy, v, n);
    copy[n] = '\0';
    s->vals[s->nvals].v = copy;
    s->vals[s->nvals].len = n;
    s->vals[s->nvals].type = type;
    s->nvals++;
    s->htab[h] = (uint32_t)s->nvals;
    return (uint32_t)s->nvals;
}

static int pol_field_add(pol_session *s, pol_field *f, uint32_t id)
{
    size_t i;

    for (i = 0; i < f->n; i++)
        if (f->ph[i].id == id) {
            f->ph[i].count++;
            return 0;
        }
    if (pol_arena_grow(&s->ar, (void **)&f->ph, &f->cap, f->n + 1, sizeof *f->ph) != 0)
        return -1;
    f->ph[f->n].id = id;
    f->ph[f->n].count = 1;
    f->n++;
    return 0;
}

static pol_err pol_rc_err(int rc)
{
    switch (rc) {
    case PCRE2_ERROR_MATCHLIMIT:
    case PCRE2_ERROR_DEPTHLIMIT:
    case PCRE2_ERROR_HEAPLIMIT:
    case PCRE2_ERROR_JIT_STACKLIMIT:
        return POL_ERR_MATCH_LIMIT;
    case PCRE2_ERROR_NOMEMORY:
        return POL_ERR_NOMEM;
    default:
        return POL_ERR_MATCH;
    }
}

/* Code point starts (bytes other than 10xxxxxx) among the 8 bytes at p:
 * the continuation bytes' top bits, moved to the bottom of each byte and
 * summed by one multiplication (no popcount instruction on baseline
 * x86-64). */
static unsigned pol_starts8(const char *p)
{
    uint64_t w, cont;

    memcpy(&w, p, sizeof w);
    cont = (w & ~(w << 1) & 0x8080808080808080ull) >> 7;
    return 8u - (unsigned)((cont * 0x0101010101010101ull) >> 56);
}

/* Move back / forward n code points from byte offset i.  Windows reach
 * back up to 64 code points from every '@' or ':': eight bytes are passed
 * at a time while they hold fewer starts than remain to be passed. */
static size_t pol_back_cp(const char *t, size_t i, unsigned n)
{
    unsigned k;

    while (n > 0 && i >= 8 && (k = pol_starts8(t + i - 8)) < n) {
        i -= 8;
        n -= k;
    }
    while (n > 0 && i > 0) {
        i--;
        while (i > 0 && ((unsigned char)t[i] & 0xc0) == 0x80)
            i--;
        n--;
    }
    return i;
}

static size_t pol_fwd_cp(const char *t, size_t len, size_t i, unsigned n)
{
    unsigned k;

    while (n > 0 && i + 9 <= len && (k = pol_starts8(t + i + 1)) < n) {
        i += 8;
        n -= k;
    }
    while (n > 0 && i < len) {
        i++;
        while (i < len && ((unsigned char)t[i] & 0xc0) == 0x80)
            i++;
        n--;
    }
    return i;
}

static int pol_any_word(const pol_words *w, const char *t, size_t len)
{
    size_t i;

    for (i = 0; i < w->n; i++)
        if (memmem(t, len, w->w[i], w->len[i]) != NULL)
            return 1;
    return 0;
}

static int pol_match(pol_session *s, const pcre2_code *re, const char *t, size_t len,
                     size_t off, pcre2_match_context *mc);

/* 1 when a word of slot k occurs entirely inside text[ws, we), from the
 * shared scan: the same answer as memmem over the window (valid UTF-8 is
 * self-synchronising, so a word only occurs at character starts, where
 * the scan looks), found by binary search. */
static int pol_word_in(const pol_session *s, size_t k, size_t ws, size_t we)
{
    const pol_scan *sc = &s->scan;
    size_t lo, hi, end;

    pol_scan_slot(sc, k, &lo, &end);
    hi = end;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sc->wocc[mid].pos < ws)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < end && sc->wocc[lo].pos < we; lo++)
        if (sc->wocc[lo].pos + sc->wocc[lo].len <= we)
            return 1;
    return 0;
}

/* 1 when a context word of detector det occurs anywhere in the field. */
static int pol_ctx_present(const pol_session *s, size_t det, const char *t, size_t len)
{
    const pol_engine *e = s->e;
    size_t lo, hi;

    if (e->reference)
        return pol_any_word(&e->det[det].ctx, t, len);
    pol_scan_slot(&s->scan, pol_dict_slot(&e->dict, POL_LIT_CTX, det), &lo, &hi);
    return lo < hi;
}

/* Apply context words and allow rules to a candidate.  1 keep, 0 drop,
 * <0 a PCRE2 error. */
static int pol_keep(pol_session *s, const pol_detector *d, const char *t, size_t len,
                    size_t st, size_t en)
{
    const pol_engine *e = s->e;
    size_t i;

    if (!pol_validate(d->validator, t + st, en - st))
        return 0;
    if (d->ctx.n > 0 || d->not_ctx.n > 0) {
        size_t ws = pol_back_cp(t, st, d->before);
        size_t we = pol_fwd_cp(t, len, en, d->after);
        if (e->reference) {
            if (d->ctx_required && !pol_any_word(&d->ctx, t + ws, we - ws))
                return 0;
            if (pol_any_word(&d->not_ctx, t + ws, we - ws))
                return 0;
        } else {
            size_t det = (size_t)(d - e->det);
            if (d->ctx_required &&
                !pol_word_in(s, pol_dict_slot(&e->dict, POL_LIT_CTX, det), ws, we))
                return 0;
            if (d->not_ctx.n > 0 &&
                pol_word_in(s, pol_dict_slot(&e->dict, POL_LIT_NOT_CTX, det), ws, we))
                return 0;
        }
    }
    for (i = 0; i < e->nallow; i++) {
        const pol_allow *a = &e->allow[i];
        int rc;
        if (!(a->types & ((uint64_t)1 << d->type)))
            continue;
        rc = pol_match(s, a->re, t + st, en - st, 0, s->mc);
        if (rc >= 0)
            return 0;
        if (rc != PCRE2_ERROR_NOMATCH)
            return rc;
    }
    return 1;
}

static pol_err pol_add_cand(pol_session *s, size_t st, size_t en, long det)
{
    if (pol_arena_grow(&s->ar, (void **)&s->cands, &s->capcand, s->ncand + 1,
                       sizeof *s->cands) != 0)
        return POL_ERR_NOMEM;
    s->cands[s->ncand].start = st;
    s->cands[s->ncand].end = en;
    s->cands[s->ncand].det = det;
    s->cands[s->ncand].accepted = 0;
    s->ncand++;
    return POL_OK;
}

/* pcre2_match with this session's limits; grows to a private JIT stack
 * (capped at POL_JIT_STACK_MAX) the first time the default is too small. */
static int pol_match(pol_session *s, const pcre2_code *re, const char *t, size_t len,
                     size_t off, pcre2_match_context *mc)
{
    /* When every pattern is JIT-compiled, call the JIT directly:
     * pcre2_match would check its arguments and dispatch to the same code,
     * which costs as much as a short window's whole search.  The text is
     * already validated and the match context (limits, offset limit, JIT
     * stack) is the same. */
    int rc = s->e->jit_all
                 ? pcre2_jit_match(re, (PCRE2_SPTR)t, len, off, PCRE2_NO_UTF_CHECK, s->md, mc)
                 : pcre2_match(re, (PCRE2_SPTR)t, len, off, PCRE2_NO_UTF_CHECK, s->md, mc);

    if (rc == PCRE2_ERROR_JIT_STACKLIMIT && s->js == NULL) {
        s->js = pcre2_jit_stack_create(64 * 1024, POL_JIT_STACK_MAX, NULL);
        if (s->js == NULL)
            return PCRE2_ERROR_NOMEMORY;
        pcre2_jit_stack_assign(s->mc, NULL, s->js);
        pcre2_jit_stack_assign(s->mc_lim, NULL, s->js);
        rc = pcre2_match(re, (PCRE2_SPTR)t, len, off, PCRE2_NO_UTF_CHECK, s->md, mc);
    }
    return rc;
}

/* Record one match: a marking hit, a literal placeholder, or a detector
 * candidate that passes its validator, context and allow rules. */
static pol_err pol_hit(pol_session *s, long det, int mark, size_t field,
                       const char *t, size_t len, size_t st, size_t en)
{
    if (mark) {
        const pol_marking *m = &s->e->mark[det];
        if (pol_arena_grow(&s->ar, (void **)&s->marks, &s->capmarks, s->nmarks + 1,
                           sizeof *s->marks) != 0)
            return POL_ERR_NOMEM;
        s->marks[s->nmarks].field = field;
        s->marks[s->nmarks].start = st;
        s->marks[s->nmarks].end = en;
        s->marks[s->nmarks].level = m->level;
        s->marks[s->nmarks].rule_id = m->id;
        s->nmarks++;
        if (m->level > s->level) {
            s->level = m->level;
            s->level_rule = m->id;
        }
        return POL_OK;
    }
    if (det < 0)
        return pol_add_cand(s, st, en, -1);
    {
        int k = pol_keep(s, &s->e->det[det], t, len, st, en);
        if (k < 0)
            return pol_rc_err(k);
        if (k > 0)
            return pol_add_cand(s, st, en, det);
    }
    return POL_OK;
}

/* Run one pattern over the whole text (det: detector index, -1 for the
 * literal-placeholder pattern; marking index when mark != 0). */
static pol_err pol_run(pol_session *s, const pcre2_code *re, const char *t, size_t len,
                       long det, int mark, size_t field)
{
    size_t off = 0;

    while (off < len) {
        int rc = pol_match(s, re, t, len, off, s->mc);
        PCRE2_SIZE *ov;
        size_t st, en;
        pol_err pe;
        if (rc == PCRE2_ERROR_NOMATCH)
            break;
        if (rc < 0)
            return pol_rc_err(rc);
        ov = pcre2_get_ovector_pointer(s->md);
        st = ov[0];
        en = ov[1];
        if (en <= off || en <= st) {
            /* empty (e.g. \K at the end): step one code point */
            off = pol_fwd_cp(t, len, en > off ? en : off, 1);
            continue;
        }
        off = en;
        if ((pe = pol_hit(s, det, mark, field, t, len, st, en)) != POL_OK)
            return pe;
    }
    return POL_OK;
}

/* Run an anchored detector: find its anchor words first (one fast literal
 * scan), then search for matches starting only within [anchor start -
 * before, anchor end + after].  Windows are visited in order and a match
 * is never searched again before the end of the previous one, so the work
 * stays linear in the text. */
static pol_err pol_run_anchored(pol_session *s, long det, const char *t, size_t len,
                                size_t field)
{
    const pol_detector *d = &s->e->det[det];
    size_t aoff = 0, next = 0;

    while (aoff < len) {
        int rc = pol_match(s, d->anchor, t, len, aoff, s->mc);
        PCRE2_SIZE *ov;
        size_t as, ae, lo, hi;
        if (rc == PCRE2_ERROR_NOMATCH)
            break;
        if (rc < 0)
            return pol_rc_err(rc);
        ov = pcre2_get_ovector_pointer(s->md);
        as = ov[0];
        ae = ov[1];
        aoff = ae > aoff ? ae : pol_fwd_cp(t, len, aoff, 1);
        lo = pol_back_cp(t, as, d->anchor_before);
        hi = pol_fwd_cp(t, len, ae, d->anchor_after);
        if (lo < next)
            lo = next;
        while (lo <= hi && lo < len) {
            size_t st, en;
            pol_err pe;
            pcre2_set_offset_limit(s->mc_lim, hi);
            rc = pol_match(s, d->re, t, len, lo, s->mc_lim);
            if (rc == PCRE2_ERROR_NOMATCH)
                break;
            if (rc < 0)
                return pol_rc_err(rc);
            ov = pcre2_get_ovector_pointer(s->md);
            st = ov[0];
            en = ov[1];
            if (en <= lo || en <= st) {
                lo = pol_fwd_cp(t, len, en > lo ? en : lo, 1);
                continue;
            }
            lo = next = en;
            if ((pe = pol_hit(s, det, 0, field, t, len, st, en)) != POL_OK)
                return pe;
        }
    }
    return POL_OK;
}

/* Run one pattern from the windows s->wins (sorted by lo): the same search
 * as pol_run_anchored's inner loop, so a rule whose every possible match
 * start lies in a window gets exactly the matches of a full pol_run: after
 * a match the search resumes at its end, and a window never searches
 * before the end of the previous match.  Nor before the end of a window
 * that found nothing more: PCRE2 tried every start up to its offset limit,
 * and what a match attempt at one start finds does not depend on where
 * the search began, so overlapping windows (names a few characters apart)
 * are not searched twice. */
static pol_err pol_run_windows(pol_session *s, const pcre2_code *re, const char *t,
                               size_t len, long det, int mark, size_t field)
{
    size_t w, next = 0;

    for (w = 0; w < s->nwins; w++) {
        size_t lo = s->wins[w].lo, hi = s->wins[w].hi;
        if (lo < next)
            lo = next;
        while (lo <= hi && lo < len) {
            PCRE2_SIZE *ov;
            size_t st, en;
            pol_err pe;
            int rc;
            pcre2_set_offset_limit(s->mc_lim, hi);
            rc = pol_match(s, re, t, len, lo, s->mc_lim);
            if (rc == PCRE2_ERROR_NOMATCH) {
                size_t past = pol_fwd_cp(t, len, hi, 1);
                if (past > next)
                    next = past;
                break;
            }
            if (rc < 0)
                return pol_rc_err(rc);
            ov = pcre2_get_ovector_pointer(s->md);
            st = ov[0];
            en = ov[1];
            if (en <= lo || en <= st) {
                lo = pol_fwd_cp(t, len, en > lo ? en : lo, 1);
                continue;
            }
            lo = next = en;
            if ((pe = pol_hit(s, det, mark, field, t, len, st, en)) != POL_OK)
                return pe;
        }
    }
    return POL_OK;
}

/* Add a window; lo never decreases between calls.  A window that
 * overlaps the previous one is merged into it: the union of start
 * positions, and so the matches found, stay the same, with one PCRE2 call
 * (about 200 instructions before any matching) fewer. */
static pol_err pol_win_add(pol_session *s, size_t lo, size_t hi)
{
    if (s->nwins > 0 && lo <= s->wins[s->nwins - 1].hi) {
        if (hi > s->wins[s->nwins - 1].hi)
            s->wins[s->nwins - 1].hi = hi;
        return POL_OK;
    }
    if (s->nwins == s->capwins &&
        pol_arena_grow(&s->ar, (void **)&s->wins, &s->capwins, s->nwins + 1, sizeof *s->wins) != 0)
        return POL_ERR_NOMEM;
    s->wins[s->nwins].lo = lo;
    s->wins[s->nwins].hi = hi;
    s->nwins++;
    return POL_OK;
}

/* Windows of an anchored detector from the shared scan, reproducing the
 * PCRE2 alternation of its anchor words exactly: the leftmost occurrence,
 * the first-listed word where several start at one position, then the
 * search goes on after that word (occurrences inside it are not anchors). */
static pol_err pol_anchor_windows(pol_session *s, size_t det, const char *t, size_t len)
{
    const pol_detector *d = &s->e->det[det];
    const pol_scan *sc = &s->scan;
    size_t k = pol_dict_slot(&s->e->dict, POL_LIT_ANCHOR, det);
    size_t i, end, cursor = 0;
    pol_err pe;

    pol_scan_slot(sc, k, &i, &end);
    s->nwins = 0;
    while (i < end) {
        size_t pos = sc->wocc[i].pos, best = SIZE_MAX, blen = 0;
        for (; i < end && sc->wocc[i].pos == pos; i++)
            if (sc->wocc[i].word < best) {
                best = sc->wocc[i].word;
                blen = sc->wocc[i].len;
            }
        if (pos < cursor)
            continue;
        cursor = pos + blen;
        if ((pe = pol_win_add(s, pol_back_cp(t, pos, d->anchor_before),
                              pol_fwd_cp(t, len, pos + blen, d->anchor_after))) != POL_OK)
            return pe;
    }
    return POL_OK;
}

/* 1 when every character in text[a, b) is one of the prefilter's
 * separators (or it has none). */
static int pol_only_seps(const pol_prefilter *pf, const char *text, size_t a, size_t b)
{
    const unsigned char *t = (const unsigned char *)text;
    size_t i = a;

    if (pf->sep == NULL)
        return 1;
    while (i < b) {
        unsigned c0 = t[i];
        size_t l, k;
        uint32_t c;
        if (c0 < 0x80) {
            /* ASCII separators are in a bit mask. */
            if (!(pf->sepa[c0 >> 6] & ((uint64_t)1 << (c0 & 63))))
                return 0;
            i++;
            continue;
        }
        l = c0 >= 0xf0 ? 4 : c0 >= 0xe0 ? 3 : 2;
        c = c0 & (0xffu >> (l + 1));
        for (k = 1; k < l; k++)
            c = (c << 6) | (t[i + k] & 0x3fu);
        if (!(pf->sepm & ((uint64_t)1 << (c & 63))))
            return 0;
        for (k = 0; k < pf->nsep && pf->sep[k] != c; k++)
            ;
        if (k == pf->nsep)
            return 0;
        i += l;
    }
    return 1;
}

/* Digit clusters of the field for pf's class: *clu and *n, computed on
 * the first request in a field and kept for the other prefilters of the
 * class (same gap and separators), whatever rules run in between.  Only
 * clusters with as many digits and runs as some prefilter of the class
 * needs are kept: in most text that leaves a handful of numbers. */
static pol_err pol_clusters(pol_session *s, const pol_prefilter *pf, const char *t,
                            const pol_clu **clu, size_t *n)
{
    const pol_scan *sc = &s->scan;
    size_t i = 0, c = pf->dclass, first = s->nclu;
    uint32_t stamp = (uint32_t)s->nfields;  /* field number + 1 */

    if (s->clsfield == NULL) {
        size_t nc = s->e->ndet + s->e->nmark + 1;
        s->cls0 = pol_arena_alloc(&s->ar, nc * sizeof *s->cls0);
        s->clsn = pol_arena_alloc(&s->ar, nc * sizeof *s->clsn);
        s->clsfield = pol_arena_alloc(&s->ar, nc * sizeof *s->clsfield);
        if (s->cls0 == NULL || s->clsn == NULL || s->clsfield == NULL) {
            s->clsfield = NULL;
            return POL_ERR_NOMEM;
        }
        memset(s->clsfield, 0, nc * sizeof *s->clsfield);
    }
    if (s->clsfield[c] != stamp) {
        while (i < sc->ndig) {
            size_t j = i + 1, nd = sc->dig[i].n;
            while (j < sc->ndig &&
                   sc->dig[j].cp - (sc->dig[j - 1].cp + sc->dig[j - 1].n) <= pf->gap &&
                   pol_only_seps(pf, t, sc->dig[j - 1].end, sc->dig[j].pos))
                nd += sc->dig[j++].n;
            if (nd >= pf->class_digits && j - i >= pf->class_groups) {
                if (s->nclu == s->capclu &&
                    pol_arena_grow(&s->ar, (void **)&s->clu, &s->capclu, s->nclu + 1,
                                   sizeof *s->clu) != 0)
                    return POL_ERR_NOMEM;
                s->clu[s->nclu].first = (uint32_t)i;
                s->clu[s->nclu].end = (uint32_t)j;
                s->clu[s->nclu].nd = (uint32_t)nd;
                s->nclu++;
            }
            i = j;
        }
        s->cls0[c] = (uint32_t)first;
        s->clsn[c] = (uint32_t)(s->nclu - first);
        s->clsfield[c] = stamp;
    }
    *n = s->clsn[c];
    *clu = *n > 0 ? s->clu + s->cls0[c] : NULL;
    return POL_OK;
}

/* 0 when a validator that looks only at digits drops every match on the
 * cluster c, whose digits a "whole" prefilter says a match holds, all of
 * them and no others; 1 otherwise (also when the validator looks at more
 * than digits). */
static int pol_cluster_may_pass(const pol_scan *sc, const pol_clu *c, const char *t,
                                pol_validator v)
{
    unsigned char d[POL_VALIDATE_DIGITS];
    size_t a = sc->dig[c->first].pos, b = sc->dig[c->end - 1].end;

    if (v == POL_V_NONE)
        return 1;
    return pol_validate_digits(v, d, pol_digits(t + a, b - a, d, sizeof d)) != 0;
}

/* Windows of a prefilter from the shared scan.  Returns POL_OK with
 * *run = 0 when the field cannot hold a match (skip the rule), *run = 1
 * with windows in s->wins, or *run = 2 for a full scan (the words occur
 * and bound nothing else). */
static pol_err pol_pf_windows(pol_session *s, const pol_prefilter *pf, pol_lit_kind kind,
                              size_t owner, const char *t, size_t len, int *run)
{
    const pol_scan *sc = &s->scan;
    size_t k = pol_dict_slot(&s->e->dict, kind, owner), i, nclu;
    const pol_clu *clu;
    pol_validator v = kind == POL_LIT_PF_DET ? s->e->det[owner].validator : POL_V_NONE;
    pol_err pe;

    s->nwins = 0;
    *run = 0;
    if (pf->words.n > 0) {
        size_t last;
        pol_scan_slot(sc, k, &i, &last);
        if (i == last)
            return POL_OK;
        if (pf->window) {
            /* Every occurrence (also overlapping ones) gives a window, so
             * the windows cover every start the declaration allows; lo is
             * non-decreasing because occurrences come in position order. */
            for (; i < last; i++) {
                size_t pos = sc->wocc[i].pos, end = pos + sc->wocc[i].len, lo, hi;
                if (pf->between != NULL) {
                    lo = sc->wocc[i].from;     /* walked by the pre-scan */
                    hi = pol_class_fwd(t, len, end, pf->after, pf->between);
                } else {
                    lo = pol_back_cp(t, pos, pf->before);
                    hi = pol_fwd_cp(t, len, end, pf->after);
                }
                if ((pe = pol_win_add(s, lo, hi)) != POL_OK)
                    return pe;
            }
            *run = 1;
            return POL_OK;
        }
    }
    if (pf->digits == 0) {
        *run = 2;
        return POL_OK;
    }
    /* Digit clusters: maximal sequences of digit runs with at most gap
     * code points, all separators, between neighbours.  A match's digits
     * all lie in one cluster.  It starts at most lead code points before
     * the cluster, and at the latest in the run from which the rest of the
     * cluster still holds enough digits and runs (groups). */
    if ((pe = pol_clusters(s, pf, t, &clu, &nclu)) != POL_OK)
        return pe;
    for (i = 0; i < nclu; i++) {
        size_t first = clu[i].first, r = clu[i].end, nd = clu[i].nd, ng = r - first;
        /* Too few digits or runs in the whole cluster: none in part. */
        if (nd < pf->digits || ng < pf->groups)
            continue;
        if (pf->whole || pf->max_digits > 0) {
            if (pf->max_digits > 0 && nd > pf->max_digits)
                continue;
            /* A match here would be dropped by its validator: do not look
             * for it.  Only with lead 0: the search would resume after
             * that match, which ends before the next cluster's first
             * digit, where the next window starts. */
            if (pf->whole && pf->lead == 0 && !pol_cluster_may_pass(sc, &clu[i], t, v))
                continue;
            r = pf->whole ? first : clu[i].end;
            if (!pf->whole) {
                nd = ng = 0;
                while (r > first && (nd < pf->digits || ng < pf->groups)) {
                    r--;
                    nd += sc->dig[r].n;
                    ng++;
                }
            }
            if ((pe = pol_win_add(s, pol_back_cp(t, sc->dig[first].pos, pf->lead),
                                  pf->whole ? sc->dig[first].pos : sc->dig[r].last)) != POL_OK)
                return pe;
            continue;
        }
        nd = ng = 0;
        while (r > first && (nd < pf->digits || ng < pf->groups)) {
            r--;
            nd += sc->dig[r].n;
            ng++;
        }
        if (nd >= pf->digits && ng >= pf->groups &&
            (pe = pol_win_add(s, pol_back_cp(t, sc->dig[first].pos, pf->lead),
                              sc->dig[r].last)) != POL_OK)
            return pe;
    }
    *run = s->nwins > 0;
    return POL_OK;
}

/* Exchange two window lists (storage and all). */
static void pol_wins_swap(pol_win **a, size_t *na, size_t *capa, pol_win **b, size_t *nb,
                          size_t *capb)
{
    pol_win *w = *a;
    size_t n = *na, c = *capa;

    *a = *b;
    *na = *nb;
    *capa = *capb;
    *b = w;
    *nb = n;
    *capb = c;
}

/* Windows of an anchored detector that also declares a prefilter: those
 * of its anchor intersected with those of the prefilter, since every
 * match the anchored search can find starts in both.  *run as for
 * pol_pf_windows (0: skip the rule, 1: windows in s->wins). */
static pol_err pol_anchored_windows(pol_session *s, size_t det, const char *t, size_t len,
                                    int *run)
{
    const pol_detector *d = &s->e->det[det];
    size_t i = 0, j = 0, na;
    pol_err pe;

    if (d->pf_in_anchor)    /* the intersection would be these */
        return pol_pf_windows(s, &d->pf, POL_LIT_PF_DET, det, t, len, run);
    if ((pe = pol_anchor_windows(s, det, t, len)) != POL_OK)
        return pe;
    *run = s->nwins > 0;
    if (!POL_PF_ACTIVE(&d->pf) || s->nwins == 0)
        return POL_OK;
    pol_wins_swap(&s->wins, &s->nwins, &s->capwins, &s->awins, &s->nawins, &s->capawins);
    if ((pe = pol_pf_windows(s, &d->pf, POL_LIT_PF_DET, det, t, len, run)) != POL_OK)
        return pe;
    if (*run == 2) {
        /* Its words occur and bound nothing: the anchor windows stand. */
        pol_wins_swap(&s->wins, &s->nwins, &s->capwins, &s->awins, &s->nawins,
                      &s->capawins);
        *run = 1;
        return POL_OK;
    }
    if (*run == 0)
        return POL_OK;
    /* Both lists are sorted with disjoint windows: one merge pass, the
     * result (at most na + nb - 1 windows) going to the anchor list's
     * storage through a swap. */
    pol_wins_swap(&s->wins, &s->nwins, &s->capwins, &s->awins, &s->nawins, &s->capawins);
    na = s->nwins;
    if (pol_arena_grow(&s->ar, (void **)&s->wins, &s->capwins, na + s->nawins,
                       sizeof *s->wins) != 0)
        return POL_ERR_NOMEM;
    /* Move the anchor windows to the end of their storage so that the
     * result can be written from the front: the k-th result window is
     * written after the i-th anchor window has been read, and k <= i + j
     * with j < nb, so a window is never overwritten before it is read. */
    memmove(s->wins + s->nawins, s->wins, na * sizeof *s->wins);
    s->nwins = 0;
    while (i < na && j < s->nawins) {
        pol_win a = s->wins[s->nawins + i], b = s->awins[j];
        size_t lo = a.lo > b.lo ? a.lo : b.lo, hi = a.hi < b.hi ? a.hi : b.hi;
        if (lo <= hi)
            s->wins[s->nwins++] = (pol_win){lo, hi};
        if (a.hi < b.hi)
            i++;
        else
            j++;
    }
    *run = s->nwins > 0;
    return POL_OK;
}

/* Precedence for overlap resolution: literal placeholders first, then
 * refuse over mask, longer span, higher priority, earlier start, earlier
 * detector.  A total order, so the outcome does not depend on qsort. */

static int pol_cand_rank_cmp(const pol_cand *a, const pol_cand *b, const pol_engine *e)
{
    int ra, rb, pa, pb;
    size_t la = a->end - a->start, lb = b->end - b->start;

    if ((a->det < 0) != (b->det < 0))
        return a->det < 0 ? -1 : 1;
    ra = a->det >= 0 && e->det[a->det].action == POL_ACT_REFUSE;
    rb = b->det >= 0 && e->det[b->det].action == POL_ACT_REFUSE;
    if (ra != rb)
        return ra ? -1 : 1;
    if (la != lb)
        return la > lb ? -1 : 1;
    pa = a->det >= 0 ? e->det[a->det].priority : 0;
    pb = b->det >= 0 ? e->det[b->det].priority : 0;
    if (pa != pb)
        return pa > pb ? -1 : 1;
    if (a->start != b->start)
        return a->start < b->start ? -1 : 1;
    if (a->det != b->det)
        return a->det < b->det ? -1 : 1;
    return 0;
}

/* qsort has no context argument in C11: sort indexes by insertion into a
 * heap-free merge sort instead. */
static int pol_cand_before(const pol_cand *a, const pol_cand *b, const pol_engine *e,
                           int by_start)
{
    return by_start ? a->start < b->start : pol_cand_rank_cmp(a, b, e) < 0;
}

static void pol_sort_cands(pol_cand *c, pol_cand *tmp, size_t n, const pol_engine *e,
                           int by_start)
{
    size_t w, i, j, k;

    /* Runs of 8 by insertion (a field rarely has more candidates), then
     * merges; both stable, so the order is the one a plain merge sort
     * gives. */
    for (i = 0; i < n; i += 8) {
        size_t hi = i + 8 < n ? i + 8 : n;
        for (j = i + 1; j < hi; j++) {
            pol_cand x = c[j];
            /* Shift the larger ones up: strict order keeps equal ones in
             * place (stable). */
            for (k = j; k > i && pol_cand_before(&x, &c[k - 1], e, by_start); k--)
                c[k] = c[k - 1];
            c[k] = x;
        }
    }
    for (w = 8; w < n; w *= 2) {
        for (i = 0; i < n; i += 2 * w) {
            size_t lo = i, mid = i + w < n ? i + w : n, hi = i + 2 * w < n ? i + 2 * w : n;
            size_t a = lo, b = mid, o = lo;
            while (a < mid && b < hi)
                tmp[o++] = pol_cand_before(&c[b], &c[a], e, by_start) ? c[b++] : c[a++];
            while (a < mid)
                tmp[o++] = c[a++];
            while (b < hi)
                tmp[o++] = c[b++];
        }
        memcpy(c, tmp, n * sizeof *c);
    }
}

static pol_err pol_resolve(pol_session *s, size_t len)
{
    pol_cand *tmp;
    size_t i, j, k = 0;

    if (s->ncand == 0)
        return POL_OK;
    if (pol_arena_grow(&s->ar, (void **)&s->ctmp, &s->capctmp, s->ncand, sizeof *s->ctmp) != 0)
        return POL_ERR_NOMEM;
    tmp = s->ctmp;
    /* Few candidates are checked against those already accepted; many
     * against a map of the claimed bytes, so that the work stays linear:
     * each detector's own matches do not overlap, so the total length
     * checked there is at most (detectors + 1) x len. */
    if (s->ncand > POL_FEW_CANDS) {
        if (pol_arena_grow(&s->ar, (void **)&s->claimed, &s->claimed_cap, len, 1) != 0)
            return POL_ERR_NOMEM;
        memset(s->claimed, 0, len);
    }
    pol_sort_cands(s->cands, tmp, s->ncand, s->e, 0);
    for (i = 0; i < s->ncand; i++) {
        pol_cand *c = &s->cands[i];
        int free_span = 1;
        if (s->ncand <= POL_FEW_CANDS) {
            for (j = 0; j < k; j++)
                if (c->start < s->cands[j].end && s->cands[j].start < c->end) {
                    free_span = 0;
                    break;
                }
        } else {
            for (j = c->start; j < c->end; j++)
                if (s->claimed[j]) {
                    free_span = 0;
                    break;
                }
        }
        if (!free_span)
            continue;
        if (s->ncand > POL_FEW_CANDS)
            memset(s->claimed + c->start, 1, c->end - c->start);
        s->cands[k] = *c;
        s->cands[k].accepted = 1;
        k++;
    }
    s->ncand = k;
    pol_sort_cands(s->cands, tmp, s->ncand, s->e, 1);
    return POL_OK;
}

static pol_err pol_add_escaped(pol_buf *b, const char *t, size_t n, int escape)
{
    size_t i, from = 0;
    pol_err pe;

    if (!escape)
        return pol_buf_add(b, t, n);
    for (i = 0; i < n; i++) {
        const char *rep = NULL;
        if (t[i] == '&')
            rep = "&amp;";
        else if (t[i] == '<')
            rep = "&lt;";
        else if (t[i] == '>')
            rep = "&gt;";
        if (rep == NULL)
            continue;
        if ((pe = pol_buf_add(b, t + from, i - from)) != POL_OK)
            return pe;
        if ((pe = pol_buf_adds(b, rep)) != POL_OK)
            return pe;
        from = i + 1;
    }
    return pol_buf_add(b, t + from, n - from);
}

/* Placeholder text for id.  Formatted by hand: snprintf cost more than
 * the rest of masking a short document. */
static pol_err pol_add_placeholder(pol_buf *b, pol_ph_style style, uint32_t id)
{
    static const char xml_open[] = "<" POL_XML_TAG " id=\"";
    char tmp[48], dig[10];
    size_t n = 0, nd = 0;

    do {
        dig[nd++] = (char)('0' + id % 10);
        id /= 10;
    } while (id > 0);
    if (style == POL_PH_TOKEN) {
        memcpy(tmp, "\xe2\x9f\xa6", 3);
        n = 3;
    } else {
        memcpy(tmp, xml_open, sizeof xml_open - 1);
        n = sizeof xml_open - 1;
    }
    while (nd > 0)
        tmp[n++] = dig[--nd];
    if (style == POL_PH_TOKEN) {
        memcpy(tmp + n, "\xe2\x9f\xa7", 3);
        n += 3;
    } else {
        memcpy(tmp + n, "\"/>", 3);
        n += 3;
    }
    return pol_buf_add(b, tmp, n);
}

pol_err pol_session_process(pol_session *s, const char *text, size_t len,
                            char **masked, size_t *masked_len)
{
    const pol_engine *e;
    pol_buf out;
    pol_field *f;
    size_t i, pos = 0, field;
    pol_err pe = POL_OK;

    if (masked != NULL)
        *masked = NULL;
    if (masked_len != NULL)
        *masked_len = 0;
    if (s == NULL || masked == NULL || (text == NULL && len > 0))
        return POL_ERR_ARG;
    if (text == NULL)
        text = "";
    e = s->e;
    if (len > POL_MAX_FIELD || s->nfields >= POL_MAX_FIELDS)
        return POL_ERR_TOO_LARGE;
    if (s->md == NULL && (s->md = pcre2_match_data_create(e->max_ovec, NULL)) == NULL)
        return POL_ERR_NOMEM;   /* released by pol_session_compact */
    /* UTF-8 is checked before anything else is scanned; the shared scan
     * checks it in the same pass. */
    if (e->reference) {
        if (!pol_utf8_valid(text, len))
            return POL_ERR_UTF8;
        s->scan.flags = POL_SCAN_TOKEN | POL_SCAN_LT;
    } else {
        int rc = pol_scan_field(&s->scan, &e->dict, text, len);
        if (rc == -2)
            return POL_ERR_UTF8;
        if (rc != 0)
            return POL_ERR_NOMEM;
    }
    if (pol_arena_grow(&s->ar, (void **)&s->fields, &s->capfields, s->nfields + 1,
                       sizeof *s->fields) != 0)
        return POL_ERR_NOMEM;
    field = s->nfields;
    f = &s->fields[field];
    memset(f, 0, sizeof *f);
    s->nfields++;
    s->nclu = 0;
    pol_buf_init(&out, len * 6 + 64);
    /* Room for the text and a few placeholders up front: growing copies
     * and wipes the buffer each time. */
    if ((pe = pol_buf_reserve(&out, len + len / 4 + 64)) != POL_OK)
        goto fail;

    for (i = 0; i < e->nmark; i++) {
        const pol_marking *m = &e->mark[i];
        int run = 2;
        if (!e->reference && POL_PF_ACTIVE(&m->pf) &&
            (pe = pol_pf_windows(s, &m->pf, POL_LIT_PF_MARK, i, text, len, &run)) != POL_OK)
            goto fail;
        if (run == 1)
            pe = pol_run_windows(s, m->re, text, len, (long)i, 1, field);
        else if (run == 2)
            pe = pol_run(s, m->re, text, len, (long)i, 1, field);
        if (pe != POL_OK)
            goto fail;
    }
    s->ncand = 0;
    /* The literal-placeholder patterns need U+27E6/U+27E7 or '<'. */
    if (s->style == POL_PH_TOKEN && (s->scan.flags & POL_SCAN_TOKEN))
        pe = pol_run(s, e->lit_token, text, len, -1, 0, field);
    else if (s->style == POL_PH_XML_MARKUP && (s->scan.flags & POL_SCAN_LT))
        pe = pol_run(s, e->lit_xml, text, len, -1, 0, field);
    if (pe != POL_OK)
        goto fail;
    for (i = 0; i < e->ndet; i++) {
        const pol_detector *d = &e->det[i];
        int run = 2;
        if (d->anchor != NULL) {
            if (e->reference)
                pe = pol_run_anchored(s, (long)i, text, len, field);
            else if ((pe = pol_anchored_windows(s, i, text, len, &run)) == POL_OK && run)
                pe = pol_run_windows(s, d->re, text, len, (long)i, 0, field);
            if (pe != POL_OK)
                goto fail;
            continue;
        }
        /* A detector that needs context cannot match when no context word
         * occurs anywhere: skip the scan. */
        if (d->ctx_required && !pol_ctx_present(s, i, text, len))
            continue;
        if (!e->reference && POL_PF_ACTIVE(&d->pf) &&
            (pe = pol_pf_windows(s, &d->pf, POL_LIT_PF_DET, i, text, len, &run)) != POL_OK)
            goto fail;
        if (run == 1)
            pe = pol_run_windows(s, d->re, text, len, (long)i, 0, field);
        else if (run == 2)
            pe = pol_run(s, d->re, text, len, (long)i, 0, field);
        if (pe != POL_OK)
            goto fail;
    }
    if ((pe = pol_resolve(s, len)) != POL_OK)
        goto fail;

    for (i = 0; i < s->ncand; i++) {
        const pol_cand *c = &s->cands[i];
        size_t type = c->det >= 0 ? e->det[c->det].type : e->placeholder_type;
        uint32_t id;
        if ((pe = pol_add_escaped(&out, text + pos, c->start - pos,
                                  s->style == POL_PH_XML)) != POL_OK)
            goto fail;
        id = pol_value_id(s, text + c->start, c->end - c->start, type, &pe);
        if (id == 0)
            goto fail;
        if ((pe = pol_add_placeholder(&out, s->style, id)) != POL_OK)
            goto fail;
        if (pol_field_add(s, f, id) != 0) {
            pe = POL_ERR_NOMEM;
            goto fail;
        }
        if (s->counts[type] < UINT32_MAX)
            s->counts[type]++;
        s->total++;
        if (c->det >= 0 && e->det[c->det].action == POL_ACT_REFUSE && s->refuse_rule == NULL)
            s->refuse_rule = e->det[c->det].id;
        if (s->ndets < POL_MAX_RECORDED) {
            pol_detection *d;
            if (pol_arena_grow(&s->ar, (void **)&s->dets, &s->capdets, s->ndets + 1,
                               sizeof *s->dets) != 0) {
                pe = POL_ERR_NOMEM;
                goto fail;
            }
            d = &s->dets[s->ndets++];
            d->field = field;
            d->start = c->start;
            d->end = c->end;
            d->type_index = type;
            d->type = e->types[type];
            d->rule_id = c->det >= 0 ? e->det[c->det].id : "placeholder-literal";
            d->action = c->det >= 0 ? e->det[c->det].action : POL_ACT_MASK;
            d->placeholder = id;
        }
        pos = c->end;
    }
    if ((pe = pol_add_escaped(&out, text + pos, len - pos, s->style == POL_PH_XML)) != POL_OK)
        goto fail;
    if (out.d == NULL && (pe = pol_buf_add(&out, "", 0)) != POL_OK)
        goto fail;
    *masked = out.d;
    if (masked_len != NULL)
        *masked_len = out.len;
    s->ncand = 0;
    return POL_OK;
fail:
    pol_buf_free(&out);
    s->ncand = 0;
    return pe;
}

/* ------------------------------------------------------------------ */
/* Restoration                                                         */
/* ------------------------------------------------------------------ */

/* Whitespace a translation engine may add or change inside a placeholder:
 * ASCII blanks, NBSP, ideographic space.  Returns its length or 0. */
static size_t pol_ws_at(const char *t, size_t len, size_t i)
{
    unsigned char c = (unsigned char)t[i];

    if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
        return 1;
    if (c == 0xc2 && i + 1 < len && (unsigned char)t[i + 1] == 0xa0)
        return 2;
    if (c == 0xe3 && i + 2 < len && (unsigned char)t[i + 1] == 0x80 &&
        (unsigned char)t[i + 2] == 0x80)
        return 3;
    return 0;
}

static size_t pol_skip_ws(const char *t, size_t len, size_t i)
{
    size_t w;

    while (i < len && (w = pol_ws_at(t, len, i)) > 0)
        i += w;
    return i;
}

/* Decimal number (ASCII or full-width digits, at most 9) at t[*i]. */
static int pol_number_at(const char *t, size_t len, size_t *i, uint32_t *val)
{
    size_t j = *i, nd = 0;
    uint32_t v = 0;

    for (;;) {
        unsigned char c = (unsigned char)t[j < len ? j : 0];
        if (j < len && c >= '0' && c <= '9') {
            v = v * 10 + (uint32_t)(c - '0');
            j++;
        } else if (j + 2 < len && c == 0xef && (unsigned char)t[j + 1] == 0xbc &&
                   (unsigned char)t[j + 2] >= 0x90 && (unsigned char)t[j + 2] <= 0x99) {
            v = v * 10 + (uint32_t)((unsigned char)t[j + 2] - 0x90);
            j += 3;
        } else {
            break;
        }
        if (++nd > 9)
            return -1;
    }
    if (nd == 0)
        return -1;
    *i = j;
    *val = v;
    return 0;
}

static int pol_ci_word(const char *t, size_t len, size_t i, const char *w)
{
    size_t k, n = strlen(w);

    if (i + n > len)
        return 0;
    for (k = 0; k < n; k++) {
        char c = t[i + k];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != w[k])
            return 0;
    }
    return 1;
}

/* Parse a placeholder at t[i]; on success set *end and *id and return 1. */
static int pol_parse_ph(pol_ph_style style, const char *t, size_t len, size_t i,
                        size_t *end, uint32_t *id)
{
    size_t j = i;

    if (style == POL_PH_TOKEN) {
        if (j + 3 > len || memcmp(t + j, "\xe2\x9f\xa6", 3) != 0)
            return 0;
        j = pol_skip_ws(t, len, j + 3);
        if (pol_number_at(t, len, &j, id) != 0)
            return 0;
        j = pol_skip_ws(t, len, j);
        if (j + 3 > len || memcmp(t + j, "\xe2\x9f\xa7", 3) != 0)
            return 0;
        *end = j + 3;
        return 1;
    }
    /* <tgph id="N"/>, any case, any spacing, either quote, self-closing or
     * followed by its (empty) end tag. */
    if (j >= len || t[j] != '<')
        return 0;
    j = pol_skip_ws(t, len, j + 1);
    if (!pol_ci_word(t, len, j, POL_XML_TAG))
        return 0;
    j += strlen(POL_XML_TAG);
    if (j >= len || pol_ws_at(t, len, j) == 0)
        return 0;
    j = pol_skip_ws(t, len, j);
    if (!pol_ci_word(t, len, j, "id"))
        return 0;
    j = pol_skip_ws(t, len, j + 2);
    if (j >= len || t[j] != '=')
        return 0;
    j = pol_skip_ws(t, len, j + 1);
    if (j < len && (t[j] == '"' || t[j] == '\'')) {
        char q = t[j];
        j = pol_skip_ws(t, len, j + 1);
        if (pol_number_at(t, len, &j, id) != 0)
            return 0;
        j = pol_skip_ws(t, len, j);
        if (j >= len || t[j] != q)
            return 0;
        j++;
    } else {
        return 0;
    }
    j = pol_skip_ws(t, len, j);
    if (j < len && t[j] == '/') {
        j = pol_skip_ws(t, len, j + 1);
        if (j >= len || t[j] != '>')
            return 0;
        *end = j + 1;
        return 1;
    }
    if (j >= len || t[j] != '>')
        return 0;
    j++;
    {
        /* optional </tgph> */
        size_t k = pol_skip_ws(t, len, j);
        if (k < len && t[k] == '<') {
            k = pol_skip_ws(t, len, k + 1);
            if (k < len && t[k] == '/') {
                k = pol_skip_ws(t, len, k + 1);
                if (pol_ci_word(t, len, k, POL_XML_TAG)) {
                    k = pol_skip_ws(t, len, k + strlen(POL_XML_TAG));
                    if (k < len && t[k] == '>')
                        j = k + 1;
                }
            }
        }
    }
    *end = j;
    return 1;
}

/* Append t[0..n) unescaping XML entities (plain-text XML style). */
static pol_err pol_add_unescaped(pol_buf *b, const char *t, size_t n)
{
    size_t i = 0, from = 0;
    pol_err pe;

    while (i < n) {
        const char *amp = memchr(t + i, '&', n - i);
        const char *semi;
        size_t a, el;
        char rep[4];
        size_t rl = 0;
        if (amp == NULL)
            break;
        a = (size_t)(amp - t);
        semi = memchr(amp, ';', (n - a) < 12 ? n - a : 12);
        i = a + 1;
        if (semi == NULL)
            continue;
        el = (size_t)(semi - amp) + 1;
        if (el == 5 && memcmp(amp, "&amp;", 5) == 0)
            rep[rl++] = '&';
        else if (el == 4 && memcmp(amp, "&lt;", 4) == 0)
            rep[rl++] = '<';
        else if (el == 4 && memcmp(amp, "&gt;", 4) == 0)
            rep[rl++] = '>';
        else if (el == 6 && memcmp(amp, "&quot;", 6) == 0)
            rep[rl++] = '"';
        else if (el == 6 && memcmp(amp, "&apos;", 6) == 0)
            rep[rl++] = '\'';
        else if (el > 3 && amp[1] == '#') {
            uint32_t cp = 0;
            size_t k = 2;
            int hex = amp[2] == 'x' || amp[2] == 'X', ok = 1;
            if (hex)
                k = 3;
            if (k >= el - 1)
                ok = 0;
            for (; ok && k < el - 1; k++) {
                char c = amp[k];
                int dv;
                if (c >= '0' && c <= '9')
                    dv = c - '0';
                else if (hex && c >= 'a' && c <= 'f')
                    dv = c - 'a' + 10;
                else if (hex && c >= 'A' && c <= 'F')
                    dv = c - 'A' + 10;
                else {
                    ok = 0;
                    break;
                }
                cp = cp * (hex ? 16u : 10u) + (uint32_t)dv;
                if (cp > 0x10ffff)
                    ok = 0;
            }
            if (!ok || cp == 0 || (cp >= 0xd800 && cp <= 0xdfff))
                continue;
            if (cp < 0x80) {
                rep[rl++] = (char)cp;
            } else if (cp < 0x800) {
                rep[rl++] = (char)(0xc0 | (cp >> 6));
                rep[rl++] = (char)(0x80 | (cp & 0x3f));
            } else if (cp < 0x10000) {
                rep[rl++] = (char)(0xe0 | (cp >> 12));
                rep[rl++] = (char)(0x80 | ((cp >> 6) & 0x3f));
                rep[rl++] = (char)(0x80 | (cp & 0x3f));
            } else {
                rep[rl++] = (char)(0xf0 | (cp >> 18));
                rep[rl++] = (char)(0x80 | ((cp >> 12) & 0x3f));
                rep[rl++] = (char)(0x80 | ((cp >> 6) & 0x3f));
                rep[rl++] = (char)(0x80 | (cp & 0x3f));
            }
        } else {
            continue;
        }
        if ((pe = pol_buf_add(b, t + from, a - from)) != POL_OK)
            return pe;
        if ((pe = pol_buf_add(b, rep, rl)) != POL_OK)
            return pe;
        i = a + el;
        from = i;
    }
    return pol_buf_add(b, t + from, n - from);
}

pol_err pol_session_restore_field(pol_session *s, size_t field,
                                  const char *t, size_t len,
                                  int best_effort, char **out, size_t *out_len)
{
    const pol_field *f;
    uint32_t *seen = NULL;
    pol_buf b;
    size_t i = 0, from = 0, k;
    pol_err pe = POL_OK;
    int unknown = 0, dup = 0, lost = 0;
    const char lead = s != NULL && s->style == POL_PH_TOKEN ? '\xe2' : '<';

    if (out != NULL)
        *out = NULL;
    if (out_len != NULL)
        *out_len = 0;
    if (s == NULL || out == NULL || (t == NULL && len > 0))
        return POL_ERR_ARG;
    if (t == NULL)
        t = "";
    if (field >= s->nfields)
        return POL_ERR_NO_FIELD;
    if (len > POL_MAX_FIELD)
        return POL_ERR_TOO_LARGE;
    if (!pol_utf8_valid(t, len))
        return POL_ERR_UTF8;
    f = &s->fields[field];
    seen = calloc(f->n ? f->n : 1, sizeof *seen);
    if (seen == NULL)
        return POL_ERR_NOMEM;
    pol_buf_init(&b, POL_MAX_FIELD * 2);

    while (i < len) {
        const char *p = memchr(t + i, lead, len - i);
        size_t at, end;
        uint32_t id;
        long slot = -1;
        if (p == NULL)
            break;
        at = (size_t)(p - t);
        if (!pol_parse_ph(s->style, t, len, at, &end, &id)) {
            i = at + 1;
            continue;
        }
        for (k = 0; k < f->n; k++)
            if (f->ph[k].id == id)
                slot = (long)k;
        if (slot < 0) {
            unknown = 1;
            i = end;
            continue;       /* left in place (best effort) */
        }
        seen[slot]++;
        if (seen[slot] > f->ph[slot].count)
            dup = 1;
        if (s->style == POL_PH_XML)
            pe = pol_add_unescaped(&b, t + from, at - from);
        else
            pe = pol_buf_add(&b, t + from, at - from);
        if (pe != POL_OK)
            goto fail;
        if ((pe = pol_buf_add(&b, s->vals[id - 1].v, s->vals[id - 1].len)) != POL_OK)
            goto fail;
        i = from = end;
    }
    for (k = 0; k < f->n; k++)
        if (seen[k] < f->ph[k].count)
            lost = 1;
    if (!best_effort && (unknown || dup || lost)) {
        pe = unknown ? POL_ERR_PH_UNKNOWN : dup ? POL_ERR_PH_DUPLICATED : POL_ERR_PH_LOST;
        goto fail;
    }
    if (s->style == POL_PH_XML)
        pe = pol_add_unescaped(&b, t + from, len - from);
    else
        pe = pol_buf_add(&b, t + from, len - from);
    if (pe != POL_OK)
        goto fail;
    if (b.d == NULL && (pe = pol_buf_add(&b, "", 0)) != POL_OK)
        goto fail;
    free(seen);
    *out = b.d;
    if (out_len != NULL)
        *out_len = b.len;
    return POL_OK;
fail:
    free(seen);
    pol_buf_free(&b);
    return pe;
}

pol_err pol_session_restore(pol_session *s, const char *translated, size_t len,
                            int best_effort, char **out, size_t *out_len)
{
    pol_err pe;

    if (s == NULL)
        return POL_ERR_ARG;
    pe = pol_session_restore_field(s, s->restore_next, translated, len, best_effort,
                                   out, out_len);
    if (pe == POL_OK)
        s->restore_next++;
    return pe;
}

/* ------------------------------------------------------------------ */
/* Classification and decision                                         */
/* ------------------------------------------------------------------ */

int pol_session_level(const pol_session *s, const char **rule_id)
{
    if (rule_id != NULL)
        *rule_id = s->level_rule;
    return s->level;
}

const char *pol_session_refusing_rule(const pol_session *s)
{
    return s->refuse_rule;
}

unsigned pol_session_count(const pol_session *s, size_t type_index)
{
    return type_index < POL_MAX_TYPES ? s->counts[type_index] : 0;
}

unsigned pol_session_total(const pol_session *s)
{
    return s->total;
}

const pol_detection *pol_session_detections(const pol_session *s, size_t *n)
{
    *n = s->ndets;
    return s->dets;
}

const pol_marking_hit *pol_session_markings(const pol_session *s, size_t *n)
{
    *n = s->nmarks;
    return s->marks;
}

pol_err pol_decide(const pol_session *s, int client_default_level,
                   int client_clearance, int upstream_clearance,
                   pol_decision *out)
{
    int limit;

    if (out == NULL)
        return POL_ERR_ARG;
    out->refuse = 1;
    out->level = POL_LEVEL_MAX;
    out->rule_id = POL_RULE_DEFAULT_LEVEL;
    if (s == NULL || client_default_level < POL_LEVEL_MIN ||
        client_default_level > POL_LEVEL_MAX || client_clearance < POL_LEVEL_MIN ||
        client_clearance > POL_LEVEL_MAX || upstream_clearance < POL_LEVEL_MIN ||
        upstream_clearance > POL_LEVEL_MAX)
        return POL_ERR_ARG;
    limit = client_clearance < upstream_clearance ? client_clearance : upstream_clearance;
    if (s->level > 0) {
        out->level = s->level;
        out->rule_id = s->level_rule;
    } else {
        out->level = client_default_level;
        out->rule_id = POL_RULE_DEFAULT_LEVEL;
    }
    if (s->refuse_rule != NULL) {
        out->refuse = 1;
        out->rule_id = s->refuse_rule;
        return POL_OK;
    }
    out->refuse = out->level > limit;
    return POL_OK;
}
