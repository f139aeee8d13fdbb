/*
 * runtime: everything the workers share, built once from a validated config:
 * listener TLS contexts, client key hashes, vendor keys, vendor addresses.
 * Immutable after runtime_load; read by every worker thread.
 */
#ifndef TG_RUNTIME_H
#define TG_RUNTIME_H

#include <stdint.h>
#include <stdio.h>

#include <sys/socket.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "auth.h"
#include "pol.h"
#include "config.h"
#include "tls_profile.h"

/* One address to connect to, resolved at load. */
typedef struct rt_addr {
    struct sockaddr_storage sa;
    socklen_t len;
    char text[64];                  /* numeric form (audit, diagnostics) */
} rt_addr;

typedef struct rt_upstream {
    const tg_upstream_conf *conf;   /* borrowed from cfg */
    const tls_profile *profile;
    uint64_t gen;                   /* the runtime's generation (tg_runtime.gen) */
    char *vendor_key;               /* secret, NULL if none */
    rt_addr *addrs;                 /* where connections go: the vendor's
                                       addresses, or the proxy's when one is
                                       configured */
    size_t n_addrs;
    char address[64];               /* addrs[0].text (check, audit) */
    char *url_prefix;               /* "https://host:port" + base_path (display) */
    char *host_header;              /* Host: "host" or "host:port" */
    char *authority;                /* "host:port" for a proxy's CONNECT */
    int host_is_ip;                 /* host is a literal: no SNI, IP check */
    SSL_CTX *ssl_ctx;               /* vendor leg: profile applied, peer
                                       verification on, configured CAs or the
                                       system store; shared by every worker */
} rt_upstream;

typedef struct tg_runtime {
    _Atomic int refs;               /* holders: server, workers, requests */
    uint64_t gen;                   /* distinct for every runtime loaded */
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

#endif
