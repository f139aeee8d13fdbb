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
    unsigned anchor_before, anchor_after;
} pol_detector;

typedef struct pol_marking {
    char *id;
    int level;
    pcre2_code *re;
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
    char digest[65];
};

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
