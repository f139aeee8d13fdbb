/*
 * auth: key format, stored form, hashes files, lookup and appending.
 * Hashes files are secret files: they are created at run time with mode
 * 0600 in a private temporary directory.
 */
#include <fcntl.h>
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

#include "auth.h"

static char g_dir[] = "/tmp/tg-auth-XXXXXX";

static char *path_of(const char *name)
{
    size_t len = strlen(g_dir) + strlen(name) + 2;
    char *p = malloc(len);

    assert_non_null(p);
    snprintf(p, len, "%s/%s", g_dir, name);
    return p;
}

static char *make(const char *name, const char *text, mode_t mode)
{
    char *p = path_of(name);
    int fd;

    unlink(p);
    fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(close(fd), 0);
    assert_int_equal(chmod(p, mode), 0);
    return p;
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = calloc(1, 4096);
    size_t n;

    assert_non_null(f);
    assert_non_null(buf);
    n = fread(buf, 1, 4095, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(g_dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    char cmd[128];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* A small config: the client fields auth_load reads. */
typedef struct fixture {
    tg_client_conf clients[3];
    tg_config cfg;
} fixture;

static void fixture_init(fixture *f, char *a_path, char *b_path, char *c_path)
{
    static char na[] = "terminal-a", nb[] = "terminal-b", nc[] = "terminal-c";
    static char up[] = "deepl";

    memset(f, 0, sizeof(*f));
    f->clients[0].name = na;
    f->clients[0].api_key_hashes = a_path;
    f->clients[0].upstream = up;
    f->clients[1].name = nb;
    f->clients[1].api_key_hashes = b_path;
    f->clients[1].upstream = up;
    f->clients[2].name = nc;
    f->clients[2].api_key_hashes = c_path;
    f->clients[2].upstream = up;
    f->clients[2].disabled = true;
    f->cfg.clients = f->clients;
    f->cfg.n_clients = 3;
}

static auth_table *load(const tg_config *cfg, char **errs_out)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *errs = open_memstream(&buf, &len);
    auth_table *t;

    assert_non_null(errs);
    t = auth_load(cfg, errs);
    assert_int_equal(fclose(errs), 0);
    *errs_out = buf;
    return t;
}

static void new_key_has_prefix_and_43_base64url_chars(void **state)
{
    char key[48], hash[72], again[72], other[48], h2[72];
    size_t i;

    (void)state;
    assert_int_equal(auth_key_new(key, hash), 0);
    assert_int_equal(strlen(key), 46);
    assert_memory_equal(key, "tg_", 3);
    for (i = 3; i < 46; i++)
        assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
                               "qrstuvwxyz0123456789-_", key[i]));
    /* 32 bytes leave 4 spare bits in the last character: always zero. */
    assert_non_null(strchr("AEIMQUYcgkosw048", key[45]));
    assert_int_equal(strlen(hash), 71);
    auth_key_hash(key, strlen(key), again);
    assert_string_equal(hash, again);
    assert_int_equal(auth_key_new(other, h2), 0);
    assert_string_not_equal(key, other);
    assert_string_not_equal(hash, h2);
}

static void stored_form_is_sha256_of_the_full_key_string(void **state)
{
    char hash[72];

    (void)state;
    auth_key_hash("tg_test", 7, hash);
    assert_string_equal(hash, "sha256:c1dc8d287249431ce1a2dd041861bd5ea00208"
                              "850e9174f85d9327c49cfdea92");
}

static void lookup_finds_client_and_reports_disabled(void **state)
{
    char ka[48], ha[72], ka2[48], ha2[72], kb[48], hb[72], kc[48], hc[72];
    char text_a[512], text_b[256], text_c[256];
    char *pa, *pb, *pc, *errs = NULL;
    fixture f;
    auth_table *t;
    int dis = 7;

    (void)state;
    assert_int_equal(auth_key_new(ka, ha), 0);
    assert_int_equal(auth_key_new(ka2, ha2), 0);
    assert_int_equal(auth_key_new(kb, hb), 0);
    assert_int_equal(auth_key_new(kc, hc), 0);
    snprintf(text_a, sizeof(text_a),
             "# terminal A, issued 2024-04-01\n\n%s\r\n   \n  %s  \n", ha, ha2);
    snprintf(text_b, sizeof(text_b), "%s", hb);   /* no final newline */
    snprintf(text_c, sizeof(text_c), "%s\n", hc);
    pa = make("a.keys", text_a, 0600);
    pb = make("b.keys", text_b, 0600);
    pc = make("c.keys", text_c, 0600);
    fixture_init(&f, pa, pb, pc);
    t = load(&f.cfg, &errs);
    if (t == NULL)
        fail_msg("%s", errs);
    assert_string_equal(errs, "");

    assert_int_equal(auth_lookup(t, ka, strlen(ka), &dis), 0);
    assert_int_equal(dis, 0);
    assert_int_equal(auth_lookup(t, ka2, strlen(ka2), &dis), 0);
    assert_int_equal(auth_lookup(t, kb, strlen(kb), &dis), 1);
    dis = 7;
    assert_int_equal(auth_lookup(t, kc, strlen(kc), &dis), -1);
    assert_int_equal(dis, 1);
    assert_int_equal(auth_lookup(t, "tg_unknown", 10, &dis), -1);
    assert_int_equal(dis, 0);
    /* A prefix of a valid key is a different key. */
    assert_int_equal(auth_lookup(t, ka, strlen(ka) - 1, &dis), -1);
    assert_int_equal(auth_lookup(t, "", 0, &dis), -1);
    assert_int_equal(auth_lookup(t, ka, strlen(ka), NULL), 0);
    assert_int_equal(auth_lookup(NULL, ka, strlen(ka), &dis), -1);

    auth_free(t);
    auth_free(NULL);
    free(errs);
    free(pa);
    free(pb);
    free(pc);
}

static void malformed_lines_name_file_and_line_not_content(void **state)
{
    char ka[48], ha[72], expect[1024];
    char text[1024];
    char *pa, *pb, *pc, *errs = NULL;
    fixture f;

    (void)state;
    assert_int_equal(auth_key_new(ka, ha), 0);
    /* line 2: a raw key pasted by mistake; line 4: upper-case hex;
     * line 5: wrong algorithm; line 6: truncated. */
    snprintf(text, sizeof(text),
             "%s\n%s\n# ok\n"
             "sha256:C1DC8D287249431CE1A2DD041861BD5EA00208850E9174F85D9327C49CFDEA92\n"
             "md5:0123456789abcdef0123456789abcdef\n"
             "sha256:c1dc\n", ha, ka);
    pa = make("bad.keys", text, 0600);
    pb = make("b-empty.keys", "", 0600);
    pc = make("c-empty.keys", "# none yet\n", 0600);
    fixture_init(&f, pa, pb, pc);
    assert_null(load(&f.cfg, &errs));
    snprintf(expect, sizeof(expect),
             "%s:2: malformed line for client \"terminal-a\" (expected sha256: "
             "and 64 lowercase hex digits)\n"
             "%s:4: malformed line for client \"terminal-a\" (expected sha256: "
             "and 64 lowercase hex digits)\n"
             "%s:5: malformed line for client \"terminal-a\" (expected sha256: "
             "and 64 lowercase hex digits)\n"
             "%s:6: malformed line for client \"terminal-a\" (expected sha256: "
             "and 64 lowercase hex digits)\n", pa, pa, pa, pa);
    assert_string_equal(errs, expect);
    assert_null(strstr(errs, ka));
    free(errs);
    free(pa);
    free(pb);
    free(pc);
}

static void loose_permissions_and_missing_files_are_all_reported(void **state)
{
    char expect[1024];
    char *pa, *pb, *pc, *errs = NULL;
    fixture f;

    (void)state;
    pa = make("loose.keys", "", 0640);
    pb = path_of("missing.keys");
    pc = make("fine.keys", "", 0600);
    fixture_init(&f, pa, pb, pc);
    assert_null(load(&f.cfg, &errs));
    snprintf(expect, sizeof(expect),
             "%s: readable by group or others (mode 0640); chmod 600 "
             "(client \"terminal-a\")\n"
             "%s: No such file or directory (client \"terminal-b\")\n", pa, pb);
    assert_string_equal(errs, expect);
    free(errs);
    free(pa);
    free(pb);
    free(pc);
}

static void same_key_for_two_clients_is_refused(void **state)
{
    char ka[48], ha[72], kb[48], hb[72], ta[256], tb[256], expect[1024];
    char *pa, *pb, *pc, *errs = NULL;
    fixture f;

    (void)state;
    assert_int_equal(auth_key_new(ka, ha), 0);
    assert_int_equal(auth_key_new(kb, hb), 0);
    snprintf(ta, sizeof(ta), "%s\n%s\n", ha, ha);   /* same client: fine */
    snprintf(tb, sizeof(tb), "%s\n%s\n", hb, ha);
    pa = make("dup-a.keys", ta, 0600);
    pb = make("dup-b.keys", tb, 0600);
    pc = make("dup-c.keys", "", 0600);
    fixture_init(&f, pa, pb, pc);
    assert_null(load(&f.cfg, &errs));
    snprintf(expect, sizeof(expect),
             "%s:2: key hash is also listed for client \"terminal-a\" (%s:1)\n",
             pb, pa);
    /* The repeat within terminal-a is not an error; the cross-client one is
     * reported once, against the first listing. */
    assert_string_equal(errs, expect);
    free(errs);
    free(pa);
    free(pb);
    free(pc);
}

static void append_creates_0600_and_keeps_one_hash_per_line(void **state)
{
    char k1[48], h1[72], k2[48], h2[72], err[256], expect[256];
    char *p = path_of("new.keys");
    char *text;
    struct stat st;

    (void)state;
    assert_int_equal(auth_key_new(k1, h1), 0);
    assert_int_equal(auth_key_new(k2, h2), 0);
    unlink(p);
    assert_int_equal(auth_append_hash(p, h1, err, sizeof(err)), 0);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(auth_append_hash(p, h2, err, sizeof(err)), 0);
    text = read_all(p);
    snprintf(expect, sizeof(expect), "%s\n%s\n", h1, h2);
    assert_string_equal(text, expect);
    free(text);
    free(p);

    /* An existing file without a final newline gets one first. */
    p = make("nonl.keys", "# list", 0600);
    assert_int_equal(auth_append_hash(p, h1, err, sizeof(err)), 0);
    text = read_all(p);
    snprintf(expect, sizeof(expect), "# list\n%s\n", h1);
    assert_string_equal(text, expect);
    free(text);
    free(p);
}

static void append_refuses_bad_hash_loose_file_and_symlink(void **state)
{
    char k[48], h[72], err[256], expect[512], link[256];
    char *p;

    (void)state;
    assert_int_equal(auth_key_new(k, h), 0);
    p = make("app.keys", "", 0600);
    assert_int_equal(auth_append_hash(p, k, err, sizeof(err)), -1);
    snprintf(expect, sizeof(expect), "%s: refusing to append a malformed hash "
             "(expected sha256: and 64 lowercase hex digits)", p);
    assert_string_equal(err, expect);
    assert_null(strstr(err, k));
    free(p);

    p = make("app-loose.keys", "", 0644);
    assert_int_equal(auth_append_hash(p, h, err, sizeof(err)), -1);
    snprintf(expect, sizeof(expect), "%s: readable by group or others "
             "(mode 0644); chmod 600", p);
    assert_string_equal(err, expect);

    snprintf(link, sizeof(link), "%s/app-link.keys", g_dir);
    unlink(link);
    assert_int_equal(symlink(p, link), 0);
    assert_int_equal(auth_append_hash(link, h, err, sizeof(err)), -1);
    snprintf(expect, sizeof(expect), "%s: is a symbolic link (refused for "
             "secret files)", link);
    assert_string_equal(err, expect);
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(new_key_has_prefix_and_43_base64url_chars),
        cmocka_unit_test(stored_form_is_sha256_of_the_full_key_string),
        cmocka_unit_test(lookup_finds_client_and_reports_disabled),
        cmocka_unit_test(malformed_lines_name_file_and_line_not_content),
        cmocka_unit_test(loose_permissions_and_missing_files_are_all_reported),
        cmocka_unit_test(same_key_for_two_clients_is_refused),
        cmocka_unit_test(append_creates_0600_and_keeps_one_hash_per_line),
        cmocka_unit_test(append_refuses_bad_hash_loose_file_and_symlink),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
