/*
 * audit: the trail's format and MAC rule (checked with an independent HMAC
 * computation), chain continuation, rotation, verify's diagnoses, a full
 * disk (a file-size limit), the queue's accounting, concurrency and syslog
 * forwarding.  Files live in a private temporary directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "audit.h"

static char g_dir[] = "/tmp/tg-audit-XXXXXX";
static char g_key[256];
static struct rlimit g_fsize;

/* 32 bytes of key: 000102...1f */
static const char key_hex[] =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

static void path_in(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", g_dir, name);
}

static void write_file(const char *path, const char *data, size_t n, mode_t mode)
{
    int fd;

    unlink(path);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, n), (ssize_t)n);
    assert_int_equal(close(fd), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    rewind(f);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    if (len != NULL)
        *len = (size_t)n;
    return buf;
}

static off_t file_size(const char *path)
{
    struct stat st;

    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

/* Split a file into lines (newlines removed); returns the count. */
static size_t read_lines(const char *path, char ***out)
{
    char *all = read_all(path, NULL), *p = all, *nl;
    size_t n = 0;
    char **lines = NULL;

    while ((nl = strchr(p, '\n')) != NULL) {
        lines = realloc(lines, (n + 1) * sizeof(*lines));
        assert_non_null(lines);
        lines[n++] = strndup(p, (size_t)(nl - p));
        p = nl + 1;
    }
    free(all);
    *out = lines;
    return n;
}

static void free_lines(char **lines, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
}

static audit_log *open_trail(const char *path, size_t queue, int refuse,
                             audit_fsync fs)
{
    audit_conf c;

    memset(&c, 0, sizeof(c));
    c.path = path;
    c.key_file = g_key;
    c.fsync = fs;
    c.queue_size = queue;
    c.refuse_on_failure = refuse;
    return audit_open(&c, stderr);
}

static json_t *exchange(int i)
{
    char rid[32];

    snprintf(rid, sizeof(rid), "req-%06d", i);
    return json_pack("{s:s,s:s,s:s,s:i,s:i}", "request_id", rid,
                     "client", "terminal-01", "decision", "forwarded",
                     "texts", 1, "chars_in", 42);
}

static void commit_n(audit_log *a, int from, int n)
{
    for (int i = from; i < from + n; i++) {
        assert_int_equal(audit_reserve(a), 0);
        audit_commit(a, exchange(i));
    }
}

/* Independent derivation with OpenSSL's one-shot HMAC. */
static void derive(const char *label, unsigned char out[32])
{
    unsigned char raw[32];
    unsigned int n = 0;

    for (int i = 0; i < 32; i++)
        raw[i] = (unsigned char)i;
    assert_non_null(HMAC(EVP_sha256(), raw, 32, (const unsigned char *)label,
                         strlen(label), out, &n));
    assert_int_equal(n, 32);
}

static void hex(const unsigned char *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", in[i]);
}

/* The documented MAC rule, recomputed from the line text alone. */
static void expected_mac(const char *prev, const char *line, char out[65])
{
    unsigned char ck[32], md[32];
    unsigned int n = 0;
    size_t len = strlen(line);
    size_t blen = len - 74 + 1;
    char *msg = malloc(65 + blen);

    assert_non_null(msg);
    derive("transgate audit chain v1", ck);
    memcpy(msg, prev, 64);
    msg[64] = '\n';
    memcpy(msg + 65, line, len - 74);
    msg[65 + blen - 1] = '}';
    assert_non_null(HMAC(EVP_sha256(), ck, 32, (unsigned char *)msg, 65 + blen,
                         md, &n));
    hex(md, 32, out);
    free(msg);
}

static int verify(const char *const *paths, size_t n, int with_key, char **out)
{
    audit_keys k;
    char err[256], *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    int rc;

    assert_non_null(f);
    if (with_key)
        assert_int_equal(audit_keys_load(g_key, &k, err, sizeof(err)), 0);
    rc = audit_verify_files(paths, n, with_key ? &k : NULL, f);
    fclose(f);
    audit_keys_wipe(&k);
    *out = buf;
    return rc;
}

static int verify1(const char *path, char **out)
{
    const char *p[1] = { path };

    return verify(p, 1, 1, out);
}

static void wait_healthy(audit_log *a, int want, int ms)
{
    for (int i = 0; i < ms / 10 && audit_healthy(a) != want; i++)
        usleep(10000);
    assert_int_equal(audit_healthy(a), want);
}

static int setup(void **state)
{
    (void)state;
    if (mkdtemp(g_dir) == NULL)
        return -1;
    snprintf(g_key, sizeof(g_key), "%s/audit.key", g_dir);
    if (getrlimit(RLIMIT_FSIZE, &g_fsize) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int each_setup(void **state)
{
    char k[80];

    (void)state;
    snprintf(k, sizeof(k), "%s\n", key_hex);
    write_file(g_key, k, strlen(k), 0600);
    return 0;
}

static int each_teardown(void **state)
{
    (void)state;
    /* A failed assertion must not leave the file-size limit behind. */
    return setrlimit(RLIMIT_FSIZE, &g_fsize);
}

/* ---- Keys ------------------------------------------------------------------ */

static void test_key_file_formats_and_subkeys(void **state)
{
    char path[512], err[512], big[300];
    unsigned char want[32];
    audit_keys k;

    (void)state;
    path_in(path, sizeof(path), "k1");
    write_file(path, key_hex, 64, 0600);
    assert_int_equal(audit_keys_load(path, &k, err, sizeof(err)), 0);
    derive("transgate audit chain v1", want);
    assert_memory_equal(k.chain, want, 32);
    derive("transgate text digest v1", want);
    assert_memory_equal(k.text, want, 32);

    /* Upper case is the same key. */
    write_file(path, "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F\r\n",
               66, 0600);
    assert_int_equal(audit_keys_load(path, &k, err, sizeof(err)), 0);
    derive("transgate audit chain v1", want);
    assert_memory_equal(k.chain, want, 32);

    write_file(path, key_hex, 62, 0600);
    assert_int_equal(audit_keys_load(path, &k, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "64 to 256 hexadecimal digits"));
    assert_non_null(strstr(err, "62 characters"));

    memcpy(big, key_hex, 64);
    big[10] = 'x';
    write_file(path, big, 64, 0600);
    assert_int_equal(audit_keys_load(path, &k, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not hexadecimal at character 11"));

    memset(big, 'a', 258);
    write_file(path, big, 256, 0600);
    assert_int_equal(audit_keys_load(path, &k, err, sizeof(err)), 0);
    write_file(path, big, 258, 0600);
    assert_int_equal(audit_keys_load(path, &k, err, sizeof(err)), -1);

    write_file(path, key_hex, 64, 0640);
    assert_int_equal(audit_keys_load(path, &k, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "readable by group or others"));
    /* Failure leaves no key material behind. */
    memset(want, 0, sizeof(want));
    assert_memory_equal(k.chain, want, 32);
}

static void test_keygen_writes_0600_hex_and_refuses_overwrite(void **state)
{
    char path[512], err[512], *text;
    audit_keys k;
    struct stat st;
    size_t len;

    (void)state;
    path_in(path, sizeof(path), "gen.key");
    unlink(path);
    assert_int_equal(audit_keygen(path, err, sizeof(err)), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    text = read_all(path, &len);
    assert_int_equal(len, 65);
    assert_int_equal(strspn(text, "0123456789abcdef"), 64);
    assert_int_equal(text[64], '\n');
    assert_int_equal(audit_keys_load(path, &k, err, sizeof(err)), 0);
    assert_int_equal(audit_keygen(path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "refusing to overwrite"));
    {
        char *again = read_all(path, NULL);

        assert_string_equal(again, text);
        free(again);
    }
    free(text);
}

/* ---- Format ---------------------------------------------------------------- */

static void test_record_fields_typed_and_mac_rule(void **state)
{
    char path[512], mac[65], prev[65];
    const char *key;
    json_t *rec, *o, *v;
    char **lines;
    size_t n, i, idx;
    struct timespec t0, t1;
    audit_log *a;
    static const char *order[] = {
        "ts", "seq", "request_id", "client", "cert_fp", "source", "endpoint",
        "source_lang", "target_lang", "texts", "chars_in", "chars_out",
        "detections", "level", "rule", "decision", "reason", "upstream",
        "vendor_addr", "vendor_status", "latency_ms", "upstream_ms",
        "text_macs", "mac",
    };

    (void)state;
    path_in(path, sizeof(path), "fields.log");
    unlink(path);
    clock_gettime(CLOCK_REALTIME, &t0);
    a = open_trail(path, 16, 1, AUDIT_FSYNC_ALWAYS);
    assert_non_null(a);
    assert_int_equal(audit_submit(a, json_pack("{s:s,s:s}", "event", "start",
                                               "version", "0.1.0")), 0);
    rec = json_pack("{s:s,s:s,s:n,s:s,s:s,s:s,s:s,s:i,s:i,s:i,s:{s:i,s:i},"
                    "s:s,s:s,s:s,s:s,s:s,s:s,s:i,s:f,s:f,s:[s]}",
                    "request_id", "r-1", "client", "terminal-01", "cert_fp",
                    "source", "192.0.2.7", "endpoint", "/v2/translate",
                    "source_lang", "JA", "target_lang", "EN-US", "texts", 1,
                    "chars_in", 12, "chars_out", 20,
                    "detections", "phone", 2, "my_number", 1,
                    "level", "機密性2", "rule", "default_level",
                    "decision", "forwarded", "reason", "ok",
                    "upstream", "deepl", "vendor_addr", "198.51.100.4",
                    "vendor_status", 200, "latency_ms", 12.5,
                    "upstream_ms", 10.25, "text_macs", "placeholder");
    assert_non_null(rec);
    /* The trail stamps these itself; whatever the caller put is dropped. */
    json_object_set_new(rec, "seq", json_integer(999));
    json_object_set_new(rec, "mac", json_string("forged"));
    assert_int_equal(audit_reserve(a), 0);
    audit_commit(a, rec);
    assert_int_equal(audit_flush(a, 5000), 0);
    audit_close(a);
    clock_gettime(CLOCK_REALTIME, &t1);

    n = read_lines(path, &lines);
    assert_int_equal(n, 2);
    memset(prev, '0', 64);
    prev[64] = '\0';
    for (i = 0; i < n; i++) {
        json_error_t e;
        struct tm tm;
        int ms;

        /* ASCII only (JSON_ENSURE_ASCII): 機密性2 is escaped. */
        for (const char *p = lines[i]; *p; p++)
            assert_true(*p >= 0x20 && *p < 0x7f);
        o = json_loads(lines[i], JSON_REJECT_DUPLICATES, &e);
        assert_non_null(o);
        v = json_object_get(o, "ts");
        assert_true(json_is_string(v));
        assert_int_equal(strlen(json_string_value(v)), 24);
        memset(&tm, 0, sizeof(tm));
        assert_non_null(strptime(json_string_value(v), "%Y-%m-%dT%H:%M:%S", &tm));
        assert_int_equal(sscanf(json_string_value(v) + 19, ".%3dZ", &ms), 1);
        assert_true(timegm(&tm) >= t0.tv_sec && timegm(&tm) <= t1.tv_sec);
        assert_true(json_is_integer(json_object_get(o, "seq")));
        assert_int_equal(json_integer_value(json_object_get(o, "seq")), (int)i + 1);
        /* The MAC, recomputed from the documented rule. */
        expected_mac(prev, lines[i], mac);
        assert_string_equal(json_string_value(json_object_get(o, "mac")), mac);
        memcpy(prev, mac, 65);
        if (i == 1) {
            idx = 0;
            json_object_foreach(o, key, v) {
                assert_true(idx < sizeof(order) / sizeof(order[0]));
                assert_string_equal(key, order[idx]);
                idx++;
            }
            assert_int_equal(idx, sizeof(order) / sizeof(order[0]));
            assert_true(json_is_null(json_object_get(o, "cert_fp")));
            assert_true(json_is_integer(json_object_get(o, "vendor_status")));
            assert_true(json_is_real(json_object_get(o, "latency_ms")));
            assert_int_equal(json_integer_value(json_object_get(
                json_object_get(o, "detections"), "phone")), 2);
            assert_string_equal(json_string_value(json_object_get(o, "level")),
                                "機密性2");
            assert_true(json_is_array(json_object_get(o, "text_macs")));
            assert_non_null(strstr(lines[i], "\"level\":\"\\u6A5F\\u5BC6\\u6027"
                                             "2\""));
            assert_int_equal(strncmp(lines[i], "{\"ts\":\"", 7), 0);
        } else {
            assert_string_equal(json_string_value(json_object_get(o, "event")),
                                "start");
        }
        json_decref(o);
    }
    free_lines(lines, n);
}

static void test_text_mac_is_hmac_of_exact_bytes(void **state)
{
    static const char doc[] = "個人番号 1234-5678-9012\n";
    char path[512], got[65], got2[65], want[65], err[256];
    unsigned char tk[32], md[32];
    unsigned int n = 0;
    audit_keys k;
    audit_log *a;

    (void)state;
    path_in(path, sizeof(path), "textmac.log");
    unlink(path);
    a = open_trail(path, 4, 1, AUDIT_FSYNC_NEVER);
    assert_non_null(a);
    derive("transgate text digest v1", tk);
    assert_non_null(HMAC(EVP_sha256(), tk, 32, (const unsigned char *)doc,
                         strlen(doc), md, &n));
    hex(md, 32, want);
    audit_text_mac(a, doc, strlen(doc), got);
    assert_string_equal(got, want);
    assert_int_equal(audit_keys_load(g_key, &k, err, sizeof(err)), 0);
    assert_int_equal(audit_keys_text_mac(&k, doc, strlen(doc), got2), 0);
    assert_string_equal(got2, want);
    /* One byte less is another digest, exactly that of the shorter text;
     * the thread's context, used again, still gives the first. */
    audit_text_mac(a, doc, strlen(doc) - 1, got);
    assert_string_not_equal(got, want);
    assert_int_equal(audit_keys_text_mac(&k, doc, strlen(doc) - 1, got2), 0);
    assert_string_equal(got, got2);
    audit_text_mac(a, doc, strlen(doc), got);
    assert_string_equal(got, want);
    /* Another trail under another key, on the same thread: its own key's
     * digest, and then the first trail's again. */
    {
        char path2[512], key2[512];
        audit_keys k2;
        audit_conf c2;
        audit_log *b;

        path_in(path2, sizeof(path2), "textmac2.log");
        path_in(key2, sizeof(key2), "textmac2.key");
        unlink(path2);
        unlink(key2);
        assert_int_equal(audit_keygen(key2, err, sizeof(err)), 0);
        memset(&c2, 0, sizeof(c2));
        c2.path = path2;
        c2.key_file = key2;
        c2.queue_size = 4;
        b = audit_open(&c2, stderr);
        assert_non_null(b);
        audit_text_mac(b, doc, strlen(doc), got);
        assert_int_equal(audit_keys_load(key2, &k2, err, sizeof(err)), 0);
        assert_int_equal(audit_keys_text_mac(&k2, doc, strlen(doc), got2), 0);
        assert_string_equal(got, got2);
        assert_string_not_equal(got, want);
        audit_keys_wipe(&k2);
        audit_text_mac(a, doc, strlen(doc), got);
        assert_string_equal(got, want);
        audit_close(b);
        unlink(key2);
        unlink(path2);
    }
    /* Different from the chain subkey's digest of the same bytes. */
    derive("transgate audit chain v1", tk);
    assert_non_null(HMAC(EVP_sha256(), tk, 32, (const unsigned char *)doc,
                         strlen(doc), md, &n));
    hex(md, 32, got2);
    assert_string_not_equal(got2, want);
    audit_keys_wipe(&k);
    audit_close(a);
}

/* ---- Chain across opens and files ---------------------------------------- */

static void test_reopening_a_file_continues_its_chain(void **state)
{
    char path[512], *out;
    audit_log *a;
    audit_stats st;

    (void)state;
    path_in(path, sizeof(path), "cont.log");
    unlink(path);
    a = open_trail(path, 8, 1, AUDIT_FSYNC_ALWAYS);
    assert_non_null(a);
    commit_n(a, 1, 3);
    audit_close(a);
    a = open_trail(path, 8, 1, AUDIT_FSYNC_ALWAYS);
    assert_non_null(a);
    audit_get_stats(a, &st);
    assert_int_equal(st.last_seq, 3);
    commit_n(a, 4, 2);
    audit_close(a);
    assert_int_equal(verify1(path, &out), AUDIT_VERIFY_INTACT);
    assert_string_equal(out, "verified: 5 records in 1 file, seq 1..5, chain intact\n");
    free(out);
}

static void test_open_refuses_a_truncated_last_line(void **state)
{
    char path[512], *buf = NULL, want[600];
    size_t len = 0;
    off_t good;
    FILE *errs;
    audit_log *a;
    audit_conf c;
    int fd;

    (void)state;
    path_in(path, sizeof(path), "trunc.log");
    unlink(path);
    a = open_trail(path, 8, 1, AUDIT_FSYNC_ALWAYS);
    commit_n(a, 1, 2);
    audit_close(a);
    good = file_size(path);
    fd = open(path, O_WRONLY | O_APPEND);
    assert_int_equal(write(fd, "{\"ts\":\"2026-", 12), 12);
    close(fd);

    errs = open_memstream(&buf, &len);
    memset(&c, 0, sizeof(c));
    c.path = path;
    c.key_file = g_key;
    assert_null(audit_open(&c, errs));
    fclose(errs);
    snprintf(want, sizeof(want), "truncate -s %lld %s", (long long)good, path);
    assert_non_null(strstr(buf, "the last record is truncated"));
    assert_non_null(strstr(buf, want));
    free(buf);
    /* The file was left as it was. */
    assert_int_equal(file_size(path), good + 12);
    /* After the documented repair the chain continues. */
    assert_int_equal(truncate(path, good), 0);
    a = open_trail(path, 8, 1, AUDIT_FSYNC_ALWAYS);
    assert_non_null(a);
    commit_n(a, 3, 1);
    audit_close(a);
    assert_int_equal(verify1(path, &buf), AUDIT_VERIFY_INTACT);
    free(buf);
}

static void test_open_refuses_a_last_line_that_is_not_a_record(void **state)
{
    char path[512], *buf = NULL;
    size_t len = 0;
    FILE *errs;
    audit_conf c;

    (void)state;
    path_in(path, sizeof(path), "junk.log");
    write_file(path, "hello\n", 6, 0600);
    errs = open_memstream(&buf, &len);
    memset(&c, 0, sizeof(c));
    c.path = path;
    c.key_file = g_key;
    assert_null(audit_open(&c, errs));
    fclose(errs);
    assert_non_null(strstr(buf, "the last line is not an audit record"));
    free(buf);
}

static void test_rotation_links_the_new_file_to_the_old(void **state)
{
    char path[512], old[512], *out;
    char **lines;
    size_t n;
    json_t *o;
    audit_log *a;

    (void)state;
    path_in(path, sizeof(path), "rot.log");
    path_in(old, sizeof(old), "rot.log.1");
    unlink(path);
    unlink(old);
    a = open_trail(path, 8, 1, AUDIT_FSYNC_ALWAYS);
    assert_non_null(a);
    assert_int_equal(audit_submit(a, json_pack("{s:s}", "event", "start")), 0);
    commit_n(a, 1, 3);
    assert_int_equal(audit_flush(a, 5000), 0);
    usleep(5000);   /* distinct milliseconds either side of the rotation */
    assert_int_equal(rename(path, old), 0);   /* what logrotate does */
    audit_reopen(a);
    commit_n(a, 4, 2);
    assert_int_equal(audit_flush(a, 5000), 0);
    audit_close(a);

    n = read_lines(old, &lines);
    assert_int_equal(n, 4);
    free_lines(lines, n);
    n = read_lines(path, &lines);
    assert_int_equal(n, 3);
    o = json_loads(lines[0], 0, NULL);
    assert_string_equal(json_string_value(json_object_get(o, "event")), "reopen");
    assert_int_equal(json_integer_value(json_object_get(o, "seq")), 5);
    assert_int_equal(json_integer_value(json_object_get(o, "prev_seq")), 4);
    json_decref(o);
    free_lines(lines, n);
    {
        char **ol;
        size_t on = read_lines(old, &ol);
        json_t *last = json_loads(ol[on - 1], 0, NULL);

        n = read_lines(path, &lines);
        o = json_loads(lines[0], 0, NULL);
        assert_string_equal(json_string_value(json_object_get(o, "prev_mac")),
                            json_string_value(json_object_get(last, "mac")));
        json_decref(o);
        json_decref(last);
        free_lines(lines, n);
        free_lines(ol, on);
    }
    {
        const char *both[2] = { old, path };
        const char *wrong[2] = { path, old };
        const char *alone[1] = { path };
        char want[1200];

        assert_int_equal(verify(both, 2, 1, &out), AUDIT_VERIFY_INTACT);
        assert_string_equal(out, "verified: 7 records in 2 files, seq 1..7, "
                                 "chain intact\n");
        free(out);
        assert_int_equal(verify(alone, 1, 1, &out), AUDIT_VERIFY_PARTIAL);
        snprintf(want, sizeof(want), "%s:1: note: chain start not verifiable "
                 "(predecessor missing): continues seq 4 of a file not given\n"
                 "partially verified: 3 records in 1 file, seq 5..7, no "
                 "problem found; not checked: the link to the predecessor\n",
                 path);
        assert_string_equal(out, want);
        free(out);
        assert_int_equal(verify(wrong, 2, 1, &out), AUDIT_VERIFY_BROKEN);
        /* Read newest first, rot.log's start is a note; rot.log.1's
         * genesis record, older than what came before, is the problem. */
        snprintf(want, sizeof(want), "%s:1: note: chain start not verifiable "
                 "(predecessor missing): continues seq 4 of a file not given\n"
                 "%s:1: a chain starts here earlier (", path, old);
        assert_int_equal(strncmp(out, want, strlen(want)), 0);
        assert_non_null(strstr(out, "files out of order (give them oldest "
                                    "first)\nBROKEN after 3 good records\n"));
        free(out);
        /* Without the key: structure and sequence only. */
        assert_int_equal(verify(both, 2, 0, &out), AUDIT_VERIFY_PARTIAL);
        assert_string_equal(out, "partially verified: 7 records in 2 files, "
                                 "seq 1..7, no problem found; not checked: "
                                 "MACs (no --key)\n");
        free(out);
    }
}

/* ---- verify's diagnoses ---------------------------------------------------- */

/* Write a 10-record trail, let edit() change its lines, verify. */
static int tampered(const char *name, void (*edit)(char **lines, size_t *n),
                    int keep_last_newline, char **out, char *path, size_t plen)
{
    char src[512];
    char **lines;
    size_t n;
    FILE *f;
    audit_log *a;

    path_in(src, sizeof(src), "pristine.log");
    if (access(src, F_OK) != 0) {
        a = open_trail(src, 16, 1, AUDIT_FSYNC_NEVER);
        assert_non_null(a);
        assert_int_equal(audit_submit(a, json_pack("{s:s}", "event", "start")), 0);
        commit_n(a, 1, 9);
        audit_close(a);
    }
    n = read_lines(src, &lines);
    assert_int_equal(n, 10);
    edit(lines, &n);
    path_in(path, plen, name);
    f = fopen(path, "w");
    assert_non_null(f);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s%s", lines[i], i + 1 < n || keep_last_newline ? "\n" : "");
    fclose(f);
    free_lines(lines, n);
    return verify1(path, out);
}

static void ed_none(char **l, size_t *n) { (void)l; (void)n; }

static void ed_edit(char **l, size_t *n)
{
    char *p = strstr(l[4], "terminal-01");

    (void)n;
    p[9] = '2';     /* terminal-02 */
}

static void ed_delete(char **l, size_t *n)
{
    free(l[4]);
    memmove(l + 4, l + 5, (*n - 5) * sizeof(*l));
    (*n)--;
}

static void ed_swap(char **l, size_t *n)
{
    char *t = l[4];

    (void)n;
    l[4] = l[5];
    l[5] = t;
}

static void ed_truncate(char **l, size_t *n)
{
    l[*n - 1][40] = '\0';
}

static void ed_garbage(char **l, size_t *n)
{
    (void)n;
    free(l[6]);
    l[6] = strdup("{\"ts\": oops");
}

static void ed_reserialise(char **l, size_t *n)
{
    /* Same JSON, other bytes: a space after a colon. */
    char *p = strstr(l[3], "\"client\":");
    size_t len = strlen(l[3]);
    char *s = malloc(len + 2);

    (void)n;
    memcpy(s, l[3], (size_t)(p - l[3]) + 9);
    s[(p - l[3]) + 9] = ' ';
    memcpy(s + (p - l[3]) + 10, p + 9, len - (size_t)(p - l[3]) - 9 + 1);
    free(l[3]);
    l[3] = s;
}

static void test_verify_diagnoses_each_kind_of_tampering(void **state)
{
    char path[512], want[1400], *out;

    (void)state;
    assert_int_equal(tampered("ok.log", ed_none, 1, &out, path, sizeof(path)),
                     AUDIT_VERIFY_INTACT);
    assert_string_equal(out, "verified: 10 records in 1 file, seq 1..10, chain intact\n");
    free(out);

    assert_int_equal(tampered("edit.log", ed_edit, 1, &out, path, sizeof(path)),
                     AUDIT_VERIFY_BROKEN);
    snprintf(want, sizeof(want), "%s:5: mac mismatch (record edited or key "
             "wrong)\nBROKEN after 4 good records\n", path);
    assert_string_equal(out, want);
    free(out);

    assert_int_equal(tampered("del.log", ed_delete, 1, &out, path, sizeof(path)),
                     AUDIT_VERIFY_BROKEN);
    snprintf(want, sizeof(want), "%s:5: sequence gap: expected 5 got 6 (record "
             "missing)\nBROKEN after 4 good records\n", path);
    assert_string_equal(out, want);
    free(out);

    assert_int_equal(tampered("swap.log", ed_swap, 1, &out, path, sizeof(path)),
                     AUDIT_VERIFY_BROKEN);
    snprintf(want, sizeof(want), "%s:5: sequence out of order: expected 5 got "
             "6; record 5 is at %s:6 (reordered)\nBROKEN after 4 good "
             "records\n", path, path);
    assert_string_equal(out, want);
    free(out);

    assert_int_equal(tampered("cut.log", ed_truncate, 0, &out, path, sizeof(path)),
                     AUDIT_VERIFY_BROKEN);
    snprintf(want, sizeof(want), "%s:10: truncated last line (no newline: the "
             "record was cut short)\nBROKEN after 9 good records\n", path);
    assert_string_equal(out, want);
    free(out);

    assert_int_equal(tampered("junk.log", ed_garbage, 1, &out, path, sizeof(path)),
                     AUDIT_VERIFY_BROKEN);
    snprintf(want, sizeof(want), "%s:7: not JSON", path);
    assert_int_equal(strncmp(out, want, strlen(want)), 0);
    free(out);

    /* verify works on bytes: re-serialising a record breaks it. */
    assert_int_equal(tampered("reser.log", ed_reserialise, 1, &out, path,
                              sizeof(path)), AUDIT_VERIFY_BROKEN);
    snprintf(want, sizeof(want), "%s:4: mac mismatch (record edited or key "
             "wrong)\nBROKEN after 3 good records\n", path);
    assert_string_equal(out, want);
    free(out);

    /* The last record of a file cut at a line boundary cannot be missed by
     * the next file: see the rotation test.  A wrong key fails at once. */
    {
        char k[80];

        snprintf(k, sizeof(k), "%s\n", "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
        write_file(g_key, k, strlen(k), 0600);
        path_in(path, sizeof(path), "ok.log");
        assert_int_equal(verify1(path, &out), AUDIT_VERIFY_BROKEN);
        snprintf(want, sizeof(want), "%s:1: mac mismatch (record edited or key "
                 "wrong)\nBROKEN after 0 good records\n", path);
        assert_string_equal(out, want);
        free(out);
    }
}

static void test_verify_rejects_long_lines_and_reports_unreadable_files(void **state)
{
    char path[512], want[600], *out, *big;
    const char *missing[1] = { "/nonexistent/audit.log" };

    (void)state;
    path_in(path, sizeof(path), "long.log");
    big = malloc(AUDIT_LINE_MAX + 10);
    memset(big, 'a', AUDIT_LINE_MAX + 9);
    big[AUDIT_LINE_MAX + 9] = '\n';
    write_file(path, big, AUDIT_LINE_MAX + 10, 0600);
    free(big);
    assert_int_equal(verify1(path, &out), AUDIT_VERIFY_BROKEN);
    snprintf(want, sizeof(want), "%s:1: line too long: not a record\n", path);
    assert_int_equal(strncmp(out, want, strlen(want)), 0);
    free(out);
    assert_int_equal(verify(missing, 1, 1, &out), AUDIT_VERIFY_ERROR);
    assert_string_equal(out, "/nonexistent/audit.log: cannot read: No such file "
                             "or directory\n");
    free(out);
}

/* ---- Queue accounting ------------------------------------------------------ */

static void test_reservations_bound_the_queue_and_lost_events_are_recorded(void **state)
{
    char path[512], *out;
    audit_log *a;
    audit_stats st;
    char **lines;
    size_t n;
    json_t *o;

    (void)state;
    path_in(path, sizeof(path), "queue.log");
    unlink(path);
    a = open_trail(path, 2, 1, AUDIT_FSYNC_NEVER);
    assert_non_null(a);
    assert_int_equal(audit_reserve(a), 0);
    assert_int_equal(audit_reserve(a), 0);
    assert_int_equal(audit_healthy(a), 0);       /* no room */
    assert_int_equal(audit_reserve(a), -1);
    assert_int_equal(audit_submit(a, json_pack("{s:s}", "event", "auth_failure")), -1);
    assert_int_equal(audit_submit(a, json_pack("{s:s}", "event", "auth_failure")), -1);
    audit_get_stats(a, &st);
    assert_int_equal(st.reserved, 2);
    assert_int_equal(st.lost, 2);
    audit_release(a);
    assert_int_equal(audit_healthy(a), 1);
    assert_int_equal(audit_reserve(a), 0);
    audit_commit(a, exchange(1));
    audit_release(a);
    assert_int_equal(audit_flush(a, 5000), 0);
    audit_close(a);

    n = read_lines(path, &lines);
    assert_int_equal(n, 2);
    o = json_loads(lines[0], 0, NULL);
    /* The writer reports the loss before the next record. */
    assert_string_equal(json_string_value(json_object_get(o, "event")), "records_lost");
    assert_int_equal(json_integer_value(json_object_get(o, "count")), 2);
    json_decref(o);
    free_lines(lines, n);
    assert_int_equal(verify1(path, &out), AUDIT_VERIFY_INTACT);
    free(out);
}

static unsigned long long written_now(audit_log *a)
{
    audit_stats st;

    audit_get_stats(a, &st);
    return st.written;
}

/* Poll (up to 10 s) until n records are in the file. */
static void wait_written(audit_log *a, unsigned long long n)
{
    for (int i = 0; i < 1000 && written_now(a) < n; i++)
        usleep(10000);
    assert_int_equal(written_now(a), n);
}

/* batch_ms: records gather for the window and are then written together;
 * a full batch, audit_flush and audit_close do not wait for the window.
 * The window here is the largest allowed (1 s), so that "not yet written"
 * and "written before the window ended" are far apart. */
static void test_batch_window_gathers_records(void **state)
{
    char path[512], *out;
    audit_conf c;
    audit_log *a;
    struct timespec t0, t1;
    long long ms;

    (void)state;
    path_in(path, sizeof(path), "batch.log");
    unlink(path);
    memset(&c, 0, sizeof(c));
    c.path = path;
    c.key_file = g_key;
    c.fsync = AUDIT_FSYNC_ALWAYS;
    c.queue_size = 64;          /* a full batch: 16 records (a quarter) */
    c.batch_ms = 1000;
    c.refuse_on_failure = 1;
    a = audit_open(&c, stderr);
    assert_non_null(a);

    /* One record waits for the window, then is written without a flush. */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    commit_n(a, 0, 1);
    usleep(200000);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    if (ms < 900)   /* a stalled machine proves nothing either way */
        assert_int_equal(written_now(a), 0);
    wait_written(a, 1);

    /* A full batch goes out at once: well before its window ends.  One
     * batch exactly: of two, the writer may take the first while the
     * second is still arriving, and what is left of the second is then
     * not a full batch and rightly waits for its window. */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    commit_n(a, 1, 16);
    wait_written(a, 17);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_true(ms < 1000);

    /* audit_flush ends the window: with 500 ms it would time out
     * otherwise. */
    commit_n(a, 17, 3);
    assert_int_equal(audit_flush(a, 500), 0);
    assert_int_equal(written_now(a), 20);

    /* Close writes what is queued without waiting for the window. */
    commit_n(a, 20, 2);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    audit_close(a);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_true(ms < 1000);
    assert_int_equal(verify1(path, &out), AUDIT_VERIFY_INTACT);
    assert_non_null(strstr(out, "verified: 22 records in 1 file"));
    free(out);
}

static void test_oversize_and_unserialisable_records_keep_their_place(void **state)
{
    char path[512], *out, *big;
    audit_log *a;
    char **lines;
    size_t n;

    (void)state;
    path_in(path, sizeof(path), "oversize.log");
    unlink(path);
    a = open_trail(path, 4, 1, AUDIT_FSYNC_NEVER);
    assert_non_null(a);
    big = malloc(AUDIT_LINE_MAX);
    memset(big, 'x', AUDIT_LINE_MAX - 1);
    big[AUDIT_LINE_MAX - 1] = '\0';
    assert_int_equal(audit_reserve(a), 0);
    audit_commit(a, json_pack("{s:s}", "huge", big));
    free(big);
    assert_int_equal(audit_reserve(a), 0);
    audit_commit(a, NULL);              /* the caller ran out of memory */
    assert_int_equal(audit_submit(a, json_integer(3)), 0);   /* not an object */
    audit_close(a);
    n = read_lines(path, &lines);
    assert_int_equal(n, 3);
    assert_non_null(strstr(lines[0], "\"seq\":1,\"event\":\"record_oversize\",\"bytes\":"));
    assert_non_null(strstr(lines[1], "\"seq\":2,\"event\":\"record_unserializable\""));
    assert_non_null(strstr(lines[2], "\"seq\":3,\"event\":\"record_unserializable\""));
    free_lines(lines, n);
    assert_int_equal(verify1(path, &out), AUDIT_VERIFY_INTACT);
    free(out);
}

/* A record built as text (audit_rec, the request path) lands in the trail
 * byte for byte as the same record built with Jansson: escapes, non-ASCII,
 * characters beyond the BMP, nesting, integers and null alike. */
static void test_text_records_have_the_bytes_of_jansson_records(void **state)
{
    static const char *const strings[] = {
        "", "plain", "quote\" back\\slash /slash", "\b\f\n\r\t",
        "\x01\x1f\x7f", "\xe6\xa9\x9f\xe5\xaf\x86\xe6\x80\xa7\xef\xbc\x92",
        "emoji \xf0\x9f\x98\x80 end", "\xc2\xa0nbsp", "\xef\xbf\xbf",
    };
    const size_t ns = sizeof(strings) / sizeof(strings[0]);
    char path[512], *out, key[32];
    audit_log *a;
    audit_rec r;
    json_t *j, *o, *arr;
    char **lines;
    size_t n;

    (void)state;
    path_in(path, sizeof(path), "textrec.log");
    unlink(path);
    a = open_trail(path, 16, 1, AUDIT_FSYNC_NEVER);
    assert_non_null(a);

    j = json_object();
    audit_rec_init(&r);
    for (size_t i = 0; i < ns; i++) {
        snprintf(key, sizeof(key), "k%zu", i);
        json_object_set_new(j, key, json_string(strings[i]));
        audit_rec_str(&r, key, strings[i]);
    }
    json_object_set_new(j, "\xe7\xa8\xae\xe9\xa1\x9e", json_integer(-9007199254740993LL));
    audit_rec_int(&r, "\xe7\xa8\xae\xe9\xa1\x9e", -9007199254740993LL);
    json_object_set_new(j, "none", json_null());
    audit_rec_str(&r, "none", NULL);
    json_object_set_new(j, "null", json_null());
    audit_rec_null(&r, "null");
    json_object_set_new(j, "yes", json_true());
    audit_rec_bool(&r, "yes", 1);
    json_object_set_new(j, "no", json_false());
    audit_rec_bool(&r, "no", 0);
    o = json_object();
    json_object_set_new(o, "phone", json_integer(2));
    json_object_set_new(o, "my_number", json_integer(1));
    json_object_set_new(j, "detections", o);
    audit_rec_open(&r, "detections", '{');
    audit_rec_int(&r, "phone", 2);
    audit_rec_int(&r, "my_number", 1);
    audit_rec_close(&r, '}');
    json_object_set_new(j, "empty", json_object());
    audit_rec_open(&r, "empty", '{');
    audit_rec_close(&r, '}');
    arr = json_array();
    for (size_t i = 0; i < ns; i++)
        json_array_append_new(arr, json_string(strings[i]));
    json_object_set_new(j, "list", arr);
    audit_rec_open(&r, "list", '[');
    for (size_t i = 0; i < ns; i++)
        audit_rec_str(&r, NULL, strings[i]);
    audit_rec_close(&r, ']');
    json_object_set_new(j, "nothing", json_array());
    audit_rec_open(&r, "nothing", '[');
    audit_rec_close(&r, ']');
    json_object_set_new(j, "last", json_integer(0));
    audit_rec_int(&r, "last", 0);

    assert_int_equal(audit_reserve(a), 0);
    audit_commit(a, j);
    assert_int_equal(audit_reserve(a), 0);
    audit_commit_rec(a, &r);
    assert_null(r.data);
    /* A record that ran out of memory, and one too long for a line, keep
     * their place. */
    assert_int_equal(audit_reserve(a), 0);
    audit_rec_init(&r);
    free(r.data);
    r.data = NULL;
    r.failed = 1;                       /* as after a failed allocation */
    audit_rec_int(&r, "lost", 1);
    audit_commit_rec(a, &r);
    assert_int_equal(audit_reserve(a), 0);
    audit_rec_init(&r);
    out = malloc(AUDIT_LINE_MAX + 1);
    assert_non_null(out);
    memset(out, 'x', AUDIT_LINE_MAX);
    out[AUDIT_LINE_MAX] = '\0';
    audit_rec_str(&r, "huge", out);
    audit_rec_int(&r, "after", 1);
    free(out);
    audit_commit_rec(a, &r);
    audit_close(a);

    n = read_lines(path, &lines);
    assert_int_equal(n, 4);
    /* Same bytes after the stamp ({"ts":"<24>","seq":N,) and before the
     * mac (the last 74 bytes). */
    {
        const char *b1 = strchr(lines[0], ',') + 1, *b2 = strchr(lines[1], ',') + 1;
        size_t l1, l2;

        b1 = strchr(b1, ',') + 1;
        b2 = strchr(b2, ',') + 1;
        l1 = strlen(b1) - 74;
        l2 = strlen(b2) - 74;
        assert_int_equal(l1, l2);
        assert_memory_equal(b1, b2, l1);
        assert_non_null(strstr(b1, "\"k5\":\"\\u6A5F\\u5BC6\\u6027\\uFF12\""));
        assert_non_null(strstr(b1, "\"k6\":\"emoji \\uD83D\\uDE00 end\""));
    }
    assert_non_null(strstr(lines[2], "\"seq\":3,\"event\":\"record_unserializable\""));
    /* {"huge":"<LINE_MAX x>","after":1}: 21 bytes besides the x's */
    snprintf(key, sizeof(key), "\"bytes\":%d,", AUDIT_LINE_MAX + 21);
    assert_non_null(strstr(lines[3], "\"seq\":4,\"event\":\"record_oversize\""));
    assert_non_null(strstr(lines[3], key));
    free_lines(lines, n);
    if (verify1(path, &out) != AUDIT_VERIFY_INTACT)
        fail_msg("%s", out);
    free(out);
}

/* ---- Full disk ---------------------------------------------------------------- */

static void set_fsize(rlim_t soft)
{
    struct rlimit rl = g_fsize;

    rl.rlim_cur = soft;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &rl), 0);
}

/* Length of line i (seq with the same number of digits as the records to
 * come, so the same length). */
static size_t line_len(const char *path, size_t i)
{
    char **lines;
    size_t n = read_lines(path, &lines), len;

    assert_true(i < n);
    len = strlen(lines[i]) + 1;
    free_lines(lines, n);
    return len;
}

static void test_full_disk_refuses_then_writes_everything(void **state)
{
    char path[512], *out, *all;
    audit_log *a;
    audit_stats st;
    off_t s0;
    size_t L, len, n;
    unsigned long long err0;
    int accepted = 0, refused = 0;
    char **lines;

    (void)state;
    /* The writer blocks SIGXFSZ itself: this test leaves the default
     * action (terminate) in place to prove it. */
    signal(SIGXFSZ, SIG_DFL);
    path_in(path, sizeof(path), "full.log");
    unlink(path);
    a = open_trail(path, 8, 1, AUDIT_FSYNC_ALWAYS);
    assert_non_null(a);
    assert_int_equal(audit_submit(a, json_pack("{s:s}", "event", "start")), 0);
    commit_n(a, 1, 3);
    assert_int_equal(audit_flush(a, 5000), 0);
    s0 = file_size(path);
    L = line_len(path, 1);

    /* 1. No room at all: the write fails, the trail turns unhealthy and
     *    reservations fail; nothing partial stays in the file. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(audit_reserve(a), 0);   /* requests in flight */
    set_fsize((rlim_t)s0);
    for (int i = 4; i < 7; i++)
        audit_commit(a, exchange(i));
    wait_healthy(a, 0, 2000);
    assert_int_equal(audit_reserve(a), -1);
    audit_get_stats(a, &st);
    assert_int_equal(st.last_errno, EFBIG);
    assert_true(st.write_errors >= 1);
    assert_int_equal(file_size(path), s0);

    /* Events still queue while there is room; beyond it they are counted. */
    for (int i = 0; i < 20; i++) {
        if (audit_submit(a, json_pack("{s:s,s:i}", "event", "auth_failure",
                                      "n", i % 10)) == 0)
            accepted++;
        else
            refused++;
    }
    assert_true(accepted >= 1 && accepted <= 8);
    assert_int_equal(accepted + refused, 20);
    assert_int_equal(audit_flush(a, 100), -1);   /* still stuck */

    /* 2. Room for one line and a half: the whole line is kept, the partial
     *    one truncated away. */
    audit_get_stats(a, &st);
    err0 = st.write_errors;
    set_fsize((rlim_t)s0 + L + L / 2);
    for (int i = 0; i < 400; i++) {
        audit_get_stats(a, &st);
        if (file_size(path) == s0 + (off_t)L && st.write_errors > err0 &&
            !audit_healthy(a))
            break;
        usleep(10000);
    }
    assert_int_equal(file_size(path), s0 + (off_t)L);
    assert_int_equal(audit_healthy(a), 0);
    all = read_all(path, &len);
    assert_int_equal(all[len - 1], '\n');
    free(all);

    /* 3. Space again: everything held is written, in order. */
    set_fsize(g_fsize.rlim_cur);
    wait_healthy(a, 1, 5000);
    assert_int_equal(audit_reserve(a), 0);
    audit_commit(a, exchange(7));
    assert_int_equal(audit_flush(a, 5000), 0);
    audit_close(a);

    n = read_lines(path, &lines);
    /* start + 3 + 3 + accepted events + records_lost + 1 */
    assert_int_equal(n, 1 + 3 + 3 + (size_t)accepted + 1 + 1);
    {
        int found = 0;

        for (size_t i = 0; i < n; i++) {
            json_t *o = json_loads(lines[i], 0, NULL);

            assert_int_equal(json_integer_value(json_object_get(o, "seq")), (int)i + 1);
            if (json_object_get(o, "count") != NULL) {
                assert_string_equal(json_string_value(json_object_get(o, "event")),
                                    "records_lost");
                assert_int_equal(json_integer_value(json_object_get(o, "count")),
                                 refused);
                found++;
            }
            json_decref(o);
        }
        assert_int_equal(found, 1);
    }
    free_lines(lines, n);
    assert_int_equal(verify1(path, &out), AUDIT_VERIFY_INTACT);
    free(out);
}

/* The same with a real ENOSPC, on a 256 KiB tmpfs.  Needs the right to
 * mount (root in a private namespace); skipped otherwise. */
static void test_enospc_on_a_small_tmpfs_refuses_then_recovers(void **state)
{
    char dir[512], path[600], filler[600], chunk[4096], *out, *all;
    audit_log *a;
    audit_stats st;
    size_t len, n;
    char **lines;
    int fd;

    (void)state;
    path_in(dir, sizeof(dir), "tmpfs");
    assert_int_equal(mkdir(dir, 0700), 0);
    if (mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, "size=256k,mode=0700") != 0) {
        fprintf(stderr, "skipping: cannot mount a tmpfs here (%s)\n", strerror(errno));
        rmdir(dir);
        skip();
    }
    snprintf(path, sizeof(path), "%s/audit.log", dir);
    snprintf(filler, sizeof(filler), "%s/filler", dir);
    a = open_trail(path, 64, 1, AUDIT_FSYNC_ALWAYS);
    assert_non_null(a);
    assert_int_equal(audit_submit(a, json_pack("{s:s}", "event", "start")), 0);
    assert_int_equal(audit_flush(a, 5000), 0);
    for (int i = 0; i < 40; i++)
        assert_int_equal(audit_reserve(a), 0);
    /* Fill the file system. */
    memset(chunk, 'f', sizeof(chunk));
    fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    while (write(fd, chunk, sizeof(chunk)) > 0)
        ;
    assert_int_equal(errno, ENOSPC);
    /* 40 records (more than the last page's slack) find no room. */
    for (int i = 0; i < 40; i++)
        audit_commit(a, exchange(i));
    wait_healthy(a, 0, 3000);
    audit_get_stats(a, &st);
    assert_int_equal(st.last_errno, ENOSPC);
    assert_int_equal(audit_reserve(a), -1);
    all = read_all(path, &len);
    assert_int_equal(all[len - 1], '\n');      /* no partial record */
    free(all);
    /* Free the space. */
    assert_int_equal(ftruncate(fd, 0), 0);
    close(fd);
    wait_healthy(a, 1, 5000);
    assert_int_equal(audit_flush(a, 5000), 0);
    audit_close(a);
    n = read_lines(path, &lines);
    assert_int_equal(n, 41);
    free_lines(lines, n);
    assert_int_equal(verify1(path, &out), AUDIT_VERIFY_INTACT);
    assert_string_equal(out, "verified: 41 records in 1 file, seq 1..41, chain intact\n");
    free(out);
    assert_int_equal(umount(dir), 0);
    rmdir(dir);
}

static void test_continue_policy_accepts_until_the_queue_is_full(void **state)
{
    char path[512], *out;
    audit_log *a;
    off_t s0;
    int ok = 0;

    (void)state;
    signal(SIGXFSZ, SIG_IGN);   /* what the server does */
    path_in(path, sizeof(path), "cont-policy.log");
    unlink(path);
    a = open_trail(path, 4, 0, AUDIT_FSYNC_ALWAYS);
    assert_non_null(a);
    commit_n(a, 1, 1);
    assert_int_equal(audit_flush(a, 5000), 0);
    s0 = file_size(path);
    assert_int_equal(audit_reserve(a), 0);
    set_fsize((rlim_t)s0);
    audit_commit(a, exchange(2));
    wait_healthy(a, 0, 2000);
    /* Unhealthy, but the policy is to continue while records fit. */
    while (audit_reserve(a) == 0) {
        audit_commit(a, exchange(3 + ok));
        ok++;
        assert_true(ok <= 5);
    }
    assert_true(ok >= 3 && ok <= 5);
    set_fsize(g_fsize.rlim_cur);
    wait_healthy(a, 1, 5000);
    audit_close(a);
    assert_int_equal(verify1(path, &out), AUDIT_VERIFY_INTACT);
    {
        char want[128];

        snprintf(want, sizeof(want), "verified: %d records in 1 file, seq 1..%d, "
                 "chain intact\n", 2 + ok, 2 + ok);
        assert_string_equal(out, want);
    }
    free(out);
    signal(SIGXFSZ, SIG_DFL);
}

/* ---- Threads ------------------------------------------------------------------ */

#define T_THREADS 4
#define T_EACH 2000

static void *t_worker(void *arg)
{
    audit_log *a = arg;

    for (int i = 0; i < T_EACH; i++) {
        while (audit_reserve(a) != 0)
            sched_yield();
        if (i % 100 == 99) {
            audit_release(a);
            continue;
        }
        audit_commit(a, exchange(i));
        if (i % 500 == 0)
            (void)audit_submit(a, json_pack("{s:s}", "event", "policy_refused"));
    }
    return NULL;
}

static void test_concurrent_workers_get_a_gap_free_chain(void **state)
{
    char path[512], *out, want[128];
    pthread_t t[T_THREADS];
    audit_log *a;
    audit_stats st;

    (void)state;
    path_in(path, sizeof(path), "threads.log");
    unlink(path);
    a = open_trail(path, 64, 1, AUDIT_FSYNC_NEVER);
    assert_non_null(a);
    for (int i = 0; i < T_THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, t_worker, a), 0);
    for (int i = 0; i < T_THREADS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(audit_flush(a, 10000), 0);
    audit_get_stats(a, &st);
    audit_close(a);
    assert_int_equal(verify1(path, &out), AUDIT_VERIFY_INTACT);
    /* Committed records all there, plus the events that found room. */
    snprintf(want, sizeof(want), "verified: %llu records in 1 file",
             (unsigned long long)st.written);
    assert_int_equal(strncmp(out, want, strlen(want)), 0);
    {
        char **lines;
        size_t n = read_lines(path, &lines);
        unsigned long long committed = 0, events = 0, lost_events = 0, lost = 0;

        for (size_t i = 0; i < n; i++) {
            json_t *o = json_loads(lines[i], 0, NULL);
            const char *ev = json_string_value(json_object_get(o, "event"));

            if (ev == NULL)
                committed++;
            else if (strcmp(ev, "policy_refused") == 0)
                events++;
            else if (strcmp(ev, "records_lost") == 0) {
                lost_events++;
                lost += (unsigned long long)json_integer_value(json_object_get(o, "count"));
            }
            json_decref(o);
        }
        free_lines(lines, n);
        assert_int_equal(committed, T_THREADS * (T_EACH - T_EACH / 100));
        assert_int_equal(events + lost, T_THREADS * 4);
        assert_int_equal(lost, st.lost);
        assert_int_equal(n, committed + events + lost_events);
    }
    free(out);
}

/* The record ring: records of many sizes from two threads, in bursts
 * larger than the part of the ring it keeps to (so that it goes back to its
 * start early, and also wraps at its end), all come out intact. */
#define R_EACH 6000

static json_t *ring_record(int id)
{
    char rid[32], pad[2048];
    size_t len = (size_t)(id * 37) % 2000 + 1;

    snprintf(rid, sizeof(rid), "ring-%07d", id);
    memset(pad, 'a' + id % 26, len);
    pad[len] = '\0';
    return json_pack("{s:s,s:s}", "request_id", rid, "pad", pad);
}

static void *r_worker(void *arg)
{
    void **args = arg;
    audit_log *a = args[0];
    int base = *(int *)args[1];

    for (int i = 0; i < R_EACH; i++) {
        while (audit_reserve(a) != 0)
            sched_yield();
        audit_commit(a, ring_record(base + i));
        if (i % 700 == 699)
            (void)audit_flush(a, 10000);
    }
    return NULL;
}

static void test_record_ring_keeps_every_record_intact(void **state)
{
    char path[512], *out, **lines;
    pthread_t t[2];
    int bases[2] = {0, 1000000};
    void *args[2][2];
    audit_log *a;
    size_t n, seen[2] = {0, 0};

    (void)state;
    path_in(path, sizeof(path), "ring.log");
    unlink(path);
    a = open_trail(path, 2048, 1, AUDIT_FSYNC_NEVER);   /* a 2 MiB ring */
    assert_non_null(a);
    for (int i = 0; i < 2; i++) {
        args[i][0] = a;
        args[i][1] = &bases[i];
        assert_int_equal(pthread_create(&t[i], NULL, r_worker, args[i]), 0);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    audit_close(a);
    assert_int_equal(verify1(path, &out), AUDIT_VERIFY_INTACT);
    free(out);
    n = read_lines(path, &lines);
    assert_int_equal(n, 2 * R_EACH);
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_loads(lines[i], 0, NULL), *want;
        const char *rid;
        int id, th;

        assert_non_null(o);
        rid = json_string_value(json_object_get(o, "request_id"));
        assert_non_null(rid);
        assert_int_equal(sscanf(rid, "ring-%d", &id), 1);
        /* Each thread's records in its own order, each exactly as sent. */
        th = id / 1000000;
        assert_int_equal(id % 1000000, (int)seen[th]);
        seen[th]++;
        want = ring_record(id);
        assert_string_equal(json_string_value(json_object_get(o, "pad")),
                            json_string_value(json_object_get(want, "pad")));
        json_decref(want);
        json_decref(o);
    }
    free_lines(lines, n);
    assert_int_equal(seen[0], R_EACH);
    assert_int_equal(seen[1], R_EACH);
}

/* ---- Syslog ------------------------------------------------------------------- */

static void test_syslog_udp_and_tcp_carry_rfc5424_records(void **state)
{
    char path[512], spec[64], host[256], head[400], buf[8192];
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    char **lines;
    size_t n;
    audit_conf c;
    audit_log *a;
    audit_stats st;
    int u, l, s;
    ssize_t r;
    struct timeval tv = { 5, 0 };

    (void)state;
    gethostname(host, sizeof(host));
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    /* UDP: one datagram per record. */
    u = socket(AF_INET, SOCK_DGRAM, 0);
    assert_int_equal(bind(u, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(u, (struct sockaddr *)&sin, &sl), 0);
    setsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    snprintf(spec, sizeof(spec), "udp:127.0.0.1:%d", ntohs(sin.sin_port));
    path_in(path, sizeof(path), "syslog.log");
    unlink(path);
    memset(&c, 0, sizeof(c));
    c.path = path;
    c.key_file = g_key;
    c.syslog = spec;
    a = audit_open(&c, stderr);
    assert_non_null(a);
    assert_int_equal(audit_submit(a, json_pack("{s:s}", "event", "start")), 0);
    commit_n(a, 1, 1);
    assert_int_equal(audit_flush(a, 5000), 0);
    audit_get_stats(a, &st);
    audit_close(a);
    assert_int_equal(st.syslog_sent, 2);
    n = read_lines(path, &lines);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < 2; i++) {
        char ts[25];

        memcpy(ts, lines[i] + 7, 24);
        ts[24] = '\0';
        r = recv(u, buf, sizeof(buf) - 1, 0);
        assert_true(r > 0);
        buf[r] = '\0';
        snprintf(head, sizeof(head), "<%d>1 %s %s transgate %ld audit - %s",
                 i == 0 ? 85 : 86, ts, host, (long)getpid(), lines[i]);
        assert_string_equal(buf, head);
    }
    free_lines(lines, n);
    close(u);

    /* TCP: octet counting. */
    l = socket(AF_INET, SOCK_STREAM, 0);
    sin.sin_port = 0;
    assert_int_equal(bind(l, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(l, 4), 0);
    sl = sizeof(sin);
    assert_int_equal(getsockname(l, (struct sockaddr *)&sin, &sl), 0);
    snprintf(spec, sizeof(spec), "tcp:127.0.0.1:%d", ntohs(sin.sin_port));
    unlink(path);
    a = audit_open(&c, stderr);
    assert_non_null(a);
    assert_int_equal(audit_submit(a, json_pack("{s:s}", "event", "start")), 0);
    commit_n(a, 1, 2);
    assert_int_equal(audit_flush(a, 5000), 0);
    s = accept(l, NULL, NULL);
    assert_true(s >= 0);
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    /* Wait for all three frames (the writer retries every 200 ms). */
    n = read_lines(path, &lines);
    assert_int_equal(n, 3);
    {
        char want[8192 * 2];
        size_t wl = 0, got = 0;

        for (size_t i = 0; i < n; i++) {
            char ts[25], msg[4096];
            int ml;

            memcpy(ts, lines[i] + 7, 24);
            ts[24] = '\0';
            ml = snprintf(msg, sizeof(msg), "<%d>1 %s %s transgate %ld audit - %s",
                          i == 0 ? 85 : 86, ts, host, (long)getpid(), lines[i]);
            wl += (size_t)snprintf(want + wl, sizeof(want) - wl, "%d %s", ml, msg);
        }
        while (got < wl) {
            r = recv(s, buf + got, sizeof(buf) - 1 - got, 0);
            assert_true(r > 0);
            got += (size_t)r;
        }
        buf[got] = '\0';
        assert_string_equal(buf, want);
    }
    free_lines(lines, n);
    audit_close(a);
    close(s);
    close(l);
}

static void test_bad_configuration_is_reported(void **state)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *errs = open_memstream(&buf, &len);
    audit_conf c;
    char path[512];

    (void)state;
    path_in(path, sizeof(path), "conf.log");
    memset(&c, 0, sizeof(c));
    c.path = path;
    c.key_file = g_key;
    c.syslog = "udp:log.example:514";
    assert_null(audit_open(&c, errs));
    c.syslog = "smtp:127.0.0.1:25";
    assert_int_equal(audit_check(&c, errs), -1);
    c.syslog = "tcp:[::1]:6514";
    c.path = "/nonexistent-dir/audit.log";
    assert_int_equal(audit_check(&c, errs), -1);
    c.path = path;
    assert_int_equal(audit_check(&c, errs), 0);
    fclose(errs);
    assert_non_null(strstr(buf, "audit: syslog target: udp:log.example:514 is "
                                "not a numeric address and port"));
    assert_non_null(strstr(buf, "audit: syslog target must start with udp: or tcp:"));
    assert_non_null(strstr(buf, "the trail's directory /nonexistent-dir does not exist"));
    free(buf);
    assert_true(audit_clock_synced() >= -1 && audit_clock_synced() <= 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, each_setup, each_teardown)
        T(test_key_file_formats_and_subkeys),
        T(test_keygen_writes_0600_hex_and_refuses_overwrite),
        T(test_record_fields_typed_and_mac_rule),
        T(test_text_mac_is_hmac_of_exact_bytes),
        T(test_reopening_a_file_continues_its_chain),
        T(test_open_refuses_a_truncated_last_line),
        T(test_open_refuses_a_last_line_that_is_not_a_record),
        T(test_rotation_links_the_new_file_to_the_old),
        T(test_verify_diagnoses_each_kind_of_tampering),
        T(test_verify_rejects_long_lines_and_reports_unreadable_files),
        T(test_reservations_bound_the_queue_and_lost_events_are_recorded),
        T(test_batch_window_gathers_records),
        T(test_oversize_and_unserialisable_records_keep_their_place),
        T(test_text_records_have_the_bytes_of_jansson_records),
        T(test_full_disk_refuses_then_writes_everything),
        T(test_enospc_on_a_small_tmpfs_refuses_then_recovers),
        T(test_continue_policy_accepts_until_the_queue_is_full),
        T(test_concurrent_workers_get_a_gap_free_chain),
        T(test_record_ring_keeps_every_record_intact),
        T(test_syslog_udp_and_tcp_carry_rfc5424_records),
        T(test_bad_configuration_is_reported),
#undef T
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
