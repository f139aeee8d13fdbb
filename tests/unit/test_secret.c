/*
 * secret: permission checks and reading.  Files are made at run time in a
 * private temporary directory, because git keeps no file modes.
 */
#include <errno.h>
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

#include "secret.h"
#include "tg_buf.h"

static char g_dir[] = "/tmp/tg-secret-XXXXXX";

/* Create dir/name holding n bytes of text with the given mode; returns the
 * path (caller frees). */
static char *make(const char *name, const char *text, size_t n, mode_t mode)
{
    size_t len = strlen(g_dir) + strlen(name) + 2;
    char *p = malloc(len);
    int fd;

    assert_non_null(p);
    snprintf(p, len, "%s/%s", g_dir, name);
    unlink(p);
    fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    assert_int_equal(close(fd), 0);
    assert_int_equal(chmod(p, mode), 0);
    return p;
}

static char *makes(const char *name, const char *text, mode_t mode)
{
    return make(name, text, strlen(text), mode);
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

static void mode_0600_is_accepted(void **state)
{
    char err[256] = "";
    char *p = makes("ok.key", "k\n", 0600);

    (void)state;
    assert_int_equal(secret_check_file(p, err, sizeof(err)), 0);
    free(p);
    p = makes("ro.key", "k\n", 0400);
    assert_int_equal(secret_check_file(p, err, sizeof(err)), 0);
    free(p);
}

static void group_or_other_bits_are_refused_with_mode_in_message(void **state)
{
    static const struct { mode_t mode; const char *reason; } cases[] = {
        { 0644, "readable by group or others (mode 0644); chmod 600" },
        { 0640, "readable by group or others (mode 0640); chmod 600" },
        { 0604, "readable by group or others (mode 0604); chmod 600" },
        { 0620, "writable by group or others (mode 0620); chmod 600" },
        { 0602, "writable by group or others (mode 0602); chmod 600" },
        { 0610, "executable by group or others (mode 0610); chmod 600" },
        { 0601, "executable by group or others (mode 0601); chmod 600" },
    };
    char err[256], expect[512];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *p = makes("loose.key", "SECRETVALUE\n", cases[i].mode);
        err[0] = '\0';
        assert_int_equal(secret_check_file(p, err, sizeof(err)), -1);
        snprintf(expect, sizeof(expect), "%s: %s", p, cases[i].reason);
        assert_string_equal(err, expect);
        assert_null(secret_read(p, err, sizeof(err)));
        assert_string_equal(err, expect);
        assert_null(strstr(err, "SECRETVALUE"));
        free(p);
    }
}

static void missing_file_names_path_and_errno(void **state)
{
    char err[256], path[256], expect[512];

    (void)state;
    snprintf(path, sizeof(path), "%s/absent.key", g_dir);
    assert_int_equal(secret_check_file(path, err, sizeof(err)), -1);
    snprintf(expect, sizeof(expect), "%s: No such file or directory", path);
    assert_string_equal(err, expect);
}

static void symlink_is_refused(void **state)
{
    char err[256], link[256], expect[512];
    char *target = makes("target.key", "k\n", 0600);

    (void)state;
    snprintf(link, sizeof(link), "%s/link.key", g_dir);
    unlink(link);
    assert_int_equal(symlink(target, link), 0);
    assert_int_equal(secret_check_file(link, err, sizeof(err)), -1);
    snprintf(expect, sizeof(expect),
             "%s: is a symbolic link (refused for secret files)", link);
    assert_string_equal(err, expect);
    assert_null(secret_read(link, err, sizeof(err)));
    free(target);
}

static void directory_and_fifo_are_not_regular(void **state)
{
    char err[256], p[256], expect[512];

    (void)state;
    snprintf(p, sizeof(p), "%s/dir", g_dir);
    assert_int_equal(mkdir(p, 0700), 0);
    assert_int_equal(secret_check_file(p, err, sizeof(err)), -1);
    snprintf(expect, sizeof(expect), "%s: not a regular file", p);
    assert_string_equal(err, expect);

    /* A FIFO must be refused without blocking on open. */
    snprintf(p, sizeof(p), "%s/fifo", g_dir);
    assert_int_equal(mkfifo(p, 0600), 0);
    assert_null(secret_read(p, err, sizeof(err)));
    snprintf(expect, sizeof(expect), "%s: not a regular file", p);
    assert_string_equal(err, expect);
}

static void read_strips_exactly_one_trailing_newline(void **state)
{
    static const struct { const char *in; const char *out; } cases[] = {
        { "abc\n", "abc" },
        { "abc\r\n", "abc" },
        { "abc", "abc" },
        { "abc\n\n", "abc\n" },
        { "a\nb\n", "a\nb" },
        { "\n", "" },
        { "", "" },
        { "abc\r", "abc\r" },
    };
    char err[256];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *p = makes("nl.key", cases[i].in, 0600);
        char *s = secret_read(p, err, sizeof(err));
        assert_non_null(s);
        assert_string_equal(s, cases[i].out);
        tg_free_secret(s);
        free(p);
    }
}

static void read_cap_is_64_kib(void **state)
{
    size_t cap = 64 * 1024;
    char *big = malloc(cap + 2);
    char err[256], expect[512];
    char *p, *s;

    (void)state;
    assert_non_null(big);
    memset(big, 'x', cap + 1);
    p = make("exact.key", big, cap, 0600);
    s = secret_read(p, err, sizeof(err));
    assert_non_null(s);
    assert_int_equal(strlen(s), cap);
    tg_free_secret(s);
    free(p);

    p = make("big.key", big, cap + 1, 0600);
    assert_null(secret_read(p, err, sizeof(err)));
    snprintf(expect, sizeof(expect), "%s: larger than 65536 bytes (or out of "
             "memory)", p);
    assert_string_equal(err, expect);
    free(p);
    free(big);
}

static void nul_byte_is_refused(void **state)
{
    char err[256], expect[512];
    char *p = make("nul.key", "ab\0cd", 5, 0600);

    (void)state;
    assert_null(secret_read(p, err, sizeof(err)));
    snprintf(expect, sizeof(expect), "%s: contains a NUL byte", p);
    assert_string_equal(err, expect);
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mode_0600_is_accepted),
        cmocka_unit_test(group_or_other_bits_are_refused_with_mode_in_message),
        cmocka_unit_test(missing_file_names_path_and_errno),
        cmocka_unit_test(symlink_is_refused),
        cmocka_unit_test(directory_and_fifo_are_not_regular),
        cmocka_unit_test(read_strips_exactly_one_trailing_newline),
        cmocka_unit_test(read_cap_is_64_kib),
        cmocka_unit_test(nul_byte_is_refused),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
