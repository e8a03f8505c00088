/* The dsr layout check (src/engine/dsr_check.c) against a fake
 * /proc/sys/net/ipv4/conf: the settings measured in the lab to drop the
 * servers' replies (local VIP without accept_local; strict rp_filter) warn,
 * the ones that work do not. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/dsr_check.h"

struct fx {
	char dir[64];
	struct cfg cfg;
	struct cfg_service svc;
	struct logger log;
	struct ikelb_addr local[2];
	char last[1024];
};

static int sink(void *ctx, enum log_level lvl, const char *msg, const struct log_field *f, int n)
{
	struct fx *x = ctx;
	(void)lvl, (void)f, (void)n;
	snprintf(x->last, sizeof(x->last), "%s", msg);
	return 0;
}

static void put(struct fx *f, const char *dev, const char *key, int v)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", f->dir, dev);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/%s/%s", f->dir, dev, key);
	FILE *fp = fopen(p, "w");
	assert_non_null(fp);
	fprintf(fp, "%d\n", v);
	fclose(fp);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/ikelb-dsrchk-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	log_init(&f->log, LOG_LVL_INFO);
	f->log.sink = sink;
	f->log.sink_ctx = f;
	cfg_defaults(&f->cfg);
	cfg_service_defaults(&f->svc);
	snprintf(f->svc.name, sizeof(f->svc.name), "vpn");
	assert_int_equal(ikelb_addr_parse("203.0.113.10", &f->svc.vip), 0);
	f->svc.forwarding = CFG_FWD_DSR;
	f->cfg.services = &f->svc;
	f->cfg.nservices = 1;
	snprintf(f->cfg.interfaces[0], CFG_NAME_MAX, "c0");
	snprintf(f->cfg.interfaces[1], CFG_NAME_MAX, "s0");
	f->cfg.interface_roles[0] = CFG_IF_PUBLIC;
	f->cfg.interface_roles[1] = CFG_IF_SERVERS;
	f->cfg.ninterfaces = 2;
	assert_int_equal(ikelb_addr_parse("203.0.113.10", &f->local[0]), 0);
	assert_int_equal(ikelb_addr_parse("198.51.100.1", &f->local[1]), 0);
	for (int i = 0; i < 3; i++) {
		const char *dev = i == 0 ? "all" : i == 1 ? "c0" : "s0";
		put(f, dev, "accept_local", 0);
		put(f, dev, "rp_filter", 0);
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* The layout: the VIP on ikelb, accept_local off: martian. */
static void local_vip_without_accept_local(void **state)
{
	struct fx *f = *state;
	assert_int_equal(dsr_check(&f->cfg, f->local, 2, f->dir, &f->log), 1);
	assert_non_null(strstr(f->last, "martian"));
	assert_non_null(strstr(f->last, "net.ipv4.conf.s0.accept_local"));
	put(f, "all", "accept_local", 1); /* all || dev */
	assert_int_equal(dsr_check(&f->cfg, f->local, 2, f->dir, &f->log), 0);
}

/* accept_local on, but strict reverse path filtering: dropped too. */
static void strict_rp_filter(void **state)
{
	struct fx *f = *state;
	put(f, "s0", "accept_local", 1);
	put(f, "all", "rp_filter", 1); /* max(all, dev) */
	assert_int_equal(dsr_check(&f->cfg, f->local, 2, f->dir, &f->log), 1);
	assert_non_null(strstr(f->last, "rp_filter"));
	put(f, "all", "rp_filter", 2);
	assert_int_equal(dsr_check(&f->cfg, f->local, 2, f->dir, &f->log), 0);
}

/* The VIP routed here, not assigned; only the servers' side matters; dnat
 * services are not checked. */
static void routed_vip_and_other_cases(void **state)
{
	struct fx *f = *state;
	assert_int_equal(dsr_check(&f->cfg, f->local + 1, 1, f->dir, &f->log), 0);
	put(f, "c0", "rp_filter", 1);
	assert_int_equal(dsr_check(&f->cfg, f->local + 1, 1, f->dir, &f->log), 0);
	put(f, "s0", "rp_filter", 1);
	assert_int_equal(dsr_check(&f->cfg, f->local + 1, 1, f->dir, &f->log), 1);
	f->svc.forwarding = CFG_FWD_DNAT;
	assert_int_equal(dsr_check(&f->cfg, f->local, 2, f->dir, &f->log), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(local_vip_without_accept_local, setup, teardown),
		cmocka_unit_test_setup_teardown(strict_rp_filter, setup, teardown),
		cmocka_unit_test_setup_teardown(routed_vip_and_other_cases, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
