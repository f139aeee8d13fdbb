#include "access.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "timer.h"

struct client_state {
    atomic_long inflight;
    pthread_mutex_t lock;         /* guards the token bucket and the day */
    double tokens;
    uint64_t last_ms;
    long day;                     /* days since the epoch, UTC */
    unsigned long long chars;     /* counted on `day` */
};

struct access_state {
    size_t n;
    struct client_state c[];
};

const char *access_strerror(access_err e)
{
    switch (e) {
    case ACCESS_OK: return "allowed";
    case ACCESS_NO_CREDENTIALS: return "no key or client certificate";
    case ACCESS_UNKNOWN_KEY: return "unknown key";
    case ACCESS_UNKNOWN_CERT: return "certificate not registered for any client";
    case ACCESS_DISABLED: return "client disabled";
    case ACCESS_KEY_REQUIRED: return "this client must also send its key";
    case ACCESS_CERT_REQUIRED: return "this client must also present its certificate";
    case ACCESS_CERT_MISMATCH: return "key and certificate belong to different clients";
    case ACCESS_NETWORK: return "source address not allowed for this client";
    case ACCESS_CONCURRENCY: return "too many requests at once";
    case ACCESS_RATE: return "too many requests per second";
    case ACCESS_DAILY_CHARS: return "daily character allowance used up";
    }
    return "refused";
}

const char *access_code(access_err e)
{
    switch (e) {
    case ACCESS_OK: return "ok";
    case ACCESS_NO_CREDENTIALS: return "auth_failed";
    case ACCESS_UNKNOWN_KEY: return "auth_failed";
    case ACCESS_UNKNOWN_CERT: return "auth_failed";
    case ACCESS_DISABLED: return "auth_failed";
    case ACCESS_KEY_REQUIRED: return "auth_failed";
    case ACCESS_CERT_REQUIRED: return "auth_failed";
    case ACCESS_CERT_MISMATCH: return "auth_failed";
    case ACCESS_NETWORK: return "network_not_allowed";
    case ACCESS_CONCURRENCY: return "too_many_concurrent_requests";
    case ACCESS_RATE: return "rate_limited";
    case ACCESS_DAILY_CHARS: return "daily_character_limit";
    }
    return "auth_failed";
}

const char *access_reason(access_err e)
{
    switch (e) {
    case ACCESS_OK: return "ok";
    case ACCESS_NO_CREDENTIALS: return "no_credentials";
    case ACCESS_UNKNOWN_KEY: return "unknown_key";
    case ACCESS_UNKNOWN_CERT: return "unknown_certificate";
    case ACCESS_DISABLED: return "client_disabled";
    case ACCESS_KEY_REQUIRED: return "key_required";
    case ACCESS_CERT_REQUIRED: return "certificate_required";
    case ACCESS_CERT_MISMATCH: return "certificate_mismatch";
    case ACCESS_NETWORK: return "network_not_allowed";
    case ACCESS_CONCURRENCY: return "too_many_concurrent_requests";
    case ACCESS_RATE: return "rate_limited";
    case ACCESS_DAILY_CHARS: return "daily_character_limit";
    }
    return "refused";
}

access_state *access_state_new(const tg_config *cfg)
{
    access_state *st = calloc(1, sizeof(*st) + cfg->n_clients * sizeof(st->c[0]));

    if (st == NULL)
        return NULL;
    st->n = cfg->n_clients;
    for (size_t i = 0; i < st->n; i++) {
        atomic_init(&st->c[i].inflight, 0);
        pthread_mutex_init(&st->c[i].lock, NULL);
        st->c[i].tokens = (double)cfg->clients[i].requests_per_second;
    }
    return st;
}

void access_state_free(access_state *st)
{
    if (st == NULL)
        return;
    for (size_t i = 0; i < st->n; i++)
        pthread_mutex_destroy(&st->c[i].lock);
    free(st);
}

static int cert_names(const tg_client_conf *cl, const char *cn)
{
    for (size_t i = 0; i < cl->n_cert_cn; i++)
        if (strcmp(cl->cert_cn[i], cn) == 0)
            return 1;
    return 0;
}

static int network_ok(const tg_client_conf *cl, const struct sockaddr *peer)
{
    const unsigned char *addr;
    int family = peer->sa_family;

    if (cl->n_networks == 0)
        return 1;
    if (family == AF_INET)
        addr = (const unsigned char *)&((const struct sockaddr_in *)(const void *)peer)->sin_addr;
    else if (family == AF_INET6)
        addr = (const unsigned char *)&((const struct sockaddr_in6 *)(const void *)peer)->sin6_addr;
    else
        return 0;
    for (size_t i = 0; i < cl->n_networks; i++)
        if (config_cidr_match(&cl->networks[i], family, addr))
            return 1;
    return 0;
}

access_err access_identify(const tg_runtime *rt, const char *key, size_t keylen,
                           const char *cert_cn, const struct sockaddr *peer,
                           int *client)
{
    const tg_config *cfg = rt->cfg;
    const tg_client_conf *cl;
    int by_key = -1, by_cert = -1, disabled = 0;

    *client = -1;
    if (key == NULL && cert_cn == NULL)
        return ACCESS_NO_CREDENTIALS;
    if (key != NULL) {
        by_key = auth_lookup(rt->auth, key, keylen, &disabled);
        if (by_key < 0)
            return disabled ? ACCESS_DISABLED : ACCESS_UNKNOWN_KEY;
    }
    if (cert_cn != NULL) {
        for (size_t i = 0; i < cfg->n_clients; i++) {
            if (cert_names(&cfg->clients[i], cert_cn)) {
                by_cert = (int)i;
                break;
            }
        }
    }
    if (by_key >= 0) {
        *client = by_key;
        cl = &cfg->clients[by_key];
        if (cl->n_cert_cn > 0) {
            if (cert_cn == NULL)
                return ACCESS_CERT_REQUIRED;
            if (!cert_names(cl, cert_cn))
                return ACCESS_CERT_MISMATCH;
        }
    } else {
        if (by_cert < 0)
            return ACCESS_UNKNOWN_CERT;
        *client = by_cert;
        cl = &cfg->clients[by_cert];
        if (cl->api_key_hashes != NULL)
            return ACCESS_KEY_REQUIRED;
    }
    if (cl->disabled)
        return ACCESS_DISABLED;
    if (!network_ok(cl, peer))
        return ACCESS_NETWORK;
    return ACCESS_OK;
}

access_err access_enter(const tg_runtime *rt, int client)
{
    const tg_client_conf *cl = &rt->cfg->clients[client];
    struct client_state *cs = &rt->access->c[client];

    if (cl->requests_per_second > 0) {
        uint64_t now = tg_now_ms();
        double rate = (double)cl->requests_per_second;
        int ok;

        /* Token bucket holding one second's worth. */
        pthread_mutex_lock(&cs->lock);
        if (cs->last_ms != 0) {
            cs->tokens += rate * (double)(now - cs->last_ms) / 1000.0;
            if (cs->tokens > rate)
                cs->tokens = rate;
        }
        cs->last_ms = now;
        ok = cs->tokens >= 1.0;
        if (ok)
            cs->tokens -= 1.0;
        pthread_mutex_unlock(&cs->lock);
        if (!ok)
            return ACCESS_RATE;
    }
    if (atomic_fetch_add(&cs->inflight, 1) >= cl->max_concurrent &&
        cl->max_concurrent > 0) {
        atomic_fetch_sub(&cs->inflight, 1);
        return ACCESS_CONCURRENCY;
    }
    return ACCESS_OK;
}

void access_leave(const tg_runtime *rt, int client)
{
    atomic_fetch_sub(&rt->access->c[client].inflight, 1);
}

static long utc_day(void)
{
    return (long)(time(NULL) / 86400);
}

access_err access_charge(const tg_runtime *rt, int client, size_t n)
{
    const tg_client_conf *cl = &rt->cfg->clients[client];
    struct client_state *cs = &rt->access->c[client];
    long day = utc_day();
    access_err rc = ACCESS_OK;

    pthread_mutex_lock(&cs->lock);
    if (cs->day != day) {
        cs->day = day;
        cs->chars = 0;
    }
    if (cl->chars_per_day > 0 &&
        cs->chars + n > (unsigned long long)cl->chars_per_day)
        rc = ACCESS_DAILY_CHARS;
    else
        cs->chars += n;
    pthread_mutex_unlock(&cs->lock);
    return rc;
}

void access_usage(const tg_runtime *rt, int client, unsigned long long *count,
                  unsigned long long *limit)
{
    struct client_state *cs = &rt->access->c[client];

    pthread_mutex_lock(&cs->lock);
    *count = cs->day == utc_day() ? cs->chars : 0;
    pthread_mutex_unlock(&cs->lock);
    *limit = (unsigned long long)rt->cfg->clients[client].chars_per_day;
}
