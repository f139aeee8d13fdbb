/*
 * bench_audit_records: the audit trail alone, without the network, for
 * working on its per-record cost.  T threads each reserve, digest a text,
 * build an exchange record shaped like the gateway's and commit it, N
 * times (64 records per millisecond per thread: the writer keeps up, as in
 * the gateway), against one trail with its writer thread; the process's
 * CPU time per record is printed; the trail it leaves verifies.  Run by
 * hand (see README.md); bench_audit.py gives the cost as a share of the
 * gateway's throughput.
 *
 *   bench_audit_records DIR [RECORDS_PER_THREAD [THREADS [always|never]]]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "audit.h"

static audit_log *g_trail;
static long g_records;

static void *bench_thread(void *arg)
{
    static const char text[] = "Please call me at 03-1234-5678, thanks.";
    long base = (long)(intptr_t)arg * g_records;

    for (long i = 0; i < g_records; i++) {
        audit_rec rec;
        char mac[65], id[40];

        while (audit_reserve(g_trail) != 0)
            usleep(100);
        audit_text_mac(g_trail, text, sizeof(text) - 1, mac);
        snprintf(id, sizeof(id), "5f0c2a9e41d7b388-%ld", base + i);
        audit_rec_init(&rec);
        audit_rec_str(&rec, "request_id", id);
        audit_rec_str(&rec, "client", "office-terminals");
        audit_rec_str(&rec, "cert_fp", NULL);
        audit_rec_str(&rec, "source", "192.0.2.10:54321");
        audit_rec_str(&rec, "endpoint", "/v2/translate");
        audit_rec_int(&rec, "status", 200);
        audit_rec_str(&rec, "source_lang", "");
        audit_rec_str(&rec, "target_lang", "DE");
        audit_rec_int(&rec, "texts", 1);
        audit_rec_int(&rec, "chars_in", 38);
        audit_rec_int(&rec, "chars_out", 38);
        audit_rec_open(&rec, "detections", '{');
        audit_rec_int(&rec, "phone-jp", 1);
        audit_rec_close(&rec, '}');
        audit_rec_int(&rec, "level", 1);
        audit_rec_str(&rec, "rule", "default");
        audit_rec_str(&rec, "decision", "forwarded");
        audit_rec_str(&rec, "reason", "ok");
        audit_rec_str(&rec, "upstream", "vendor");
        audit_rec_str(&rec, "vendor_addr", "198.51.100.7:443");
        audit_rec_int(&rec, "vendor_status", 200);
        audit_rec_int(&rec, "latency_ms", 3);
        audit_rec_int(&rec, "upstream_ms", 1);
        audit_rec_open(&rec, "text_macs", '[');
        audit_rec_str(&rec, NULL, mac);
        audit_rec_close(&rec, ']');
        audit_commit_rec(g_trail, &rec);
        /* Paced like a busy gateway rather than as fast as possible, so the
         * writer keeps up as it does there (a queue that overflows would
         * measure the overflow path instead). */
        if (i % 64 == 63)
            usleep(1000);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    char path[4096], key[4096], err[256];
    pthread_t t[16];
    struct rusage ru;
    audit_conf c;
    int threads;
    double cpu;

    if (argc < 2) {
        fprintf(stderr, "usage: bench_audit_records DIR [RECORDS_PER_THREAD "
                        "[THREADS [always|never]]]\n");
        return 2;
    }
    g_records = argc > 2 ? atol(argv[2]) : 300000;
    threads = argc > 3 ? atoi(argv[3]) : 2;
    if (g_records <= 0 || threads < 1 || threads > 16) {
        fprintf(stderr, "bench_audit_records: 1 to 16 threads, records > 0\n");
        return 2;
    }
    snprintf(path, sizeof(path), "%s/bench-audit.jsonl", argv[1]);
    snprintf(key, sizeof(key), "%s/bench-audit.key", argv[1]);
    unlink(path);
    unlink(key);
    if (audit_keygen(key, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench_audit_records: %s\n", err);
        return 1;
    }
    memset(&c, 0, sizeof(c));
    c.path = path;
    c.key_file = key;
    c.fsync = argc > 4 && strcmp(argv[4], "always") == 0 ? AUDIT_FSYNC_ALWAYS
                                                         : AUDIT_FSYNC_NEVER;
    c.batch_ms = 10;
    c.refuse_on_failure = 1;
    g_trail = audit_open(&c, stderr);
    if (g_trail == NULL)
        return 1;
    for (int i = 0; i < threads; i++)
        if (pthread_create(&t[i], NULL, bench_thread, (void *)(intptr_t)i) != 0)
            return 1;
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    audit_close(g_trail);
    getrusage(RUSAGE_SELF, &ru);
    cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
          (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    printf("records=%ld threads=%d fsync=%s cpu_s=%.2f cpu_us_per_record=%.2f\n",
           g_records * threads, threads,
           c.fsync == AUDIT_FSYNC_ALWAYS ? "always" : "never", cpu,
           1e6 * cpu / (double)(g_records * threads));
    printf("verify with: transgate audit verify --key %s %s\n", key, path);
    return 0;
}
