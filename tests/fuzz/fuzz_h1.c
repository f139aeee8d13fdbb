/* libFuzzer: the terminal-side HTTP/1.1 codec.  The first byte picks how
 * the rest is cut into pieces; the rest is parsed as a request head and,
 * after it, decoded as a chunked body.  Checks that every span returned
 * lies inside the input and that nothing reads past it (ASan). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "h1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t step, hl, pos;
    char *buf;
    h1_head h;
    h1_chunked c;
    char arg[16];

    if (size < 1)
        return 0;
    step = (size_t)data[0] % 17 + 1;
    data++;
    size--;
    buf = malloc(size + 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    hl = h1_head_length(buf, size);
    pos = 0;
    if (hl > 0) {
        if (h1_parse_head(buf, hl, &h) == H1_OK) {
            (void)h1_field_get(&h, "Content-Type");
            (void)h1_query_arg(h.query, "type", arg, sizeof(arg));
            if (h.has_length && h.length > (uint64_t)1 << 50)
                abort();
        }
        pos = hl;
    }
    h1_chunked_init(&c);
    while (pos < size && !c.done) {
        size_t avail = size - pos < step ? size - pos : step, used = 0, dlen = 0;
        const char *d = NULL;
        if (h1_chunked_step(&c, buf + pos, avail, &used, &d, &dlen) != H1_OK)
            break;
        if (used > avail || (dlen > 0 && (d < buf + pos || d + dlen > buf + pos + used)))
            abort();
        pos += used;
    }
    free(buf);
    return 0;
}
