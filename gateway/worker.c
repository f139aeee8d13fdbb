#include "worker.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "http.h"
#include "log.h"
#include "tls_front.h"
#include "upstream.h"

static int watch_ctl(worker *w, int op, int fd, uint32_t events, ev_handler *h)
{
    struct epoll_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.events = events;
    ev.data.ptr = h;
    if (epoll_ctl(w->epfd, op, fd, &ev) != 0) {
        log_warn("worker %d: epoll %s: %s", w->id,
                 op == EPOLL_CTL_ADD ? "add" : "modify", strerror(errno));
        return -1;
    }
    return 0;
}

int worker_watch(worker *w, int fd, uint32_t events, ev_handler *h)
{
    return watch_ctl(w, EPOLL_CTL_ADD, fd, events, h);
}

int worker_rewatch(worker *w, int fd, uint32_t events, ev_handler *h)
{
    return watch_ctl(w, EPOLL_CTL_MOD, fd, events, h);
}

void worker_unwatch(worker *w, int fd)
{
    epoll_ctl(w->epfd, EPOLL_CTL_DEL, fd, NULL);
}

void worker_bury(worker *w, void *p)
{
    if (w->n_grave == w->grave_alloc) {
        size_t na = w->grave_alloc ? w->grave_alloc * 2 : 64;
        void **g = realloc(w->grave, na * sizeof(*g));
        if (g == NULL) {
            /* Cannot defer: wait for the batch to end before freeing
             * would need memory we do not have; the object is leaked
             * rather than risk a use after free. */
            log_err("worker %d: out of memory deferring a free", w->id);
            return;
        }
        w->grave = g;
        w->grave_alloc = na;
    }
    w->grave[w->n_grave++] = p;
}

static void empty_grave(worker *w)
{
    for (size_t i = 0; i < w->n_grave; i++)
        free(w->grave[i]);
    w->n_grave = 0;
}

static void start_drain(worker *w)
{
    if (w->state != WORKER_RUNNING)
        return;
    w->state = WORKER_DRAINING;
    w->drain_deadline = tg_now_ms() + (uint64_t)w->rt->cfg->drain_timeout_ms;
    for (size_t i = 0; i < w->n_listeners; i++)
        front_listener_close(w, &w->listeners[i]);
    log_info("worker %d: draining %d request(s)", w->id, w->n_active);
}

static void on_wake(ev_handler *h, uint32_t events)
{
    worker *w = container_of(h, worker, wake_h);
    uint64_t v;

    (void)events;
    if (read(w->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        log_warn("worker %d: wake read: %s", w->id, strerror(errno));
    if (__atomic_load_n(&w->cmd_drain, __ATOMIC_ACQUIRE))
        start_drain(w);
    pthread_mutex_lock(&w->cmd_lock);
    if (w->next_rt != NULL) {
        const tg_runtime *old = w->rt;
        w->rt = w->next_rt;
        w->next_rt = NULL;
        for (size_t i = 0; i < w->n_listeners; i++)
            w->listeners[i].ctx = w->rt->listener_ctx[i];
        runtime_unref(old);
        upstream_runtime_changed(w->up);
        log_debug("worker %d: switched to the reloaded configuration", w->id);
    }
    pthread_mutex_unlock(&w->cmd_lock);
}

void worker_set_runtime(worker *w, const tg_runtime *rt)
{
    uint64_t one = 1;

    pthread_mutex_lock(&w->cmd_lock);
    if (w->next_rt != NULL)
        runtime_unref(w->next_rt);
    w->next_rt = runtime_ref(rt);
    pthread_mutex_unlock(&w->cmd_lock);
    if (write(w->wake_fd, &one, sizeof(one)) < 0)
        log_warn("worker %d: wake: %s", w->id, strerror(errno));
}

/* While draining, close every connection that holds nothing in progress;
 * leave the loop when none is left or the deadline has passed. */
static void drain_step(worker *w)
{
    front_conn *c, *next;

    for (c = w->conns; c != NULL; c = next) {
        next = c->next;
        if (front_conn_idle(c))
            front_conn_close(c);
    }
    if (w->n_conns == 0 && w->n_inflight == 0) {
        w->state = WORKER_STOPPING;
        return;
    }
    if (tg_now_ms() >= w->drain_deadline) {
        log_warn("worker %d: drain deadline passed with %d request(s) waiting on a vendor",
                 w->id, w->n_inflight);
        http_cancel_all(w);
        w->state = WORKER_STOPPING;
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    struct epoll_event evs[128];

    while (w->state != WORKER_STOPPING) {
        int n, timeout;
        uint64_t now;

        now = tg_now_ms();
        timeout = timers_wait_ms(&w->timers, now);
        if (w->state == WORKER_DRAINING && (timeout < 0 || timeout > 100))
            timeout = 100;
        n = epoll_wait(w->epfd, evs, (int)(sizeof(evs) / sizeof(evs[0])), timeout);
        if (n < 0 && errno != EINTR) {
            log_err("worker %d: epoll_wait: %s", w->id, strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            ev_handler *h = evs[i].data.ptr;
            if (!h->dead)
                h->fn(h, evs[i].events);
        }
        timers_run(&w->timers, tg_now_ms());
        empty_grave(w);
        if (w->state == WORKER_DRAINING)
            drain_step(w);
    }
    /* Whatever is left is cancelled: no request may wait on a vendor once
     * the loop has stopped. */
    http_cancel_all(w);
    while (w->conns != NULL)
        front_conn_close(w->conns);
    empty_grave(w);
    return NULL;
}

int worker_init(worker *w, int id, const tg_runtime *rt, struct audit_log *audit,
                struct suspend_state *susp)
{
    const tg_config *cfg = rt->cfg;

    memset(w, 0, sizeof(*w));
    w->id = id;
    w->rt = runtime_ref(rt);
    w->audit = audit;
    w->susp = susp;
    pthread_mutex_init(&w->cmd_lock, NULL);
    w->wake_fd = -1;
    timers_init(&w->timers);
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (w->epfd < 0) {
        log_err("worker %d: epoll: %s", id, strerror(errno));
        return -1;
    }
    w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    w->wake_h.fn = on_wake;
    if (w->wake_fd < 0 || worker_watch(w, w->wake_fd, EPOLLIN, &w->wake_h) != 0)
        goto fail;
    w->up = upstream_init(w);
    if (w->up == NULL) {
        log_err("worker %d: cannot start the upstream client", id);
        goto fail;
    }
    w->listeners = calloc(cfg->n_listeners, sizeof(*w->listeners));
    if (w->listeners == NULL)
        goto fail;
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        w->listeners[i].fd = -1;
        if (front_listen(w, &w->listeners[i], &cfg->listeners[i],
                         rt->listener_ctx[i]) != 0)
            goto fail;
        w->n_listeners++;
    }
    return 0;
fail:
    worker_join(w);
    return -1;
}

int worker_start(worker *w)
{
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
        log_err("worker %d: cannot start thread", w->id);
        return -1;
    }
    return 0;
}

void worker_drain(worker *w)
{
    uint64_t one = 1;

    __atomic_store_n(&w->cmd_drain, 1, __ATOMIC_RELEASE);
    if (write(w->wake_fd, &one, sizeof(one)) < 0)
        log_warn("worker %d: wake: %s", w->id, strerror(errno));
}

void worker_join(worker *w)
{
    if (w->thread != 0) {
        pthread_join(w->thread, NULL);
        w->thread = 0;
    }
    while (w->conns != NULL)
        front_conn_close(w->conns);
    for (size_t i = 0; i < w->n_listeners; i++)
        front_listener_close(w, &w->listeners[i]);
    free(w->listeners);
    w->listeners = NULL;
    w->n_listeners = 0;
    upstream_close(w->up);
    w->up = NULL;
    if (w->wake_fd >= 0)
        close(w->wake_fd);
    w->wake_fd = -1;
    if (w->epfd >= 0)
        close(w->epfd);
    w->epfd = -1;
    timers_free(&w->timers);
    empty_grave(w);
    while (w->n_relay_pool > 0)
        free(w->relay_pool[--w->n_relay_pool]);
    free(w->grave);
    w->grave = NULL;
    w->grave_alloc = 0;
    if (w->next_rt != NULL)
        runtime_unref(w->next_rt);
    w->next_rt = NULL;
    if (w->rt != NULL)
        runtime_unref(w->rt);
    w->rt = NULL;
    pthread_mutex_destroy(&w->cmd_lock);
}
