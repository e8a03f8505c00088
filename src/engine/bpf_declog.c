/* The bpf engine's decision log (core/declog.h): the program puts a
 * declog_event (ikelb/maps.h) into declog_ring for each logged placement
 * while declog_on is set; this side reads the ring when the daemon's epoll
 * says it is readable and writes the same line as the socket engine. The
 * maps are not pinned: a new program (restart, re-exec) starts with the
 * log off. */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/declog.h"
#include "engine/bpf_engine_int.h"
#include "bpf/ikelb.skel.h"

struct bpfe_declog {
	struct bpf_engine *e;
	const struct cfg *cfg;    /* the daemon's, read at each event (reload swaps it) */
	struct ring_buffer *rb;
	struct rl_bucket rl;
	bool on;
};

/* Server index of real_id in service svc, or -1 (removed by a reload
 * since the event was queued). */
static int srv_of(const struct bpf_engine *e, uint32_t svc, uint32_t real_id)
{
	if (svc >= (uint32_t)e->nsvc)
		return -1;
	const struct bpfe_svc *s = &e->svc[svc];
	for (int j = 0; j < s->nservers; j++)
		if (s->real_ids[j] == real_id)
			return j;
	return -1;
}

static int on_event(void *ctx, void *data, size_t len)
{
	struct bpfe_declog *d = ctx;
	const struct declog_event *ev = data;
	if (len < sizeof(*ev) || !d->on)
		return 0; /* events queued before the log went off are not wanted */
	int srv = srv_of(d->e, ev->svc_id, ev->real_id);
	if (srv < 0 || (int)ev->svc_id >= d->cfg->nservices ||
	    srv >= d->cfg->services[ev->svc_id].nservers)
		return 0;
	const struct cfg_service *cs = &d->cfg->services[ev->svc_id];
	const struct declog_rec r = { .client = &ev->client, .cport = ev->cport,
				      .spi_i = ev->spi_i, .service = cs->name,
				      .server = cs->servers[srv].name, .rule = ev->rule };
	declog_line(d->e->log, &d->rl, clock_mono_ms(), &r);
	return 0;
}

int bpfe_declog_open(struct bpfe_declog **out, struct bpf_engine *e, const struct cfg *cfg)
{
	struct bpfe_declog *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->e = e;
	d->cfg = cfg;
	d->rb = ring_buffer__new(bpf_map__fd(e->skel->maps.declog_ring), on_event, d, NULL);
	if (!d->rb) {
		int rc = -errno;
		log_err(e->log, "bpf: decision log ring buffer: %s", strerror(errno));
		free(d);
		return rc;
	}
	rl_init(&d->rl, DECLOG_RATE, DECLOG_BURST, clock_mono_ms());
	*out = d;
	return 0;
}

void bpfe_declog_close(struct bpfe_declog *d)
{
	if (!d)
		return;
	ring_buffer__free(d->rb);
	free(d);
}

int bpfe_declog_set(struct bpfe_declog *d, bool on)
{
	uint32_t zero = 0, v = on;
	if (bpf_map_update_elem(bpf_map__fd(d->e->skel->maps.declog_on), &zero, &v, BPF_ANY) < 0) {
		int rc = -errno;
		log_err(d->e->log, "bpf: decision log switch: %s", strerror(errno));
		return rc;
	}
	declog_switched(d->e->log, &d->rl, d->on, on, clock_mono_ms());
	d->on = on;
	return 0;
}

int bpfe_declog_fd(const struct bpfe_declog *d)
{
	return ring_buffer__epoll_fd(d->rb);
}

/* Everything queued; never blocks. */
void bpfe_declog_drain(struct bpfe_declog *d)
{
	int n = ring_buffer__consume(d->rb);
	if (n < 0)
		log_warn(d->e->log, "bpf: decision log ring buffer: %s", strerror(-n));
}

/* Lines lost: over the rate limit, and events the program could not queue
 * (ring full), summed over CPUs. */
uint64_t bpfe_declog_dropped(const struct bpfe_declog *d)
{
	uint64_t sum = d->rl.dropped;
	uint32_t zero = 0;
	uint64_t *per_cpu = calloc((size_t)d->e->ncpu, sizeof(*per_cpu));
	if (per_cpu &&
	    bpf_map_lookup_elem(bpf_map__fd(d->e->skel->maps.declog_drop_map), &zero, per_cpu) == 0)
		for (int i = 0; i < d->e->ncpu; i++)
			sum += per_cpu[i];
	free(per_cpu);
	return sum;
}
