#include "tls_profile.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#define SUITES13_AEAD \
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_AES_128_CCM_SHA256"
#define SUITES12_ECDHE_AEAD                                               \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"        \
    "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:"            \
    "ECDHE-ECDSA-AES128-CCM:ECDHE-ECDSA-AES256-CCM"
#define SUITES12_CAMELLIA                                                 \
    "ECDHE-ECDSA-CAMELLIA128-SHA256:ECDHE-RSA-CAMELLIA128-SHA256:"        \
    "ECDHE-ECDSA-CAMELLIA256-SHA384:ECDHE-RSA-CAMELLIA256-SHA384"
#define SUITES12_ECDHE_CBC_SHA2                                           \
    "ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256:"                  \
    "ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES256-SHA384"
#define SUITES12_DHE_AEAD                                                 \
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:"                \
    "DHE-RSA-AES128-CCM:DHE-RSA-AES256-CCM"
#define GROUPS_NIST "P-256:P-384:P-521"
#define SIGALGS_SHA2                                                      \
    "ECDSA+SHA256:ECDSA+SHA384:ECDSA+SHA512:"                             \
    "rsa_pss_rsae_sha256:rsa_pss_rsae_sha384:rsa_pss_rsae_sha512:"        \
    "rsa_pss_pss_sha256:rsa_pss_pss_sha384:rsa_pss_pss_sha512:"           \
    "RSA+SHA256:RSA+SHA384:RSA+SHA512"

#define SUITES13_ALL SUITES13_AEAD ":TLS_CHACHA20_POLY1305_SHA256"
#define SUITES12_CHACHA \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-CHACHA20-POLY1305"
#define SUITES12_DHE_CBC_SHA2 "DHE-RSA-AES128-SHA256:DHE-RSA-AES256-SHA256"
#define SUITES12_DHE_CAMELLIA \
    "DHE-RSA-CAMELLIA128-SHA256:DHE-RSA-CAMELLIA256-SHA256"
#define GROUPS_FFDHE "ffdhe2048:ffdhe3072:ffdhe4096"

/*
 * cryptrec-strict holds only algorithms whose CRYPTREC listing is certain:
 * AES and Camellia (e-Government Recommended Ciphers List, 128-bit block
 * ciphers) in GCM/CCM or CBC with HMAC-SHA-256/384, ECDH(E) on the NIST
 * curves, ECDSA and RSA-PSS/PKCS#1 v1.5 signatures with SHA-2.  The TLS 1.2
 * Camellia suites come last, so AES-GCM wins when both sides have it.
 *
 * The two guideline profiles follow the CRYPTREC TLS guideline's setting
 * types as far as OpenSSL 3 provides them: perfect forward secrecy only
 * (no RSA key exchange), no SHA-1 MACs, no TLS 1.1 or older.  They add
 * ChaCha20-Poly1305 and finite-field DHE, which the guideline accepts but
 * whose CRYPTREC listing is not certain; choose them only when a terminal
 * needs them.  High security is AEAD only; recommended adds CBC with SHA-2.
 */
static const tls_profile profiles[] = {
    {
        "cryptrec-strict", TLS1_2_VERSION, TLS1_3_VERSION,
        SUITES13_AEAD,
        SUITES12_ECDHE_AEAD ":" SUITES12_CAMELLIA,
        GROUPS_NIST, SIGALGS_SHA2,
        "TLS 1.3 AES-GCM/CCM; TLS 1.2 ECDHE with AES-GCM/CCM and Camellia",
    },
    {
        "cryptrec-recommended", TLS1_2_VERSION, TLS1_3_VERSION,
        SUITES13_ALL,
        SUITES12_ECDHE_AEAD ":" SUITES12_DHE_AEAD ":" SUITES12_CHACHA ":"
        SUITES12_ECDHE_CBC_SHA2 ":" SUITES12_DHE_CBC_SHA2 ":"
        SUITES12_CAMELLIA ":" SUITES12_DHE_CAMELLIA,
        GROUPS_NIST ":" GROUPS_FFDHE, SIGALGS_SHA2,
        "CRYPTREC TLS guideline, recommended security type: TLS 1.2 and 1.3, "
        "forward-secret suites, AEAD and CBC with SHA-2",
    },
    {
        "cryptrec-high", TLS1_2_VERSION, TLS1_3_VERSION,
        SUITES13_ALL,
        SUITES12_ECDHE_AEAD ":" SUITES12_DHE_AEAD ":" SUITES12_CHACHA,
        GROUPS_NIST ":" GROUPS_FFDHE, SIGALGS_SHA2,
        "CRYPTREC TLS guideline, high security type: TLS 1.3 first, "
        "TLS 1.2 forward-secret AEAD suites only",
    },
};

const tls_profile *tls_profile_find(const char *name)
{
    for (size_t i = 0; i < sizeof(profiles) / sizeof(profiles[0]); i++)
        if (strcmp(profiles[i].name, name) == 0)
            return &profiles[i];
    return NULL;
}

const tls_profile *tls_profile_all(size_t *n)
{
    *n = sizeof(profiles) / sizeof(profiles[0]);
    return profiles;
}

void tls_errstr(char *buf, size_t len)
{
    unsigned long e;
    size_t off = 0;

    if (len == 0)
        return;
    buf[0] = '\0';
    while ((e = ERR_get_error()) != 0) {
        char one[256];
        ERR_error_string_n(e, one, sizeof(one));
        if (off < len - 1) {
            int n = snprintf(buf + off, len - off, "%s%s", off ? "; " : "",
                             one);
            if (n > 0)
                off += (size_t)n;
        }
    }
    if (buf[0] == '\0')
        snprintf(buf, len, "no OpenSSL error recorded");
}

/* Is name one of the colon-separated items in list? */
static int list_has(const char *list, const char *name)
{
    size_t n = strlen(name);
    const char *p = list;

    while (*p != '\0') {
        const char *end = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0)
            return 1;
        if (end == NULL)
            break;
        p = end + 1;
    }
    return 0;
}

int tls_profile_apply(SSL_CTX *ctx, const tls_profile *p, char *err,
                      size_t errlen)
{
    char why[512];

    ERR_clear_error();
    if (SSL_CTX_set_min_proto_version(ctx, p->min_version) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, p->max_version) != 1) {
        tls_errstr(why, sizeof(why));
        snprintf(err, errlen, "profile %s: protocol range: %s", p->name, why);
        return -1;
    }
    if (SSL_CTX_set_ciphersuites(ctx, p->tls13_suites) != 1) {
        tls_errstr(why, sizeof(why));
        snprintf(err, errlen, "profile %s: TLS 1.3 suites: %s", p->name, why);
        return -1;
    }
    /* An empty TLS 1.2 list is not accepted by OpenSSL; a TLS 1.3-only
     * profile sets min_version instead. */
    if (p->tls12_suites[0] != '\0' &&
        SSL_CTX_set_cipher_list(ctx, p->tls12_suites) != 1) {
        tls_errstr(why, sizeof(why));
        snprintf(err, errlen, "profile %s: TLS 1.2 suites: %s", p->name, why);
        return -1;
    }
    /* OpenSSL's control macros cast away const; hand them mutable-typed
     * pointers to the (never modified) static strings. */
    char *groups = (char *)(uintptr_t)p->groups;
    char *sigalgs = (char *)(uintptr_t)p->sigalgs;

    if (SSL_CTX_set1_groups_list(ctx, groups) != 1) {
        tls_errstr(why, sizeof(why));
        snprintf(err, errlen, "profile %s: groups: %s", p->name, why);
        return -1;
    }
    if (SSL_CTX_set1_sigalgs_list(ctx, sigalgs) != 1 ||
        SSL_CTX_set1_client_sigalgs_list(ctx, sigalgs) != 1) {
        tls_errstr(why, sizeof(why));
        snprintf(err, errlen, "profile %s: signature algorithms: %s", p->name,
                 why);
        return -1;
    }
    /* Finite-field DHE (guideline profiles) uses the RFC 7919 groups sized
     * to the certificate; nothing else changes when no DHE suite is on. */
    SSL_CTX_set_dh_auto(ctx, 1);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                             SSL_OP_CIPHER_SERVER_PREFERENCE |
                             SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 |
                             SSL_OP_NO_TLSv1_1);
    return tls_profile_verify(ctx, p, err, errlen);
}

int tls_profile_verify(SSL_CTX *ctx, const tls_profile *p, char *err,
                       size_t errlen)
{
    STACK_OF(SSL_CIPHER) *ciphers;
    int minv = (int)SSL_CTX_get_min_proto_version(ctx);
    int maxv = (int)SSL_CTX_get_max_proto_version(ctx);

    /* 0 means "no limit": the library's lowest/highest, which could be
     * anything a future OpenSSL enables. */
    if (minv == 0 || minv < p->min_version) {
        snprintf(err, errlen, "profile %s: minimum protocol below the profile",
                 p->name);
        return -1;
    }
    if (maxv == 0 || maxv > p->max_version) {
        snprintf(err, errlen, "profile %s: maximum protocol above the profile",
                 p->name);
        return -1;
    }
    ciphers = SSL_CTX_get_ciphers(ctx);
    if (ciphers == NULL || sk_SSL_CIPHER_num(ciphers) == 0) {
        snprintf(err, errlen, "profile %s: no cipher suite enabled", p->name);
        return -1;
    }
    for (int i = 0; i < sk_SSL_CIPHER_num(ciphers); i++) {
        const SSL_CIPHER *c = sk_SSL_CIPHER_value(ciphers, i);
        const char *name = SSL_CIPHER_get_name(c);
        if (!list_has(p->tls13_suites, name) && !list_has(p->tls12_suites, name)) {
            snprintf(err, errlen,
                     "profile %s: suite %s is enabled but not in the profile",
                     p->name, name);
            return -1;
        }
    }
    /* OpenSSL 3.0 cannot report a context's own group list (SSL_get1_groups
     * returns the peer's); SSL_CTX_set1_groups_list replaces the whole list,
     * so what tls_profile_apply set is what is offered.  The integration
     * tests prove it from outside. */
    return 0;
}

static const char *proto_name(int v)
{
    switch (v) {
    case TLS1_2_VERSION: return "TLSv1.2";
    case TLS1_3_VERSION: return "TLSv1.3";
    default: return "other";
    }
}

int tls_profile_print(SSL_CTX *ctx, const tls_profile *p, const char *indent,
                      FILE *out)
{
    STACK_OF(SSL_CIPHER) *ciphers = SSL_CTX_get_ciphers(ctx);

    fprintf(out, "%sprofile: %s (%s)\n", indent, p->name, p->description);
    fprintf(out, "%sprotocols: %s to %s\n", indent,
            proto_name((int)SSL_CTX_get_min_proto_version(ctx)),
            proto_name((int)SSL_CTX_get_max_proto_version(ctx)));
    fprintf(out, "%ssuites:", indent);
    for (int i = 0; ciphers != NULL && i < sk_SSL_CIPHER_num(ciphers); i++) {
        const SSL_CIPHER *c = sk_SSL_CIPHER_value(ciphers, i);
        fprintf(out, " %s", SSL_CIPHER_get_name(c));
    }
    fprintf(out, "\n");
    fprintf(out, "%sgroups: %s\n", indent, p->groups);
    fprintf(out, "%ssignature algorithms: %s\n", indent, p->sigalgs);
    return 0;
}
