/*
 * config: data-driven cases plus a few that need the file system.
 *
 * tests/data/config/valid/<case>/config.json must load without a diagnostic,
 * and config_print's output must equal expected.txt.
 * tests/data/config/invalid/<case>/config.json must fail, and the
 * diagnostics must equal expected.txt.
 *
 * Before comparing, the absolute path of the case's config.json is replaced
 * by "@FILE@" and then the absolute case directory by "@DIR@", so expected
 * files do not depend on where the tree is checked out.  Set
 * TG_UPDATE_EXPECTED=1 to (re)write expected.txt from the actual output;
 * review the diff before committing it.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

typedef struct tcase {
    char *dir;      /* absolute case directory */
    char *file;     /* dir + "/config.json" */
    int   valid;
} tcase;

static char *xstrdup(const char *s)
{
    char *d = strdup(s);

    assert_non_null(d);
    return d;
}

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);

    assert_non_null(p);
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

static char *data_dir(void)
{
    const char *d = getenv("TG_DATA_DIR");
    char *cwd, *abs;

    if (d == NULL || d[0] == '\0') {
        fprintf(stderr, "TG_DATA_DIR is not set\n");
        exit(2);
    }
    if (d[0] == '/')
        return xstrdup(d);
    cwd = getcwd(NULL, 0);
    assert_non_null(cwd);
    abs = join(cwd, d);
    free(cwd);
    return abs;
}

/* Replace every occurrence of from by to; returns a new string. */
static char *replace_all(const char *s, const char *from, const char *to)
{
    size_t fl = strlen(from), tl = strlen(to), n = 0, cap;
    const char *p, *q;
    char *out;

    cap = strlen(s) + 1;
    for (p = s; fl > 0 && (q = strstr(p, from)) != NULL; p = q + fl)
        cap += tl;
    out = malloc(cap);
    assert_non_null(out);
    for (p = s; fl > 0 && (q = strstr(p, from)) != NULL; p = q + fl) {
        memcpy(out + n, p, (size_t)(q - p));
        n += (size_t)(q - p);
        memcpy(out + n, to, tl);
        n += tl;
    }
    memcpy(out + n, p, strlen(p) + 1);
    return out;
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (f == NULL)
        return NULL;
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* Load a config; returns the config (or NULL) and the diagnostics text. */
static tg_config *load(const char *file, char **errs_out)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *errs = open_memstream(&buf, &len);
    tg_config *cfg;

    assert_non_null(errs);
    cfg = config_load(file, errs);
    assert_int_equal(fclose(errs), 0);
    *errs_out = buf;
    return cfg;
}

static char *print_config(const tg_config *cfg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);

    assert_non_null(out);
    assert_int_equal(config_print(cfg, out), 0);
    assert_int_equal(fclose(out), 0);
    return buf;
}

static void compare_expected(const tcase *tc, const char *actual_raw)
{
    char *a1 = replace_all(actual_raw, tc->file, "@FILE@");
    char *actual = replace_all(a1, tc->dir, "@DIR@");
    char *exp_path = join(tc->dir, "expected.txt");
    const char *update = getenv("TG_UPDATE_EXPECTED");
    char *expected;

    if (update != NULL && strcmp(update, "1") == 0)
        write_text(exp_path, actual);
    expected = read_text(exp_path);
    if (expected == NULL)
        fail_msg("%s: missing (actual output follows)\n%s", exp_path, actual);
    if (strcmp(expected, actual) != 0) {
        print_error("--- expected (%s)\n%s--- actual\n%s---\n", exp_path,
                    expected, actual);
        fail_msg("output differs from expected.txt");
    }
    free(expected);
    free(exp_path);
    free(actual);
    free(a1);
}

static void run_case(void **state)
{
    const tcase *tc = *state;
    char *errs = NULL;
    tg_config *cfg = load(tc->file, &errs);

    if (tc->valid) {
        if (cfg == NULL || errs[0] != '\0')
            fail_msg("expected a valid config, got:\n%s", errs);
        char *out = print_config(cfg);
        compare_expected(tc, out);
        free(out);
    } else {
        if (cfg != NULL)
            fail_msg("expected config_load to fail");
        assert_true(errs[0] != '\0');
        compare_expected(tc, errs);
    }
    config_free(cfg);
    free(errs);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Collect case directory names under dir, sorted. */
static char **list_cases(const char *dir, size_t *n)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char **v = NULL;
    size_t cnt = 0;

    if (d == NULL) {
        fprintf(stderr, "%s: %s\n", dir, strerror(errno));
        exit(2);
    }
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        v = realloc(v, (cnt + 1) * sizeof(*v));
        assert_non_null(v);
        v[cnt++] = xstrdup(de->d_name);
    }
    closedir(d);
    qsort(v, cnt, sizeof(*v), name_cmp);
    *n = cnt;
    return v;
}

/* ---- fixed cases ---- */

static char *g_data;

static void lookups_by_name(void **state)
{
    char *dir = join(g_data, "config/valid/full");
    char *file = join(dir, "config.json");
    char *errs = NULL;
    tg_config *cfg = load(file, &errs);

    (void)state;
    assert_non_null(cfg);
    assert_int_equal(config_upstream_index(cfg, "deepl-pro"), 0);
    assert_int_equal(config_upstream_index(cfg, "apertium-local"), 1);
    assert_int_equal(config_upstream_index(cfg, "nope"), -1);
    assert_int_equal(config_upstream_index(cfg, NULL), -1);
    assert_ptr_equal(config_upstream(cfg, "apertium-local"), &cfg->upstreams[1]);
    assert_null(config_upstream(cfg, "DEEPL-PRO"));
    assert_null(config_upstream(NULL, "deepl-pro"));
    config_free(cfg);
    config_free(NULL);
    free(errs);
    free(file);
    free(dir);
}

static void missing_config_file_is_one_line(void **state)
{
    char *file = join(g_data, "config/no-such-file.json");
    char *errs = NULL;
    char *expect;
    size_t n = strlen(file) + 64;

    (void)state;
    assert_null(load(file, &errs));
    expect = malloc(n);
    assert_non_null(expect);
    snprintf(expect, n, "%s:1:1: $: cannot open: No such file or directory\n",
             file);
    assert_string_equal(errs, expect);
    free(expect);
    free(errs);
    free(file);
}

static void make_file(const char *dir, const char *name, const char *text)
{
    char *p = join(dir, name);

    write_text(p, text);
    free(p);
}

static const char tmp_config[] =
    "{\"listeners\": [{\"address\": \"127.0.0.1:8443\",\n"
    "  \"certificate\": \"%s\", \"private_key\": \"tls/server.key\"}],\n"
    " \"upstreams\": [{\"name\": \"u\", \"adapter\": \"apertium\",\n"
    "  \"url\": \"https://[::1]:2737/apy/\"}],\n"
    " \"clients\": [{\"name\": \"c\", \"api_key_hashes\": \"c.keys\",\n"
    "  \"upstream\": \"u\"}]}\n";

/* Relative paths follow the config file, not the working directory, and
 * absolute ones are kept as written. */
static void paths_resolve_against_config_dir(void **state)
{
    char tmpl[] = "/tmp/tg-config-XXXXXX";
    char *root = mkdtemp(tmpl);
    char *sub, *tls, *abscert, *cfgtext, *errs = NULL, *oldcwd;
    tg_config *cfg;
    size_t n;

    (void)state;
    assert_non_null(root);
    sub = join(root, "etc");
    assert_int_equal(mkdir(sub, 0700), 0);
    tls = join(sub, "tls");
    assert_int_equal(mkdir(tls, 0700), 0);
    make_file(tls, "server.key", "dummy\n");
    make_file(sub, "c.keys", "\n");
    abscert = join(root, "server.pem");
    write_text(abscert, "dummy\n");
    n = sizeof(tmp_config) + strlen(abscert);
    cfgtext = malloc(n);
    assert_non_null(cfgtext);
    snprintf(cfgtext, n, tmp_config, abscert);
    make_file(sub, "transgate.json", cfgtext);

    oldcwd = getcwd(NULL, 0);
    assert_non_null(oldcwd);
    assert_int_equal(chdir(root), 0);
    cfg = load("etc/transgate.json", &errs);
    assert_int_equal(chdir(oldcwd), 0);
    if (cfg == NULL)
        fail_msg("%s", errs);

    assert_string_equal(cfg->listeners[0].certificate, abscert);
    char *key = join(tls, "server.key");
    assert_string_equal(cfg->listeners[0].private_key, key);
    char *keys = join(sub, "c.keys");
    assert_string_equal(cfg->clients[0].api_key_hashes, keys);
    assert_string_equal(cfg->upstreams[0].scheme_host, "::1");
    assert_int_equal(cfg->upstreams[0].port, 2737);
    assert_string_equal(cfg->upstreams[0].base_path, "/apy");
    assert_string_equal(cfg->path, "etc/transgate.json");

    config_free(cfg);
    free(errs);
    unlink(key);
    unlink(keys);
    char *cf = join(sub, "transgate.json");
    unlink(cf);
    unlink(abscert);
    rmdir(tls);
    rmdir(sub);
    rmdir(root);
    free(cf);
    free(keys);
    free(key);
    free(oldcwd);
    free(cfgtext);
    free(abscert);
    free(tls);
    free(sub);
}

/* `transgate key new` loads the config before the client's hashes file
 * exists; only that file, and only in an existing directory, may be absent. */
static void missing_hashes_file_allowed_only_with_flag(void **state)
{
    char tmpl[] = "/tmp/tg-config-XXXXXX";
    char *root = mkdtemp(tmpl);
    char *clients, *cfgpath, *errs = NULL, *buf = NULL, *expect;
    size_t len = 0, n;
    FILE *f;
    tg_config *cfg;

    (void)state;
    assert_non_null(root);
    clients = join(root, "clients");
    assert_int_equal(mkdir(clients, 0700), 0);
    make_file(root, "server.pem", "dummy\n");
    make_file(root, "server.key", "dummy\n");
    make_file(root, "transgate.json",
        "{\"listeners\": [{\"address\": \"127.0.0.1:8443\",\n"
        "  \"certificate\": \"server.pem\", \"private_key\": \"server.key\"}],\n"
        " \"upstreams\": [{\"name\": \"u\", \"adapter\": \"deepl\",\n"
        "  \"url\": \"https://api.deepl.com\"}],\n"
        " \"clients\": [{\"name\": \"a\", \"api_key_hashes\": \"clients/a.keys\",\n"
        "  \"upstream\": \"u\"}, {\"name\": \"b\",\n"
        "  \"api_key_hashes\": \"nodir/b.keys\", \"upstream\": \"u\"}]}\n");
    cfgpath = join(root, "transgate.json");

    /* Without the flag both are errors. */
    assert_null(load(cfgpath, &errs));
    assert_non_null(strstr(errs, "$.clients[0].api_key_hashes: "));
    assert_non_null(strstr(errs, "$.clients[1].api_key_hashes: "));
    free(errs);

    /* With it, only the one whose directory is missing. */
    f = open_memstream(&buf, &len);
    assert_non_null(f);
    cfg = config_load_opts(cfgpath, CONFIG_ALLOW_MISSING_KEY_HASHES, f);
    fclose(f);
    assert_null(cfg);
    n = 2 * strlen(root) + 256;
    expect = malloc(n);
    assert_non_null(expect);
    snprintf(expect, n, "%s:7:21: $.clients[1].api_key_hashes: %s/nodir/b.keys: "
             "No such file or directory\n", cfgpath, root);
    assert_string_equal(buf, expect);
    free(buf);
    free(expect);

    /* Drop client b: now the config loads, naming the file to create. */
    make_file(root, "transgate.json",
        "{\"listeners\": [{\"address\": \"127.0.0.1:8443\",\n"
        "  \"certificate\": \"server.pem\", \"private_key\": \"server.key\"}],\n"
        " \"upstreams\": [{\"name\": \"u\", \"adapter\": \"deepl\",\n"
        "  \"url\": \"https://api.deepl.com\"}],\n"
        " \"clients\": [{\"name\": \"a\", \"api_key_hashes\": \"clients/a.keys\",\n"
        "  \"upstream\": \"u\"}]}\n");
    buf = NULL;
    f = open_memstream(&buf, &len);
    assert_non_null(f);
    cfg = config_load_opts(cfgpath, CONFIG_ALLOW_MISSING_KEY_HASHES, f);
    fclose(f);
    if (cfg == NULL)
        fail_msg("%s", buf);
    char *want = join(clients, "a.keys");
    assert_string_equal(cfg->clients[0].api_key_hashes, want);
    config_free(cfg);
    free(want);
    free(buf);

    unlink(cfgpath);
    char *p1 = join(root, "server.pem"), *p2 = join(root, "server.key");
    unlink(p1);
    unlink(p2);
    rmdir(clients);
    rmdir(root);
    free(p1);
    free(p2);
    free(cfgpath);
    free(clients);
}

/* The shipped example must be valid apart from files that exist only on an
 * installed appliance. */
static void packaged_example_only_lacks_files(void **state)
{
    const char *src = getenv("TG_SOURCE_DIR");
    char *file, *errs = NULL, *line, *nl;
    tg_config *cfg;

    (void)state;
    if (src == NULL)
        skip();
    file = join(src, "packaging/transgate.json");
    cfg = load(file, &errs);
    for (line = errs; *line != '\0'; line = nl + 1) {
        nl = strchr(line, '\n');
        assert_non_null(nl);
        *nl = '\0';
        if ((strstr(line, ": /etc/transgate/") == NULL &&
             strstr(line, ": /var/log/transgate/") == NULL) ||
            strstr(line, ": No such file or directory") == NULL)
            fail_msg("unexpected diagnostic for the packaged example: %s", line);
    }
    config_free(cfg);
    free(errs);

    /* valid/packaging-example is the same file with the paths made relative
     * to the case directory: keep the two in step. */
    char *shipped = read_text(file);
    assert_non_null(shipped);
    char *etc = replace_all(shipped, "/etc/transgate/", "");
    char *mirrored = replace_all(etc, "/var/log/transgate/", "");
    free(etc);
    char *cdir = join(g_data, "config/valid/packaging-example/config.json");
    char *copy = read_text(cdir);
    assert_non_null(copy);
    assert_string_equal(mirrored, copy);
    free(copy);
    free(cdir);
    free(mirrored);
    free(shipped);
    free(file);
}

int main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(lookups_by_name),
        cmocka_unit_test(missing_config_file_is_one_line),
        cmocka_unit_test(paths_resolve_against_config_dir),
        cmocka_unit_test(missing_hashes_file_allowed_only_with_flag),
        cmocka_unit_test(packaged_example_only_lacks_files),
    };
    struct CMUnitTest *tests;
    tcase *cases;
    char **names[2];
    size_t counts[2], total, i, k = 0;
    const char *kinds[2] = { "valid", "invalid" };
    char *base[2];
    int rc;

    g_data = data_dir();
    for (i = 0; i < 2; i++) {
        char *sub = join("config", kinds[i]);
        base[i] = join(g_data, sub);
        free(sub);
        names[i] = list_cases(base[i], &counts[i]);
    }
    total = counts[0] + counts[1];
    if (counts[0] == 0 || counts[1] == 0) {
        fprintf(stderr, "no data-driven config cases found under %s\n", g_data);
        return 2;
    }
    tests = calloc(total + sizeof(fixed) / sizeof(fixed[0]), sizeof(*tests));
    cases = calloc(total, sizeof(*cases));
    if (tests == NULL || cases == NULL)
        return 2;
    for (i = 0; i < 2; i++) {
        for (size_t j = 0; j < counts[i]; j++, k++) {
            char *label = join(kinds[i], names[i][j]);
            cases[k].dir = join(base[i], names[i][j]);
            cases[k].file = join(cases[k].dir, "config.json");
            cases[k].valid = i == 0;
            tests[k].name = label;
            tests[k].test_func = run_case;
            tests[k].initial_state = &cases[k];
            free(names[i][j]);
        }
        free(names[i]);
        free(base[i]);
    }
    for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        tests[k++] = fixed[i];
    rc = _cmocka_run_group_tests("config", tests, k, NULL, NULL);
    for (i = 0; i < total; i++) {
        free((char *)(uintptr_t)tests[i].name);
        free(cases[i].dir);
        free(cases[i].file);
    }
    free(tests);
    free(cases);
    free(g_data);
    return rc;
}
