#include "runtime.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "access.h"
#include "log.h"
#include "secret.h"
#include "tg_buf.h"

#define EXPIRY_WARN_DAYS 30

/* Warn when the leaf certificate in ctx expires within EXPIRY_WARN_DAYS. */
static void warn_expiry(SSL_CTX *ctx, const char *what, FILE *errs)
{
    X509 *leaf = SSL_CTX_get0_certificate(ctx);
    int days = 0, secs = 0;

    if (leaf == NULL)
        return;
    if (ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(leaf)) != 1)
        return;
    if (days < 0 || (days == 0 && secs <= 0))
        fprintf(errs, "%s: certificate has expired\n", what);
    else if (days < EXPIRY_WARN_DAYS)
        log_warn("%s: certificate expires in %d days", what, days);
}

/* Load every CRL in a PEM file into the store.  Returns the count, or -1. */
static int load_crls(X509_STORE *store, const char *path)
{
    BIO *bio = BIO_new_file(path, "r");
    X509_CRL *crl;
    int n = 0;

    if (bio == NULL)
        return -1;
    while ((crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL)) != NULL) {
        if (X509_STORE_add_crl(store, crl) != 1) {
            X509_CRL_free(crl);
            BIO_free(bio);
            return -1;
        }
        X509_CRL_free(crl);
        n++;
    }
    ERR_clear_error();   /* the end of the file */
    BIO_free(bio);
    return n;
}

/* Terminal certificates: issued by the agency CA, checked against its CRL
 * when one is configured, asked for (optional) or demanded (required). */
static int setup_client_auth(SSL_CTX *ctx, const tg_listener_conf *l, FILE *errs)
{
    STACK_OF(X509_NAME) *names;
    char err[512];
    int mode = SSL_VERIFY_PEER;

    ERR_clear_error();
    if (SSL_CTX_load_verify_locations(ctx, l->client_ca_file, NULL) != 1) {
        tls_errstr(err, sizeof(err));
        fprintf(errs, "%s: cannot load client CA certificates: %s\n",
                l->client_ca_file, err);
        return -1;
    }
    names = SSL_load_client_CA_file(l->client_ca_file);
    if (names == NULL) {
        fprintf(errs, "%s: no CA certificate in file\n", l->client_ca_file);
        return -1;
    }
    SSL_CTX_set_client_CA_list(ctx, names);
    if (l->crl_file != NULL) {
        X509_STORE *store = SSL_CTX_get_cert_store(ctx);
        if (load_crls(store, l->crl_file) <= 0) {
            fprintf(errs, "%s: no usable certificate revocation list\n", l->crl_file);
            return -1;
        }
        /* The issuing CA's list: the terminal certificate itself is checked. */
        X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
    }
    if (l->client_auth == TG_CLIENT_AUTH_REQUIRED)
        mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(ctx, mode, NULL);
    SSL_CTX_set_verify_depth(ctx, 4);
    return 0;
}

static SSL_CTX *load_listener_ctx(const tg_listener_conf *l,
                                  const tls_profile *p, FILE *errs)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    char err[512];
    char *pem = NULL;
    BIO *bio = NULL;
    EVP_PKEY *key = NULL;

    if (ctx == NULL) {
        fprintf(errs, "%s: cannot create TLS context\n", l->address);
        return NULL;
    }
    if (tls_profile_apply(ctx, p, err, sizeof(err)) != 0) {
        fprintf(errs, "listener %s: %s\n", l->address, err);
        goto fail;
    }
    ERR_clear_error();
    if (SSL_CTX_use_certificate_chain_file(ctx, l->certificate) != 1) {
        tls_errstr(err, sizeof(err));
        fprintf(errs, "%s: cannot load certificate chain: %s\n", l->certificate,
                err);
        goto fail;
    }
    pem = secret_read(l->private_key, err, sizeof(err));
    if (pem == NULL) {
        fprintf(errs, "%s\n", err);
        goto fail;
    }
    bio = BIO_new_mem_buf(pem, -1);
    if (bio == NULL)
        goto fail;
    key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    if (key == NULL || SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        fprintf(errs, "%s: not a private key matching %s\n", l->private_key,
                l->certificate);
        goto fail;
    }
    warn_expiry(ctx, l->certificate, errs);
    if (l->client_auth != TG_CLIENT_AUTH_NONE &&
        setup_client_auth(ctx, l, errs) != 0)
        goto fail;
    /* Session resumption through tickets keeps state on the terminal side
     * only; no server-side cache to wipe. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                          SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                          SSL_MODE_RELEASE_BUFFERS);
    /* Requests are decrypted in OpenSSL's own record buffer: wipe it
     * before it is released between requests. */
    SSL_CTX_set_options(ctx, SSL_OP_CLEANSE_PLAINTEXT);
    EVP_PKEY_free(key);
    BIO_free(bio);
    tg_free_secret(pem);
    return ctx;
fail:
    EVP_PKEY_free(key);
    BIO_free(bio);
    tg_free_secret(pem);
    SSL_CTX_free(ctx);
    return NULL;
}

/* Resolve the vendor host once, here, so curl never starts a resolver
 * thread and the audit trail can name the address used. */
static int resolve_upstream(rt_upstream *u, FILE *errs)
{
    const tg_upstream_conf *c = u->conf;
    struct addrinfo hints, *res = NULL, *ai;
    char port[16];
    tg_buf entry;
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof(port), "%d", c->port);
    rc = getaddrinfo(c->scheme_host, port, &hints, &res);
    if (rc != 0) {
        fprintf(errs, "upstream %s: cannot resolve %s: %s\n", c->name,
                c->scheme_host, gai_strerror(rc));
        return -1;
    }
    tg_buf_init(&entry, 4096);
    if (strchr(c->scheme_host, ':') != NULL)
        tg_buf_printf(&entry, "[%s]:%d:", c->scheme_host, c->port);
    else
        tg_buf_printf(&entry, "%s:%d:", c->scheme_host, c->port);
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        char addr[INET6_ADDRSTRLEN];
        const void *src = ai->ai_family == AF_INET6
            ? (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
            : (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr;
        if (inet_ntop(ai->ai_family, src, addr, sizeof(addr)) == NULL)
            continue;
        if (u->address[0] == '\0')
            snprintf(u->address, sizeof(u->address), "%s", addr);
        if (ai->ai_family == AF_INET6)
            tg_buf_printf(&entry, "%s[%s]", ai == res ? "" : ",", addr);
        else
            tg_buf_printf(&entry, "%s%s", ai == res ? "" : ",", addr);
    }
    freeaddrinfo(res);
    if (entry.data == NULL || u->address[0] == '\0') {
        fprintf(errs, "upstream %s: no usable address for %s\n", c->name,
                c->scheme_host);
        tg_buf_free(&entry);
        return -1;
    }
    u->resolve = curl_slist_append(NULL, entry.data);
    tg_buf_free(&entry);
    return u->resolve ? 0 : -1;
}

/* The certificates of pem[0..len) in a store for vendor verification,
 * with the flags libcurl would set on its own per-connection store.
 * Returns a new store, or NULL when no certificate could be read. */
static X509_STORE *ca_store_new(const char *pem, size_t len)
{
    X509_STORE *store = X509_STORE_new();
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    X509 *x;
    int n = 0;

    if (store == NULL || b == NULL || len > INT_MAX)
        goto fail;
    while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        int ok = X509_STORE_add_cert(store, x);
        X509_free(x);
        if (ok != 1)
            goto fail;
        n++;
    }
    ERR_clear_error();   /* the loop ends on "no start line" */
    if (n == 0)
        goto fail;
    X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN | X509_V_FLAG_TRUSTED_FIRST);
    BIO_free(b);
    return store;
fail:
    ERR_clear_error();
    BIO_free(b);
    X509_STORE_free(store);
    return NULL;
}

CURLcode runtime_curl_ssl_ctx(CURL *curl, void *sslctx, void *userp)
{
    const rt_upstream *u = userp;
    char err[512];

    (void)curl;
    if (tls_profile_apply(sslctx, u->profile, err, sizeof(err)) != 0) {
        log_err("upstream %s: %s", u->conf->name, err);
        return CURLE_SSL_CIPHER;
    }
    /* A vendor connection spends most of its life waiting for a reply:
     * give OpenSSL's record buffers back meanwhile. */
    SSL_CTX_set_mode(sslctx, SSL_MODE_RELEASE_BUFFERS);
    /* Decrypted replies hold translations with personal data restored
     * later: OpenSSL wipes its record buffers before releasing them. */
    SSL_CTX_set_options(sslctx, SSL_OP_CLEANSE_PLAINTEXT);
    /* libcurl builds an SSL_CTX per vendor connection and parses the CA
     * blob into it; the same certificates, parsed once, serve them all
     * (thousands of connections wait on a slow vendor at once). */
    if (u->ca_store != NULL)
        SSL_CTX_set1_cert_store(sslctx, u->ca_store);
    /* One read per reply instead of a record header and then its body. */
    SSL_CTX_set_read_ahead(sslctx, 1);
    return CURLE_OK;
}

static int load_upstream(rt_upstream *u, const tg_upstream_conf *c, FILE *errs)
{
    char err[512];
    SSL_CTX *probe;
    tg_buf url;

    u->conf = c;
    u->profile = tls_profile_find(c->tls_profile);
    if (u->profile == NULL) {
        fprintf(errs, "upstream %s: unknown TLS profile %s\n", c->name,
                c->tls_profile);
        return -1;
    }
    /* Prove the vendor-leg profile applies cleanly before serving. */
    probe = SSL_CTX_new(TLS_client_method());
    if (probe == NULL || tls_profile_apply(probe, u->profile, err, sizeof(err)) != 0) {
        fprintf(errs, "upstream %s: %s\n", c->name, probe ? err : "no TLS context");
        SSL_CTX_free(probe);
        return -1;
    }
    SSL_CTX_free(probe);
    if (c->api_key_file != NULL) {
        u->vendor_key = secret_read(c->api_key_file, err, sizeof(err));
        if (u->vendor_key == NULL) {
            fprintf(errs, "%s\n", err);
            return -1;
        }
    }
    tg_buf_init(&url, 4096);
    if (strchr(c->scheme_host, ':') != NULL)
        tg_buf_printf(&url, "https://[%s]:%d%s", c->scheme_host, c->port, c->base_path);
    else
        tg_buf_printf(&url, "https://%s:%d%s", c->scheme_host, c->port, c->base_path);
    u->url_prefix = tg_buf_steal(&url, NULL);
    if (u->url_prefix == NULL)
        return -1;
    if (c->ca_file != NULL) {
        /* Read once, so transfers never touch the file system (the process
         * may no longer be allowed to) and a reload is the only way to
         * change trust. */
        FILE *f = fopen(c->ca_file, "rb");
        tg_buf ca;
        char chunk[4096];
        size_t n;
        tg_buf_init(&ca, 4u << 20);
        if (f == NULL) {
            fprintf(errs, "upstream %s: %s: %s\n", c->name, c->ca_file, strerror(errno));
            return -1;
        }
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
            if (tg_buf_add(&ca, chunk, n) != 0)
                break;
        fclose(f);
        if (ca.data == NULL || strstr(ca.data, "-----BEGIN CERTIFICATE-----") == NULL) {
            fprintf(errs, "upstream %s: %s: no PEM certificate (or larger than 4 MiB)\n",
                    c->name, c->ca_file);
            tg_buf_free(&ca);
            return -1;
        }
        u->ca_pem = tg_buf_steal(&ca, &u->ca_len);
        u->ca_store = ca_store_new(u->ca_pem, u->ca_len);
        if (u->ca_store == NULL) {
            fprintf(errs, "upstream %s: %s: cannot parse the certificates\n", c->name,
                    c->ca_file);
            return -1;
        }
    }
    if (c->n_pins > 0) {
        tg_buf pins;
        tg_buf_init(&pins, 16 * 64);
        for (size_t i = 0; i < c->n_pins; i++)
            tg_buf_printf(&pins, "%s%s", i ? ";" : "", c->pins[i]);
        u->pins = tg_buf_steal(&pins, NULL);
        if (u->pins == NULL)
            return -1;
    }
    return resolve_upstream(u, errs);
}

const char *runtime_default_rules(void)
{
    static const char installed[] = TG_RULES_DIR "/default.json";

    if (access(installed, R_OK) == 0)
        return installed;
    return TG_SOURCE_RULES_DIR "/default.json";
}

static pol_engine *load_policy(const tg_config *cfg, FILE *errs)
{
    const char *def = runtime_default_rules();
    const char *const *files = (const char *const *)cfg->policy_rules;
    size_t n = cfg->n_policy_rules;

    if (n == 0) {
        files = &def;
        n = 1;
    }
    return pol_engine_load(files, n, errs);
}

tg_runtime *runtime_load(tg_config *cfg, FILE *errs)
{
    tg_runtime *rt = calloc(1, sizeof(*rt));
    int bad = 0;

    if (rt == NULL) {
        config_free(cfg);
        return NULL;
    }
    rt->cfg = cfg;
    atomic_init(&rt->refs, 1);
    rt->listener_ctx = calloc(cfg->n_listeners, sizeof(SSL_CTX *));
    rt->listener_profile = calloc(cfg->n_listeners, sizeof(tls_profile *));
    rt->upstreams = calloc(cfg->n_upstreams, sizeof(rt_upstream));
    rt->access = access_state_new(cfg);
    if (rt->listener_ctx == NULL || rt->listener_profile == NULL ||
        rt->upstreams == NULL || rt->access == NULL)
        goto fail;
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        const tg_listener_conf *l = &cfg->listeners[i];
        rt->listener_profile[i] = tls_profile_find(l->tls_profile);
        if (rt->listener_profile[i] == NULL) {
            fprintf(errs, "listener %s: unknown TLS profile %s\n", l->address,
                    l->tls_profile);
            bad = 1;
            continue;
        }
        rt->listener_ctx[i] = load_listener_ctx(l, rt->listener_profile[i], errs);
        if (rt->listener_ctx[i] == NULL)
            bad = 1;
    }
    for (size_t i = 0; i < cfg->n_upstreams; i++)
        if (load_upstream(&rt->upstreams[i], &cfg->upstreams[i], errs) != 0)
            bad = 1;
    rt->auth = auth_load(cfg, errs);
    if (rt->auth == NULL)
        bad = 1;
    rt->policy = load_policy(cfg, errs);
    if (rt->policy == NULL)
        bad = 1;
    if (bad)
        goto fail;
    return rt;
fail:
    runtime_free(rt);
    return NULL;
}

const tg_runtime *runtime_ref(const tg_runtime *rt)
{
    tg_runtime *m = (tg_runtime *)(uintptr_t)rt;

    atomic_fetch_add(&m->refs, 1);
    return rt;
}

void runtime_unref(const tg_runtime *rt)
{
    tg_runtime *m = (tg_runtime *)(uintptr_t)rt;

    if (m != NULL && atomic_fetch_sub(&m->refs, 1) == 1)
        runtime_free(m);
}

void runtime_free(tg_runtime *rt)
{
    if (rt == NULL)
        return;
    if (rt->cfg != NULL) {
        for (size_t i = 0; rt->listener_ctx && i < rt->cfg->n_listeners; i++)
            SSL_CTX_free(rt->listener_ctx[i]);
        for (size_t i = 0; rt->upstreams && i < rt->cfg->n_upstreams; i++) {
            tg_free_secret(rt->upstreams[i].vendor_key);
            curl_slist_free_all(rt->upstreams[i].resolve);
            free(rt->upstreams[i].url_prefix);
            free(rt->upstreams[i].pins);
            free(rt->upstreams[i].ca_pem);
            X509_STORE_free(rt->upstreams[i].ca_store);
        }
    }
    free(rt->listener_ctx);
    free(rt->listener_profile);
    free(rt->upstreams);
    access_state_free(rt->access);
    auth_free(rt->auth);
    pol_engine_free(rt->policy);
    config_free(rt->cfg);
    free(rt);
}

int runtime_print(const tg_runtime *rt, FILE *out)
{
    const tg_config *cfg = rt->cfg;

    fprintf(out, "policy: %zu detector(s), %zu marking(s), %zu allow rule(s); digest %s\n",
            pol_engine_ndetectors(rt->policy), pol_engine_nmarkings(rt->policy),
            pol_engine_nallow(rt->policy), pol_engine_digest(rt->policy));

    for (size_t i = 0; i < cfg->n_listeners; i++) {
        const tg_listener_conf *l = &cfg->listeners[i];
        X509 *leaf = SSL_CTX_get0_certificate(rt->listener_ctx[i]);
        int days = 0, secs = 0;

        fprintf(out, "listener %s\n", l->address);
        tls_profile_print(rt->listener_ctx[i], rt->listener_profile[i], "  ", out);
        if (leaf != NULL) {
            BIO *b = BIO_new(BIO_s_mem());
            char when[64] = "";
            if (b != NULL && ASN1_TIME_print(b, X509_get0_notAfter(leaf)) == 1) {
                int n = BIO_read(b, when, (int)sizeof(when) - 1);
                when[n > 0 ? n : 0] = '\0';
            }
            BIO_free(b);
            ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(leaf));
            fprintf(out, "  certificate expires: %s (%d days)%s\n", when, days,
                    days < EXPIRY_WARN_DAYS ? "  WARNING: renew soon" : "");
        }
        fprintf(out, "  client certificates: %s\n",
                l->client_auth == TG_CLIENT_AUTH_REQUIRED ? "required" :
                l->client_auth == TG_CLIENT_AUTH_OPTIONAL ? "optional" : "not asked");
    }
    for (size_t i = 0; i < cfg->n_upstreams; i++) {
        const rt_upstream *u = &rt->upstreams[i];
        SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
        char err[256];
        fprintf(out, "upstream %s (%s) %s -> %s\n", u->conf->name,
                u->conf->adapter == TG_ADAPTER_DEEPL ? "deepl" : "apertium",
                u->url_prefix, u->address);
        if (ctx != NULL && tls_profile_apply(ctx, u->profile, err, sizeof(err)) == 0)
            tls_profile_print(ctx, u->profile, "  ", out);
        SSL_CTX_free(ctx);
    }
    return 0;
}
