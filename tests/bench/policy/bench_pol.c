/*
 * Masking throughput of the policy engine on one core.
 *
 *   bench_pol RULES[,RULES...] CORPUS.jsonl [--lang ja|en] [--seconds S] [--style token|xml]
 *             [--passes N]
 *
 * Each document is one request: a new session, pol_session_process (scan
 * with the whole pack, resolve overlaps, mask), then free.  Prints MB/s of
 * input text processed, per wall-clock second and per CPU second.
 * Single-threaded: pin it with taskset for a one-core figure.  --passes N runs exactly N passes instead of timing
 * (for instruction counts under valgrind --tool=callgrind, which do not
 * depend on other load on the machine).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "pol.h"

static double clock_s(clockid_t id)
{
    struct timespec t;

    clock_gettime(id, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double now(void)
{
    return clock_s(CLOCK_MONOTONIC);
}

int main(int argc, char **argv)
{
    const char *lang = NULL, *files[8];
    size_t nfiles = 0;
    char *rl, *tok, *save = NULL;
    double seconds = 3.0, t0, c0, el, cpu;
    pol_ph_style style = POL_PH_TOKEN;
    pol_engine *e;
    FILE *f;
    char *line = NULL, **texts = NULL;
    size_t cap = 0, n = 0, ncap = 0, *lens = NULL, bytes = 0, i, iters = 0, dets = 0;
    size_t passes = 0;
    ssize_t got;
    int a;

    if (argc < 3) {
        fprintf(stderr, "usage: bench_pol RULES CORPUS.jsonl [--lang ja|en] [--seconds S] [--style token|xml] [--passes N]\n");
        return 2;
    }
    for (a = 3; a + 1 < argc; a += 2) {
        if (strcmp(argv[a], "--lang") == 0)
            lang = argv[a + 1];
        else if (strcmp(argv[a], "--seconds") == 0)
            seconds = strtod(argv[a + 1], NULL);
        else if (strcmp(argv[a], "--style") == 0)
            style = strcmp(argv[a + 1], "xml") == 0 ? POL_PH_XML : POL_PH_TOKEN;
        else if (strcmp(argv[a], "--passes") == 0)
            passes = (size_t)strtoul(argv[a + 1], NULL, 10);
    }
    rl = strdup(argv[1]);
    if (rl == NULL)
        return 1;
    for (tok = strtok_r(rl, ",", &save); tok != NULL && nfiles < 8; tok = strtok_r(NULL, ",", &save))
        files[nfiles++] = tok;
    e = pol_engine_load(files, nfiles, stderr);
    if (e == NULL)
        return 1;
    f = fopen(argv[2], "r");
    if (f == NULL) {
        perror(argv[2]);
        return 1;
    }
    while ((got = getline(&line, &cap, f)) > 0) {
        json_error_t jerr;
        json_t *doc = json_loadb(line, (size_t)got, 0, &jerr);
        const char *l;
        if (doc == NULL)
            return 1;
        l = json_string_value(json_object_get(doc, "lang"));
        if (lang == NULL || (l != NULL && strcmp(l, lang) == 0)) {
            if (n == ncap) {
                ncap = ncap ? ncap * 2 : 256;
                texts = realloc(texts, ncap * sizeof *texts);
                lens = realloc(lens, ncap * sizeof *lens);
                if (texts == NULL || lens == NULL)
                    return 1;
            }
            lens[n] = json_string_length(json_object_get(doc, "text"));
            texts[n] = malloc(lens[n] + 1);
            if (texts[n] == NULL)
                return 1;
            memcpy(texts[n], json_string_value(json_object_get(doc, "text")), lens[n] + 1);
            bytes += lens[n];
            n++;
        }
        json_decref(doc);
    }
    free(line);
    fclose(f);
    if (n == 0)
        return 1;
    t0 = now();
    c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    do {
        for (i = 0; i < n; i++) {
            pol_session *s = pol_session_new(e, style);
            char *m = NULL;
            if (s == NULL || pol_session_process(s, texts[i], lens[i], &m, NULL) != POL_OK)
                return 1;
            dets += pol_session_total(s);
            free(m);
            pol_session_free(s);
        }
        iters++;
        el = now() - t0;
    } while (passes > 0 ? iters < passes : el < seconds);
    cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
    /* Wall-clock MB/s, and MB/s per CPU second: the second leaves out time
     * the process spent preempted, so it varies far less on a shared
     * machine (the process is single-threaded). */
    printf("policy engine: %zu docs, %zu bytes/pass, %zu passes, %.3f s, %zu detections/pass, %.1f MB/s, %.1f MB/s cpu\n",
           n, bytes, iters, el, dets / iters, (double)bytes * (double)iters / el / 1e6,
           (double)bytes * (double)iters / cpu / 1e6);
    for (i = 0; i < n; i++)
        free(texts[i]);
    free(texts);
    free(lens);
    pol_engine_free(e);
    free(rl);
    return 0;
}
