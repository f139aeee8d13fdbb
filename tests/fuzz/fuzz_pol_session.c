/*
 * libFuzzer harness for scan, mask and restore.
 *
 * Byte 0 picks the placeholder style; the rest is a request field.  Valid
 * UTF-8 must mask and then restore to exactly the input (the round-trip
 * invariant); the raw bytes are also fed to restore as a hostile
 * "translation", which must fail cleanly or succeed, never crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static pol_engine *eng;

static void fuzz_init(void)
{
    const char *src = getenv("TG_SOURCE_DIR");
    char path[1024];
    const char *files[1] = {path};

    snprintf(path, sizeof path, "%s/policy/rules/default.json", src != NULL ? src : ".");
    eng = pol_engine_load(files, 1, stderr);
    if (eng == NULL)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pol_session *s;
    char *m = NULL, *out = NULL;
    size_t mlen = 0, olen = 0;
    pol_err pe;
    pol_ph_style style;
    const char *text;

    if (eng == NULL)
        fuzz_init();
    if (size == 0)
        return 0;
    style = (pol_ph_style)(data[0] % 3);
    text = (const char *)data + 1;
    size--;
    s = pol_session_new(eng, style);
    if (s == NULL)
        abort();
    pe = pol_session_process(s, text, size, &m, &mlen);
    if (pe == POL_OK) {
        pol_decision d;
        /* Half the inputs restore from a compacted session, as the
         * gateway does while the vendor works. */
        if (data[0] & 0x40)
            s = pol_session_compact(s);
        if (pol_session_restore_field(s, 0, m, mlen, 0, &out, &olen) != POL_OK)
            abort();
        if (olen != size || memcmp(out, text, size) != 0)
            abort();
        free(out);
        out = NULL;
        if (pol_decide(s, 2, 2, 2, &d) != POL_OK)
            abort();
        (void)pol_session_restore_field(s, 0, text, size, data[0] & 0x80, &out, &olen);
        free(out);
    } else if (pe != POL_ERR_UTF8 && pe != POL_ERR_TOO_LARGE) {
        abort();        /* match limits must not be reachable with the default pack */
    }
    free(m);
    pol_session_free(s);
    return 0;
}
