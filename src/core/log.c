#include "core/log.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const lvl_names[] = {
	[LOG_LVL_ERR] = "error", [LOG_LVL_WARN] = "warning", [LOG_LVL_NOTICE] = "notice",
	[LOG_LVL_INFO] = "info", [LOG_LVL_DEBUG] = "debug",
};

void log_init(struct logger *l, enum log_level max)
{
	l->max = max;
	l->out = NULL;
	l->sink = NULL;
	l->sink_ctx = NULL;
	/* journald sets JOURNAL_STREAM for services whose stderr it reads. */
	l->prefix = getenv("JOURNAL_STREAM") != NULL || getenv("IKELB_LOG_PREFIX") != NULL;
}

int log_level_parse(const char *s, enum log_level *out)
{
	for (int i = LOG_LVL_ERR; i <= LOG_LVL_DEBUG; i++) {
		if (lvl_names[i] && strcmp(s, lvl_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

static void log_emit(const struct logger *l, enum log_level lvl, const struct log_field *f,
		     int n, const char *fmt, va_list ap)
{
	if (l && lvl > l->max)
		return;
	char buf[1024];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (l && l->sink && l->sink(l->sink_ctx, lvl, buf, f, n) == 0)
		return;
	FILE *out = (l && l->out) ? l->out : stderr;
	if (l && l->prefix)
		fprintf(out, "<%d>ikelb: %s\n", (int)lvl, buf);
	else
		fprintf(out, "ikelb[%d]: %s: %s\n", (int)getpid(), lvl_names[lvl], buf);
	fflush(out);
}

void log_msg(const struct logger *l, enum log_level lvl, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_emit(l, lvl, NULL, 0, fmt, ap);
	va_end(ap);
}

void log_fields(const struct logger *l, enum log_level lvl, const struct log_field *f, int n,
		const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_emit(l, lvl, f, n, fmt, ap);
	va_end(ap);
}
