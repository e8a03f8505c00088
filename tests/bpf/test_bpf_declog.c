/* The bpf engine's decision log: the program's events (declog_ring, while
 * declog_on is set) for placements that do not repeat a flow or label, and
 * the engine's drain that writes them as the socket engine's line, through
 * the rate limiter; a full ring is counted. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "bpf_test_util.h"
#include "core/declog.h"

#define CLIENT "203.0.113.7"
#define VIP "203.0.113.10"
#define SPI_I 0x8a3f0c11d2e4f501ULL
#define SPI_R 0x0123456789abcdefULL

/* What the drain logged: the decision lines, in order. */
struct lines {
	char v[8][256];
	int n;       /* since the last drained() */
	int total;   /* since the test began */
};

static int capture(void *ctx, enum log_level lvl, const char *msg, const struct log_field *f,
		   int n)
{
	struct lines *l = ctx;
	(void)f;
	(void)n;
	if (lvl != LOG_LVL_INFO || strncmp(msg, "decision:", 9))
		return 0;
	l->total++;
	if (l->n < 8)
		snprintf(l->v[l->n], sizeof(l->v[0]), "%s", msg);
	l->n++;
	return 0;
}

struct dfx {
	struct tfx t;
	struct bpfe_declog *d;
	struct lines lines;
};

static int setup(void **state)
{
	struct dfx *x = calloc(1, sizeof(*x));
	if (!x || t_setup(&x->t) != 0)
		return -1;
	x->t.log.max = LOG_LVL_INFO;
	x->t.log.sink = capture;
	x->t.log.sink_ctx = &x->lines;
	if (bpfe_declog_open(&x->d, x->t.e, &x->t.cfg) != 0)
		return -1;
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct dfx *x = *state;
	bpfe_declog_close(x->d);
	t_teardown(&x->t);
	free(x);
	return 0;
}

/* Lines the drain writes for what the program queued since the last call. */
static int drained(struct dfx *x)
{
	x->lines.n = 0;
	bpfe_declog_drain(x->d);
	return x->lines.n;
}

static void new_sa_then_flow(void **state)
{
	struct dfx *x = *state;
	struct tfx *f = &x->t;
	uint8_t fr[PKT_MAX];
	char want[256];

	assert_int_equal(bpfe_declog_set(x->d, true), 0);
	assert_int_equal(t_run(f, fr, t_sa_init(fr, CLIENT, 500, VIP, SPI_I)), TC_ACT_OK);
	int srv = t_dst_server(f, SV4);
	assert_true(srv >= 0);
	assert_int_equal(drained(x), 1);
	snprintf(want, sizeof(want),
		 "decision: client %s:500 spi %016llx service svc0 server vpn0-%d rule new", CLIENT,
		 (unsigned long long)SPI_I, srv);
	assert_string_equal(x->lines.v[0], want);

	/* IKE_AUTH with the server's SPIr: found by its SA (logged), and it
	 * teaches the flow; what follows repeats it (not logged): IKE by its
	 * SA on the flow it owns, ESP by the flow. */
	assert_int_equal(t_init_resp(f, SV4, srv, CLIENT, 500, SPI_I, SPI_R), TC_ACT_OK);
	assert_int_equal(t_run(f, fr, t_auth(fr, CLIENT, 4500, VIP, SPI_I, SPI_R, 300)), TC_ACT_OK);
	assert_int_equal(drained(x), 1);
	assert_non_null(strstr(x->lines.v[0], "client " CLIENT ":4500 "));
	assert_non_null(strstr(x->lines.v[0], " rule sa"));
	assert_int_equal(t_run(f, fr, t_auth(fr, CLIENT, 4500, VIP, SPI_I, SPI_R, 300)), TC_ACT_OK);
	assert_int_equal(t_run(f, fr, t_esp(fr, CLIENT, 4500, VIP, 0xc0ffee01u)), TC_ACT_OK);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_STEER_FLOW), 1);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_STEER_SA), 2);
	assert_int_equal(drained(x), 0);
}

static void off_logs_nothing(void **state)
{
	struct dfx *x = *state;
	struct tfx *f = &x->t;
	uint8_t fr[PKT_MAX];

	/* Off at open, and off again after on. */
	assert_int_equal(t_run(f, fr, t_sa_init(fr, CLIENT, 500, VIP, SPI_I)), TC_ACT_OK);
	assert_int_equal(drained(x), 0);
	assert_int_equal(bpfe_declog_set(x->d, true), 0);
	assert_int_equal(bpfe_declog_set(x->d, false), 0);
	assert_int_equal(t_run(f, fr, t_sa_init(fr, "203.0.113.8", 500, VIP, SPI_I + 1)), TC_ACT_OK);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_STEER_NEW), 2);
	assert_int_equal(drained(x), 0);
}

/* XDP hands a frame it cannot finish (no route here) to tc unlearned:
 * the decision is logged once, by tc. */
static void xdp_pass_logs_once(void **state)
{
	struct dfx *x = *state;
	struct tfx *f = &x->t;
	uint8_t fr[PKT_MAX];
	size_t n = t_sa_init(fr, CLIENT, 500, VIP, SPI_I);

	assert_int_equal(bpfe_declog_set(x->d, true), 0);
	assert_int_equal(t_run_xdp(f, fr, n), XDP_PASS);
	assert_int_equal(drained(x), 0);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_int_equal(drained(x), 1);
}

/* More placements than the ring holds (256 KiB / 48-byte records), none
 * drained: the program counts what it could not queue; the drain then
 * writes about 50 lines (the bucket) and counts the rest as over the
 * limit.
 * Every event is accounted for. */
static void full_ring_and_rate_limit_counted(void **state)
{
	struct dfx *x = *state;
	struct tfx *f = &x->t;
	uint8_t fr[PKT_MAX];
	const int total = 6000;

	assert_int_equal(bpfe_declog_set(x->d, true), 0);
	for (int i = 0; i < total; i++) {
		char src[32];
		snprintf(src, sizeof(src), "10.%d.%d.1", i / 250, i % 250);
		assert_int_equal(t_run(f, fr, t_sa_init(fr, src, 500, VIP, SPI_I + (uint64_t)i)),
				 TC_ACT_OK);
	}
	uint64_t ring_drops = bpfe_declog_dropped(x->d);
	assert_true(ring_drops > 0);
	drained(x);
	/* The bucket may refill by a token or two while the drain runs. */
	assert_true(x->lines.total >= DECLOG_BURST && x->lines.total < DECLOG_BURST + 10);
	assert_int_equal(bpfe_declog_dropped(x->d) + (uint64_t)x->lines.total, (uint64_t)total);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(new_sa_then_flow, setup, teardown),
		cmocka_unit_test_setup_teardown(off_logs_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(xdp_pass_logs_once, setup, teardown),
		cmocka_unit_test_setup_teardown(full_ring_and_rate_limit_counted, setup, teardown),
	};
	if (t_netns() != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
