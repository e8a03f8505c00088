/* Renders the daemon's state for the API: JSON (jansson) for status and
 * stats, Prometheus text for /metrics. */
#ifndef IKELB_REPORT_H
#define IKELB_REPORT_H

#include <jansson.h>

struct daemon;

json_t *report_status(struct daemon *d);
json_t *report_stats(struct daemon *d);
/* Returns a malloc'd NUL-terminated string. */
char *report_metrics(struct daemon *d);
const char *report_ctr_name(int ctr);

#endif
