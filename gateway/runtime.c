#include "runtime.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

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
    /* Session resumption through tickets keeps state on the terminal side
     * only; no server-side cache to wipe. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                          SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                          SSL_MODE_RELEASE_BUFFERS);
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

CURLcode runtime_curl_ssl_ctx(CURL *curl, void *sslctx, void *userp)
{
    const rt_upstream *u = userp;
    char err[512];

    (void)curl;
    if (tls_profile_apply(sslctx, u->profile, err, sizeof(err)) != 0) {
        log_err("upstream %s: %s", u->conf->name, err);
        return CURLE_SSL_CIPHER;
    }
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
    rt->listener_ctx = calloc(cfg->n_listeners, sizeof(SSL_CTX *));
    rt->listener_profile = calloc(cfg->n_listeners, sizeof(tls_profile *));
    rt->upstreams = calloc(cfg->n_upstreams, sizeof(rt_upstream));
    rt->usage = calloc(cfg->n_clients ? cfg->n_clients : 1, sizeof(*rt->usage));
    if (rt->listener_ctx == NULL || rt->listener_profile == NULL ||
        rt->upstreams == NULL || rt->usage == NULL)
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
        }
    }
    free(rt->listener_ctx);
    free(rt->listener_profile);
    free(rt->upstreams);
    free((void *)(uintptr_t)rt->usage);
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
        fprintf(out, "listener %s\n", cfg->listeners[i].address);
        tls_profile_print(rt->listener_ctx[i], rt->listener_profile[i], "  ", out);
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
