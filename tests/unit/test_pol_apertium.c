/*
 * Proof against the real engine: POL_PH_TOKEN placeholders (⟦N⟧) pass
 * unchanged through Apertium APY (eng->spa, markUnknown=no), so every masked
 * value is restored strictly (no best effort) into the translation.
 *
 * Needs a running APY; TG_APERTIUM_URL overrides http://127.0.0.1:2737.
 * Exits 77 (ctest: skipped) when APY is not reachable.  Registered with the
 * label "integration" so the gateway team can run it with their suite.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "pol.h"

static pol_engine *eng;
static const char *apy;

typedef struct body {
    char *p;
    size_t n;
} body;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    body *b = ud;
    size_t add = size * nmemb;
    char *np;

    if (b->n + add > 1024 * 1024)
        return 0;
    np = realloc(b->p, b->n + add + 1);
    if (np == NULL)
        return 0;
    b->p = np;
    memcpy(b->p + b->n, ptr, add);
    b->n += add;
    b->p[b->n] = '\0';
    return add;
}

/* Translate q with APY; returns a new string or NULL. */
static char *apy_translate(const char *q)
{
    CURL *c = curl_easy_init();
    char url[512], *form = NULL, *esc, *out = NULL;
    body b = {NULL, 0};
    size_t fl;
    json_t *root;
    json_error_t jerr;

    if (c == NULL)
        return NULL;
    esc = curl_easy_escape(c, q, 0);
    fl = strlen(esc) + 64;
    form = malloc(fl);
    if (form == NULL)
        goto done;
    snprintf(form, fl, "q=%s&langpair=eng%%7Cspa&markUnknown=no", esc);
    snprintf(url, sizeof url, "%s/translate", apy);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, form);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    if (curl_easy_perform(c) != CURLE_OK || b.p == NULL)
        goto done;
    root = json_loads(b.p, 0, &jerr);
    if (root != NULL) {
        const char *t = json_string_value(json_object_get(json_object_get(root, "responseData"),
                                                          "translatedText"));
        if (t != NULL)
            out = strdup(t);
        json_decref(root);
    }
done:
    curl_free(esc);
    free(form);
    free(b.p);
    curl_easy_cleanup(c);
    return out;
}

static void test_token_placeholders_survive_apertium_eng_spa(void **state)
{
    static const char *texts[] = {
        "Mr. John Smith will call you at 090-1234-5678 tomorrow.",
        "Please send the form to taro.yamada@example-corp.co.jp before Friday.",
        "Dr. Mary Ann Jones lives at 1-2-3 Kasumigaseki, Chiyoda-ku, Tokyo 100-8914.",
        "The applicant's Individual Number is 5260 1815 9084 and the card is 4485 2538 8853 9336.",
        "Contact: Kenji Watanabe (kenji@widgets.example.com), phone +81 3 1234 5678, IP 192.168.10.5.",
        "Ms. Tanaka and Mr. Tanaka met Prof. O'Brien; Ms. Tanaka thanked him.",
        "Passport number TK1234567 expired. Date of birth: April 12, 1985.",
        /* U+27E6 7 U+27E7 written as UTF-8 bytes (a hex escape must not run
         * into the digit, hence the octal form). */
        "Literal brackets \342\237\2467\342\237\247 in the source are kept, as is Mr. Smith.",
    };
    size_t i, k;

    (void)state;
    for (i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        pol_session *s = pol_session_new(eng, POL_PH_TOKEN);
        char *m = NULL, *tr, *out = NULL;
        size_t mlen, nd;
        const pol_detection *d;
        pol_err pe;

        assert_non_null(s);
        assert_int_equal(pol_session_process(s, texts[i], strlen(texts[i]), &m, &mlen), POL_OK);
        d = pol_session_detections(s, &nd);
        assert_true(nd > 0);
        tr = apy_translate(m);
        assert_non_null(tr);
        pe = pol_session_restore(s, tr, strlen(tr), 0, &out, NULL);
        if (pe != POL_OK)
            printf("  masked: %s\n  apertium: %s\n  -> %s\n", m, tr, pol_strerror(pe));
        assert_int_equal(pe, POL_OK);
        /* every detected value is back, verbatim */
        for (k = 0; k < nd; k++) {
            char val[256];
            size_t vl = d[k].end - d[k].start;
            assert_true(vl < sizeof val);
            memcpy(val, texts[i] + d[k].start, vl);
            val[vl] = '\0';
            if (strstr(out, val) == NULL)
                printf("  value %zu missing from: %s\n", k, out);
            assert_non_null(strstr(out, val));
        }
        free(m);
        free(tr);
        free(out);
        pol_session_free(s);
    }
}

/* Returns 1 when APY answers /listPairs. */
static int apy_up(void)
{
    CURL *c = curl_easy_init();
    char url[512];
    body b = {NULL, 0};
    long code = 0;
    int ok;

    if (c == NULL)
        return 0;
    snprintf(url, sizeof url, "%s/listPairs", apy);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 5L);
    ok = curl_easy_perform(c) == CURLE_OK &&
         curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code == 200 &&
         b.p != NULL && strstr(b.p, "\"spa\"") != NULL;
    free(b.p);
    curl_easy_cleanup(c);
    return ok;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_placeholders_survive_apertium_eng_spa),
    };
    const char *src = getenv("TG_SOURCE_DIR");
    char rules[1024];
    const char *files[1] = {rules};
    int rc;

    apy = getenv("TG_APERTIUM_URL");
    if (apy == NULL)
        apy = "http://127.0.0.1:2737";
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (!apy_up()) {
        printf("Apertium APY not reachable at %s: skipped\n", apy);
        curl_global_cleanup();
        return 77;
    }
    snprintf(rules, sizeof rules, "%s/policy/rules/default.json", src != NULL ? src : ".");
    eng = pol_engine_load(files, 1, stderr);
    if (eng == NULL)
        return 1;
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    pol_engine_free(eng);
    curl_global_cleanup();
    return rc;
}
