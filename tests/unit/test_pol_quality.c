/*
 * Measured detection quality of the default rule pack over the labelled
 * corpus (tests/data/policy/corpus.jsonl, made by gen_corpus.py).
 *
 * A labelled entity counts as found when one detection of the same type
 * covers all of it (the whole value is masked).  A detection counts as
 * correct when it overlaps a labelled entity of the same type.  Thresholds
 * are those of issue 3: recall >= 99% for 個人番号, 法人番号, phone, e-mail,
 * card and postal code; >= 95% for names and addresses; precision >= 95%
 * overall; every 機密性3 document refused and no unmarked one.
 * Set POL_QUALITY_VERBOSE=1 to list misses and false positives.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "pol.h"

#define QMAX_TYPES 32

typedef struct qstat {
    const char *type;
    unsigned gold, found, det, correct;
} qstat;

static qstat stats[QMAX_TYPES];
static size_t nstats;

static qstat *stat_for(const char *type)
{
    size_t i;

    for (i = 0; i < nstats; i++)
        if (strcmp(stats[i].type, type) == 0)
            return &stats[i];
    assert_true(nstats < QMAX_TYPES);
    stats[nstats].type = strdup(type);
    assert_non_null(stats[nstats].type);
    return &stats[nstats++];
}

static char *path_join(const char *env, const char *def, const char *rel)
{
    const char *base = getenv(env);
    size_t n;
    char *p;

    if (base == NULL)
        base = def;
    n = strlen(base) + strlen(rel) + 2;
    p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", base, rel);
    return p;
}

static void test_quality_default_pack_meets_thresholds(void **state)
{
    char *rules = path_join("TG_SOURCE_DIR", ".", "policy/rules/default.json");
    char *corpus = path_join("TG_DATA_DIR", "tests/data", "policy/corpus.jsonl");
    const char *files[1] = {rules};
    pol_engine *e = pol_engine_load(files, 1, stderr);
    FILE *f = fopen(corpus, "r");
    char *line = NULL;
    size_t cap = 0, i, ndocs = 0;
    unsigned m3 = 0, m3_refused = 0, unmarked = 0, unmarked_refused = 0, level_wrong = 0;
    unsigned tot_det = 0, tot_ok = 0;
    int verbose = getenv("POL_QUALITY_VERBOSE") != NULL;
    int failed = 0;
    ssize_t got;

    (void)state;
    assert_non_null(e);
    assert_non_null(f);
    while ((got = getline(&line, &cap, f)) > 0) {
        json_error_t jerr;
        json_t *doc = json_loadb(line, (size_t)got, 0, &jerr), *ents, *ent;
        const char *text, *id;
        size_t tlen, nd, k;
        int level;
        pol_session *s;
        char *masked = NULL;
        const pol_detection *d;
        pol_decision dec;
        unsigned char *used;

        assert_non_null(doc);
        text = json_string_value(json_object_get(doc, "text"));
        tlen = json_string_length(json_object_get(doc, "text"));
        id = json_string_value(json_object_get(doc, "id"));
        level = (int)json_integer_value(json_object_get(doc, "level"));
        ents = json_object_get(doc, "entities");
        s = pol_session_new(e, POL_PH_TOKEN);
        assert_non_null(s);
        assert_int_equal(pol_session_process(s, text, tlen, &masked, NULL), POL_OK);
        d = pol_session_detections(s, &nd);
        used = calloc(nd + 1, 1);
        assert_non_null(used);
        json_array_foreach(ents, i, ent) {
            const char *type = json_string_value(json_object_get(ent, "type"));
            size_t st = (size_t)json_integer_value(json_object_get(ent, "start"));
            size_t en = (size_t)json_integer_value(json_object_get(ent, "end"));
            qstat *q = stat_for(type);
            int ok = 0;
            q->gold++;
            for (k = 0; k < nd; k++)
                if (strcmp(d[k].type, type) == 0 && d[k].start <= st && d[k].end >= en)
                    ok = 1;
            q->found += (unsigned)ok;
            if (!ok && verbose)
                printf("MISS %s %s [%.*s]\n", id, type, (int)(en - st), text + st);
        }
        for (k = 0; k < nd; k++) {
            qstat *q;
            int ok = 0;
            if (strcmp(d[k].type, "placeholder_literal") == 0)
                continue;
            q = stat_for(d[k].type);
            json_array_foreach(ents, i, ent) {
                const char *type = json_string_value(json_object_get(ent, "type"));
                size_t st = (size_t)json_integer_value(json_object_get(ent, "start"));
                size_t en = (size_t)json_integer_value(json_object_get(ent, "end"));
                if (strcmp(type, d[k].type) == 0 && d[k].start < en && d[k].end > st)
                    ok = 1;
            }
            q->det++;
            q->correct += (unsigned)ok;
            tot_det++;
            tot_ok += (unsigned)ok;
            if (!ok && verbose)
                printf("FP   %s %s %s [%.*s]\n", id, d[k].type, d[k].rule_id,
                       (int)(d[k].end - d[k].start), text + d[k].start);
        }
        free(used);
        assert_int_equal(pol_decide(s, 2, 2, 2, &dec), POL_OK);
        if (pol_session_level(s, NULL) != level) {
            level_wrong++;
            if (verbose)
                printf("LEVEL %s gold %d got %d\n", id, level, pol_session_level(s, NULL));
        }
        if (level == 3) {
            m3++;
            m3_refused += (unsigned)dec.refuse;
        }
        if (level == 0) {
            unmarked++;
            unmarked_refused += (unsigned)dec.refuse;
        }
        free(masked);
        pol_session_free(s);
        json_decref(doc);
        ndocs++;
    }
    free(line);
    fclose(f);

    printf("policy quality over %zu documents (default pack)\n", ndocs);
    printf("%-18s %6s %6s %8s %6s %9s\n", "type", "gold", "found", "recall", "dets", "precision");
    for (i = 0; i < nstats; i++) {
        qstat *q = &stats[i];
        double rec = q->gold ? 100.0 * q->found / q->gold : 100.0;
        double pre = q->det ? 100.0 * q->correct / q->det : 100.0;
        double need = 0;
        const char *t = q->type;
        printf("%-18s %6u %6u %7.1f%% %6u %8.1f%%\n", t, q->gold, q->found, rec, q->det, pre);
        if (!strcmp(t, "mynumber") || !strcmp(t, "corporate_number") || !strcmp(t, "phone") ||
            !strcmp(t, "email") || !strcmp(t, "card") || !strcmp(t, "postal_code"))
            need = 99.0;
        else if (!strcmp(t, "person_name") || !strcmp(t, "address"))
            need = 95.0;
        if (rec < need) {
            printf("  FAIL: recall for %s below %.0f%%\n", t, need);
            failed = 1;
        }
    }
    printf("%-18s %6s %6s %8s %6u %8.1f%%\n", "overall", "", "", "", tot_det,
           tot_det ? 100.0 * tot_ok / tot_det : 100.0);
    printf("機密性3 documents refused: %u/%u; unmarked documents refused: %u/%u; "
           "marking level wrong: %u\n", m3_refused, m3, unmarked_refused, unmarked, level_wrong);
    if (tot_det && 100.0 * tot_ok / tot_det < 95.0) {
        printf("  FAIL: overall precision below 95%%\n");
        failed = 1;
    }
    assert_true(ndocs >= 300);
    assert_true(m3 > 0);
    assert_int_equal(m3_refused, m3);
    assert_int_equal(unmarked_refused, 0);
    assert_int_equal(level_wrong, 0);
    assert_int_equal(failed, 0);
    pol_engine_free(e);
    free(rules);
    free(corpus);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quality_default_pack_meets_thresholds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
