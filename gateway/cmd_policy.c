/*
 * cmd_policy: `transgate policy test`.  The only place in the product that
 * prints text content (masked text): an operator runs it on their own
 * input, at their own terminal.
 */
#include "cmd_policy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "pol.h"

#ifndef TG_RULES_DIR
#define TG_RULES_DIR "/usr/local/share/transgate/rules"
#endif

#define CMD_POLICY_MAX_PACKS 16

static void cmd_policy_usage(FILE *f)
{
    fputs("usage: transgate policy test [-r RULES]... [--json] [--style xml|token]\n"
          "                             [--default-level N] [--clearance N]\n"
          "                             [--upstream-clearance N] [FILE|-]\n"
          "\n"
          "Scan FILE (or standard input) with the rule packs and print each\n"
          "detection (type, rule, position, action), the masked text, the\n"
          "classification and the decision.\n"
          "\n"
          "  -r, --rules RULES         rule pack; repeat to layer packs (later ones\n"
          "                            override earlier ones by id).  Default:\n"
          "                            " TG_RULES_DIR "/default.json, or\n"
          "                            policy/rules/default.json under the current\n"
          "                            directory when that is missing\n"
          "      --json                machine-readable output\n"
          "      --style xml|token     placeholder form (DeepL xml, Apertium token);\n"
          "                            default token\n"
          "      --default-level N     client's level for unlabelled text (default 2)\n"
          "      --clearance N         client's clearance (default 2)\n"
          "      --upstream-clearance N  upstream's clearance (default 2; 1 for a\n"
          "                            service under standard terms)\n"
          "  -h, --help                this text\n"
          "\n"
          "Exit status: 0 allowed, 3 refused, 1 error, 2 usage.\n", f);
}

static int cmd_policy_level(const char *s, int *out)
{
    if (s == NULL || s[0] < '1' || s[0] > '3' || s[1] != '\0')
        return -1;
    *out = s[0] - '0';
    return 0;
}

/* Read all of f, capped at POL_MAX_FIELD.  Returns 0 or -1. */
static int cmd_policy_read(FILE *f, char **out, size_t *len)
{
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap + 1);

    if (buf == NULL)
        return -1;
    for (;;) {
        size_t got;
        if (n == cap) {
            char *nb;
            if (cap >= POL_MAX_FIELD)
                goto fail;
            cap *= 2;
            nb = realloc(buf, cap + 1);
            if (nb == NULL)
                goto fail;
            buf = nb;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f))
                goto fail;
            break;
        }
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
fail:
    free(buf);
    return -1;
}

/* 1-based line and column (in code points) of byte offset off. */
static void cmd_policy_linecol(const char *t, size_t off, int *line, int *col)
{
    size_t i;

    *line = 1;
    *col = 1;
    for (i = 0; i < off; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c == '\n') {
            (*line)++;
            *col = 1;
        } else if ((c & 0xc0) != 0x80) {
            (*col)++;
        }
    }
}

int cmd_policy(int argc, char **argv)
{
    const char *packs[CMD_POLICY_MAX_PACKS];
    size_t npacks = 0, len = 0, mlen = 0, nd = 0, nm = 0, i;
    const char *input = NULL, *style_name = "token";
    int json = 0, def_level = 2, clearance = 2, up_clearance = 2, rc = 1, a;
    pol_ph_style style = POL_PH_TOKEN;
    pol_engine *eng = NULL;
    pol_session *s = NULL;
    char *text = NULL, *masked = NULL;
    const pol_detection *d;
    const pol_marking_hit *mk;
    const char *level_rule = NULL;
    int level;
    pol_decision dec;
    pol_err pe;
    char def_path[512];

    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        cmd_policy_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "test") != 0) {
        fprintf(stderr, "transgate policy: unknown command \"%s\"\n", argv[1]);
        cmd_policy_usage(stderr);
        return 2;
    }
    for (a = 2; a < argc; a++) {
        const char *o = argv[a];
        if (strcmp(o, "-h") == 0 || strcmp(o, "--help") == 0) {
            cmd_policy_usage(stdout);
            return 0;
        } else if (strcmp(o, "--json") == 0) {
            json = 1;
        } else if ((strcmp(o, "-r") == 0 || strcmp(o, "--rules") == 0) && a + 1 < argc) {
            if (npacks == CMD_POLICY_MAX_PACKS) {
                fprintf(stderr, "transgate policy: at most %d rule packs\n",
                        CMD_POLICY_MAX_PACKS);
                return 2;
            }
            packs[npacks++] = argv[++a];
        } else if (strcmp(o, "--style") == 0 && a + 1 < argc) {
            style_name = argv[++a];
            if (strcmp(style_name, "xml") == 0)
                style = POL_PH_XML;
            else if (strcmp(style_name, "token") == 0)
                style = POL_PH_TOKEN;
            else {
                fprintf(stderr, "transgate policy: --style must be xml or token\n");
                return 2;
            }
        } else if (strcmp(o, "--default-level") == 0 && a + 1 < argc) {
            if (cmd_policy_level(argv[++a], &def_level) != 0) {
                fprintf(stderr, "transgate policy: levels are 1, 2 or 3\n");
                return 2;
            }
        } else if (strcmp(o, "--clearance") == 0 && a + 1 < argc) {
            if (cmd_policy_level(argv[++a], &clearance) != 0) {
                fprintf(stderr, "transgate policy: levels are 1, 2 or 3\n");
                return 2;
            }
        } else if (strcmp(o, "--upstream-clearance") == 0 && a + 1 < argc) {
            if (cmd_policy_level(argv[++a], &up_clearance) != 0) {
                fprintf(stderr, "transgate policy: levels are 1, 2 or 3\n");
                return 2;
            }
        } else if (o[0] == '-' && o[1] != '\0') {
            fprintf(stderr, "transgate policy: unknown or incomplete option \"%s\"\n", o);
            cmd_policy_usage(stderr);
            return 2;
        } else if (input == NULL) {
            input = o;
        } else {
            fprintf(stderr, "transgate policy: only one input file\n");
            return 2;
        }
    }
    if (npacks == 0) {
        int n = snprintf(def_path, sizeof def_path, "%s/default.json", TG_RULES_DIR);
        if (n > 0 && (size_t)n < sizeof def_path && access(def_path, R_OK) == 0)
            packs[npacks++] = def_path;
        else
            packs[npacks++] = "policy/rules/default.json";
    }

    eng = pol_engine_load(packs, npacks, stderr);
    if (eng == NULL) {
        fprintf(stderr, "transgate policy: rule packs refused\n");
        goto fail;
    }
    if (input == NULL || strcmp(input, "-") == 0) {
        if (cmd_policy_read(stdin, &text, &len) != 0) {
            fprintf(stderr, "transgate policy: cannot read standard input (or larger than %zu bytes)\n",
                    (size_t)POL_MAX_FIELD);
            goto fail;
        }
    } else {
        FILE *f = fopen(input, "rb");
        int r;
        if (f == NULL) {
            fprintf(stderr, "transgate policy: %s: %s\n", input, strerror(errno));
            goto fail;
        }
        r = cmd_policy_read(f, &text, &len);
        fclose(f);
        if (r != 0) {
            fprintf(stderr, "transgate policy: %s: read error (or larger than %zu bytes)\n",
                    input, (size_t)POL_MAX_FIELD);
            goto fail;
        }
    }
    s = pol_session_new(eng, style);
    if (s == NULL) {
        fprintf(stderr, "transgate policy: out of memory\n");
        goto fail;
    }
    pe = pol_session_process(s, text, len, &masked, &mlen);
    if (pe != POL_OK) {
        fprintf(stderr, "transgate policy: %s (error %d)\n", pol_strerror(pe), (int)pe);
        goto fail;
    }
    d = pol_session_detections(s, &nd);
    mk = pol_session_markings(s, &nm);
    level = pol_session_level(s, &level_rule);
    if (pol_decide(s, def_level, clearance, up_clearance, &dec) != POL_OK) {
        fprintf(stderr, "transgate policy: bad levels\n");
        goto fail;
    }

    if (json) {
        json_t *root = json_object(), *arr = json_array(), *marr = json_array();
        json_t *counts = json_object(), *jd = json_object();
        char *dump;
        for (i = 0; i < nd; i++) {
            int ln, cl;
            cmd_policy_linecol(text, d[i].start, &ln, &cl);
            json_array_append_new(arr, json_pack("{s:s,s:s,s:I,s:I,s:i,s:i,s:s,s:I}",
                "type", d[i].type, "rule", d[i].rule_id,
                "start", (json_int_t)d[i].start, "end", (json_int_t)d[i].end,
                "line", ln, "column", cl,
                "action", d[i].action == POL_ACT_REFUSE ? "refuse" : "mask",
                "placeholder", (json_int_t)d[i].placeholder));
        }
        for (i = 0; i < nm; i++)
            json_array_append_new(marr, json_pack("{s:s,s:i,s:I,s:I}", "rule", mk[i].rule_id,
                "level", mk[i].level, "start", (json_int_t)mk[i].start,
                "end", (json_int_t)mk[i].end));
        for (i = 0; i < pol_engine_ntypes(eng); i++)
            if (pol_session_count(s, i) > 0)
                json_object_set_new(counts, pol_engine_type_name(eng, i),
                                    json_integer(pol_session_count(s, i)));
        json_object_set_new(jd, "refuse", json_boolean(dec.refuse));
        json_object_set_new(jd, "level", json_integer(dec.level));
        json_object_set_new(jd, "rule", json_string(dec.rule_id));
        json_object_set_new(root, "rules_digest", json_string(pol_engine_digest(eng)));
        json_object_set_new(root, "style", json_string(style_name));
        json_object_set_new(root, "detections", arr);
        json_object_set_new(root, "counts", counts);
        json_object_set_new(root, "markings", marr);
        json_object_set_new(root, "marked_level", level > 0 ? json_integer(level) : json_null());
        json_object_set_new(root, "masked", json_stringn(masked, mlen));
        json_object_set_new(root, "decision", jd);
        dump = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
        json_decref(root);
        if (dump == NULL) {
            fprintf(stderr, "transgate policy: out of memory\n");
            goto fail;
        }
        puts(dump);
        {
            /* Jansson's allocator (replaced by the gateway) frees it. */
            json_malloc_t jm;
            json_free_t jf;
            json_get_alloc_funcs(&jm, &jf);
            jf(dump);
        }
    } else {
        printf("rules: %zu detectors, %zu markings, %zu allow rules (sha256 %s)\n",
               pol_engine_ndetectors(eng), pol_engine_nmarkings(eng),
               pol_engine_nallow(eng), pol_engine_digest(eng));
        printf("detections: %zu\n", nd);
        for (i = 0; i < nd; i++) {
            int ln, cl;
            cmd_policy_linecol(text, d[i].start, &ln, &cl);
            printf("  %-16s %-20s %d:%d (bytes %zu-%zu) %-6s #%u\n", d[i].type, d[i].rule_id,
                   ln, cl, d[i].start, d[i].end,
                   d[i].action == POL_ACT_REFUSE ? "refuse" : "mask", d[i].placeholder);
        }
        printf("markings: %zu\n", nm);
        for (i = 0; i < nm; i++) {
            int ln, cl;
            cmd_policy_linecol(text, mk[i].start, &ln, &cl);
            printf("  level %d %-20s %d:%d (bytes %zu-%zu)\n", mk[i].level, mk[i].rule_id,
                   ln, cl, mk[i].start, mk[i].end);
        }
        printf("masked (%s placeholders):\n", style_name);
        fwrite(masked, 1, mlen, stdout);
        if (mlen == 0 || masked[mlen - 1] != '\n')
            putchar('\n');
        if (level > 0)
            printf("classification: 機密性%d (marking %s)\n", level, level_rule);
        else
            printf("classification: unlabelled (client default %d)\n", def_level);
        printf("decision: %s (level %d, limit min(client %d, upstream %d) = %d, rule %s)\n",
               dec.refuse ? "REFUSE" : "allow", dec.level, clearance, up_clearance,
               clearance < up_clearance ? clearance : up_clearance, dec.rule_id);
    }
    rc = dec.refuse ? 3 : 0;
fail:
    if (text != NULL) {
        explicit_bzero(text, len);
        free(text);
    }
    free(masked);
    pol_session_free(s);
    pol_engine_free(eng);
    return rc;
}
