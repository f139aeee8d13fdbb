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
#include "upstream.h"

#define EXPIRY_WARN_DAYS 30

/* Runtime generations: a vendor connection opened under one runtime is
 * never handed to a request of another (trust may have changed). */
static _Atomic uint64_t next_gen;

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

/* Resolve host:port once, here, so no transfer ever waits for a resolver
 * and the audit trail can name the address used.  Returns 0, or -1 after
 * saying why in errs. */
static int resolve_addrs(rt_upstream *u, const char *host, int port, FILE *errs)
{
    struct addrinfo hints, *res = NULL, *ai;
    char portstr[16];
    size_t n = 0;
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(portstr, sizeof(portstr), "%d", port);
    rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0) {
        fprintf(errs, "upstream %s: cannot resolve %s: %s\n", u->conf->name, host,
                gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next)
        n++;
    u->addrs = calloc(n ? n : 1, sizeof(*u->addrs));
    if (u->addrs == NULL) {
        freeaddrinfo(res);
        return -1;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        rt_addr *a = &u->addrs[u->n_addrs];
        const void *src;
        if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
            ai->ai_addrlen > sizeof(a->sa))
            continue;
        src = ai->ai_family == AF_INET6
            ? (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
            : (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr;
        if (inet_ntop(ai->ai_family, src, a->text, sizeof(a->text)) == NULL)
            continue;
        memcpy(&a->sa, ai->ai_addr, ai->ai_addrlen);
        a->len = (socklen_t)ai->ai_addrlen;
        u->n_addrs++;
    }
    freeaddrinfo(res);
    if (u->n_addrs == 0) {
        fprintf(errs, "upstream %s: no usable address for %s\n", u->conf->name, host);
        return -1;
    }
    snprintf(u->address, sizeof(u->address), "%s", u->addrs[0].text);
    return 0;
}

/* Where the upstream's connections go: its host, or the proxy that tunnels
 * to it.  Through a proxy the vendor's name is resolved by the proxy (an
 * agency network may have no public DNS at all). */
static int resolve_upstream(rt_upstream *u, FILE *errs)
{
    const tg_upstream_conf *c = u->conf;
    char host[520];
    const char *colon;
    char *end;
    long port;

    if (c->proxy == NULL)
        return resolve_addrs(u, c->scheme_host, c->port, errs);
    /* "http://HOST:PORT" (validated by config), HOST possibly [v6]. */
    snprintf(host, sizeof(host), "%s", c->proxy + 7);
    colon = strrchr(host, ':');
    if (colon == NULL || (host[0] == '[' && strchr(host, ']') > colon)) {
        fprintf(errs, "upstream %s: proxy: no port\n", c->name);
        return -1;
    }
    port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 1 || port > 65535) {
        fprintf(errs, "upstream %s: proxy: bad port\n", c->name);
        return -1;
    }
    host[colon - host] = '\0';
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
    }
    return resolve_addrs(u, host, (int)port, errs);
}

/* The certificates of pem[0..len) in a store for vendor verification,
 * that also accepts a configured intermediate as an anchor (partial chain).
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

/* The vendor leg's TLS context: the upstream's profile, peer verification
 * always on, the configured CAs and nothing else (or the system store), and
 * client-side session resumption.  Returns NULL after saying why. */
static SSL_CTX *vendor_ctx_new(const rt_upstream *u, X509_STORE *store, FILE *errs)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    char err[512];

    if (ctx == NULL || tls_profile_apply(ctx, u->profile, err, sizeof(err)) != 0) {
        fprintf(errs, "upstream %s: %s\n", u->conf->name, ctx ? err : "no TLS context");
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (store != NULL) {
        SSL_CTX_set1_cert_store(ctx, store);
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        fprintf(errs, "upstream %s: cannot load the system CA store\n", u->conf->name);
        SSL_CTX_free(ctx);
        return NULL;
    }
    /* A vendor connection spends most of its life waiting for a reply:
     * give OpenSSL's record buffers back meanwhile.  Decrypted replies hold
     * translations that get personal data restored later: OpenSSL wipes its
     * record buffers before releasing them.  One read per reply instead of
     * a record header and then its body. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(ctx, SSL_OP_CLEANSE_PLAINTEXT);
    SSL_CTX_set_read_ahead(ctx, 1);
    /* Sessions are kept per worker and upstream (upstream.c), not in the
     * context's internal cache shared by every thread. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
                                        SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, upstream_session_cb);
    if (SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)"\x08http/1.1", 9) != 0) {
        fprintf(errs, "upstream %s: cannot set ALPN\n", u->conf->name);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static char *host_port(const char *host, int port, int omit_443)
{
    tg_buf b;
    int v6 = strchr(host, ':') != NULL;

    tg_buf_init(&b, 1024);
    if (omit_443 && port == 443)
        tg_buf_printf(&b, v6 ? "[%s]" : "%s", host);
    else
        tg_buf_printf(&b, v6 ? "[%s]:%d" : "%s:%d", host, port);
    return tg_buf_steal(&b, NULL);
}

static int load_upstream(rt_upstream *u, const tg_upstream_conf *c, uint64_t gen,
                         FILE *errs)
{
    char err[512];
    X509_STORE *store = NULL;
    tg_buf url;
    struct in6_addr ip;

    u->conf = c;
    u->gen = gen;
    u->profile = tls_profile_find(c->tls_profile);
    if (u->profile == NULL) {
        fprintf(errs, "upstream %s: unknown TLS profile %s\n", c->name,
                c->tls_profile);
        return -1;
    }
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
    u->host_header = host_port(c->scheme_host, c->port, 1);
    u->authority = host_port(c->scheme_host, c->port, 0);
    if (u->url_prefix == NULL || u->host_header == NULL || u->authority == NULL)
        return -1;
    u->host_is_ip = inet_pton(AF_INET, c->scheme_host, &ip) == 1 ||
                    inet_pton(AF_INET6, c->scheme_host, &ip) == 1;
    if (c->ca_file != NULL) {
        /* Read once, so connections never touch the file system (the
         * process may no longer be allowed to) and a reload is the only way
         * to change trust. */
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
        store = ca_store_new(ca.data, ca.len);
        tg_buf_free(&ca);
        if (store == NULL) {
            fprintf(errs, "upstream %s: %s: cannot parse the certificates\n", c->name,
                    c->ca_file);
            return -1;
        }
    }
    u->ssl_ctx = vendor_ctx_new(u, store, errs);
    X509_STORE_free(store);   /* the context holds its own reference */
    if (u->ssl_ctx == NULL)
        return -1;
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
    rt->gen = atomic_fetch_add(&next_gen, 1) + 1;
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
        if (load_upstream(&rt->upstreams[i], &cfg->upstreams[i], rt->gen, errs) != 0)
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
            free(rt->upstreams[i].addrs);
            free(rt->upstreams[i].url_prefix);
            free(rt->upstreams[i].host_header);
            free(rt->upstreams[i].authority);
            SSL_CTX_free(rt->upstreams[i].ssl_ctx);
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
        fprintf(out, "upstream %s (%s) %s -> %s%s\n", u->conf->name,
                u->conf->adapter == TG_ADAPTER_DEEPL ? "deepl" : "apertium",
                u->url_prefix, u->address, u->conf->proxy ? " (proxy)" : "");
        tls_profile_print(u->ssl_ctx, u->profile, "  ", out);
    }
    return 0;
}
