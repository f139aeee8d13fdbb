/*
 * secret: reading key material and credentials from files.
 *
 * A secret file must be a regular file not readable, writable or executable
 * by group or others (mode & 077 == 0).  Contents are returned in memory the
 * caller must release with tg_free_secret (wiped before free).
 */
#ifndef TG_SECRET_H
#define TG_SECRET_H

#include <stddef.h>
#include <sys/stat.h>

/* Check that path is a regular file with no group/other permissions.
 * Returns 0, or -1 with a message (path and reason, never contents) in err. */
int secret_check_file(const char *path, char *err, size_t errlen);

/* Open a secret file with open(2) flags (O_NOFOLLOW and O_CLOEXEC are
 * added; O_CREAT creates it with mode 0600) and check it is a regular file
 * with no group/other permissions; *out (may be NULL) gets its stat.
 * Returns the descriptor (the caller closes it), or -1 with a message
 * (path and reason) in err. */
int secret_open_fd(const char *path, int flags, struct stat *out, char *err,
                   size_t errlen);

/* Read a whole secret file (at most 64 KiB), permission-checked, with one
 * trailing newline (LF or CRLF) removed.  Returns a new NUL-terminated string
 * (free with tg_free_secret), or NULL with a message in err. */
char *secret_read(const char *path, char *err, size_t errlen);

#endif
