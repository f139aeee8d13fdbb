/*
 * tg_buf: a growable byte buffer with a hard cap fixed at creation.
 *
 * Every buffer that holds data from a terminal or a vendor is a tg_buf, so no
 * input can grow memory without bound.  A failed append frees the contents and
 * leaves the buffer empty and reusable.  Contents are wiped before release,
 * because buffers carry request text and masked values.
 */
#ifndef TG_BUF_H
#define TG_BUF_H

#include <stddef.h>

typedef struct tg_buf {
    char  *data;   /* NUL-terminated when non-NULL; len excludes the NUL */
    size_t len;
    size_t alloc;
    size_t cap;    /* maximum len; appends beyond it fail */
} tg_buf;

/* Initialise an empty buffer that will never hold more than cap bytes.
 * Cannot fail (allocates lazily). */
void tg_buf_init(tg_buf *b, size_t cap);

/* Append n bytes.  Returns 0, or -1 when the cap would be exceeded or memory
 * runs out; on failure the buffer is wiped, freed and left empty. */
int tg_buf_add(tg_buf *b, const void *p, size_t n);

/* Append a NUL-terminated string.  Same contract as tg_buf_add. */
int tg_buf_adds(tg_buf *b, const char *s);

/* Append a formatted string (printf-style).  Same contract as tg_buf_add. */
int tg_buf_printf(tg_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Wipe and free the contents; the buffer stays initialised with its cap.
 * Cannot fail. */
void tg_buf_free(tg_buf *b);

/* Hand the contents to the caller (who must free() them, wiping first if
 * sensitive) and reset the buffer to empty.  Returns NULL when empty. */
char *tg_buf_steal(tg_buf *b, size_t *len);

/* Overwrite n bytes at p with zeros in a way the compiler cannot elide.
 * Cannot fail; p may be NULL when n is 0. */
void tg_wipe(void *p, size_t n);

/* Wipe a NUL-terminated string and free it.  NULL is accepted. */
void tg_free_secret(char *s);

#endif
