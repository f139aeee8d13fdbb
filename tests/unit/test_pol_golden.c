/*
 * Golden behaviour of the default pack: every detection, marking and masked
 * output over a fixed set of inputs, compared with
 * tests/data/policy/golden/default.txt.  The golden file was written by the
 * engine as it was before the scan was optimised (commit 5b6bc07), so this
 * test proves that speed work changed nothing a client can see.
 *
 * Inputs: every corpus document (one session each, and all documents as
 * fields of one session, so placeholder numbering across fields is
 * covered, and joined into one long field); every positive (brackets removed) and negative detector case;
 * and pseudo-random texts built from a fixed seed out of rule fragments
 * (digits of every width, separators, markings, anchor words, honorifics,
 * the detector cases' own values, placeholder look-alikes), which reach the
 * edges that hand-written cases do not.  Each input runs in all three
 * placeholder styles.
 *
 *   test_pol_golden                      compare (the ctest case)
 *   test_pol_golden --dump [NRANDOM]     print the golden text to stdout;
 *                                        a large NRANDOM gives a wider
 *                                        differential check between builds
 *
 * A deliberate behaviour change (a rule edit) regenerates the file with
 * --dump after review of the diff.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "pol.h"

#define GOLD_NRANDOM 3000u

/* Output text, grown as needed (test code: failure aborts). */
typedef struct gbuf {
    char *d;
    size_t len, cap;
} gbuf;

static void gb_add(gbuf *b, const char *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 4096;
        while (nc < b->len + n + 1)
            nc *= 2;
        b->d = realloc(b->d, nc);
        if (b->d == NULL)
            abort();
        b->cap = nc;
    }
    memcpy(b->d + b->len, p, n);
    b->len += n;
    b->d[b->len] = '\0';
}

static void gb_printf(gbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void gb_printf(gbuf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp)
        abort();
    gb_add(b, tmp, (size_t)n);
}

/* Input texts, owned. */
typedef struct ginputs {
    char **t;
    size_t *len;
    char **label;
    size_t n, cap;
} ginputs;

static void gi_add(ginputs *g, const char *label, const char *t, size_t len)
{
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 1024;
        g->t = realloc(g->t, g->cap * sizeof *g->t);
        g->len = realloc(g->len, g->cap * sizeof *g->len);
        g->label = realloc(g->label, g->cap * sizeof *g->label);
        if (g->t == NULL || g->len == NULL || g->label == NULL)
            abort();
    }
    g->t[g->n] = malloc(len + 1);
    g->label[g->n] = strdup(label);
    if (g->t[g->n] == NULL || g->label[g->n] == NULL)
        abort();
    memcpy(g->t[g->n], t, len);
    g->t[g->n][len] = '\0';
    g->len[g->n] = len;
    g->n++;
}

static void gi_free(ginputs *g)
{
    size_t i;

    for (i = 0; i < g->n; i++) {
        free(g->t[i]);
        free(g->label[i]);
    }
    free(g->t);
    free(g->len);
    free(g->label);
    memset(g, 0, sizeof *g);
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
    if (p == NULL)
        abort();
    snprintf(p, n, "%s/%s", base, rel);
    return p;
}

static void load_corpus(ginputs *docs)
{
    char *corpus = path_join("TG_DATA_DIR", "tests/data", "policy/corpus.jsonl");
    FILE *f = fopen(corpus, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;

    if (f == NULL)
        abort();
    while ((got = getline(&line, &cap, f)) > 0) {
        json_error_t jerr;
        json_t *doc = json_loadb(line, (size_t)got, 0, &jerr);
        if (doc == NULL)
            abort();
        gi_add(docs, json_string_value(json_object_get(doc, "id")),
               json_string_value(json_object_get(doc, "text")),
               json_string_length(json_object_get(doc, "text")));
        json_decref(doc);
    }
    free(line);
    fclose(f);
    free(corpus);
}

static const char *const det_ids[] = {
    "jp-mynumber", "jp-corporate-number", "card-number", "jp-phone",
    "jp-phone-compact", "jp-postal-mark", "jp-postal-context", "jp-address",
    "jp-address-romaji", "name-ja-honorific", "name-ja-label", "name-en-title",
    "name-en-label", "email", "bank-account", "passport", "drivers-licence",
    "date-of-birth", "ipv4", "ipv6", "name-ja-single", NULL};

/* The random texts take fragments from the cases of the first detectors
 * only: a detector added later (at the end of det_ids) adds its cases as
 * inputs without reshuffling every random text, so that the golden file's
 * diff shows what the new rule changes. */
#define GOLD_FRAG_DETS 20u

/* Detector cases as inputs (brackets removed); the bracketed values also
 * become fragments for the random texts. */
static void load_cases(ginputs *in, ginputs *frags)
{
    size_t k;

    for (k = 0; det_ids[k] != NULL; k++) {
        char rel[256], label[300];
        char *path;
        json_error_t jerr;
        json_t *root, *arr, *v;
        size_t i;
        int neg;

        snprintf(rel, sizeof rel, "policy/detectors/%s.json", det_ids[k]);
        path = path_join("TG_DATA_DIR", "tests/data", rel);
        root = json_load_file(path, 0, &jerr);
        if (root == NULL)
            abort();
        for (neg = 0; neg < 2; neg++) {
            arr = json_object_get(root, neg ? "negative" : "positive");
            json_array_foreach(arr, i, v) {
                const char *s = json_string_value(v);
                size_t n = json_string_length(v), j, o = 0;
                char *clean = malloc(n + 1);
                if (clean == NULL)
                    abort();
                for (j = 0; j < n; j++) {
                    if (j + 1 < n && ((s[j] == '[' && s[j + 1] == '[') ||
                                      (s[j] == ']' && s[j + 1] == ']'))) {
                        if (s[j] == '[' && k < GOLD_FRAG_DETS) {
                            const char *e = strstr(s + j + 2, "]]");
                            if (e != NULL)
                                gi_add(frags, "f", s + j + 2, (size_t)(e - (s + j + 2)));
                        }
                        j++;
                        continue;
                    }
                    clean[o++] = s[j];
                }
                snprintf(label, sizeof label, "%s/%s/%zu", det_ids[k], neg ? "neg" : "pos", i);
                gi_add(in, label, clean, o);
                free(clean);
            }
        }
        json_decref(root);
        free(path);
    }
}

static const char *const fixed_frags[] = {
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "0123", "4567", "8901",
    "０", "１", "２", "３", "９", "１２３４", "-", "‐", "―", "ー", "－", "ｰ", "−",
    " ", "　", "\n", "\t", ".", ",", ":", "：", "/", "(", ")", "（", "）", "+", "＋",
    "機", "密", "性", "機密性", "機密性３", "機 密 性", "情報", "【", "】", "［", "］",
    "三", "二", "一", "Ⅲ", "発電機", "航空機", "台",
    "@", "＠", "user", "example.co.jp", "a.b", "x_y", "%",
    "Mr. ", "Mrs ", "Dr. ", "Ms. ", "Prof ", "Smith", "John", "O'Neil", "Anne-Marie", "A. ",
    "Dear ", "Name: ", "Applicant: ", "Regards,\n", "Contact person: ",
    "様", "さん", "氏", "殿", "君", "先生", "くん", "ちゃん", "田中", "太郎", "佐々木", "森",
    "花子", "はなこ", "ヤマダ", "タロウ", "・", "＝", "株式会社", "お客", "ご苦労", "担当者", "課",
    "申請者", "氏名", "：", "患者", "本人",
    "東京都", "千代田区", "大阪府", "北海道", "札幌市", "中央区", "横浜市", "神奈川県",
    "丁目", "番地", "番", "号", "の", "町", "村", "市", "区", "霞が関", "〒", "〶", "郵便番号",
    "郵便", "住所", "Japan", "Tokyo", "-ku", "-shi", ", ", "Chiyoda-ku", "Shibuya",
    "電話", "TEL", "tel", "FAX", "携帯", "連絡先", "phone", "☎",
    "口座", "普通", "預金", "account", "A/C", "acct",
    "旅券", "パスポート", "passport", "TR", "AB",
    "運転免許", "免許証", "driver", "licence", "License",
    "生年月日", "誕生日", "生まれ", "DOB", "born", "Birth", "昭和", "平成", "令和", "S", "H",
    "年", "月", "日", "Jan", "March", "Sept", "1st", "th",
    "192.168.", "10.0.0.", "255", "127.0.0.1", "0.0.0.0", "version", "ver.", "バージョン",
    "::", "fe80", "2001:db8", "::1", "abcd", "ffff",
    "T", "Ｔ", "⟦", "⟧", "⟦1⟧", "<tgph", "<tgph id=\"1\"/>", "< /TGPH", "&", "<", ">",
    "é", "한", "😀", "\xc2\xa0", "A", "Z", "z", "_", "x",
    NULL};

static uint64_t rng_state;

static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

static void add_random(ginputs *in, const ginputs *frags, size_t count)
{
    size_t nfixed = 0, k;
    gbuf b = {0};

    while (fixed_frags[nfixed] != NULL)
        nfixed++;
    rng_state = 0x9e3779b97f4a7c15ull;
    for (k = 0; k < count; k++) {
        size_t pieces = 1 + rng() % 40, p;
        char label[32];
        b.len = 0;
        for (p = 0; p < pieces; p++) {
            uint32_t r = rng();
            if (r % 4 == 0 && frags->n > 0) {
                size_t i = (r >> 2) % frags->n;
                gb_add(&b, frags->t[i], frags->len[i]);
            } else {
                const char *f = fixed_frags[(r >> 2) % nfixed];
                gb_add(&b, f, strlen(f));
            }
        }
        snprintf(label, sizeof label, "random/%zu", k);
        gi_add(in, label, b.d != NULL ? b.d : "", b.len);
    }
    free(b.d);
}

static uint64_t fnv64(const char *p, size_t n)
{
    uint64_t h = 14695981039346656037ull;
    size_t i;

    for (i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* One session over the given fields; appends one line per field. */
static void run_session(const pol_engine *e, gbuf *out, const char *label,
                        pol_ph_style style, char *const *t, const size_t *len, size_t n)
{
    pol_session *s = pol_session_new(e, style);
    const pol_detection *d;
    const pol_marking_hit *m;
    size_t nd, nm, i, k, dk = 0, mk = 0;
    const char *rule = NULL;
    int level;

    if (s == NULL)
        abort();
    for (i = 0; i < n; i++) {
        char *masked = NULL;
        size_t mlen = 0;
        pol_err pe = pol_session_process(s, t[i], len[i], &masked, &mlen);
        gbuf det = {0};
        gb_printf(out, "%s s%d f%zu rc%d %016llx", label, (int)style, i, (int)pe,
                  (unsigned long long)(pe == POL_OK ? fnv64(masked, mlen) : 0));
        d = pol_session_detections(s, &nd);
        for (k = dk; k < nd; k++)
            gb_printf(&det, " D%zu-%zu:%s:%u%s", d[k].start, d[k].end, d[k].rule_id,
                      d[k].placeholder, d[k].action == POL_ACT_REFUSE ? ":R" : "");
        dk = nd;
        m = pol_session_markings(s, &nm);
        for (k = mk; k < nm; k++)
            gb_printf(&det, " M%zu-%zu:%s:%d", m[k].start, m[k].end, m[k].rule_id, m[k].level);
        mk = nm;
        /* The token style lists every detection, so a difference reads
         * directly; the XML styles differ only in placeholder literals and
         * are kept to a hash to keep the file small. */
        if (style == POL_PH_TOKEN)
            gb_add(out, det.d != NULL ? det.d : "", det.len);
        else if (det.len > 0)
            gb_printf(out, " h%016llx", (unsigned long long)fnv64(det.d, det.len));
        gb_add(out, "\n", 1);
        free(det.d);
        free(masked);
    }
    level = pol_session_level(s, &rule);     /* before rule is read */
    gb_printf(out, "%s s%d level%d %s refuse %s total %u\n", label, (int)style,
              level, rule != NULL ? rule : "-",
              pol_session_refusing_rule(s) != NULL ? pol_session_refusing_rule(s) : "-",
              pol_session_total(s));
    pol_session_free(s);
}

static char *golden_text(size_t nrandom)
{
    char *rules = path_join("TG_SOURCE_DIR", ".", "policy/rules/default.json");
    const char *files[1] = {rules};
    pol_engine *e = pol_engine_load(files, 1, stderr);
    ginputs docs = {0}, cases = {0}, frags = {0}, rnd = {0};
    gbuf out = {0};
    int st;
    size_t i;

    if (e == NULL)
        abort();
    load_corpus(&docs);
    load_cases(&cases, &frags);
    add_random(&rnd, &frags, nrandom);
    gi_add(&cases, "empty", "", 0);
    {
        /* The whole corpus as one long field: windows and anchors far from
         * the start of the text. */
        gbuf all = {0};
        for (i = 0; i < docs.n; i++) {
            gb_add(&all, docs.t[i], docs.len[i]);
            gb_add(&all, "\n", 1);
        }
        gi_add(&cases, "corpus-one-field", all.d, all.len);
        free(all.d);
    }
    for (st = 0; st < 3; st++) {
        static const pol_ph_style order[3] = {POL_PH_TOKEN, POL_PH_XML, POL_PH_XML_MARKUP};
        pol_ph_style style = order[st];
        for (i = 0; i < docs.n; i++)
            run_session(e, &out, docs.label[i], style, &docs.t[i], &docs.len[i], 1);
        run_session(e, &out, "corpus-fields", style, docs.t, docs.len, docs.n);
        for (i = 0; i < cases.n; i++)
            run_session(e, &out, cases.label[i], style, &cases.t[i], &cases.len[i], 1);
        for (i = 0; i < rnd.n; i++)
            run_session(e, &out, rnd.label[i], style, &rnd.t[i], &rnd.len[i], 1);
    }
    gi_free(&docs);
    gi_free(&cases);
    gi_free(&frags);
    gi_free(&rnd);
    pol_engine_free(e);
    free(rules);
    return out.d;
}

static void test_golden_default_pack_output_unchanged(void **state)
{
    char *path = path_join("TG_DATA_DIR", "tests/data", "policy/golden/default.txt");
    char *got = golden_text(GOLD_NRANDOM), *want = NULL;
    FILE *f = fopen(path, "rb");
    long sz;
    const char *g, *w;
    size_t lineno = 1;

    (void)state;
    assert_non_null(got);
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    sz = ftell(f);
    assert_true(sz > 0);
    rewind(f);
    want = malloc((size_t)sz + 1);
    assert_non_null(want);
    assert_int_equal(fread(want, 1, (size_t)sz, f), (size_t)sz);
    want[sz] = '\0';
    fclose(f);
    /* Report the first differing line rather than a bare mismatch. */
    for (g = got, w = want; *g != '\0' && *g == *w; g++, w++)
        if (*g == '\n')
            lineno++;
    if (*g != '\0' || *w != '\0') {
        const char *ge = strchr(g, '\n'), *we = strchr(w, '\n');
        while (g > got && g[-1] != '\n')
            g--;
        while (w > want && w[-1] != '\n')
            w--;
        printf("golden line %zu differs\n want: %.*s\n got:  %.*s\n", lineno,
               (int)(we != NULL ? we - w : (long)strlen(w)), w,
               (int)(ge != NULL ? ge - g : (long)strlen(g)), g);
        free(got);
        free(want);
        free(path);
        fail();
    }
    free(got);
    free(want);
    free(path);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_default_pack_output_unchanged),
    };

    if (argc >= 2 && strcmp(argv[1], "--dump") == 0) {
        size_t n = GOLD_NRANDOM;
        char *t;
        if (argc >= 3) {
            char *end;
            unsigned long v = strtoul(argv[2], &end, 10);
            if (*end != '\0')
                return 2;
            n = (size_t)v;
        }
        t = golden_text(n);
        fputs(t != NULL ? t : "", stdout);
        free(t);
        return 0;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
