/*
 * pol_scan: one linear pass over a field that finds what every rule's
 * search restriction (anchor) or necessary condition (prefilter) needs:
 * occurrences of all anchor, prefilter and context words of all rules at
 * once, the
 * positions of digits, and whether placeholder look-alikes occur.
 *
 * Why: one PCRE2 pass per rule cost far more than the matching itself
 * (docs/performance.md).  With this pass the engine calls PCRE2 only on
 * short windows where a match can start, and not at all for a rule whose
 * words or digits are absent.
 *
 * Literal lookup: every position gets a key, the code point of its
 * character (for a multi-byte character) or its byte and the next one (for
 * ASCII, so "tel" and "the" differ).  A bitmap over keys (16 KiB) rejects
 * almost every position with one test; the survivors find their few
 * candidate literals through a small hash table keyed the same way and
 * compare them with memcmp.  One-byte literals (such as "@" or ":") use a
 * byte table.  The keys of the first characters of Japanese words are a
 * few dozen kanji among thousands, so Japanese text rarely gets past the
 * bitmap; a bitmap over leading bytes would pass nearly every kanji.
 */
#include <stdlib.h>
#include <string.h>

#include "pol_internal.h"

/* A literal with the rule that uses it, before merging equal literals. */
typedef struct pol_lit_tmp {
    const char *w;
    size_t len;
    pol_lit_use use;
} pol_lit_tmp;

/* Keys: ASCII byte c followed by byte b: c << 8 | b (below 0x8000); a
 * character of two or three bytes: 0x8000 + code point; of four bytes:
 * 0x18000 + the low 15 bits of the code point (a collision only costs a
 * memcmp).  17 bits in all. */
#define POL_KEY_BITS 17

static unsigned pol_key_at(const unsigned char *t, size_t len)
{
    unsigned c = t[0];

    if (c < 0x80)
        return len >= 2 ? (c << 8) | t[1] : c << 8;
    if (c < 0xe0)
        return 0x8000u + (((c & 0x1fu) << 6) | (t[1] & 0x3fu));
    if (c < 0xf0)
        return 0x8000u + (((c & 0x0fu) << 12) | ((t[1] & 0x3fu) << 6) | (t[2] & 0x3fu));
    return 0x18000u | ((((t[2] & 0x3fu) << 6) | (t[3] & 0x3fu)) | ((t[1] & 0x07u) << 12));
}

/* 16-bit hash of 4 bytes: the second filter, which tells the common
 * kanji that start some literal (大, 本, 生...) from the literal itself
 * before a hash probe and memcmp. */
static unsigned pol_hash4(const unsigned char *p)
{
    uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                 (uint32_t)p[3] << 24;

    return (unsigned)((v * 2654435761u) >> 16);
}

static unsigned pol_lit_key(const char *w, size_t len)
{
    return len >= 2 ? pol_key_at((const unsigned char *)w, len) : 0;
}

static int pol_lit_tmp_cmp(const void *pa, const void *pb)
{
    const pol_lit_tmp *a = pa, *b = pb;
    unsigned ka = pol_lit_key(a->w, a->len), kb = pol_lit_key(b->w, b->len);
    size_t n = a->len < b->len ? a->len : b->len;
    int c;

    if (ka != kb)
        return ka < kb ? -1 : 1;
    c = memcmp(a->w, b->w, n);
    if (c != 0)
        return c;
    if (a->len != b->len)
        return a->len < b->len ? -1 : 1;
    /* Equal literals: keep the uses in a fixed order (qsort is not stable). */
    if (a->use.kind != b->use.kind)
        return a->use.kind < b->use.kind ? -1 : 1;
    if (a->use.owner != b->use.owner)
        return a->use.owner < b->use.owner ? -1 : 1;
    return a->use.word < b->use.word ? -1 : a->use.word > b->use.word;
}

static size_t pol_key_slot(const pol_dict *dc, unsigned key)
{
    size_t h = ((uint32_t)key * 2654435761u) & (dc->pcap - 1);

    while (dc->pkey[h] != 0 && dc->pkey[h] != key + 1)
        h = (h + 1) & (dc->pcap - 1);
    return h;
}

void pol_dict_free(pol_dict *dc)
{
    free(dc->smode);
    free(dc->sbefore);
    free(dc->safter);
    free(dc->sbetween);
    free(dc->lit);
    free(dc->use);
    free(dc->pkey);
    free(dc->pstart);
    free(dc->pcount);
    memset(dc, 0, sizeof *dc);
}

static void pol_tmp_add(pol_lit_tmp *tmp, size_t *n, const pol_words *w,
                        pol_lit_kind kind, size_t owner)
{
    size_t i;

    for (i = 0; i < w->n; i++) {
        tmp[*n].w = w->w[i];
        tmp[*n].len = w->len[i];
        tmp[*n].use.owner = (uint32_t)owner;
        tmp[*n].use.word = (uint32_t)i;
        tmp[*n].use.kind = kind;
        (*n)++;
    }
}

int pol_dict_build(pol_dict *dc, const pol_engine *e)
{
    pol_lit_tmp *tmp;
    size_t total = 0, n = 0, i, k;

    memset(dc, 0, sizeof *dc);
    for (i = '0'; i <= '9'; i++)
        dc->acls[i] = POL_ACLS_DIGIT;
    dc->acls['<'] = POL_ACLS_LT;
    dc->ndet = e->ndet;
    dc->nmark = e->nmark;
    dc->nslot = 4 * e->ndet + e->nmark;
    for (i = 0; i < e->ndet; i++)
        total += e->det[i].anchor_words.n + e->det[i].pf.words.n + e->det[i].ctx.n +
                 e->det[i].not_ctx.n;
    for (i = 0; i < e->nmark; i++)
        total += e->mark[i].pf.words.n;
    tmp = NULL;
    dc->smode = calloc(dc->nslot + 1, sizeof *dc->smode);
    dc->sbefore = calloc(dc->nslot + 1, sizeof *dc->sbefore);
    dc->safter = calloc(dc->nslot + 1, sizeof *dc->safter);
    dc->sbetween = calloc(dc->nslot + 1, sizeof *dc->sbetween);
    if (dc->smode == NULL || dc->sbefore == NULL || dc->safter == NULL ||
        dc->sbetween == NULL)
        goto fail;
    for (i = 0; i < e->ndet; i++) {
        const pol_detector *d = &e->det[i];
        size_t sk = pol_dict_slot(dc, POL_LIT_ANCHOR, i);
        dc->smode[sk] = POL_SMODE_ANCHOR;
        dc->sbefore[sk] = d->anchor_before;
        dc->safter[sk] = d->anchor_after;
        sk = pol_dict_slot(dc, POL_LIT_PF_DET, i);
        dc->smode[sk] = d->pf.window ? POL_SMODE_WINDOW : POL_SMODE_ONE;
        dc->sbefore[sk] = d->pf.before;
        dc->safter[sk] = d->pf.after;
        dc->sbetween[sk] = d->pf.between;
    }
    for (i = 0; i < e->nmark; i++) {
        const pol_marking *m = &e->mark[i];
        size_t sk = pol_dict_slot(dc, POL_LIT_PF_MARK, i);
        dc->smode[sk] = m->pf.window ? POL_SMODE_WINDOW : POL_SMODE_ONE;
        dc->sbefore[sk] = m->pf.before;
        dc->safter[sk] = m->pf.after;
        dc->sbetween[sk] = m->pf.between;
    }
    tmp = malloc((total ? total : 1) * sizeof *tmp);
    dc->use = malloc((total ? total : 1) * sizeof *dc->use);
    dc->lit = malloc((total ? total : 1) * sizeof *dc->lit);
    if (tmp == NULL || dc->use == NULL || dc->lit == NULL)
        goto fail;
    for (i = 0; i < e->ndet; i++) {
        /* An anchor whose prefilter stands in for it (pf_in_anchor) is
         * not looked for: its windows are never computed. */
        if (!e->det[i].pf_in_anchor)
            pol_tmp_add(tmp, &n, &e->det[i].anchor_words, POL_LIT_ANCHOR, i);
        pol_tmp_add(tmp, &n, &e->det[i].pf.words, POL_LIT_PF_DET, i);
        pol_tmp_add(tmp, &n, &e->det[i].ctx, POL_LIT_CTX, i);
        pol_tmp_add(tmp, &n, &e->det[i].not_ctx, POL_LIT_NOT_CTX, i);
    }
    for (i = 0; i < e->nmark; i++)
        pol_tmp_add(tmp, &n, &e->mark[i].pf.words, POL_LIT_PF_MARK, i);
    qsort(tmp, n, sizeof *tmp, pol_lit_tmp_cmp);
    for (i = 0; i < n; i++) {
        pol_lit *l = dc->nlit > 0 ? &dc->lit[dc->nlit - 1] : NULL;
        if (l == NULL || l->len != tmp[i].len || memcmp(l->w, tmp[i].w, l->len) != 0) {
            l = &dc->lit[dc->nlit++];
            l->w = tmp[i].w;
            l->len = tmp[i].len;
            l->use0 = dc->nuse;
            l->nuse = 0;
            l->ncp = 0;
            for (k = 0; k < l->len; k++)
                l->ncp += ((unsigned char)l->w[k] & 0xc0) != 0x80;
        }
        dc->use[dc->nuse++] = tmp[i].use;
        l->nuse++;
    }
    free(tmp);
    tmp = NULL;
    /* At most one pair per literal: a load factor of one half or less. */
    dc->pcap = 16;
    while (dc->pcap < 2 * dc->nlit)
        dc->pcap *= 2;
    dc->pkey = calloc(dc->pcap, sizeof *dc->pkey);
    dc->pstart = calloc(dc->pcap, sizeof *dc->pstart);
    dc->pcount = calloc(dc->pcap, sizeof *dc->pcount);
    if (dc->pkey == NULL || dc->pstart == NULL || dc->pcount == NULL)
        goto fail;
    for (i = 0; i < dc->nlit; i++) {
        const pol_lit *l = &dc->lit[i];
        unsigned key;
        size_t h;
        if (l->len == 1) {
            dc->one[(unsigned char)l->w[0] & 0x7f] = (uint32_t)i + 1;
            dc->acls[(unsigned char)l->w[0] & 0x7f] |= POL_ACLS_ONE;
            continue;
        }
        key = pol_lit_key(l->w, l->len);
        dc->first[key >> 3] |= (uint8_t)(1u << (key & 7));
        if (l->len < 4) {
            dc->shortk[key >> 3] |= (uint8_t)(1u << (key & 7));
        } else {
            unsigned hv = pol_hash4((const unsigned char *)l->w);
            dc->h4[hv >> 3] |= (uint8_t)(1u << (hv & 7));
        }
        h = pol_key_slot(dc, key);
        if (dc->pkey[h] == 0) {
            dc->pkey[h] = key + 1;
            dc->pstart[h] = (uint32_t)i;
        }
        dc->pcount[h]++;
    }
    return 0;
fail:
    free(tmp);
    pol_dict_free(dc);
    return -1;
}


static int pol_scan_occ(pol_scan *sc, size_t pos, size_t cp, size_t lit)
{
    if (sc->nocc == sc->capocc &&
        pol_arena_grow(sc->ar, (void **)&sc->occ, &sc->capocc, sc->nocc + 1, sizeof *sc->occ) != 0)
        return -1;
    sc->occ[sc->nocc].pos = (uint32_t)pos;
    sc->occ[sc->nocc].cp = (uint32_t)cp;
    sc->occ[sc->nocc].lit = (uint32_t)lit;
    sc->nocc++;
    return 0;
}

/* Literals starting at t[i] with this key, recorded as occurrences. */
static int pol_scan_key(pol_scan *sc, const pol_dict *dc, const unsigned char *t,
                        size_t len, size_t i, size_t cp, unsigned key)
{
    size_t h = pol_key_slot(dc, key), k;

    for (k = dc->pstart[h]; k < dc->pstart[h] + dc->pcount[h]; k++) {
        const pol_lit *l = &dc->lit[k];
        if (l->len <= len - i && memcmp(t + i, l->w, l->len) == 0 &&
            pol_scan_occ(sc, i, cp, k) != 0)
            return -1;
    }
    return 0;
}

/* Anchor slots (one per detector) also choose among words. */
typedef struct pol_astate {
    uint32_t cursor;           /* byte where the next anchor may start */
    uint32_t group;            /* position group + 1 of best */
    uint32_t best, blen, bncp; /* first-listed word at the group */
} pol_astate;

typedef struct pol_tocc {
    uint32_t slot;
    pol_wocc w;
} pol_tocc;

/* Slot k's state, reset when it still belongs to an earlier field; the
 * slot joins this field's list of slots with entries. */
static void pol_sst_fresh(pol_scan *sc, const pol_dict *dc, size_t k)
{
    if (sc->sst[k].gen != sc->gen) {
        sc->sst[k].gen = sc->gen;
        sc->sst[k].last = 0;
        sc->sst[k].n = 0;
        sc->touched[sc->ntouched++] = (uint32_t)k;
        if (k < dc->ndet)
            memset(&sc->ast[k], 0, sizeof sc->ast[k]);
    }
}

/* The grouping state, allocated once per session at its exact size (the
 * number of slots is the engine's) and never cleared as a whole. */
static int pol_sst_alloc(pol_scan *sc, const pol_dict *dc)
{
    if (sc->sst != NULL)
        return 0;
    sc->sst = pol_arena_alloc(sc->ar, (dc->nslot + 1) * sizeof *sc->sst);
    sc->ast = pol_arena_alloc(sc->ar, (dc->ndet + 1) * sizeof *sc->ast);
    sc->touched = pol_arena_alloc(sc->ar, (dc->nslot + 1) * sizeof *sc->touched);
    if (sc->sst == NULL || sc->ast == NULL || sc->touched == NULL) {
        sc->sst = NULL;
        return -1;
    }
    memset(sc->sst, 0, (dc->nslot + 1) * sizeof *sc->sst);
    return 0;
}

/* Code point that starts at t[i] (valid UTF-8). */
static uint32_t pol_cp_at(const unsigned char *t, size_t i)
{
    unsigned c = t[i];

    if (c < 0x80)
        return c;
    if (c < 0xe0)
        return ((c & 0x1fu) << 6) | (t[i + 1] & 0x3fu);
    if (c < 0xf0)
        return ((c & 0x0fu) << 12) | ((t[i + 1] & 0x3fu) << 6) | (t[i + 2] & 0x3fu);
    return ((c & 0x07u) << 18) | ((t[i + 1] & 0x3fu) << 12) | ((t[i + 2] & 0x3fu) << 6) |
           (t[i + 3] & 0x3fu);
}

size_t pol_class_back(const char *text, size_t pos, unsigned max, const uint8_t *cls,
                      unsigned *ncp)
{
    const unsigned char *t = (const unsigned char *)text;
    unsigned n = 0;

    while (n < max && pos > 0) {
        size_t q = pos - 1;
        while (q > 0 && (t[q] & 0xc0) == 0x80)
            q--;
        if (!pol_class_has(cls, pol_cp_at(t, q)))
            break;
        pos = q;
        n++;
    }
    if (ncp != NULL)
        *ncp = n;
    return pos;
}

size_t pol_class_fwd(const char *text, size_t len, size_t pos, unsigned max,
                     const uint8_t *cls)
{
    const unsigned char *t = (const unsigned char *)text;
    unsigned n = 0;

    while (n < max && pos < len && pol_class_has(cls, pol_cp_at(t, pos))) {
        pos += pol_utf8_len(t[pos]);
        n++;
    }
    return pos;
}

/* Append or merge one window entry for slot k (cp, ncp, pos, len). */
static int pol_scan_win(pol_scan *sc, const pol_dict *dc, size_t k,
                        const pol_occ *o, uint32_t word, uint32_t len, uint32_t ncp,
                        const char *text)
{
    pol_sstate *st = sc->sst;
    pol_tocc *t;
    size_t from = 0;
    unsigned back = dc->sbefore[k];

    if (dc->smode[k] == POL_SMODE_ONE && st[k].last > 0)
        return 0;
    if (dc->sbetween[k] != NULL) {
        /* The window of this word reaches back only over its class; the
         * entry keeps where it starts.  Merge only when that still
         * overlaps the entry (a merged entry's window runs from its first
         * word's start to its last word's end). */
        from = pol_class_back(text, o->pos, dc->sbefore[k], dc->sbetween[k], &back);
    }
    if (st[k].last > 0) {
        pol_wocc *w = &sc->tmp[st[k].last - 1].w;
        size_t hi = (size_t)w->cp + w->ncp + dc->safter[k];
        size_t lo = o->cp >= back ? o->cp - back : 0;
        if (dc->smode[k] != POL_SMODE_ALL && lo <= hi) {
            /* Overlapping windows merge: the entry now reaches this word's
             * window end, and for anchors spans this word too. */
            size_t nhi = (size_t)o->cp + ncp;
            if (nhi > (size_t)w->cp + w->ncp)
                w->ncp = (uint32_t)(nhi - w->cp);
            if ((size_t)o->pos + len > (size_t)w->pos + w->len)
                w->len = (uint32_t)(o->pos + len - w->pos);
            return 0;
        }
    }
    if (sc->ntmp == sc->captmp &&
        pol_arena_grow(sc->ar, (void **)&sc->tmp, &sc->captmp, sc->ntmp + 1, sizeof *sc->tmp) != 0)
        return -1;
    t = &sc->tmp[sc->ntmp++];
    t->slot = (uint32_t)k;
    t->w.pos = o->pos;
    t->w.cp = o->cp;
    t->w.word = word;
    t->w.len = len;
    t->w.ncp = ncp;
    t->w.from = (uint32_t)from;
    st[k].last = (uint32_t)sc->ntmp;
    st[k].n++;
    return 0;
}

/* Group the occurrences per slot (a counting sort, so each slot keeps
 * position order), keeping them as each slot's mode asks.  Anchors are
 * chosen here as PCRE2's alternation of the anchor words would: the
 * leftmost occurrence, the first-listed word where several start at one
 * position, the next search after that word. */
static int pol_scan_group(pol_scan *sc, const pol_dict *dc, const char *text)
{
    pol_astate *ast;
    size_t i, j, u;
    uint32_t g;

    if (pol_sst_alloc(sc, dc) != 0)
        return -1;
    ast = sc->ast;
    sc->gen++;
    sc->ntmp = 0;
    sc->ntouched = 0;
    for (i = 0, g = 1; i < sc->nocc; i = j, g++) {
        /* The group of occurrences at one position: first the best anchor
         * word per anchor slot, then the entries. */
        for (j = i; j < sc->nocc && sc->occ[j].pos == sc->occ[i].pos; j++) {
            const pol_lit *l = &dc->lit[sc->occ[j].lit];
            for (u = l->use0; u < l->use0 + l->nuse; u++) {
                size_t k = pol_dict_slot(dc, dc->use[u].kind, dc->use[u].owner);
                if (dc->smode[k] != POL_SMODE_ANCHOR)
                    continue;
                pol_sst_fresh(sc, dc, k);
                if (ast[k].group != g || dc->use[u].word < ast[k].best) {
                    ast[k].group = g;
                    ast[k].best = dc->use[u].word;
                    ast[k].blen = (uint32_t)l->len;
                    ast[k].bncp = (uint32_t)l->ncp;
                }
            }
        }
        for (j = i; j < sc->nocc && sc->occ[j].pos == sc->occ[i].pos; j++) {
            const pol_occ *o = &sc->occ[j];
            const pol_lit *l = &dc->lit[o->lit];
            for (u = l->use0; u < l->use0 + l->nuse; u++) {
                size_t k = pol_dict_slot(dc, dc->use[u].kind, dc->use[u].owner);
                pol_sst_fresh(sc, dc, k);
                if (dc->smode[k] == POL_SMODE_ANCHOR) {
                    /* Once per group; inside the previous anchor word: no
                     * anchor (the alternation went on after it). */
                    if (ast[k].group != g)
                        continue;
                    ast[k].group = 0;
                    if (o->pos < ast[k].cursor)
                        continue;
                    ast[k].cursor = o->pos + ast[k].blen;
                    if (pol_scan_win(sc, dc, k, o, ast[k].best, ast[k].blen, ast[k].bncp,
                                     text) != 0)
                        return -1;
                } else if (pol_scan_win(sc, dc, k, o, dc->use[u].word, (uint32_t)l->len,
                                        (uint32_t)l->ncp, text) != 0) {
                    return -1;
                }
            }
        }
    }
    if (pol_arena_grow(sc->ar, (void **)&sc->wocc, &sc->capwocc, sc->ntmp + 1,
                       sizeof *sc->wocc) != 0)
        return -1;
    /* A counting sort over the slots that have entries only (a field
     * touches a few of the engine's slots): each gets its range, then
     * the entries go to their slot's range in position order ("last"
     * serves as the filling cursor). */
    for (i = 0, j = 0; i < sc->ntouched; i++) {
        pol_sstate *k = &sc->sst[sc->touched[i]];
        k->start = (uint32_t)j;
        k->last = (uint32_t)j;
        j += k->n;
    }
    for (i = 0; i < sc->ntmp; i++)
        sc->wocc[sc->sst[sc->tmp[i].slot].last++] = sc->tmp[i].w;
    return 0;
}

/* Record a digit of w bytes at byte i, code point cp: it extends the last
 * run when it follows it directly.  Growing is checked only for a new run
 * (sizing for the worst case, a run per byte, cost a large allocation per
 * field). */
#define POL_DIGIT(i_, cp_, w_) do {                                   \
        if (ndig > 0 && (size_t)dig[ndig - 1].cp + dig[ndig - 1].n == (cp_)) { \
            dig[ndig - 1].last = (uint32_t)(i_);                       \
            dig[ndig - 1].end = (uint32_t)((i_) + (w_));               \
            dig[ndig - 1].n++;                                         \
        } else {                                                       \
            if (ndig == sc->capdig) {                                  \
                if (pol_arena_grow(sc->ar, (void **)&sc->dig, &sc->capdig, ndig + 1, \
                                  sizeof *sc->dig) != 0)               \
                    return -1;                                         \
                dig = sc->dig;                                         \
            }                                                          \
            dig[ndig].pos = dig[ndig].last = (uint32_t)(i_);           \
            dig[ndig].end = (uint32_t)((i_) + (w_));                   \
            dig[ndig].cp = (uint32_t)(cp_);                            \
            dig[ndig].n = 1;                                           \
            ndig++;                                                    \
        }                                                              \
    } while (0)

/* The key at t[i] starts some literal (its bit in dc->first is set): the
 * second filter, then the literals themselves.  About one character in
 * twenty gets here. */
static int pol_scan_hit(pol_scan *sc, const pol_dict *dc, const unsigned char *t, size_t len,
                        size_t i, size_t cp, unsigned key)
{
    unsigned h;

    if (!(dc->shortk[key >> 3] & (1u << (key & 7)))) {
        if (i + 4 > len)
            return 0;
        h = pol_hash4(t + i);
        if (!(dc->h4[h >> 3] & (1u << (h & 7))))
            return 0;
    }
    return pol_scan_key(sc, dc, t, len, i, cp, key);
}

int pol_scan_field(pol_scan *sc, const pol_dict *dc, const char *text, size_t len)
{
    const unsigned char *t = (const unsigned char *)text;
    const uint8_t *first = dc->first, *acls = dc->acls;
    pol_drun *dig;
    size_t i = 0, cp = 0, ndig = 0;
    unsigned flags = 0;

    sc->nocc = 0;
    sc->ndig = 0;
    sc->flags = 0;
    dig = sc->dig;
    /* The hot loop keeps its state in locals (stores through sc would
     * force reloads).  It also validates the UTF-8, with exactly the rules
     * of pol_utf8_valid (no overlongs, surrogates or values above
     * U+10FFFF): one pass over the text instead of two.  Runs of ASCII and
     * runs of kana and kanji, most of any text, have loops of their own. */
    while (i < len) {
        unsigned c = t[i], key;
        size_t n;
        if (c < 0x80) {
            do {
                if (acls[c] != 0) {
                    if (acls[c] & POL_ACLS_DIGIT)
                        POL_DIGIT(i, cp, 1);
                    if (acls[c] & POL_ACLS_LT)
                        flags |= POL_SCAN_LT;
                    if ((acls[c] & POL_ACLS_ONE) &&
                        pol_scan_occ(sc, i, cp, dc->one[c] - 1) != 0)
                        return -1;
                }
                /* At the last byte no literal of two bytes or more fits,
                 * and none has a NUL second byte. */
                key = (c << 8) | (i + 1 < len ? t[i + 1] : 0u);
                if ((first[key >> 3] & (1u << (key & 7))) &&
                    pol_scan_hit(sc, dc, t, len, i, cp, key) != 0)
                    return -1;
                i++;
                cp++;
            } while (i < len && (c = t[i]) < 0x80);
            continue;
        }
        if (c - 0xe3u <= 6u) {
            /* U+3000..U+9FFF: kana, kanji, CJK punctuation.  No overlong
             * or surrogate form starts with these bytes, and no digit or
             * placeholder character is among them: only the continuation
             * bytes need checking. */
            do {
                if (i + 2 >= len || (t[i + 1] & 0xc0) != 0x80 || (t[i + 2] & 0xc0) != 0x80)
                    return -2;
                key = 0x8000u + (((c & 0x0fu) << 12) | ((t[i + 1] & 0x3fu) << 6) |
                                 (t[i + 2] & 0x3fu));
                if ((first[key >> 3] & (1u << (key & 7))) &&
                    pol_scan_hit(sc, dc, t, len, i, cp, key) != 0)
                    return -1;
                i += 3;
                cp++;
            } while (i < len && (c = t[i]) - 0xe3u <= 6u);
            continue;
        }
        if (c >= 0xe0 && c <= 0xef) {
            unsigned u;
            if (i + 2 >= len || (t[i + 1] & 0xc0) != 0x80 || (t[i + 2] & 0xc0) != 0x80 ||
                (c == 0xe0 && t[i + 1] < 0xa0) || (c == 0xed && t[i + 1] >= 0xa0))
                return -2;
            u = ((c & 0x0fu) << 12) | ((t[i + 1] & 0x3fu) << 6) | (t[i + 2] & 0x3fu);
            if (c == 0xef && u - 0xff10u < 10u)
                POL_DIGIT(i, cp, 3);
            else if (c == 0xe2 && (u == 0x27e6u || u == 0x27e7u))
                flags |= POL_SCAN_TOKEN;
            key = 0x8000u + u;
            n = 3;
        } else if (c >= 0xc2 && c <= 0xdf) {
            if (i + 1 >= len || (t[i + 1] & 0xc0) != 0x80)
                return -2;
            key = 0x8000u + (((c & 0x1fu) << 6) | (t[i + 1] & 0x3fu));
            n = 2;
        } else if (c >= 0xf0 && c <= 0xf4) {
            if (i + 3 >= len || (t[i + 1] & 0xc0) != 0x80 || (t[i + 2] & 0xc0) != 0x80 ||
                (t[i + 3] & 0xc0) != 0x80 || (c == 0xf0 && t[i + 1] < 0x90) ||
                (c == 0xf4 && t[i + 1] >= 0x90))
                return -2;
            key = pol_key_at(t + i, len - i);
            n = 4;
        } else {
            return -2;
        }
        if ((first[key >> 3] & (1u << (key & 7))) &&
            pol_scan_hit(sc, dc, t, len, i, cp, key) != 0)
            return -1;
        i += n;
        cp++;
    }
    sc->ndig = ndig;
    sc->flags = flags;
    return pol_scan_group(sc, dc, text);
}
