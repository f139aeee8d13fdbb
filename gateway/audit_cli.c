/*
 * `transgate audit`: verify a trail, digest a document, make a key.
 *
 * verify reads files an attacker may have edited: every line is bounded
 * (AUDIT_LINE_MAX), parsed strictly, and the MAC is recomputed from the
 * line's own bytes, never from a re-serialisation.  It stops at the first
 * problem, because after one every later link is suspect anyway.
 */
#include "audit.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "tg_buf.h"

#define VR_BUF (2 * AUDIT_LINE_MAX)

static const char usage_audit[] =
    "usage: transgate audit <command> [options]\n"
    "\n"
    "The tamper-evident audit trail (see docs/audit.md).\n"
    "\n"
    "commands:\n"
    "  verify [--key FILE] FILE...     check the MAC chain and the sequence\n"
    "                                  across files, oldest first\n"
    "  mac --key FILE [--strip-newline] [FILE|-]\n"
    "                                  print the text digest of a document, to\n"
    "                                  look for in the records' text_macs\n"
    "  keygen FILE                     write a new random audit key (mode 0600)\n"
    "\n"
    "Run 'transgate audit <command> --help' for details.\n";

static const char usage_verify[] =
    "usage: transgate audit verify [--key FILE] FILE...\n"
    "\n"
    "Check an audit trail: every line a record, the sequence numbers\n"
    "consecutive, and (with the key) each record's MAC chained over the\n"
    "previous one.  Give rotated files oldest first (audit.log.2 audit.log.1\n"
    "audit.log): each file's first record must continue the previous file.\n"
    "Reports the first problem as FILE:LINE: what, then stops.\n"
    "\n"
    "exit status:\n"
    "  0  intact: every record and every link checked\n"
    "  1  broken: a record is edited, missing, reordered, truncated or not a\n"
    "     record (or the key is wrong)\n"
    "  2  usage error, or a file or the key cannot be read\n"
    "  3  no problem found, but not everything could be checked: no --key\n"
    "     (MACs not checked), or the first record's predecessor is in a file\n"
    "     not given (for instance deleted by retention)\n"
    "\n"
    "  -k, --key FILE   the audit key file (audit.key_file in the configuration)\n"
    "  -h, --help       this help\n";

static const char usage_mac[] =
    "usage: transgate audit mac --key FILE [--strip-newline] [FILE|-]\n"
    "\n"
    "Print the text digest (HMAC-SHA256 under the audit key's text subkey,\n"
    "64 hex digits) of the exact bytes of FILE, or of standard input.  A\n"
    "document was sent if a record's \"text_macs\" holds this value:\n"
    "  grep -n \"$(transgate audit mac --key KEY doc.txt)\" audit.log*\n"
    "The digest covers the text exactly as the terminal sent it (UTF-8, no\n"
    "normalisation): one more space or a different line ending gives a\n"
    "different digest.\n"
    "\n"
    "  -k, --key FILE        the audit key file\n"
    "  -n, --strip-newline   leave out one trailing newline (LF or CRLF), which\n"
    "                        editors add but the terminal may not have sent\n"
    "  -h, --help            this help\n";

static const char usage_keygen[] =
    "usage: transgate audit keygen FILE\n"
    "\n"
    "Create FILE (which must not exist) with a new random audit key: 64 hex\n"
    "digits (32 bytes) and a newline, mode 0600.  Keep a copy in the agency's\n"
    "key escrow: without it the trail cannot be verified and documents cannot\n"
    "be matched.\n"
    "\n"
    "  -h, --help   this help\n";

/* ---- Bounded line reader ------------------------------------------------- */

typedef struct vreader {
    int fd;
    char *buf;
    size_t len, pos;
    int eof;
    unsigned long lineno;
} vreader;

enum { VR_EOF = 0, VR_LINE = 1, VR_IOERR = -1, VR_LONG = -2, VR_TRUNC = -3 };

static int vr_open(vreader *r, const char *path)
{
    memset(r, 0, sizeof(*r));
    r->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (r->fd < 0)
        return -1;
    r->buf = malloc(VR_BUF);
    if (r->buf == NULL) {
        close(r->fd);
        r->fd = -1;
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

static void vr_close(vreader *r)
{
    if (r->fd >= 0)
        close(r->fd);
    free(r->buf);
    r->fd = -1;
    r->buf = NULL;
}

/* Next line without its newline.  Returns VR_LINE, VR_EOF, VR_IOERR
 * (errno set), VR_LONG (longer than AUDIT_LINE_MAX) or VR_TRUNC (the file
 * ends without a newline). */
static int vr_line(vreader *r, const char **line, size_t *len)
{
    for (;;) {
        char *nl = memchr(r->buf + r->pos, '\n', r->len - r->pos);
        ssize_t n;

        if (nl != NULL) {
            *line = r->buf + r->pos;
            *len = (size_t)(nl - *line);
            r->pos = (size_t)(nl - r->buf) + 1;
            r->lineno++;
            return *len + 1 > AUDIT_LINE_MAX ? VR_LONG : VR_LINE;
        }
        if (r->len - r->pos >= AUDIT_LINE_MAX) {
            r->lineno++;
            return VR_LONG;
        }
        if (r->eof) {
            if (r->len > r->pos) {
                r->lineno++;
                return VR_TRUNC;
            }
            return VR_EOF;
        }
        memmove(r->buf, r->buf + r->pos, r->len - r->pos);
        r->len -= r->pos;
        r->pos = 0;
        n = read(r->fd, r->buf + r->len, VR_BUF - r->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return VR_IOERR;
        if (n == 0)
            r->eof = 1;
        r->len += (size_t)n;
    }
}

/* ---- Record structure ------------------------------------------------------ */

typedef struct vrec {
    json_t *obj;
    const char *ts;         /* borrowed from obj */
    uint64_t seq;
    const char *mac;        /* inside the line */
    const char *event;      /* borrowed from obj, or NULL */
    const char *prev_mac;   /* reopen events: borrowed, or NULL */
    uint64_t prev_seq;
} vrec;

static int v_hex64(const char *s, size_t n)
{
    if (n != 64)
        return 0;
    for (size_t i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* "2026-11-22T08:30:01.123Z" */
static int v_ts(const char *s, size_t n)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";

    if (n != sizeof(shape) - 1)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (shape[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != shape[i])
            return 0;
    return 1;
}

/* Parse and check the shape of one line.  Returns 0, or -1 with the kind
 * of problem in why. */
static int v_parse(const char *line, size_t len, vrec *v, char *why,
                   size_t whylen)
{
    json_error_t jerr;
    json_t *jts, *jseq, *jmac, *jev, *jpm, *jps;
    size_t hl;
    char head[64];

    memset(v, 0, sizeof(*v));
    v->obj = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (v->obj == NULL) {
        snprintf(why, whylen, "not JSON (column %d: %s)", jerr.column,
                 jerr.text);
        return -1;
    }
    if (!json_is_object(v->obj)) {
        snprintf(why, whylen, "not JSON: not an object");
        goto fail;
    }
    jts = json_object_get(v->obj, "ts");
    jseq = json_object_get(v->obj, "seq");
    jmac = json_object_get(v->obj, "mac");
    if (!json_is_string(jts) || !v_ts(json_string_value(jts), json_string_length(jts)) ||
        !json_is_integer(jseq) || json_integer_value(jseq) < 1 ||
        !json_is_string(jmac) || !v_hex64(json_string_value(jmac), json_string_length(jmac))) {
        snprintf(why, whylen, "malformed record (ts, seq or mac missing or "
                 "of the wrong form)");
        goto fail;
    }
    v->seq = (uint64_t)json_integer_value(jseq);
    v->ts = json_string_value(jts);
    /* The byte layout the writer produces: {"ts":"...","seq":N,...,"mac":"..."} */
    hl = (size_t)snprintf(head, sizeof(head), "{\"ts\":\"%s\",\"seq\":%" PRIu64,
                          json_string_value(jts), v->seq);
    if (len < hl + 75 || memcmp(line, head, hl) != 0 ||
        (line[hl] != ',' && line[hl] != '}') ||
        memcmp(line + len - 74, ",\"mac\":\"", 8) != 0 ||
        memcmp(line + len - 2, "\"}", 2) != 0 ||
        memcmp(line + len - 66, json_string_value(jmac), 64) != 0) {
        snprintf(why, whylen, "malformed record (fields not in the "
                 "writer's order: ts, seq first, mac last)");
        goto fail;
    }
    v->mac = line + len - 66;
    jev = json_object_get(v->obj, "event");
    v->event = json_is_string(jev) ? json_string_value(jev) : NULL;
    if (v->event != NULL && strcmp(v->event, "reopen") == 0) {
        jpm = json_object_get(v->obj, "prev_mac");
        jps = json_object_get(v->obj, "prev_seq");
        if (!json_is_string(jpm) ||
            !v_hex64(json_string_value(jpm), json_string_length(jpm)) ||
            !json_is_integer(jps) || json_integer_value(jps) < 0) {
            snprintf(why, whylen, "malformed reopen record (prev_mac or "
                     "prev_seq)");
            goto fail;
        }
        v->prev_mac = json_string_value(jpm);
        v->prev_seq = (uint64_t)json_integer_value(jps);
    }
    return 0;
fail:
    json_decref(v->obj);
    v->obj = NULL;
    return -1;
}

/* ---- Verification ------------------------------------------------------------ */

typedef struct vstate {
    const char *const *paths;
    size_t n;
    const audit_keys *keys;
    FILE *out;
    int started;
    char chain[65];
    uint64_t expect;
    uint64_t first_seq;
    char last_ts[32];       /* ts of the last good record */
    unsigned long long records;
    int partial_link;       /* a chain start could not be linked */
    char where[512];        /* FILE:LINE of the problem */
} vstate;

static const char v_zero[65] =
    "0000000000000000000000000000000000000000000000000000000000000000";

/* After seq jumped forward: is the missing seq further on (the records
 * were reordered) or nowhere (missing)?  Looks from file fi, line lineno
 * on.  Returns 1 and its place in at, or 0. */
static int v_find_seq(const vstate *s, size_t fi, unsigned long lineno,
                      uint64_t want, char *at, size_t atlen)
{
    for (size_t f = fi; f < s->n; f++) {
        vreader r;
        const char *line;
        size_t len;
        int rc;

        if (vr_open(&r, s->paths[f]) != 0)
            return 0;
        while ((rc = vr_line(&r, &line, &len)) == VR_LINE) {
            json_t *o, *js;
            int hit;

            if (f == fi && r.lineno <= lineno)
                continue;
            o = json_loadb(line, len, 0, NULL);
            js = json_object_get(o, "seq");
            hit = json_is_integer(js) && (uint64_t)json_integer_value(js) == want;
            json_decref(o);
            if (hit) {
                snprintf(at, atlen, "%s:%lu", s->paths[f], r.lineno);
                vr_close(&r);
                return 1;
            }
        }
        vr_close(&r);
    }
    return 0;
}

static int v_mac_ok(const vstate *s, const char *prev, const char *line,
                    size_t len, const char *mac, int *oom)
{
    char body[AUDIT_LINE_MAX];
    char got[65];
    size_t blen = len - 74 + 1;

    /* The MAC covers the line with ,"mac":"..."} replaced by } */
    memcpy(body, line, len - 74);
    body[len - 74] = '}';
    if (audit_chain_mac(s->keys, prev, body, blen, got) != 0) {
        *oom = 1;
        return 0;
    }
    return CRYPTO_memcmp(got, mac, 64) == 0;
}

/* Check one record.  Returns 0, or AUDIT_VERIFY_BROKEN / _ERROR after
 * printing the problem. */
static int v_record(vstate *s, size_t fi, unsigned long lineno,
                    const char *line, size_t len)
{
    const char *path = s->paths[fi];
    char why[256], at[512];
    const char *prev = NULL;
    vrec v;
    int oom = 0, rc = AUDIT_VERIFY_BROKEN;

    if (v_parse(line, len, &v, why, sizeof(why)) != 0) {
        fprintf(s->out, "%s:%lu: %s\n", path, lineno, why);
        return AUDIT_VERIFY_BROKEN;
    }
    if (!s->started || (lineno == 1 && v.seq == 1)) {
        /* The start of what we were given, or a new chain at the start of
         * a later file (the gateway started without its previous file). */
        if (v.seq == 1) {
            prev = v_zero;
            if (s->started && strcmp(v.ts, s->last_ts) < 0) {
                /* Rotated files given newest first look like this. */
                fprintf(s->out, "%s:1: a chain starts here earlier (%s) than "
                        "the previous file ends (%s): files out of order "
                        "(give them oldest first)\n", path, v.ts, s->last_ts);
                goto out;
            }
            if (s->started) {
                fprintf(s->out, "%s:1: note: a new chain starts here; its "
                        "link to %s cannot be checked\n", path,
                        s->paths[fi - 1]);
                s->partial_link = 1;
            }
        } else if (v.prev_mac != NULL && v.prev_seq + 1 == v.seq) {
            prev = v.prev_mac;
            fprintf(s->out, "%s:%lu: note: chain start not verifiable "
                    "(predecessor missing): continues seq %" PRIu64 " of a "
                    "file not given\n", path, lineno, v.prev_seq);
            s->partial_link = 1;
        } else {
            fprintf(s->out, "%s:%lu: note: chain start not verifiable "
                    "(predecessor missing): this record cannot be checked, "
                    "the ones after it can\n", path, lineno);
            s->partial_link = 1;
        }
        s->first_seq = s->started ? s->first_seq : v.seq;
    } else if (v.seq < s->expect) {
        fprintf(s->out, "%s:%lu: sequence goes backwards: expected %" PRIu64
                " got %" PRIu64 " (reordered or duplicated)\n", path, lineno,
                s->expect, v.seq);
        goto out;
    } else if (v.seq > s->expect) {
        if (v_find_seq(s, fi, lineno, s->expect, at, sizeof(at)))
            fprintf(s->out, "%s:%lu: sequence out of order: expected %" PRIu64
                    " got %" PRIu64 "; record %" PRIu64 " is at %s "
                    "(reordered)\n", path, lineno, s->expect, v.seq,
                    s->expect, at);
        else
            fprintf(s->out, "%s:%lu: sequence gap: expected %" PRIu64 " got %"
                    PRIu64 " (record missing)\n", path, lineno, s->expect,
                    v.seq);
        goto out;
    } else {
        prev = s->chain;
        if (v.prev_mac != NULL &&
            (strcmp(v.prev_mac, s->chain) != 0 || v.prev_seq + 1 != v.seq)) {
            fprintf(s->out, "%s:%lu: reopen record does not continue the "
                    "previous record (a file is missing, or belongs to "
                    "another chain)\n", path, lineno);
            goto out;
        }
    }
    if (s->keys != NULL && prev != NULL &&
        !v_mac_ok(s, prev, line, len, v.mac, &oom)) {
        if (oom) {
            fprintf(s->out, "%s:%lu: cannot compute a MAC (OpenSSL)\n",
                    path, lineno);
            rc = AUDIT_VERIFY_ERROR;
        } else {
            fprintf(s->out, "%s:%lu: mac mismatch (record edited or key "
                    "wrong)\n", path, lineno);
        }
        goto out;
    }
    memcpy(s->chain, v.mac, 64);
    s->chain[64] = '\0';
    snprintf(s->last_ts, sizeof(s->last_ts), "%s", v.ts);
    s->expect = v.seq + 1;
    s->started = 1;
    s->records++;
    rc = 0;
out:
    json_decref(v.obj);
    return rc;
}

int audit_verify_files(const char *const *paths, size_t n,
                       const audit_keys *keys, FILE *out)
{
    vstate s;
    size_t fi;

    memset(&s, 0, sizeof(s));
    s.paths = paths;
    s.n = n;
    s.keys = keys;
    s.out = out;
    for (fi = 0; fi < n; fi++) {
        vreader r;
        const char *line;
        size_t len;
        int rc;

        if (vr_open(&r, paths[fi]) != 0) {
            fprintf(out, "%s: cannot read: %s\n", paths[fi], strerror(errno));
            return AUDIT_VERIFY_ERROR;
        }
        while ((rc = vr_line(&r, &line, &len)) == VR_LINE) {
            int vrc = v_record(&s, fi, r.lineno, line, len);

            if (vrc != 0) {
                vr_close(&r);
                fprintf(out, "%s after %llu good records\n",
                        vrc == AUDIT_VERIFY_BROKEN ? "BROKEN" : "ERROR",
                        s.records);
                return vrc;
            }
        }
        if (rc != VR_EOF) {
            if (rc == VR_IOERR)
                fprintf(out, "%s: cannot read: %s\n", paths[fi], strerror(errno));
            else
                fprintf(out, "%s:%lu: %s\n", paths[fi], r.lineno,
                        rc == VR_TRUNC ? "truncated last line (no newline: "
                                         "the record was cut short)"
                                       : "line too long: not a record");
            vr_close(&r);
            if (rc == VR_IOERR)
                return AUDIT_VERIFY_ERROR;
            fprintf(out, "BROKEN after %llu good records\n", s.records);
            return AUDIT_VERIFY_BROKEN;
        }
        vr_close(&r);
    }
    if (s.records == 0) {
        fprintf(out, "verified: no records in %zu file%s\n", n, n == 1 ? "" : "s");
        return AUDIT_VERIFY_INTACT;
    }
    if (keys == NULL || s.partial_link) {
        fprintf(out, "partially verified: %llu records in %zu file%s, seq %"
                PRIu64 "..%" PRIu64 ", no problem found; not checked: %s%s%s\n",
                s.records, n, n == 1 ? "" : "s", s.first_seq, s.expect - 1,
                keys == NULL ? "MACs (no --key)" : "",
                keys == NULL && s.partial_link ? ", " : "",
                s.partial_link ? "the link to the predecessor" : "");
        return AUDIT_VERIFY_PARTIAL;
    }
    fprintf(out, "verified: %llu records in %zu file%s, seq %" PRIu64 "..%"
            PRIu64 ", chain intact\n", s.records, n, n == 1 ? "" : "s",
            s.first_seq, s.expect - 1);
    return AUDIT_VERIFY_INTACT;
}

/* ---- Subcommands ------------------------------------------------------------- */

static int cli_help(int argc, char **argv, const char *usage)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(usage, stdout);
            return 1;
        }
    }
    return 0;
}

static int cli_verify(int argc, char **argv)
{
    static const struct option opts[] = {
        { "key", required_argument, NULL, 'k' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *key = NULL;
    audit_keys k;
    char err[512];
    int ch, rc;

    if (cli_help(argc, argv, usage_verify))
        return 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "+k:h", opts, NULL)) != -1) {
        if (ch == 'k') {
            key = optarg;
        } else {
            fputs(usage_verify, stderr);
            return AUDIT_VERIFY_ERROR;
        }
    }
    if (optind >= argc) {
        fputs(usage_verify, stderr);
        return AUDIT_VERIFY_ERROR;
    }
    if (key != NULL && audit_keys_load(key, &k, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return AUDIT_VERIFY_ERROR;
    }
    rc = audit_verify_files((const char *const *)(argv + optind),
                            (size_t)(argc - optind), key != NULL ? &k : NULL,
                            stdout);
    audit_keys_wipe(&k);
    fflush(stdout);
    return rc;
}

/* Stream the input into the MAC, holding back the last two bytes so a
 * trailing newline can be left out. */
static int cli_mac_stream(int fd, const audit_keys *k, int strip, char out[65])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char chunk[65536], md[32], hold[2];
    size_t held = 0, outl = 0;
    OSSL_PARAM params[2];
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
    int rc = -1;

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 (char *)(uintptr_t)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    if (ctx == NULL || !EVP_MAC_init(ctx, k->text, sizeof(k->text), params)) {
        fprintf(stderr, "cannot compute a MAC (OpenSSL)\n");
        goto fail;
    }
    for (;;) {
        ssize_t r = read(fd, chunk, sizeof(chunk));
        size_t n, emit;

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            fprintf(stderr, "cannot read the input: %s\n", strerror(errno));
            goto fail;
        }
        if (r == 0)
            break;
        n = (size_t)r;
        /* Emit the held bytes and all but the last two of this chunk. */
        if (n >= 2) {
            if (held > 0 && !EVP_MAC_update(ctx, hold, held))
                goto fail_mac;
            emit = n - 2;
            if (emit > 0 && !EVP_MAC_update(ctx, chunk, emit))
                goto fail_mac;
            memcpy(hold, chunk + emit, 2);
            held = 2;
        } else {            /* n == 1 */
            if (held == 2) {
                if (!EVP_MAC_update(ctx, hold, 1))
                    goto fail_mac;
                hold[0] = hold[1];
                held = 1;
            }
            hold[held++] = chunk[0];
        }
    }
    if (strip && held > 0 && hold[held - 1] == '\n') {
        held--;
        if (held > 0 && hold[held - 1] == '\r')
            held--;
    }
    if (held > 0 && !EVP_MAC_update(ctx, hold, held))
        goto fail_mac;
    if (!EVP_MAC_final(ctx, md, &outl, sizeof(md)) || outl != 32)
        goto fail_mac;
    for (size_t i = 0; i < 32; i++) {
        out[2 * i] = digits[md[i] >> 4];
        out[2 * i + 1] = digits[md[i] & 15];
    }
    out[64] = '\0';
    rc = 0;
    goto fail;
fail_mac:
    fprintf(stderr, "cannot compute a MAC (OpenSSL)\n");
fail:
    OPENSSL_cleanse(chunk, sizeof(chunk));
    OPENSSL_cleanse(hold, sizeof(hold));
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return rc;
}

static int cli_mac(int argc, char **argv)
{
    static const struct option opts[] = {
        { "key", required_argument, NULL, 'k' },
        { "strip-newline", no_argument, NULL, 'n' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *key = NULL, *in = "-";
    int strip = 0, ch, fd, rc = 1;
    audit_keys k;
    char err[512], out[65];

    if (cli_help(argc, argv, usage_mac))
        return 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "+k:nh", opts, NULL)) != -1) {
        if (ch == 'k') {
            key = optarg;
        } else if (ch == 'n') {
            strip = 1;
        } else {
            fputs(usage_mac, stderr);
            return 2;
        }
    }
    if (key == NULL || argc - optind > 1) {
        fputs(usage_mac, stderr);
        return 2;
    }
    if (optind < argc)
        in = argv[optind];
    if (audit_keys_load(key, &k, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    fd = strcmp(in, "-") == 0 ? STDIN_FILENO
                              : open(in, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        fprintf(stderr, "%s: %s\n", in, strerror(errno));
        audit_keys_wipe(&k);
        return 2;
    }
    if (cli_mac_stream(fd, &k, strip, out) == 0) {
        printf("%s\n", out);
        rc = 0;
    }
    if (fd != STDIN_FILENO)
        close(fd);
    audit_keys_wipe(&k);
    return rc;
}

static int cli_keygen(int argc, char **argv)
{
    char err[512];

    if (cli_help(argc, argv, usage_keygen))
        return 0;
    if (argc != 2 || argv[1][0] == '-') {
        fputs(usage_keygen, stderr);
        return 2;
    }
    if (audit_keygen(argv[1], err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    printf("wrote a new audit key to %s (mode 0600); keep a copy in escrow\n",
           argv[1]);
    return 0;
}

int cmd_audit(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage_audit, stderr);
        return 2;
    }
    if (strcmp(argv[1], "verify") == 0)
        return cli_verify(argc - 1, argv + 1);
    if (strcmp(argv[1], "mac") == 0)
        return cli_mac(argc - 1, argv + 1);
    if (strcmp(argv[1], "keygen") == 0)
        return cli_keygen(argc - 1, argv + 1);
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fputs(usage_audit, stdout);
        return 0;
    }
    fprintf(stderr, "transgate audit: unknown command '%s'\n", argv[1]);
    fputs(usage_audit, stderr);
    return 2;
}
