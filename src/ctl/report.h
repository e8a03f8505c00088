/* Renders a view of the daemon for the API: JSON (jansson) for status and
 * stats, Prometheus text for /metrics. Every call reads fresh counters
 * through the view. */
#ifndef IKELB_REPORT_H
#define IKELB_REPORT_H

#include <jansson.h>

#include "ctl/view.h"

/* NULL when out of memory. */
json_t *report_status(const struct ctl_view *v);
/* One server's evacuation (also the answer to POST .../evacuate). */
json_t *report_evac_json(const struct evac_info *e, uint64_t now_ms);
json_t *report_stats(const struct ctl_view *v);
/* A malloc'd NUL-terminated page, or NULL when out of memory. */
char *report_metrics(const struct ctl_view *v);

#endif
