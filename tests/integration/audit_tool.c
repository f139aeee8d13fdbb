/*
 * audit_tool: writes audit trails through the library for the CLI tests,
 * so they do not depend on the daemon.
 *
 *   audit_tool write PATH KEY N [DOC]   append N exchange records (a "start"
 *                                       event first when PATH is new); with
 *                                       DOC, record 1 carries its text MAC
 *   audit_tool rotate PATH KEY N        N records, rename PATH to PATH.1,
 *                                       reopen, N more records
 *   audit_tool audit ARGS...            cmd_audit itself
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"

static audit_log *tool_open(const char *path, const char *key)
{
    audit_conf c;

    memset(&c, 0, sizeof(c));
    c.path = path;
    c.key_file = key;
    c.fsync = AUDIT_FSYNC_ALWAYS;
    c.refuse_on_failure = 1;
    return audit_open(&c, stderr);
}

static int tool_records(audit_log *a, int from, int n, const char *doc)
{
    for (int i = from; i < from + n; i++) {
        char rid[32], mac[65];
        json_t *rec;

        snprintf(rid, sizeof(rid), "req-%06d", i);
        rec = json_pack("{s:s,s:s,s:s,s:s,s:i}", "request_id", rid,
                        "client", "terminal-01", "decision", "forwarded",
                        "upstream", "stub", "texts", 1);
        if (rec == NULL)
            return -1;
        if (doc != NULL && i == from) {
            FILE *f = fopen(doc, "rb");
            char buf[65536];
            size_t len;

            if (f == NULL) {
                fprintf(stderr, "%s: %s\n", doc, strerror(errno));
                json_decref(rec);
                return -1;
            }
            len = fread(buf, 1, sizeof(buf), f);
            fclose(f);
            audit_text_mac(a, buf, len, mac);
            json_object_set_new(rec, "text_macs", json_pack("[s]", mac));
        }
        /* A full queue means the writer lags: wait for it, up to 10 s. */
        for (int tries = 0; audit_reserve(a) != 0; tries++) {
            if (tries == 100000) {
                json_decref(rec);
                return -1;
            }
            usleep(100);
        }
        audit_commit(a, rec);
    }
    return 0;
}

int main(int argc, char **argv)
{
    audit_log *a;
    int n, rc = 0;

    if (argc >= 2 && strcmp(argv[1], "audit") == 0)
        return cmd_audit(argc - 1, argv + 1);
    if (argc < 5 || (strcmp(argv[1], "write") != 0 && strcmp(argv[1], "rotate") != 0)) {
        fprintf(stderr, "usage: audit_tool write|rotate PATH KEY N [DOC]\n");
        return 2;
    }
    n = (int)strtol(argv[4], NULL, 10);
    {
        int fresh = access(argv[2], F_OK) != 0;

        a = tool_open(argv[2], argv[3]);
        if (a == NULL)
            return 1;
        if (fresh && audit_submit(a, json_pack("{s:s,s:s}", "event", "start",
                                               "version", "test")) != 0)
            rc = 1;
    }
    if (tool_records(a, 1, n, argc > 5 ? argv[5] : NULL) != 0)
        rc = 1;
    if (strcmp(argv[1], "rotate") == 0) {
        char old[4096];

        snprintf(old, sizeof(old), "%s.1", argv[2]);
        if (audit_flush(a, 5000) != 0 || rename(argv[2], old) != 0)
            rc = 1;
        audit_reopen(a);
        if (tool_records(a, n + 1, n, NULL) != 0)
            rc = 1;
    }
    audit_close(a);
    return rc;
}
