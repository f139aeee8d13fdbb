#include "timer.h"

#include <stdlib.h>
#include <time.h>

uint64_t tg_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void timers_init(tg_timers *ts)
{
    ts->heap = NULL;
    ts->n = 0;
    ts->alloc = 0;
}

void timers_free(tg_timers *ts)
{
    for (size_t i = 0; i < ts->n; i++)
        ts->heap[i]->idx = 0;
    free(ts->heap);
    timers_init(ts);
}

void timer_init(tg_timer *t, tg_timer_fn fn, void *arg)
{
    t->deadline = 0;
    t->idx = 0;
    t->fn = fn;
    t->arg = arg;
}

static void heap_set(tg_timers *ts, size_t i, tg_timer *t)
{
    ts->heap[i] = t;
    t->idx = i + 1;
}

static void heap_up(tg_timers *ts, size_t i)
{
    tg_timer *t = ts->heap[i];

    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (ts->heap[parent]->deadline <= t->deadline)
            break;
        heap_set(ts, i, ts->heap[parent]);
        i = parent;
    }
    heap_set(ts, i, t);
}

static void heap_down(tg_timers *ts, size_t i)
{
    tg_timer *t = ts->heap[i];

    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        uint64_t md = t->deadline;
        if (l < ts->n && ts->heap[l]->deadline < md) {
            m = l;
            md = ts->heap[l]->deadline;
        }
        if (r < ts->n && ts->heap[r]->deadline < md)
            m = r;
        if (m == i)
            break;
        heap_set(ts, i, ts->heap[m]);
        i = m;
    }
    heap_set(ts, i, t);
}

void timer_cancel(tg_timers *ts, tg_timer *t)
{
    size_t i;
    tg_timer *last;

    if (t->idx == 0)
        return;
    i = t->idx - 1;
    t->idx = 0;
    last = ts->heap[--ts->n];
    if (i == ts->n)
        return;
    heap_set(ts, i, last);
    heap_up(ts, i);
    heap_down(ts, last->idx - 1);
}

int timer_arm(tg_timers *ts, tg_timer *t, uint64_t deadline)
{
    timer_cancel(ts, t);
    if (ts->n == ts->alloc) {
        size_t na = ts->alloc ? ts->alloc * 2 : 64;
        tg_timer **h = realloc(ts->heap, na * sizeof(*h));
        if (h == NULL)
            return -1;
        ts->heap = h;
        ts->alloc = na;
    }
    t->deadline = deadline;
    heap_set(ts, ts->n++, t);
    heap_up(ts, ts->n - 1);
    return 0;
}

int timers_wait_ms(const tg_timers *ts, uint64_t now)
{
    uint64_t d;

    if (ts->n == 0)
        return -1;
    d = ts->heap[0]->deadline;
    if (d <= now)
        return 0;
    d -= now;
    return d > 1000000 ? 1000000 : (int)d;
}

void timers_run(tg_timers *ts, uint64_t now)
{
    while (ts->n > 0 && ts->heap[0]->deadline <= now) {
        tg_timer *t = ts->heap[0];
        timer_cancel(ts, t);
        t->fn(t, t->arg);
    }
}
