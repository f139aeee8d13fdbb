/*
 * config: the daemon's configuration, parsed strictly from one JSON file.
 *
 * Unknown keys, wrong types and out-of-range values are errors, reported one
 * line per problem as "FILE:LINE:COLUMN: $.json.path: message".  Secrets are
 * never in this file: it names files that hold them (see secret.h).
 *
 * A tg_config is immutable once loaded; workers share it read-only.
 */
#ifndef TG_CONFIG_H
#define TG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "log.h"

#define TG_DEFAULT_MAX_BODY       (128u * 1024u)
#define TG_DEFAULT_TLS_PROFILE    "cryptrec-strict"
#define TG_AUDIT_BATCH_MS_DEFAULT 50    /* audit "batch_ms", see docs/audit.md */
#define TG_NAME_MAX               64    /* upstream and client names */

typedef enum tg_adapter_kind {
    TG_ADAPTER_DEEPL = 0,     /* any vendor speaking DeepL API v2 */
    TG_ADAPTER_APERTIUM = 1   /* Apertium APY (/translate, /listPairs) */
} tg_adapter_kind;

typedef enum tg_client_auth {
    TG_CLIENT_AUTH_NONE = 0,      /* no client certificate asked */
    TG_CLIENT_AUTH_OPTIONAL = 1,  /* asked; verified when sent */
    TG_CLIENT_AUTH_REQUIRED = 2   /* handshake fails without a valid one */
} tg_client_auth;

/* A source network: address and prefix length. */
typedef struct tg_cidr {
    int family;                  /* AF_INET or AF_INET6 */
    unsigned char addr[16];      /* network byte order; 4 bytes used for IPv4 */
    int prefix;
} tg_cidr;

/* "listeners": [ ... ] */
typedef struct tg_listener_conf {
    char *address;       /* "127.0.0.1:8443", "[::1]:8443", "0.0.0.0:443" */
    char *host;          /* parsed from address: numeric host */
    char *port;          /* parsed from address: numeric port */
    char *certificate;   /* PEM chain file */
    char *private_key;   /* PEM key file: a secret (permission-checked) */
    char *tls_profile;   /* name in the TLS profile table */
    tg_client_auth client_auth;
    char *client_ca_file;  /* CAs that issue terminal certificates; NULL if none */
    char *crl_file;        /* revocation list for them; NULL if none */
    int line, column;    /* where the object starts, for later diagnostics */
} tg_listener_conf;

/* "upstreams": [ ... ] */
typedef struct tg_upstream_conf {
    char *name;
    tg_adapter_kind adapter;
    char *url;              /* base URL, https only, e.g. "https://api.deepl.com" */
    char *scheme_host;      /* parsed: host name or literal (no brackets) */
    int   port;             /* parsed: port (443 when absent) */
    char *base_path;        /* parsed: path prefix without trailing '/', "" if none */
    char *api_key_file;     /* secret file with the vendor key; NULL if none */
    char *ca_file;          /* PEM bundle; NULL means the system store */
    char *tls_profile;      /* vendor-leg TLS profile */
    long  connect_timeout_ms;   /* default 3000 */
    long  timeout_ms;           /* total per attempt, default 30000 */
    int   max_retries;          /* default 2 */
    long  retry_backoff_ms;     /* first backoff, doubled each retry; default 200 */
    int   max_connections;      /* per worker, default 64 */
    char *default_source_lang;  /* for engines that cannot detect; NULL if none */
    int   clearance;            /* highest level it may receive: 1 (service used
                                   under standard terms, the default) or 2 */
    char **pins;                /* "sha256//<base64>" public key pins; NULL if none */
    size_t n_pins;
    char *proxy;                /* "http://host:port" egress proxy; NULL if none */
    bool  suspended;            /* forwarding to it suspended (OPS-1), the
                                   persistent form of the suspend switch */
    int line, column;
} tg_upstream_conf;

/* "clients": [ ... ] */
typedef struct tg_client_conf {
    char *name;
    char *api_key_hashes;  /* secret file: one "sha256:<64 hex>" per line;
                              NULL when the client uses certificates only */
    char **cert_cn;        /* certificate subject CNs that identify it */
    size_t n_cert_cn;
    tg_cidr *networks;     /* allowed source networks; none: any */
    size_t n_networks;
    long  max_concurrent;  /* requests at once; 0 = unlimited */
    long  requests_per_second; /* sustained rate (burst: one second's worth); 0 = unlimited */
    long long chars_per_day;   /* characters translated per UTC day; 0 = unlimited */
    char *upstream;        /* name of the upstream this client uses */
    bool  disabled;
    int   default_level;   /* level of unlabelled text, 1..3 (default 2) */
    int   clearance;       /* highest level it may send, 1..2 (default 2) */
    int line, column;
} tg_client_conf;

typedef struct tg_config {
    char *path;                 /* file it was loaded from */
    int   workers;              /* 0 = one per CPU */
    char *user;                 /* account to switch to when started as root; NULL: none */
    char *admin_socket;         /* UNIX socket of the admin plane; NULL: none */
    tg_log_level log_level;
    bool  log_syslog;

    /* "limits" */
    size_t max_body_bytes;       /* default 128 KiB */
    int    max_connections;      /* per worker, default 4096 */
    int    max_inflight;         /* per worker requests waiting on a vendor, default 4096 */
    long   handshake_timeout_ms; /* default 10000 */
    long   idle_timeout_ms;      /* default 60000 */
    long   drain_timeout_ms;     /* default 15000 */

    /* "policy" */
    char **policy_rules;         /* rule pack files in load order; NULL: default pack */
    size_t n_policy_rules;
    bool   placeholder_best_effort; /* "placeholder_loss": "best_effort" */

    /* "audit" */
    char *audit_path;            /* NULL: no audit section */
    char *audit_key_file;
    int   audit_fsync;           /* 0 always, 1 interval, 2 never */
    long  audit_fsync_interval_ms;
    long  audit_batch_ms;
    long  audit_queue_size;
    bool  audit_continue_on_failure;
    char *audit_syslog;          /* "udp:HOST:PORT" / "tcp:HOST:PORT" or NULL */

    tg_listener_conf *listeners;
    size_t n_listeners;
    tg_upstream_conf *upstreams;
    size_t n_upstreams;
    tg_client_conf *clients;
    size_t n_clients;
} tg_config;

/* Load and validate the file at path.  Returns a new config, or NULL after
 * writing one line per problem to errs (never request data: the file is the
 * operator's).  Validation includes cross-references (a client's upstream must
 * exist, names unique, TLS profile names known) and that referenced files
 * exist; it does not read secrets. */
tg_config *config_load(const char *path, FILE *errs);

/* Flags for config_load_opts. */
#define CONFIG_ALLOW_MISSING_KEY_HASHES 0x1u  /* a client's api_key_hashes
    file may be absent if its directory exists: for `transgate key new`,
    which creates it */

/* config_load with flags (0 behaves exactly as config_load).  Same return
 * and ownership. */
tg_config *config_load_opts(const char *path, unsigned flags, FILE *errs);

/* Free a config.  NULL is accepted. */
void config_free(tg_config *cfg);

/* Look up by name.  Returns a borrowed pointer or NULL. */
const tg_upstream_conf *config_upstream(const tg_config *cfg, const char *name);

/* Is the address (AF_INET/AF_INET6 bytes) inside the network?  Cannot
 * fail. */
int config_cidr_match(const tg_cidr *net, int family, const unsigned char *addr);

/* Index of an upstream in cfg->upstreams, or -1. */
int config_upstream_index(const tg_config *cfg, const char *name);

/* Write the effective configuration (defaults filled in, relative paths
 * resolved) to out in a readable, stable form; paths are shown but no secret
 * is ever read.  Returns 0, or -1 if writing to out failed. */
int config_print(const tg_config *cfg, FILE *out);

#endif
