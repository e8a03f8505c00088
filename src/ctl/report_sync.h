/* Rendering the state sync's counters (ctl/sync.h) for the API. */
#ifndef IKELB_CTL_REPORT_SYNC_H
#define IKELB_CTL_REPORT_SYNC_H

#include <jansson.h>

#include "ctl/sync.h"

json_t *report_sync_json(const struct sync_stats *st);
/* Prometheus text, malloc'd; NULL when out of memory. */
char *report_sync_metrics(const struct sync_stats *st);

#endif
