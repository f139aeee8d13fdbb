#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tg_buf.h"

#define SECRET_MAX_BYTES (64 * 1024)

/* Open path for reading and check what the descriptor refers to, so the
 * checked file is the one read (no stat-then-open race).  O_NOFOLLOW refuses
 * a symlink as the last component; O_NONBLOCK keeps a FIFO planted in place
 * of the file from blocking start-up (it is then refused as not regular).
 * Returns the descriptor, or -1 with a message in err. */
int secret_open_fd(const char *path, int flags, struct stat *out, char *err,
                   size_t errlen)
{
    struct stat st;
    int fd = open(path, flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
                  0600);

    if (fd < 0) {
        if (errno == ELOOP)
            snprintf(err, errlen, "%s: is a symbolic link (refused for "
                     "secret files)", path);
        else
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        goto fail;
    }
    if ((st.st_mode & 077) != 0) {
        const char *what = (st.st_mode & 044) ? "readable" :
                           (st.st_mode & 022) ? "writable" : "executable";
        snprintf(err, errlen, "%s: %s by group or others (mode %04o); "
                 "chmod 600", path, what, (unsigned)(st.st_mode & 07777));
        goto fail;
    }
    if (out != NULL)
        *out = st;
    return fd;
fail:
    close(fd);
    return -1;
}

int secret_check_file(const char *path, char *err, size_t errlen)
{
    int fd = secret_open_fd(path, O_RDONLY, NULL, err, errlen);

    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

char *secret_read(const char *path, char *err, size_t errlen)
{
    char chunk[4096];
    tg_buf b;
    char *out = NULL;
    size_t len = 0;
    ssize_t r;
    int fd = secret_open_fd(path, O_RDONLY, NULL, err, errlen);

    tg_buf_init(&b, SECRET_MAX_BYTES);
    if (fd < 0)
        return NULL;
    for (;;) {
        r = read(fd, chunk, sizeof(chunk));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            goto fail;
        }
        if (r == 0)
            break;
        if (tg_buf_add(&b, chunk, (size_t)r) != 0) {
            snprintf(err, errlen, "%s: larger than %d bytes (or out of "
                     "memory)", path, SECRET_MAX_BYTES);
            goto fail;
        }
    }
    /* An empty file still yields an (empty) string. */
    if (b.data == NULL && tg_buf_add(&b, "", 0) != 0) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    if (memchr(b.data, '\0', b.len) != NULL) {
        snprintf(err, errlen, "%s: contains a NUL byte", path);
        goto fail;
    }
    if (b.len > 0 && b.data[b.len - 1] == '\n') {
        b.len--;
        if (b.len > 0 && b.data[b.len - 1] == '\r')
            b.len--;
        b.data[b.len] = '\0';
    }
    out = tg_buf_steal(&b, &len);
    if (out == NULL) {
        /* Only a newline was there: steal returns NULL for empty. */
        out = strdup("");
        if (out == NULL) {
            snprintf(err, errlen, "%s: out of memory", path);
            goto fail;
        }
    }
    tg_wipe(chunk, sizeof(chunk));
    close(fd);
    return out;
fail:
    tg_wipe(chunk, sizeof(chunk));
    tg_buf_free(&b);
    close(fd);
    return NULL;
}
