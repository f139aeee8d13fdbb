/*
 * libFuzzer harness for the rule-pack loader: any bytes either load or are
 * refused with diagnostics; never a crash or a leak.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "pol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *names[1] = {"fuzz.json"};
    const char *bufs[1] = {(const char *)data};
    size_t lens[1] = {size};
    pol_engine *e = pol_engine_load_mem(names, bufs, lens, 1, NULL);

    if (e != NULL) {
        pol_session *s = pol_session_new(e, POL_PH_TOKEN);
        char *m = NULL;
        if (s != NULL)
            (void)pol_session_process(s, "abc 123 機密性3", 18, &m, NULL);
        free(m);
        pol_session_free(s);
    }
    pol_engine_free(e);
    return 0;
}
