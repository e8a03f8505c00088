/* Logging to stderr in a journald-friendly form: "<N>message" where N is
 * the syslog priority, which systemd-journald and most log shippers parse;
 * plain text otherwise. The logger is an explicit object (no globals). */
#ifndef IKELB_LOG_H
#define IKELB_LOG_H

#include <stdio.h>

enum log_level { LOG_LVL_ERR = 3, LOG_LVL_WARN = 4, LOG_LVL_NOTICE = 5, LOG_LVL_INFO = 6, LOG_LVL_DEBUG = 7 };

/* A structured field for journald ("IKELB_SERVER", "vpn1"): operators
 * filter with `journalctl IKELB_SERVER=vpn1`. Keys are journal field names
 * (upper case, digits, underscore). */
struct log_field {
	const char *key;
	const char *value;
};

/* Where messages go instead of the stream when set (the daemon sets
 * sd_journal_send under journald); returns 0 or a negative errno, and on
 * failure the message goes to the stream as usual. */
typedef int (*log_sink_fn)(void *ctx, enum log_level lvl, const char *msg,
			   const struct log_field *f, int n);

struct logger {
	enum log_level max;  /* messages above this priority are dropped */
	int prefix;          /* 1: "<N>" journald prefix, 0: "LEVEL: " text */
	FILE *out;           /* NULL = stderr */
	log_sink_fn sink;    /* NULL: the stream only */
	void *sink_ctx;
};

void log_init(struct logger *l, enum log_level max);
int log_level_parse(const char *s, enum log_level *out);
void log_msg(const struct logger *l, enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* log_msg with structured fields: the sink gets them; the stream shows the
 * message only (it already names what the fields hold). */
void log_fields(const struct logger *l, enum log_level lvl, const struct log_field *f, int n,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#define log_err(l, ...) log_msg((l), LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(l, ...) log_msg((l), LOG_LVL_WARN, __VA_ARGS__)
#define log_notice(l, ...) log_msg((l), LOG_LVL_NOTICE, __VA_ARGS__)
#define log_info(l, ...) log_msg((l), LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(l, ...) log_msg((l), LOG_LVL_DEBUG, __VA_ARGS__)

#endif
