/*
 * libFuzzer harness: the optimised scan against the reference scan.
 *
 * Two engines on the default pack: one as shipped (shared pre-scan,
 * windows, prefilters, UTF-8 checked by the pre-scan), one in reference
 * mode (one full PCRE2 pass per rule and per anchor, pol_utf8_valid), the
 * engine as it was before the optimisation.  Byte 0 picks the placeholder
 * style; the rest is processed twice as two fields of one session (so
 * placeholder numbering across fields is covered).  Every return code,
 * masked text, detection, marking, level and refusing rule must be
 * identical: a prefilter that is not a true necessary condition, or a
 * window computed wrong, shows up here as an abort.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pol_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static pol_engine *fast, *ref;

static void fuzz_init(void)
{
    const char *src = getenv("TG_SOURCE_DIR");
    char path[1024];
    const char *files[1] = {path};

    snprintf(path, sizeof path, "%s/policy/rules/default.json", src != NULL ? src : ".");
    fast = pol_engine_load(files, 1, stderr);
    ref = pol_engine_load(files, 1, stderr);
    if (fast == NULL || ref == NULL)
        abort();
    pol_engine_set_reference(ref, 1);
}

static void same_field(pol_session *a, pol_session *b, const char *text, size_t len)
{
    char *ma = NULL, *mb = NULL;
    size_t la = 0, lb = 0;
    pol_err ea = pol_session_process(a, text, len, &ma, &la);
    pol_err eb = pol_session_process(b, text, len, &mb, &lb);

    if (ea != eb)
        abort();
    if (ea == POL_OK && (la != lb || memcmp(ma, mb, la) != 0))
        abort();
    free(ma);
    free(mb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pol_session *a, *b;
    const pol_detection *da, *db;
    const pol_marking_hit *ka, *kb;
    const char *ra = NULL, *rb = NULL;
    size_t na, nb, i;
    pol_ph_style style;

    if (fast == NULL)
        fuzz_init();
    if (size == 0)
        return 0;
    style = (pol_ph_style)(data[0] % 3);
    a = pol_session_new(fast, style);
    b = pol_session_new(ref, style);
    if (a == NULL || b == NULL)
        abort();
    same_field(a, b, (const char *)data + 1, size - 1);
    same_field(a, b, (const char *)data + 1, size - 1);
    da = pol_session_detections(a, &na);
    db = pol_session_detections(b, &nb);
    if (na != nb)
        abort();
    for (i = 0; i < na; i++)
        if (da[i].field != db[i].field || da[i].start != db[i].start ||
            da[i].end != db[i].end || da[i].type_index != db[i].type_index ||
            strcmp(da[i].rule_id, db[i].rule_id) != 0 || da[i].action != db[i].action ||
            da[i].placeholder != db[i].placeholder)
            abort();
    ka = pol_session_markings(a, &na);
    kb = pol_session_markings(b, &nb);
    if (na != nb)
        abort();
    for (i = 0; i < na; i++)
        if (ka[i].field != kb[i].field || ka[i].start != kb[i].start ||
            ka[i].end != kb[i].end || ka[i].level != kb[i].level ||
            strcmp(ka[i].rule_id, kb[i].rule_id) != 0)
            abort();
    if (pol_session_level(a, &ra) != pol_session_level(b, &rb) ||
        (ra == NULL) != (rb == NULL) || (ra != NULL && strcmp(ra, rb) != 0))
        abort();
    ra = pol_session_refusing_rule(a);
    rb = pol_session_refusing_rule(b);
    if ((ra == NULL) != (rb == NULL) || (ra != NULL && strcmp(ra, rb) != 0))
        abort();
    if (pol_session_total(a) != pol_session_total(b))
        abort();
    pol_session_free(a);
    pol_session_free(b);
    return 0;
}
