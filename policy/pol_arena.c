/*
 * pol_arena: the scratch memory of one session.
 *
 * Why: a request of a few hundred bytes made some thirty small
 * allocations (scan records, windows, candidates, values...), each grown
 * by realloc from 16 elements and freed one by one: about a tenth of the
 * time of a short text went to the allocator (docs/performance.md).  An
 * arena hands out memory by moving an offset, first in a buffer inside the
 * session itself, and releases everything at once with the session.
 * Growing the most recent allocation extends it in place; growing another
 * one copies it and leaves the old space unused until the end of the
 * session (at most as much again, since capacities double).
 *
 * The arena does not wipe: its owner wipes what is secret (masked values)
 * before releasing it, as it did when each value had its own allocation.
 */
#include <stdlib.h>
#include <string.h>

#include "pol_internal.h"

#define POL_ALIGN ((size_t)16)

/* A chunk allocated by the arena once the owner's buffer is full. */
struct pol_chunk {
    struct pol_chunk *prev;    /* older chunk */
    size_t size;               /* bytes of data */
    _Alignas(16) unsigned char data[];
};

size_t pol_arena_round(size_t n)
{
    return (n + (POL_ALIGN - 1)) & ~(POL_ALIGN - 1);
}

void pol_arena_init(pol_arena *a, void *buf, size_t n)
{
    a->buf0 = buf;
    a->size0 = n & ~(POL_ALIGN - 1);
    a->chunks = NULL;
    a->base = buf;
    a->size = a->size0;
    a->used = 0;
    a->last = NULL;
}

/* Continue in a new chunk of at least n bytes (twice the current size or
 * more, so that a session needs few).  0, or -1 when out of memory. */
static int pol_arena_chunk(pol_arena *a, size_t n)
{
    size_t sz = a->size < n / 2 ? n : a->size * 2;
    struct pol_chunk *c;

    if (sz < n || sz > SIZE_MAX - sizeof *c)
        return -1;
    c = malloc(sizeof *c + sz);
    if (c == NULL)
        return -1;
    c->prev = a->chunks;
    c->size = sz;
    a->chunks = c;
    a->base = c->data;
    a->size = sz;
    a->used = 0;
    return 0;
}

void *pol_arena_alloc(pol_arena *a, size_t n)
{
    void *p;

    if (n > SIZE_MAX - POL_ALIGN)
        return NULL;
    n = pol_arena_round(n > 0 ? n : 1);
    if (n > a->size - a->used && pol_arena_chunk(a, n) != 0)
        return NULL;
    p = a->base + a->used;
    a->used += n;
    a->last = p;
    return p;
}

int pol_arena_grow_slow(pol_arena *a, void **arr, size_t *cap, size_t need, size_t sz)
{
    size_t nc, bytes, at;
    void *p;

    if (need <= *cap)
        return 0;
    nc = *cap > 0 ? *cap : 16;
    while (nc < need) {
        if (nc > SIZE_MAX / 2)
            return -1;
        nc *= 2;
    }
    if (sz == 0 || nc > (SIZE_MAX - POL_ALIGN) / sz)
        return -1;
    bytes = pol_arena_round(nc * sz);
    /* The most recent allocation grows in place while its chunk has room. */
    if (*arr != NULL && *arr == a->last) {
        at = (size_t)((unsigned char *)*arr - a->base);
        if (bytes <= a->size - at) {
            a->used = at + bytes;
            *cap = nc;
            return 0;
        }
    }
    p = pol_arena_alloc(a, bytes);
    if (p == NULL)
        return -1;
    if (*arr != NULL && *cap > 0)
        memcpy(p, *arr, *cap * sz);
    *arr = p;
    *cap = nc;
    return 0;
}

void pol_arena_free(pol_arena *a)
{
    struct pol_chunk *c = a->chunks, *prev;

    for (; c != NULL; c = prev) {
        prev = c->prev;
        free(c);
    }
    pol_arena_init(a, a->buf0, a->size0);
}
