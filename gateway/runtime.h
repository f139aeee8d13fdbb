/*
 * runtime: everything the workers share, built once from a validated config:
 * listener TLS contexts, client key hashes, vendor keys, vendor addresses.
 * Immutable after runtime_load; read by every worker thread.
 */
#ifndef TG_RUNTIME_H
#define TG_RUNTIME_H

#include <stdio.h>

#include <curl/curl.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "auth.h"
#include "pol.h"
#include "config.h"
#include "tls_profile.h"

typedef struct rt_upstream {
    const tg_upstream_conf *conf;   /* borrowed from cfg */
    const tls_profile *profile;
    char *vendor_key;               /* secret, NULL if none */
    struct curl_slist *resolve;     /* CURLOPT_RESOLVE: host:port:address */
    char address[64];               /* first resolved address (audit) */
    char *url_prefix;               /* "https://host:port" + base_path */
    char *pins;                     /* CURLOPT_PINNEDPUBLICKEY form, or NULL */
    char *ca_pem;                   /* ca_file's contents, read at load; NULL:
                                       system store */
    size_t ca_len;
    X509_STORE *ca_store;           /* the same CAs, parsed once and shared by
                                       every vendor connection (or NULL) */
} rt_upstream;

typedef struct tg_runtime {
    _Atomic int refs;               /* holders: server, workers, requests */
    tg_config *cfg;                 /* owned */
    SSL_CTX **listener_ctx;         /* one per cfg->listeners */
    const tls_profile **listener_profile;
    auth_table *auth;
    pol_engine *policy;             /* compiled rule packs */
    rt_upstream *upstreams;         /* one per cfg->upstreams */
    /* The one mutable part: per-client limits and usage (access.h), shared
     * by every worker under its own locks. */
    struct access_state *access;
} tg_runtime;

/* Build the runtime from cfg (which it takes ownership of, even on failure):
 * load certificates and keys (permission-checked), apply and verify TLS
 * profiles, load client key hashes and vendor keys, resolve vendor hosts.
 * Returns NULL after writing one line per problem to errs. */
tg_runtime *runtime_load(tg_config *cfg, FILE *errs);

/* The default rule pack: the installed one, else the source tree's (a
 * development build run from its checkout).  Returns a static path. */
const char *runtime_default_rules(void);

/* Take a reference (the runtime stays alive until every holder let go).
 * Returns rt.  Cannot fail. */
const tg_runtime *runtime_ref(const tg_runtime *rt);

/* Drop a reference; the last one frees the runtime.  NULL-safe. */
void runtime_unref(const tg_runtime *rt);

/* Free now, whatever the references (start-up failures only).  Wipes
 * secrets.  NULL-safe. */
void runtime_free(tg_runtime *rt);

/* Print the effective listeners and upstreams with their TLS settings (for
 * `transgate check`).  Returns 0 or -1. */
int runtime_print(const tg_runtime *rt, FILE *out);

/* Apply an upstream's profile to an SSL_CTX curl is about to use; the
 * CURLOPT_SSL_CTX_FUNCTION callback, with the rt_upstream as its data. */
CURLcode runtime_curl_ssl_ctx(CURL *curl, void *sslctx, void *userp);

#endif
