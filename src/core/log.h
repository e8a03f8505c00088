/* Logging to stderr in a journald-friendly form: "<N>message" where N is
 * the syslog priority, which systemd-journald and most log shippers parse;
 * plain text otherwise. The logger is an explicit object (no globals). */
#ifndef IKELB_LOG_H
#define IKELB_LOG_H

#include <stdio.h>

enum log_level { LOG_LVL_ERR = 3, LOG_LVL_WARN = 4, LOG_LVL_NOTICE = 5, LOG_LVL_INFO = 6, LOG_LVL_DEBUG = 7 };

struct logger {
	enum log_level max;  /* messages above this priority are dropped */
	int prefix;          /* 1: "<N>" journald prefix, 0: "LEVEL: " text */
	FILE *out;           /* NULL = stderr */
};

void log_init(struct logger *l, enum log_level max);
int log_level_parse(const char *s, enum log_level *out);
void log_msg(const struct logger *l, enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_err(l, ...) log_msg((l), LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(l, ...) log_msg((l), LOG_LVL_WARN, __VA_ARGS__)
#define log_notice(l, ...) log_msg((l), LOG_LVL_NOTICE, __VA_ARGS__)
#define log_info(l, ...) log_msg((l), LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(l, ...) log_msg((l), LOG_LVL_DEBUG, __VA_ARGS__)

#endif
