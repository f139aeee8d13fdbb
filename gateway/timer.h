/*
 * timer: a per-worker min-heap of deadlines on the monotonic clock.
 *
 * Timers are embedded in their owners (no allocation per timer); a timer is
 * either armed (in the heap) or not.  Not thread-safe: one heap per worker.
 */
#ifndef TG_TIMER_H
#define TG_TIMER_H

#include <stddef.h>
#include <stdint.h>

typedef struct tg_timer tg_timer;
typedef void (*tg_timer_fn)(tg_timer *t, void *arg);

struct tg_timer {
    uint64_t deadline;   /* monotonic ms */
    size_t   idx;        /* heap slot + 1; 0 when not armed */
    tg_timer_fn fn;
    void    *arg;
};

typedef struct tg_timers {
    tg_timer **heap;
    size_t n;
    size_t alloc;
} tg_timers;

/* Milliseconds on the monotonic clock.  Cannot fail. */
uint64_t tg_now_ms(void);

/* Cannot fail. */
void timers_init(tg_timers *ts);

/* Frees the heap; armed timers are forgotten, not called. */
void timers_free(tg_timers *ts);

/* Set fn/arg of a timer that is not armed.  Cannot fail. */
void timer_init(tg_timer *t, tg_timer_fn fn, void *arg);

/* Arm (or re-arm) t to fire at deadline.  Returns 0, or -1 when memory runs
 * out (t is then not armed). */
int timer_arm(tg_timers *ts, tg_timer *t, uint64_t deadline);

/* Disarm t if armed.  Cannot fail. */
void timer_cancel(tg_timers *ts, tg_timer *t);

/* Milliseconds until the earliest deadline (0 if due), or -1 if none. */
int timers_wait_ms(const tg_timers *ts, uint64_t now);

/* Fire every timer due at now, earliest first.  A callback may arm or cancel
 * any timer, including itself. */
void timers_run(tg_timers *ts, uint64_t now);

#endif
