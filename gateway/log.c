#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

static tg_log_level log_threshold = TG_LOG_INFO;
static int log_syslog;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void log_init(tg_log_level level, int to_syslog)
{
    log_threshold = level;
    if (to_syslog && !log_syslog)
        openlog("transgate", LOG_PID | LOG_NDELAY, LOG_DAEMON);
    log_syslog = to_syslog;
}

int log_level_parse(const char *s, tg_log_level *out)
{
    static const struct { const char *name; tg_log_level lvl; } names[] = {
        { "error", TG_LOG_ERR }, { "warning", TG_LOG_WARN },
        { "info", TG_LOG_INFO }, { "debug", TG_LOG_DEBUG },
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(s, names[i].name) == 0) {
            *out = names[i].lvl;
            return 0;
        }
    }
    return -1;
}

static void log_emit(tg_log_level lvl, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static void log_emit(tg_log_level lvl, const char *fmt, va_list ap)
{
    static const char *tag[] = { "error", "warning", "info", "debug" };
    static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
    char msg[1024];
    char ts[32];
    struct timespec now;
    struct tm tm;
    size_t i;

    if (lvl > log_threshold)
        return;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    /* One record per line whatever the caller passed. */
    for (i = 0; msg[i] != '\0'; i++)
        if (msg[i] == '\n' || msg[i] == '\r')
            msg[i] = ' ';
    if (log_syslog) {
        syslog(prio[lvl], "%s: %s", tag[lvl], msg);
        return;
    }
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    pthread_mutex_lock(&log_lock);
    fprintf(stderr, "%s.%03ldZ transgate %s: %s\n", ts,
            now.tv_nsec / 1000000L, tag[lvl], msg);
    fflush(stderr);
    pthread_mutex_unlock(&log_lock);
}

#define LOG_FN(name, lvl)                       \
    void name(const char *fmt, ...)             \
    {                                           \
        va_list ap;                             \
        va_start(ap, fmt);                      \
        log_emit(lvl, fmt, ap);                 \
        va_end(ap);                             \
    }

LOG_FN(log_err, TG_LOG_ERR)
LOG_FN(log_warn, TG_LOG_WARN)
LOG_FN(log_info, TG_LOG_INFO)
LOG_FN(log_debug, TG_LOG_DEBUG)
