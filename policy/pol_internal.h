/*
 * pol_internal: structures shared by the policy engine's own files.
 * Not part of the module's contract; only the policy sources include it.
 */
#ifndef TG_POL_INTERNAL_H
#define TG_POL_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <stddef.h>
#include <stdint.h>

#include "pol.h"

/* Validators a detector may name; a candidate match is kept only when its
 * validator accepts it. */
typedef enum pol_validator {
    POL_V_NONE = 0,
    POL_V_MYNUMBER,      /* 個人番号: 12 digits, statutory check digit */
    POL_V_CORPORATE,     /* 法人番号: 13 digits, leading check digit */
    POL_V_LUHN,          /* card numbers: 13..19 digits, Luhn */
    POL_V_JP_PHONE,      /* Japanese numbering plan digit counts */
    POL_V_IPV4,          /* four octets 0..255 */
    POL_V_IPV6,          /* RFC 4291 text forms */
    POL_V_DATE           /* a real calendar date */
} pol_validator;

#define POL_MAX_CONTEXT_WORDS 256

typedef struct pol_words {
    char **w;
    size_t *len;
    size_t n;
} pol_words;

/* A necessary condition for a match, declared in the pack ("prefilter",
 * docs/rules.md).  Unlike an anchor it restricts nothing: the engine uses
 * it only to skip text where the pattern cannot match, so results are those
 * of a full scan as long as the declaration is true (proved for the default
 * pack by the golden test and the fuzz_pol_diff harness). */
typedef struct pol_prefilter {
    pol_words words;           /* every match contains one (n == 0: none) */
    int window;                /* the words also bound where a match starts */
    unsigned before, after;    /* code points around a word (window) */
    unsigned digits;           /* every match holds >= digits digits (0: no) */
    unsigned gap;              /* ... consecutive ones <= gap code points apart */
    unsigned lead;             /* ... and starts <= lead code points before
                                  its first digit */
    unsigned groups;           /* ... in at least this many runs of
                                  adjacent digits (0 or 1: any) */
    unsigned max_digits;       /* a cluster with more digits holds no match
                                  (0: no limit) */
    int whole;                 /* a match holds all the digits of its
                                  cluster, so it starts at its first digit
                                  (or lead code points before) */
    uint32_t *sep;             /* ... and only these code points come between
                                  its digits (NULL: any) */
    size_t nsep;
    uint64_t sepa[2];          /* the ASCII ones as a bit mask */
    uint64_t sepm;             /* bit (c & 63) of each other one: most
                                  characters that are not separators fail
                                  this one test */
    unsigned dclass;           /* prefilters with the same gap and separators
                                  share one class: their digit clusters are
                                  computed once per field */
    unsigned class_digits;     /* fewest digits and runs any prefilter of the
                                  class needs: smaller clusters are not kept */
    unsigned class_groups;
    char *between_src;         /* "between" as written (until compiled) */
    uint8_t *between;          /* with a window: only characters of this
                                  class lie between a match's start and the
                                  word (bit c of the code points below
                                  U+10000, POL_CLASS_BYTES; those above are
                                  all counted in); NULL: any */
} pol_prefilter;

#define POL_CLASS_BYTES 8192

/* 1 when code point c is in class cls (a "between" bit map). */
static inline int pol_class_has(const uint8_t *cls, uint32_t c)
{
    return c > 0xffffu || ((cls[c >> 3] >> (c & 7u)) & 1u);
}

#define POL_PF_ACTIVE(pf) ((pf)->words.n > 0 || (pf)->digits > 0)

/* Dictionary of every literal word the engine looks for in one shared pass
 * over a field: anchor words and prefilter words of all rules.  Each
 * distinct literal appears once, with the list of rules that use it. */
typedef enum pol_lit_kind {
    POL_LIT_ANCHOR = 0,        /* detector anchor word */
    POL_LIT_PF_DET = 1,        /* detector prefilter word */
    POL_LIT_PF_MARK = 2,       /* marking prefilter word */
    POL_LIT_CTX = 3,           /* detector context word */
    POL_LIT_NOT_CTX = 4        /* detector context word that vetoes */
} pol_lit_kind;

typedef struct pol_lit_use {
    uint32_t owner;            /* detector or marking index */
    uint32_t word;             /* index in the owner's list (alternation order) */
    pol_lit_kind kind;
} pol_lit_use;

typedef struct pol_lit {
    const char *w;             /* borrowed from an owner's word list */
    size_t len;
    size_t ncp;                /* code points */
    size_t use0, nuse;         /* range in pol_dict.use */
} pol_lit;

typedef struct pol_dict {
    pol_lit *lit;              /* sorted by key (see pol_scan.c) */
    size_t nlit;
    pol_lit_use *use;
    size_t nuse;
    size_t nslot;              /* rules that own words: see pol_dict_slot */
    uint8_t *smode;            /* per slot: POL_SMODE_* */
    uint32_t *sbefore, *safter; /* per slot: window in code points */
    const uint8_t **sbetween;  /* per slot: "between" class or NULL
                                  (borrowed from the prefilter) */
    size_t ndet, nmark;
    uint32_t one[128];         /* one-byte literal equal to this byte: index + 1 */
    uint8_t acls[128];         /* POL_ACLS_* of each ASCII byte */
    uint8_t first[16384];      /* bit per key: some longer literal starts so */
    uint8_t shortk[16384];     /* bit per key: a literal of 2-3 bytes does */
    uint8_t h4[8192];          /* bit per hash of the first 4 bytes of the
                                  literals of 4 bytes or more */
    uint32_t *pkey;            /* open addressing over keys: key + 1, 0 empty */
    uint32_t *pstart, *pcount; /* range of literals with that key */
    size_t pcap;               /* power of two */
} pol_dict;

#define POL_ACLS_DIGIT 1u
#define POL_ACLS_LT    2u
#define POL_ACLS_ONE   4u      /* a one-byte literal */

/* How pol_scan_field keeps the occurrences of a slot's words: all of them
 * (context words: the engine asks whether one lies inside a span), or
 * only as the windows they give (anchors; prefilter words with a window),
 * merged where they overlap, or at most one (prefilter words without a
 * window: only whether one occurs matters).  Merging keeps memory and
 * work small when a text repeats a word (a run of '@' or 機). */
#define POL_SMODE_ALL    0
#define POL_SMODE_ANCHOR 1
#define POL_SMODE_WINDOW 2
#define POL_SMODE_ONE    3

/* Slot of a rule's word list in a pol_scan: anchor words of detector i,
 * prefilter words of detector i, prefilter words of marking i, context
 * words of detector i, vetoing context words of detector i. */
static inline size_t pol_dict_slot(const pol_dict *dc, pol_lit_kind kind, size_t owner)
{
    switch (kind) {
    case POL_LIT_ANCHOR:
        return owner;
    case POL_LIT_PF_DET:
        return dc->ndet + owner;
    case POL_LIT_PF_MARK:
        return 2 * dc->ndet + owner;
    case POL_LIT_CTX:
        return 2 * dc->ndet + dc->nmark + owner;
    case POL_LIT_NOT_CTX:
        return 3 * dc->ndet + dc->nmark + owner;
    }
    return 0;
}

/* Scratch memory of one session (pol_arena.c): allocation moves an
 * offset, first in a buffer the owner provides, then in chunks of
 * doubling size, all released at once.  Not wiped: the owner wipes what
 * is secret. */
typedef struct pol_arena {
    unsigned char *buf0;       /* the owner's buffer (not freed here) */
    size_t size0;
    struct pol_chunk *chunks;  /* allocated chunks, newest first */
    unsigned char *base;       /* where allocation goes on */
    size_t size, used;
    void *last;                /* the most recent allocation */
} pol_arena;

/* Start an arena in buf[0..n) (16-byte aligned; n may be 0).  Cannot
 * fail. */
void pol_arena_init(pol_arena *a, void *buf, size_t n);

/* Bytes an allocation of n > 0 takes in an arena (rounded up to its
 * alignment).  Cannot fail. */
size_t pol_arena_round(size_t n);

/* n bytes, 16-byte aligned, valid until pol_arena_free; NULL when out of
 * memory.  Not zeroed. */
void *pol_arena_alloc(pol_arena *a, size_t n);

/* Grow an array in the arena (or NULL) to at least need elements of sz
 * bytes, capacity doubling from 16; the contents move when the array
 * cannot grow in place.  0, or -1 on overflow or when out of memory (the
 * array is left as it was).  pol_arena_grow_slow does the growing. */
int pol_arena_grow_slow(pol_arena *a, void **arr, size_t *cap, size_t need, size_t sz);

static inline int pol_arena_grow(pol_arena *a, void **arr, size_t *cap, size_t need,
                                 size_t sz)
{
    return need <= *cap ? 0 : pol_arena_grow_slow(a, arr, cap, need, sz);
}

/* Free the chunks; the arena starts over in its buffer.  Cannot fail. */
void pol_arena_free(pol_arena *a);

/* What one linear pass found in a field. */
/* Offsets fit 32 bits: fields are at most POL_MAX_FIELD (16 MiB).  Small
 * records keep long texts full of literals (a run of '@') in cache. */
typedef struct pol_occ {
    uint32_t pos;              /* byte offset */
    uint32_t cp;               /* code point index */
    uint32_t lit;              /* index into pol_dict.lit */
} pol_occ;

/* One occurrence of a word of one rule.  For POL_SMODE_ANCHOR and
 * POL_SMODE_WINDOW slots, one entry stands for a merged window: it starts
 * "before" code points before cp and ends "after" code points after
 * cp + ncp; len spans the anchor words it covers. */
typedef struct pol_wocc {
    uint32_t pos;              /* byte offset */
    uint32_t cp;               /* code point index */
    uint32_t word;             /* index in the rule's list */
    uint32_t len;              /* bytes */
    uint32_t ncp;              /* code points */
    uint32_t from;             /* window slots with a "between" class: byte
                                  offset where the window starts */
} pol_wocc;

/* A run of adjacent digits (ASCII or full-width). */
typedef struct pol_drun {
    uint32_t pos;              /* byte offset of its first digit */
    uint32_t last;             /* byte offset of its last digit */
    uint32_t end;              /* byte offset after its last digit */
    uint32_t cp;               /* code point index of its first digit */
    uint32_t n;                /* digits */
} pol_drun;

#define POL_SCAN_TOKEN 1u      /* a literal U+27E6 or U+27E7 */
#define POL_SCAN_LT    2u      /* a '<' */

/* Per-slot state of a pol_scan, stamped with the field it belongs to
 * rather than cleared for each field.  Offsets and counts fit 32 bits
 * (fields are at most POL_MAX_FIELD bytes). */
typedef struct pol_sstate {
    uint32_t gen;              /* sc->gen of its field; older: no entries */
    uint32_t last;             /* while grouping: index + 1 of the slot's
                                  last entry in tmp */
    uint32_t start, n;         /* its entries: wocc[start .. start + n) */
} pol_sstate;

typedef struct pol_scan {
    pol_arena *ar;             /* where the arrays below live (the session's) */
    pol_occ *occ;              /* every literal occurrence, by position */
    size_t nocc, capocc;
    pol_wocc *wocc;            /* the same per slot, by position in each */
    size_t capwocc;
    struct pol_tocc *tmp;      /* grouping scratch */
    size_t ntmp, captmp;
    pol_sstate *sst;           /* per slot (nslot + 1): see pol_scan_slot */
    struct pol_astate *ast;    /* anchor choice per detector (ndet) */
    uint32_t gen;              /* fields grouped so far: stamps sst */
    uint32_t *touched;         /* slots with entries in this field */
    size_t ntouched;
    pol_drun *dig;             /* digit runs, by position */
    size_t ndig, capdig;
    unsigned flags;
} pol_scan;

/* Build the dictionary from the engine's detectors and markings.
 * 0, or -1 when out of memory (the dictionary is then freed). */
int pol_dict_build(pol_dict *dc, const struct pol_engine *e);
void pol_dict_free(pol_dict *dc);

/* One pass over the text: checks that it is valid UTF-8 (the rules of
 * pol_utf8_valid) and finds every occurrence of every dictionary literal
 * (at code point starts, in position order), every run of digits (ASCII
 * or full-width) and the POL_SCAN_* flags.  Arrays grow in sc->ar (kept
 * between calls, released with the arena).  0, -1 when out of memory, -2
 * when the text is not valid UTF-8. */
int pol_scan_field(pol_scan *sc, const pol_dict *dc, const char *t, size_t len);

/* Slot k's entries in the last field scanned: wocc[*lo .. *hi).  Cannot
 * fail. */
static inline void pol_scan_slot(const pol_scan *sc, size_t k, size_t *lo, size_t *hi)
{
    const pol_sstate *st = &sc->sst[k];

    *lo = st->gen == sc->gen ? st->start : 0;
    *hi = st->gen == sc->gen ? st->start + st->n : 0;
}

/* Byte offset reached by moving back from t[pos] over at most max code
 * points, all of class cls, stopping before the first one outside it.
 * t[0..pos) must be valid UTF-8.  *ncp (may be NULL) gets the number of
 * code points moved.  Cannot fail. */
size_t pol_class_back(const char *t, size_t pos, unsigned max, const uint8_t *cls,
                      unsigned *ncp);

/* The same forward from t[pos], within t[0..len) (valid UTF-8).  Cannot
 * fail. */
size_t pol_class_fwd(const char *t, size_t len, size_t pos, unsigned max,
                     const uint8_t *cls);

typedef struct pol_detector {
    char *id;
    size_t type;               /* index into engine types */
    pcre2_code *re;
    pol_validator validator;
    pol_words ctx;             /* context words */
    pol_words not_ctx;         /* words that veto a match */
    unsigned before, after;    /* context window in code points */
    int ctx_required;
    pol_action action;
    int priority;
    pcre2_code *anchor;        /* literal alternation of anchor words, or NULL */
    pol_words anchor_words;    /* the same words, for the shared scan */
    unsigned anchor_before, anchor_after;
    pol_prefilter pf;
    int pf_in_anchor;          /* every prefilter window lies in an anchor
                                  window: the prefilter's alone are used */
} pol_detector;

typedef struct pol_marking {
    char *id;
    int level;
    pcre2_code *re;
    pol_prefilter pf;
} pol_marking;

typedef struct pol_allow {
    char *id;
    pcre2_code *re;            /* must match the whole detected value */
    uint64_t types;            /* bit i: applies to type i; all ones = any */
} pol_allow;

#define POL_MAX_TYPES 64

struct pol_engine {
    pol_detector *det;
    size_t ndet;
    pol_marking *mark;
    size_t nmark;
    pol_allow *allow;
    size_t nallow;
    char *types[POL_MAX_TYPES];
    size_t ntypes;
    size_t placeholder_type;   /* pseudo type for literal placeholder text */
    pcre2_code *lit_token;     /* literal ⟦ or ⟧ in input */
    pcre2_code *lit_xml;       /* literal <tgph in markup input */
    uint32_t max_ovec;         /* largest capture count + 1 */
    pol_dict dict;             /* literals for the shared pre-scan */
    int jit_all;               /* every pattern is JIT-compiled */
    int reference;             /* 1: the plain one-pass-per-rule scan (no
                                  shared pre-scan, no prefilters), kept as
                                  the oracle for differential tests */
    char digest[65];
};

/* Switch an engine to the reference scan (on != 0) or back.  For tests
 * only: call before the engine is shared.  Cannot fail. */
void pol_engine_set_reference(pol_engine *e, int on);

/* SHA-256, self-contained (policy/ may not use OpenSSL). */
typedef struct pol_sha256 {
    uint32_t h[8];
    uint64_t nbytes;
    unsigned char buf[64];
    size_t nbuf;
} pol_sha256;

void pol_sha256_init(pol_sha256 *c);
void pol_sha256_update(pol_sha256 *c, const void *p, size_t n);
void pol_sha256_final(pol_sha256 *c, unsigned char out[32]);

/* Validators over a candidate match.  Return 1 to keep, 0 to drop. */
int pol_validate(pol_validator v, const char *s, size_t n);

/* Digits a validator looks at, at most. */
#define POL_VALIDATE_DIGITS 24

/* The verdict of a validator that looks only at the digits of a match
 * (mynumber, corporate_number, luhn), from those digits: k of them (all,
 * even beyond POL_VALIDATE_DIGITS), the first ones as 0..9 in d.  1 keep,
 * 0 drop, -1 when the validator also looks at other characters.  Cannot
 * fail. */
int pol_validate_digits(pol_validator v, const unsigned char *d, size_t k);

/* Digits of s (ASCII and full-width), at most max, into out as 0..9.
 * Returns the number of digits found (may exceed max: extra not stored). */
size_t pol_digits(const char *s, size_t n, unsigned char *out, size_t max);

/* Check-digit primitives, exported for the unit tests. */
int pol_check_mynumber(const unsigned char d[12]);
int pol_check_corporate(const unsigned char d[13]);
int pol_check_luhn(const unsigned char *d, size_t n);

/* Returns 1 when s[0..n) is valid UTF-8 (no overlongs, surrogates or values
 * above U+10FFFF). */
int pol_utf8_valid(const char *s, size_t n);

/* Length of the UTF-8 sequence starting with byte c (1 for invalid). */
size_t pol_utf8_len(unsigned char c);

/* Locate the value at a JSON path inside raw JSON text: path components are
 * keys (strings) or indexes (key NULL).  Sets *line and *col (1-based,
 * column in code points).  Returns 0, or -1 when not found. */
typedef struct pol_jpath {
    const char *key;   /* NULL: use index */
    size_t index;
} pol_jpath;
int pol_json_locate(const char *text, size_t len, const pol_jpath *path,
                    size_t depth, int *line, int *col);

#endif
