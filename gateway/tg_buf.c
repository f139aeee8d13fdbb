#include "tg_buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

void tg_wipe(void *p, size_t n)
{
    if (p != NULL && n > 0)
        OPENSSL_cleanse(p, n);
}

void tg_free_secret(char *s)
{
    if (s == NULL)
        return;
    tg_wipe(s, strlen(s));
    free(s);
}

void tg_buf_init(tg_buf *b, size_t cap)
{
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
    b->cap = cap;
}

void tg_buf_free(tg_buf *b)
{
    if (b->data != NULL) {
        tg_wipe(b->data, b->alloc);
        free(b->data);
    }
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
}

static int tg_buf_grow(tg_buf *b, size_t need)
{
    size_t nalloc;
    char *p;

    if (need + 1 <= b->alloc)
        return 0;
    nalloc = b->alloc ? b->alloc : 256;
    while (nalloc < need + 1) {
        if (nalloc > ((size_t)-1) / 2)
            return -1;
        nalloc *= 2;
    }
    if (nalloc > b->cap + 1)
        nalloc = b->cap + 1;
    /* Not realloc: the old block may hold secrets and must be wiped. */
    p = malloc(nalloc);
    if (p == NULL)
        return -1;
    if (b->data != NULL) {
        memcpy(p, b->data, b->len + 1);
        tg_wipe(b->data, b->alloc);
        free(b->data);
    }
    b->data = p;
    b->alloc = nalloc;
    return 0;
}

int tg_buf_add(tg_buf *b, const void *p, size_t n)
{
    if (n > b->cap || b->len > b->cap - n)
        goto fail;
    if (tg_buf_grow(b, b->len + n) != 0)
        goto fail;
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
fail:
    tg_buf_free(b);
    return -1;
}

int tg_buf_adds(tg_buf *b, const char *s)
{
    return tg_buf_add(b, s, strlen(s));
}

int tg_buf_printf(tg_buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        goto fail;
    if ((size_t)n < sizeof(small)) {
        int rc = tg_buf_add(b, small, (size_t)n);
        tg_wipe(small, sizeof(small));
        return rc;
    }
    if ((size_t)n > b->cap || b->len > b->cap - (size_t)n)
        goto fail;
    if (tg_buf_grow(b, b->len + (size_t)n) != 0)
        goto fail;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    tg_wipe(small, sizeof(small));
    return 0;
fail:
    tg_wipe(small, sizeof(small));
    tg_buf_free(b);
    return -1;
}

char *tg_buf_steal(tg_buf *b, size_t *len)
{
    char *p = b->data;

    if (len != NULL)
        *len = b->len;
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
    return p;
}
