/*
 * tls_profile: the CRYPTREC TLS profiles, as data.
 *
 * One table drives both legs: the terminal listener's SSL_CTX and each
 * upstream's vendor SSL_CTX (runtime.c).  After a profile is
 * applied the effective settings are read back from OpenSSL and compared
 * with the profile, so a library default or a typo cannot widen the set.
 */
#ifndef TG_TLS_PROFILE_H
#define TG_TLS_PROFILE_H

#include <stddef.h>
#include <stdio.h>

#include <openssl/ssl.h>

typedef struct tls_profile {
    const char *name;
    int min_version;            /* TLS1_2_VERSION or TLS1_3_VERSION */
    int max_version;            /* TLS1_3_VERSION */
    const char *tls13_suites;   /* OpenSSL ciphersuites string */
    const char *tls12_suites;   /* OpenSSL cipher list, "" for none */
    const char *groups;         /* supported groups */
    const char *sigalgs;        /* signature algorithms */
    const char *description;
} tls_profile;

/* Look up a profile by name.  Returns a static profile or NULL. */
const tls_profile *tls_profile_find(const char *name);

/* The table, for listing.  Cannot fail. */
const tls_profile *tls_profile_all(size_t *n);

/* Apply p to ctx (protocol range, suites, groups, signature algorithms,
 * options that disable renegotiation and compression), then verify it with
 * tls_profile_verify.  Returns 0, or -1 with a reason in err. */
int tls_profile_apply(SSL_CTX *ctx, const tls_profile *p, char *err,
                      size_t errlen);

/* Read the effective protocol range, suites and groups back from ctx and
 * check each against p.  Returns 0, or -1 naming the first item outside the
 * profile in err. */
int tls_profile_verify(SSL_CTX *ctx, const tls_profile *p, char *err,
                       size_t errlen);

/* Print the effective protocols, suites, groups and signature algorithms of
 * ctx, each line prefixed by indent.  Returns 0 or -1. */
int tls_profile_print(SSL_CTX *ctx, const tls_profile *p, const char *indent,
                      FILE *out);

/* OpenSSL's pending error queue as one line (drains it).  Cannot fail. */
void tls_errstr(char *buf, size_t len);

#endif
