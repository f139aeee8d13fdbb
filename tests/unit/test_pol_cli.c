/*
 * `transgate policy test` (gateway/cmd_policy.c): exit statuses, the text
 * report and the JSON report.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "cmd_policy.h"

static char rules[1024];

/* Run cmd_policy with args, capturing stdout into *out (caller frees). */
static int run(char **out, int argc, ...)
{
    char *argv[16], tmpl[] = "/tmp/tg-pol-cli-XXXXXX";
    va_list ap;
    int i, fd = mkstemp(tmpl), saved, rc;
    FILE *f;
    long n;

    assert_true(fd >= 0);
    assert_true(argc < 16);
    va_start(ap, argc);
    for (i = 0; i < argc; i++)
        argv[i] = va_arg(ap, char *);
    va_end(ap);
    argv[argc] = NULL;
    fflush(stdout);
    saved = dup(STDOUT_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fd, STDOUT_FILENO) >= 0);
    rc = cmd_policy(argc, argv);
    fflush(stdout);
    assert_true(dup2(saved, STDOUT_FILENO) >= 0);
    close(saved);
    f = fdopen(fd, "r");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    *out = calloc(1, (size_t)n + 1);
    assert_non_null(*out);
    assert_int_equal(fread(*out, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    unlink(tmpl);
    return rc;
}

static char *write_tmp(const char *content)
{
    static char path[64];
    int fd;

    snprintf(path, sizeof path, "/tmp/tg-pol-in-XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
    return path;
}

static void test_cli_help_and_usage_errors(void **state)
{
    char *out;

    (void)state;
    assert_int_equal(run(&out, 2, "policy", "--help"), 0);
    assert_non_null(strstr(out, "usage: transgate policy test"));
    free(out);
    assert_int_equal(run(&out, 3, "policy", "test", "--help"), 0);
    free(out);
    assert_int_equal(run(&out, 3, "policy", "test", "--bogus"), 2);
    free(out);
    assert_int_equal(run(&out, 2, "policy", "frobnicate"), 2);
    free(out);
    assert_int_equal(run(&out, 5, "policy", "test", "-r", "/nonexistent/rules.json", "/dev/null"), 1);
    free(out);
}

static void test_cli_text_report_refuses_kimitsusei3(void **state)
{
    char *in = write_tmp("【機密性３情報】\n申請者：山田太郎 電話 03-1234-5678\n");
    char *out;

    (void)state;
    assert_int_equal(run(&out, 5, "policy", "test", "-r", rules, in), 3);
    assert_non_null(strstr(out, "phone            jp-phone             2:13"));
    assert_non_null(strstr(out, "person_name      name-ja-label        2:5"));
    assert_non_null(strstr(out, "level 3 cls3-kimitsusei"));
    assert_non_null(strstr(out, "申請者：\xe2\x9f\xa6" "1\xe2\x9f\xa7 電話 \xe2\x9f\xa6" "2\xe2\x9f\xa7"));
    assert_null(strstr(out, "1234-5678"));
    assert_non_null(strstr(out, "decision: REFUSE (level 3"));
    assert_non_null(strstr(out, "rule cls3-kimitsusei)"));
    free(out);
    unlink(in);
}

static void test_cli_json_report_and_levels(void **state)
{
    char *in = write_tmp("Mr. John Smith, taro@example-corp.co.jp\n");
    char *out;
    json_t *root, *d;
    json_error_t jerr;

    (void)state;
    assert_int_equal(run(&out, 8, "policy", "test", "-r", rules, "--json", "--style", "xml", in), 0);
    root = json_loads(out, 0, &jerr);
    assert_non_null(root);
    d = json_object_get(root, "detections");
    assert_int_equal(json_array_size(d), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(d, 0), "type")), "person_name");
    assert_string_equal(json_string_value(json_object_get(json_array_get(d, 1), "rule")), "email");
    assert_string_equal(json_string_value(json_object_get(root, "masked")),
                        "Mr. <tgph id=\"1\"/>, <tgph id=\"2\"/>\n");
    assert_true(json_is_false(json_object_get(json_object_get(root, "decision"), "refuse")));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(root, "counts"), "email")), 1);
    json_decref(root);
    free(out);
    /* unlabelled text at the client's default level 2 to a standard-terms
     * upstream (clearance 1) is refused */
    assert_int_equal(run(&out, 7, "policy", "test", "-r", rules, "--upstream-clearance", "1", in), 3);
    assert_non_null(strstr(out, "rule client-default-level"));
    free(out);
    unlink(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_help_and_usage_errors),
        cmocka_unit_test(test_cli_text_report_refuses_kimitsusei3),
        cmocka_unit_test(test_cli_json_report_and_levels),
    };
    const char *src = getenv("TG_SOURCE_DIR");

    snprintf(rules, sizeof rules, "%s/policy/rules/default.json", src != NULL ? src : ".");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
