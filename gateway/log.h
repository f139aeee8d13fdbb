/*
 * Diagnostics for operators: levels, to stderr or syslog.
 *
 * Diagnostics are not the audit trail.  Neither ever contains request text,
 * masked values, keys or credentials: callers pass identifiers, counts and
 * error codes only.  Thread-safe.
 */
#ifndef TG_LOG_H
#define TG_LOG_H

typedef enum tg_log_level {
    TG_LOG_ERR = 0,
    TG_LOG_WARN = 1,
    TG_LOG_INFO = 2,
    TG_LOG_DEBUG = 3
} tg_log_level;

/* Select the destination and threshold.  to_syslog=0 writes to stderr.
 * Cannot fail. */
void log_init(tg_log_level level, int to_syslog);

/* Parse "error", "warning", "info" or "debug".  Returns -1 if unknown. */
int log_level_parse(const char *s, tg_log_level *out);

void log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
