/* bpf engine API: sweep and usage, pinned state across a restart, stable
 * real ids across syncs, configuration errors, tc attach / detach. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bpf_test_util.h"

#define CLIENT "203.0.113.77"

static char pin_root[64];


/* One source-ip client (persist + its 4500 flow) and one ike client (SA +
 * its 4500 flow): IKE_SA_INITs leave only half-open entries, which the
 * IKE_AUTHs promote and remove. */
static void make_state(struct tfx *f)
{
	uint8_t fr[PKT_MAX];
	size_t n = t_sa_init(fr, CLIENT, 500, t_vip[SV4], 1);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_int_equal(t_init_resp(f, SV4, t_dst_server(f, SV4), CLIENT, 500, 1, 2), TC_ACT_OK);
	n = t_auth(fr, CLIENT, 4500, t_vip[SV4], 1, 2, 100);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	n = t_sa_init(fr, CLIENT, 501, t_vip[SIKE], 0x77);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_int_equal(t_init_resp(f, SIKE, t_dst_server(f, SIKE), CLIENT, 501, 0x77, 0x42),
			 TC_ACT_OK);
	n = t_auth(fr, CLIENT, 4501, t_vip[SIKE], 0x77, 0x42, 100);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
}

static void sweep_expires_by_timeout(void **state)
{
	struct tfx *f = *state;
	struct bpf_real_usage *u = calloc(IKELB_MAX_REALS, sizeof(*u));
	struct bpf_sweep_stats st;
	uint32_t now = bpf_engine_now_s();

	assert_non_null(u);
	make_state(f);
	assert_int_equal(t_map_count(f, "flow_map", sizeof(struct flow_key)), 2);
	assert_int_equal(t_map_count(f, "halfopen_map", sizeof(struct sa_key)), 0);
	assert_int_equal(bpf_engine_sweep(f->e, now, u, &st), 0);
	assert_int_equal(st.expired + st.purged, 0);
	/* flows, persist, sa of both services (source-ip keeps its SA too),
	 * the client's fragment hint per VIP (frag_map) */
	assert_int_equal(t_map_count(f, "frag_map", sizeof(struct frag_key)), 2);
	assert_int_equal(st.scanned, 2 + 1 + 2 + 2);
	uint32_t flows = 0, persist = 0, sa = 0;
	for (int i = 0; i < IKELB_MAX_REALS; i++) {
		flows += u[i].flows;
		persist += u[i].persist;
		sa += u[i].sa;
	}
	assert_int_equal(flows, 2);
	assert_int_equal(persist, 1);
	assert_int_equal(sa, 2);
	int r = bpf_engine_real_id(f->e, SV4, 0), found = 0;
	for (int s = 0; s < T_NSRV; s++)
		found += u[bpf_engine_real_id(f->e, SV4, s)].persist;
	assert_int_equal(found, 1);
	(void)r;

	/* past the flow timeout (300 s) and the hints' (30 s), within
	 * persistence (3600 s) */
	assert_int_equal(bpf_engine_sweep(f->e, now + 400, NULL, &st), 0);
	assert_int_equal(st.expired, 2 + 2);
	assert_int_equal(t_map_count(f, "frag_map", sizeof(struct frag_key)), 0);
	assert_int_equal(t_map_count(f, "flow_map", sizeof(struct flow_key)), 0);
	assert_int_equal(t_map_count(f, "persist_map", sizeof(struct persist_key)), 1);
	assert_int_equal(bpf_engine_sweep(f->e, now + 4000, NULL, &st), 0);
	assert_int_equal(st.expired, 3);
	assert_int_equal(t_map_count(f, "persist_map", sizeof(struct persist_key)), 0);
	assert_int_equal(t_map_count(f, "sa_map", sizeof(struct sa_key)), 0);
	free(u);
}

/* Keeps the first entry (the answer). */
static int count_cb(void *ctx, const struct lk_entry *e)
{
	struct lk_entry *first = ctx;
	if (first->svc < 0)
		*first = *e;
	return 0;
}

static int lookup1(struct tfx *f, const struct lk_query *q, struct lk_entry *e)
{
	e->svc = -1;
	return bpf_engine_lookup(f->e, q, count_cb, e);
}

/* Lookups and counts read the maps and change nothing: an idle entry is
 * not reported, and still there for the sweep to remove. */
static void lookup_is_read_only(void **state)
{
	struct tfx *f = *state;
	struct bpf_real_usage *u = calloc(IKELB_MAX_REALS, sizeof(*u));
	uint32_t now = bpf_engine_now_s();
	struct lk_entry e;

	assert_non_null(u);
	make_state(f);
	struct lk_query q = { .kind = LK_Q_SPI, .spi = 0x77, .port = -1, .svc = -1, .srv = -1 };
	/* the SA (0x77 names no server as a label) */
	int nn = lookup1(f, &q, &e);
	assert_int_equal(nn, 1);
	assert_int_equal(e.svc, SIKE);
	assert_int_equal(e.table, LK_T_SA);
	assert_int_equal(e.rule, RULE_SA);
	q.spi = 1; /* the source-ip service's SA: tracked as well */
	assert_int_equal(lookup1(f, &q, &e), 1);
	assert_int_equal(e.svc, SV4);
	assert_int_equal(e.table, LK_T_SA);
	struct lk_query qa = { .kind = LK_Q_ADDR, .port = -1, .svc = -1, .srv = -1 };
	assert_int_equal(ikelb_addr_parse(CLIENT, &qa.addr), 0);
	/* two flows (one per service) and the source-ip persistence entry */
	assert_int_equal(lookup1(f, &qa, &e), 3);
	qa.port = 4501; /* that flow, and the address's persistence entry */
	assert_int_equal(lookup1(f, &qa, &e), 2);
	assert_int_equal(e.cport, 4501);
	assert_int_equal(e.rule, RULE_FLOW);
	struct lk_query all = { .kind = LK_Q_ALL, .port = -1, .svc = -1, .srv = -1 };
	assert_int_equal(lookup1(f, &all, &e), 5);
	/* far past every timeout: nothing is live, nothing is deleted */
	assert_int_equal(bpf_engine_count(f->e, now + 4000, u), 0);
	assert_int_equal(t_map_count(f, "sa_map", sizeof(struct sa_key)), 2);
	assert_int_equal(t_map_count(f, "flow_map", sizeof(struct flow_key)), 2);
	for (int i = 0; i < IKELB_MAX_REALS; i++)
		assert_int_equal(u[i].sa + u[i].flows + u[i].persist, 0);
	free(u);
}

/* Real ids survive a re-sync with servers removed and added; state of a
 * removed server is purged; its id is not handed out again at once. */
static void real_ids_stable_across_sync(void **state)
{
	struct tfx *f = *state;
	int before[T_NSRV];

	for (int i = 0; i < T_NSRV; i++)
		before[i] = bpf_engine_real_id(f->e, SV4, i);
	make_state(f);
	struct cfg_server keep[T_NSRV + 1];
	keep[0] = f->srv[SV4][1];
	keep[1] = f->srv[SV4][2];
	cfg_server_defaults(&keep[2]);
	keep[2].init_down = false;
	snprintf(keep[2].name, sizeof(keep[2].name), "new");
	t_addr("198.51.100.19", &keep[2].addr);
	f->svc[SV4].servers = keep;
	f->svc[SV4].nservers = 3;
	assert_int_equal(bpf_engine_sync(f->e, &f->cfg), 0);
	assert_int_equal(bpf_engine_real_id(f->e, SV4, 0), before[1]);
	assert_int_equal(bpf_engine_real_id(f->e, SV4, 1), before[2]);
	int nid = bpf_engine_real_id(f->e, SV4, 2);
	for (int i = 0; i < T_NSRV; i++)
		assert_int_not_equal(nid, before[i]);
	/* the ike service's ids did not move either */
	struct real_value rv;
	uint32_t gone = (uint32_t)before[0];
	assert_int_equal(bpf_map_lookup_elem(bpf_engine_map_fd(f->e, "reals_map"), &gone, &rv), 0);
	assert_int_equal(rv.flags & REAL_F_IN_USE, 0);
	/* nothing left that points at the removed server */
	struct bpf_real_usage *u = calloc(IKELB_MAX_REALS, sizeof(*u));
	assert_non_null(u);
	assert_int_equal(bpf_engine_sweep(f->e, bpf_engine_now_s(), u, NULL), 0);
	assert_int_equal(u[gone].persist + u[gone].flows, 0);
	free(u);
	/* the Maglev table kept its place, so the service still works */
	uint8_t fr[PKT_MAX];
	size_t n = t_sa_init(fr, "198.18.1.1", 500, t_vip[SV4], 9);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	f->svc[SV4].servers = f->srv[SV4];
}

static void sync_rejects_bad_config(void **state)
{
	struct tfx *f = *state;

	t_addr("2001:db8::5", &f->srv[SV4][0].addr);
	assert_int_equal(bpf_engine_sync(f->e, &f->cfg), -EINVAL);
	t_addr(t_real[SV4][0], &f->srv[SV4][0].addr);

	f->svc[SV4].forwarding = CFG_FWD_FULLNAT;
	assert_int_equal(bpf_engine_sync(f->e, &f->cfg), -EINVAL);
	f->svc[SV4].forwarding = CFG_FWD_DNAT;

	/* the same real server and port behind two dnat VIPs */
	f->srv[SIKE][0].addr = f->srv[SV4][0].addr;
	assert_int_equal(bpf_engine_sync(f->e, &f->cfg), -EEXIST);
	t_addr(t_real[SIKE][0], &f->srv[SIKE][0].addr);
	assert_int_equal(bpf_engine_sync(f->e, &f->cfg), 0);

	uint32_t tbl[T_MAGLEV];
	for (int i = 0; i < T_MAGLEV; i++)
		tbl[i] = (uint32_t)bpf_engine_real_id(f->e, SIKE, 0); /* not this service's */
	assert_int_equal(bpf_engine_set_maglev(f->e, SV4, tbl, T_MAGLEV), -EINVAL);
	assert_int_equal(bpf_engine_set_maglev(f->e, SV4, tbl, T_MAGLEV + 1), -EINVAL);
}

/* Pinned state maps outlive the engine: a new engine (daemon restart)
 * finds the clients' state and the counters. */
static void pinned_state_survives_restart(void **state)
{
	(void)state;
	struct tfx f;
	uint8_t fr[PKT_MAX];

	memset(&f, 0, sizeof(f));
	log_init(&f.log, LOG_LVL_WARN);
	t_cfg_build(&f);
	snprintf(f.cfg.bpf_pin_dir, sizeof(f.cfg.bpf_pin_dir), "%s/ikelb", pin_root);
	assert_int_equal(bpf_engine_open(&f.e, &f.cfg, &f.log), 0);
	assert_int_equal(bpf_engine_sync(f.e, &f.cfg), 0);
	for (int s = 0; s < T_NSVC; s++)
		assert_int_equal(t_maglev(&f, s, NULL), 0);
	f.prog_fd = bpf_engine_prog_fd(f.e);
	assert_int_equal(bpf_engine_set_iface_roles(f.e, 1, IFACE_R_SERVERS), 0);
	size_t n = t_sa_init(fr, CLIENT, 500, t_vip[SV4], 1);
	assert_int_equal(t_run(&f, fr, n), TC_ACT_OK);
	int srv = t_dst_server(&f, SV4);
	assert_int_equal(t_init_resp(&f, SV4, srv, CLIENT, 500, 1, 2), TC_ACT_OK);
	n = t_auth(fr, CLIENT, 500, t_vip[SV4], 1, 2, 100); /* learns (CLIENT:500 -> 4500) */
	assert_int_equal(t_run(&f, fr, n), TC_ACT_OK);
	assert_int_equal(t_dst_server(&f, SV4), srv);
	bpf_engine_close(f.e, false);

	/* restart with the servers listed in another order */
	struct cfg_server tmp = f.srv[SV4][0];
	f.srv[SV4][0] = f.srv[SV4][2];
	f.srv[SV4][2] = tmp;
	int moved = srv == 0 ? 2 : srv == 2 ? 0 : 1;
	assert_int_equal(bpf_engine_open(&f.e, &f.cfg, &f.log), 0);
	assert_int_equal(bpf_engine_sync(f.e, &f.cfg), 0);
	for (int s = 0; s < T_NSVC; s++)
		assert_int_equal(t_maglev(&f, s, NULL), 0);
	f.prog_fd = bpf_engine_prog_fd(f.e);
	assert_int_equal(t_ctr(&f, SV4, SVC_CTR_STEER_NEW), 1);
	n = t_auth(fr, CLIENT, 500, t_vip[SV4], 1, 2, 100); /* the SA IKE_AUTH learned */
	assert_int_equal(t_run(&f, fr, n), TC_ACT_OK);
	assert_int_equal(t_dst_server(&f, SV4), moved);
	/* counters are pinned too: the first IKE_AUTH (half-open SA) and this one */
	assert_int_equal(t_ctr(&f, SV4, SVC_CTR_STEER_SA), 2);
	bpf_engine_close(f.e, false);

	/* another size: the state map is recreated, not reused */
	f.cfg.max_flows = 2048;
	assert_int_equal(bpf_engine_open(&f.e, &f.cfg, &f.log), 0);
	assert_int_equal(t_map_count(&f, "flow_map", sizeof(struct flow_key)), 0);
	assert_int_equal(t_map_count(&f, "persist_map", sizeof(struct persist_key)), 1);
	bpf_engine_close(f.e, true);
	struct stat sb;
	assert_int_not_equal(stat(f.cfg.bpf_pin_dir, &sb), 0);
}

static void attach_and_detach(void **state)
{
	struct tfx *f = *state;

	assert_int_equal(system("ip link add ikt0 type veth peer name ikt1"), 0);
	snprintf(f->cfg.interfaces[0], sizeof(f->cfg.interfaces[0]), "ikt0");
	snprintf(f->cfg.interfaces[1], sizeof(f->cfg.interfaces[1]), "ikt1");
	f->cfg.ninterfaces = 2;
	assert_int_equal(bpf_engine_attach(f->e, &f->cfg), 0);
	assert_int_equal(bpf_engine_attach(f->e, &f->cfg), 0); /* replace */
	assert_int_equal(system("tc filter show dev ikt0 ingress | grep -q ikelb_tc"), 0);
	assert_int_equal(system("tc filter show dev ikt1 ingress | grep -q ikelb_tc"), 0);
	bpf_engine_detach(f->e);
	assert_int_not_equal(system("tc filter show dev ikt0 ingress | grep -q ikelb_tc"), 0);
	snprintf(f->cfg.interfaces[0], sizeof(f->cfg.interfaces[0]), "nosuchif0");
	f->cfg.ninterfaces = 1;
	assert_int_equal(bpf_engine_attach(f->e, &f->cfg), -ENODEV);
	f->cfg.ninterfaces = 0;
	assert_int_equal(system("ip link del ikt0"), 0);
	assert_int_equal(bpf_engine_refresh_local_addrs(f->e), 0);
	struct ikelb_addr lo;
	uint32_t v;
	t_addr("127.0.0.1", &lo);
	assert_int_equal(bpf_map_lookup_elem(bpf_engine_map_fd(f->e, "local_addr_map"), &lo, &v), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(sweep_expires_by_timeout, t_cm_setup, t_cm_teardown),
		cmocka_unit_test_setup_teardown(lookup_is_read_only, t_cm_setup, t_cm_teardown),
		cmocka_unit_test_setup_teardown(real_ids_stable_across_sync, t_cm_setup, t_cm_teardown),
		cmocka_unit_test_setup_teardown(sync_rejects_bad_config, t_cm_setup, t_cm_teardown),
		cmocka_unit_test(pinned_state_survives_restart),
		cmocka_unit_test_setup_teardown(attach_and_detach, t_cm_setup, t_cm_teardown),
	};
	if (t_netns() != 0)
		return 1;
	/* a private bpffs for the pinning test */
	snprintf(pin_root, sizeof(pin_root), "/tmp/ikelb-bpftest-%d", (int)getpid());
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mkdir(pin_root, 0700) < 0 || mount("bpf", pin_root, "bpf", 0, "mode=0700") < 0) {
		perror("bpffs for the test");
		return 1;
	}
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	umount(pin_root);
	rmdir(pin_root);
	return rc;
}
