/*
 * worker: one event loop thread that owns, share-nothing, its TLS front
 * listeners and connections (TLS and HTTP/1.1, tls_front) and its vendor
 * client (upstream).  Workers share only the immutable runtime.
 */
#ifndef TG_WORKER_H
#define TG_WORKER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime.h"
#include "timer.h"

/* The object that embeds member `member` of type `type` at p. */
#define container_of(p, type, member) \
    ((type *)(void *)((char *)(p) - offsetof(type, member)))

/* Anything registered with the worker's epoll embeds one of these; the
 * epoll data pointer points at it. */
typedef struct ev_handler ev_handler;
struct ev_handler {
    void (*fn)(ev_handler *h, uint32_t events);
    int dead;       /* owner closed: ignore events still in the current batch */
};

struct front_listener;
struct front_conn;
struct upstream_ctx;
struct audit_log;
struct suspend_state;

typedef enum worker_state {
    WORKER_RUNNING = 0,
    WORKER_DRAINING = 1,   /* no new connections; finish what is in flight */
    WORKER_STOPPING = 2    /* drain deadline passed or done: leave the loop */
} worker_state;

/* Per-worker counters, read (racily, as monotonic snapshots) by the admin
 * plane. */
typedef struct worker_stats {
    uint64_t connections;
    uint64_t handshake_failures;
    uint64_t requests;
    uint64_t responses_by_class[6];   /* 1xx..5xx, index = status / 100 */
    uint64_t refused_suspended;       /* 503 upstream_suspended */
} worker_stats;

typedef struct worker {
    int id;
    pthread_t thread;
    const tg_runtime *rt;        /* current snapshot (a reference) */
    int epfd;
    int wake_fd;                 /* eventfd: commands from the main thread */
    ev_handler wake_h;
    volatile int cmd_drain;      /* set by the main thread before waking */
    pthread_mutex_t cmd_lock;
    const tg_runtime *next_rt;   /* a reloaded runtime to switch to (a reference) */
    worker_state state;
    uint64_t drain_deadline;
    tg_timers timers;

    struct front_listener *listeners;
    size_t n_listeners;
    struct front_conn *conns;    /* doubly-linked list of live connections */
    int n_conns;


    struct upstream_ctx *up;
    struct audit_log *audit;     /* the process's audit trail (shared) */
    struct suspend_state *susp;  /* the suspend switch (shared) */
    char *relay_pool[256];       /* spare FRONT_BUF read buffers (wiped) */
    size_t n_relay_pool;
    void **grave;                /* owners freed once the current batch is done */
    size_t n_grave, grave_alloc;
    int n_active;                /* HTTP requests between first byte and completion */
    int n_inflight;              /* requests waiting on a vendor */
    worker_stats stats;
    uint64_t id_prefix;          /* request ids: random per worker ... */
    uint64_t id_counter;         /* ... and a counter */
} worker;

/* Create a worker's loop, listeners (SO_REUSEPORT) and vendor client.  audit
 * (NULL only in benchmark builds) and susp are borrowed and shared by every
 * worker.  Returns 0, or -1 after logging why (and cleaning up). */
int worker_init(worker *w, int id, const tg_runtime *rt, struct audit_log *audit,
                struct suspend_state *susp);

/* Start the thread.  Returns 0 or -1. */
int worker_start(worker *w);

/* Ask a running worker to drain (thread-safe).  Cannot fail. */
void worker_drain(worker *w);

/* Hand the worker a new runtime (thread-safe; takes a reference of its
 * own).  The worker switches between events: new connections and requests
 * use it, requests in flight finish under the one they started with.
 * The listeners' addresses must be the same.  Cannot fail. */
void worker_set_runtime(worker *w, const tg_runtime *rt);

/* Join the thread and free everything.  Cannot fail. */
void worker_join(worker *w);

/* Free p (which embeds the ev_handler(s) listed, now marked dead) once
 * the events of the current epoll batch have been dispatched: a later event
 * in the same batch may still point at it.  Cannot fail. */
void worker_bury(worker *w, void *p);

/* Register / modify / remove an fd in the worker's epoll.  Return 0 or -1. */
int worker_watch(worker *w, int fd, uint32_t events, ev_handler *h);
int worker_rewatch(worker *w, int fd, uint32_t events, ev_handler *h);
void worker_unwatch(worker *w, int fd);

#endif
