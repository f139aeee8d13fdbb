/*
 * pol_scan: one linear pass over a field that finds what every rule's
 * search restriction (anchor) or necessary condition (prefilter) needs:
 * occurrences of all anchor and prefilter words of all rules at once, the
 * positions of digits, and whether placeholder look-alikes occur.
 *
 * Why: one PCRE2 pass per rule cost far more than the matching itself
 * (docs/performance.md).  With this pass the engine calls PCRE2 only on
 * short windows where a match can start, and not at all for a rule whose
 * words or digits are absent.
 *
 * Literal lookup: a bitmap over the first two bytes of every literal
 * (8 KiB, stays in L1) rejects almost every position with one test; the
 * survivors find their few candidate literals through a small hash table
 * keyed by the same two bytes and compare them with memcmp.  One-byte
 * literals (such as "@" or ":") use a byte table.
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

static unsigned pol_pair_key(const char *w, size_t len)
{
    return len >= 2 ? ((unsigned)(unsigned char)w[0] << 8) | (unsigned char)w[1] : 0;
}

static int pol_lit_tmp_cmp(const void *pa, const void *pb)
{
    const pol_lit_tmp *a = pa, *b = pb;
    unsigned ka = pol_pair_key(a->w, a->len), kb = pol_pair_key(b->w, b->len);
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

static size_t pol_pair_slot(const pol_dict *dc, unsigned key)
{
    size_t h = ((uint32_t)key * 2654435761u) & (dc->pcap - 1);

    while (dc->pkey[h] != 0 && dc->pkey[h] != key + 1)
        h = (h + 1) & (dc->pcap - 1);
    return h;
}

void pol_dict_free(pol_dict *dc)
{
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
    size_t total = 0, n = 0, i;

    memset(dc, 0, sizeof *dc);
    for (i = 0; i < e->ndet; i++)
        total += e->det[i].anchor_words.n + e->det[i].pf.words.n;
    for (i = 0; i < e->nmark; i++)
        total += e->mark[i].pf.words.n;
    tmp = malloc((total ? total : 1) * sizeof *tmp);
    dc->use = malloc((total ? total : 1) * sizeof *dc->use);
    dc->lit = malloc((total ? total : 1) * sizeof *dc->lit);
    if (tmp == NULL || dc->use == NULL || dc->lit == NULL)
        goto fail;
    for (i = 0; i < e->ndet; i++) {
        pol_tmp_add(tmp, &n, &e->det[i].anchor_words, POL_LIT_ANCHOR, i);
        pol_tmp_add(tmp, &n, &e->det[i].pf.words, POL_LIT_PF_DET, i);
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
            dc->one[(unsigned char)l->w[0]] = (uint32_t)i + 1;
            continue;
        }
        key = pol_pair_key(l->w, l->len);
        dc->pair[key >> 3] |= (uint8_t)(1u << (key & 7));
        h = pol_pair_slot(dc, key);
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

void pol_scan_free(pol_scan *sc)
{
    free(sc->occ);
    free(sc->dig);
    memset(sc, 0, sizeof *sc);
}

static int pol_scan_grow(void **arr, size_t *cap, size_t need, size_t sz)
{
    size_t nc;
    void *na;

    if (need <= *cap)
        return 0;
    nc = *cap ? *cap : 64;
    while (nc < need)
        nc *= 2;
    na = realloc(*arr, nc * sz);
    if (na == NULL)
        return -1;
    *arr = na;
    *cap = nc;
    return 0;
}

static int pol_scan_occ(pol_scan *sc, size_t pos, size_t lit)
{
    if (sc->nocc == sc->capocc &&
        pol_scan_grow((void **)&sc->occ, &sc->capocc, sc->nocc + 1, sizeof *sc->occ) != 0)
        return -1;
    sc->occ[sc->nocc].pos = pos;
    sc->occ[sc->nocc].lit = lit;
    sc->nocc++;
    return 0;
}

int pol_scan_field(pol_scan *sc, const pol_dict *dc, const char *text, size_t len)
{
    const unsigned char *t = (const unsigned char *)text;
    size_t i = 0, cp = 0;

    sc->nocc = 0;
    sc->ndig = 0;
    sc->flags = 0;
    /* Digits can be at most one per byte: size once, no check per digit. */
    if (pol_scan_grow((void **)&sc->dig, &sc->capdig, len + 1, sizeof *sc->dig) != 0)
        return -1;
    while (i < len) {
        unsigned c = t[i];
        size_t n;
        if (c < 0x80) {
            n = 1;
            if (c - '0' < 10u) {
                sc->dig[sc->ndig].pos = i;
                sc->dig[sc->ndig].cp = cp;
                sc->ndig++;
            } else if (c == '<') {
                sc->flags |= POL_SCAN_LT;
            }
        } else {
            /* The text is valid UTF-8 (checked before the scan), so the
             * lead byte gives the length and the continuation bytes exist. */
            n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
            if (c == 0xef && t[i + 1] == 0xbc && (unsigned)(t[i + 2] - 0x90) < 10u) {
                sc->dig[sc->ndig].pos = i;
                sc->dig[sc->ndig].cp = cp;
                sc->ndig++;
            } else if (c == 0xe2 && t[i + 1] == 0x9f && (t[i + 2] == 0xa6 || t[i + 2] == 0xa7)) {
                sc->flags |= POL_SCAN_TOKEN;
            }
        }
        if (dc->one[c] != 0 && pol_scan_occ(sc, i, dc->one[c] - 1) != 0)
            return -1;
        if (i + 1 < len) {
            unsigned key = (c << 8) | t[i + 1];
            if (dc->pair[key >> 3] & (1u << (key & 7))) {
                size_t h = pol_pair_slot(dc, key), k;
                for (k = dc->pstart[h]; k < dc->pstart[h] + dc->pcount[h]; k++) {
                    const pol_lit *l = &dc->lit[k];
                    if (l->len <= len - i && memcmp(t + i, l->w, l->len) == 0 &&
                        pol_scan_occ(sc, i, k) != 0)
                        return -1;
                }
            }
        }
        i += n;
        cp++;
    }
    return 0;
}
