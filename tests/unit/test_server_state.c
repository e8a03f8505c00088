/* The server-state file (ctl/server_state.c): API-set drains and weights
 * written by one runtime come back in a fresh one (a restart), unless the
 * configuration file changed that setting since; servers that are gone,
 * and files that are missing, corrupt or of an unknown version, change
 * nothing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/runtime.h"
#include "ctl/server_state.h"
#include "steer_cfg.h"

#define NSRV 3

/* One "process": a configuration and its runtime. */
struct proc {
	struct cfg cfg;
	struct runtime rt;
};

struct fx {
	char dir[64];
	char path[128];
	struct logger log;
};

static int nop_table(void *ctx, int svc, const uint32_t *t, uint32_t m)
{
	(void)ctx, (void)svc, (void)t, (void)m;
	return 0;
}

static int nop_state(void *ctx, int svc, int srv, int state)
{
	(void)ctx, (void)svc, (void)srv, (void)state;
	return 0;
}

/* Servers s0..s2 at 198.51.100.11..13, as the file says, before any API
 * change. */
static struct proc *proc_new(struct fx *f)
{
	struct proc *p = calloc(1, sizeof(*p));
	assert_non_null(p);
	assert_int_equal(tcfg_build(&p->cfg, "203.0.113.1", 500, 4500, NSRV, "198.51.100.%d", 11),
			 0);
	const struct rt_ops ops = { .set_table = nop_table, .set_server_state = nop_state };
	assert_int_equal(rt_init(&p->rt, &p->cfg, &f->log, &ops), 0);
	return p;
}

static void proc_free(struct proc *p)
{
	rt_free(&p->rt);
	cfg_free(&p->cfg);
	free(p);
}

static struct rt_server *srv(struct proc *p, int i)
{
	return &p->rt.svc[0].servers[i];
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	log_init(&f->log, LOG_LVL_ERR);
	snprintf(f->dir, sizeof(f->dir), "/tmp/ikelb-sstate-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	/* A subdirectory that does not exist yet: the save creates it. */
	snprintf(f->path, sizeof(f->path), "%s/lib/server-state.json", f->dir);
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

static void write_text(const char *path, const char *text)
{
	char dir[128];
	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = 0;
	mkdir(dir, 0755);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

/* Drain s0 and weigh s1 at 50 through the "API", save. */
static void save_overrides(struct fx *f)
{
	struct proc *p = proc_new(f);
	assert_int_equal(rt_set_admin(&p->rt, 0, 0, CFG_SRV_DRAINING, 1), 0);
	assert_int_equal(rt_set_weight(&p->rt, 0, 1, 50, 1), 0);
	assert_int_equal(sstate_save(f->path, &p->cfg, &p->rt, &f->log), 0);
	proc_free(p);
}

static void round_trip(void **state)
{
	struct fx *f = *state;
	save_overrides(f);
	struct stat st;
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);

	struct proc *p = proc_new(f);
	assert_int_equal(sstate_load(f->path, &p->cfg, &p->rt, &f->log, 2), 2);
	assert_int_equal(srv(p, 0)->admin, CFG_SRV_DRAINING);
	assert_int_equal(srv(p, 0)->file_admin, CFG_SRV_ACTIVE);
	assert_int_equal(srv(p, 0)->effective, REAL_DRAINING);
	assert_int_equal(srv(p, 1)->weight, 50);
	assert_int_equal(srv(p, 1)->file_weight, 100);
	assert_int_equal(srv(p, 2)->admin, CFG_SRV_ACTIVE);
	assert_int_equal(srv(p, 2)->weight, 100);
	proc_free(p);
}

static void file_wins_for_a_setting_it_changed(void **state)
{
	struct fx *f = *state;
	save_overrides(f);
	struct proc *p = proc_new(f);
	/* Since the save, the file moved s1 to weight 80. */
	p->cfg.services[0].servers[1].weight = 80;
	rt_free(&p->rt);
	const struct rt_ops ops = { .set_table = nop_table, .set_server_state = nop_state };
	assert_int_equal(rt_init(&p->rt, &p->cfg, &f->log, &ops), 0);
	assert_int_equal(sstate_load(f->path, &p->cfg, &p->rt, &f->log, 2), 1);
	assert_int_equal(srv(p, 1)->weight, 80);     /* the file's */
	assert_int_equal(srv(p, 0)->admin, CFG_SRV_DRAINING); /* still the API's */
	proc_free(p);
}

static void unknown_server_or_address_ignored(void **state)
{
	struct fx *f = *state;
	save_overrides(f);
	struct proc *p = proc_new(f);
	/* s0 now names another machine; s1 is renamed. */
	assert_int_equal(ikelb_addr_parse("198.51.100.99", &p->cfg.services[0].servers[0].addr), 0);
	snprintf(p->cfg.services[0].servers[1].name, CFG_NAME_MAX, "other");
	assert_int_equal(sstate_load(f->path, &p->cfg, &p->rt, &f->log, 2), 0);
	for (int i = 0; i < NSRV; i++) {
		assert_int_equal(srv(p, i)->admin, CFG_SRV_ACTIVE);
		assert_int_equal(srv(p, i)->weight, 100);
	}
	proc_free(p);
}

/* Loads text as the state file; nothing may change. */
static void load_changes_nothing(struct fx *f, const char *text)
{
	if (text)
		write_text(f->path, text);
	struct proc *p = proc_new(f);
	int rc = sstate_load(f->path, &p->cfg, &p->rt, &f->log, 2);
	assert_true(text ? rc < 0 : rc == 0);
	for (int i = 0; i < NSRV; i++) {
		assert_int_equal(srv(p, i)->admin, CFG_SRV_ACTIVE);
		assert_int_equal(srv(p, i)->weight, 100);
	}
	proc_free(p);
}

static const char entry[] = "{\"service\":\"vpn\",\"server\":\"s0\",\"address\":\"198.51.100.11\","
			    "\"admin\":\"draining\",\"weight\":100,\"file_admin\":\"active\","
			    "\"file_weight\":100}";

static void bad_files_change_nothing(void **state)
{
	struct fx *f = *state;
	char text[512];
	load_changes_nothing(f, NULL); /* missing */
	load_changes_nothing(f, "{\"version\":1,\"servers\":[");
	load_changes_nothing(f, "[1,2]");
	snprintf(text, sizeof(text), "{\"version\":2,\"saved_at\":1,\"servers\":[%s]}", entry);
	load_changes_nothing(f, text);
	/* The same entry under version 1 is applied: the files above were
	 * refused for what they were, not for the entry. */
	snprintf(text, sizeof(text), "{\"version\":1,\"saved_at\":1,\"servers\":[%s]}", entry);
	write_text(f->path, text);
	struct proc *p = proc_new(f);
	assert_int_equal(sstate_load(f->path, &p->cfg, &p->rt, &f->log, 2), 1);
	assert_int_equal(srv(p, 0)->admin, CFG_SRV_DRAINING);
	proc_free(p);
}

static void malformed_entry_skipped(void **state)
{
	struct fx *f = *state;
	char text[768];
	snprintf(text, sizeof(text),
		 "{\"version\":1,\"servers\":[{\"service\":\"vpn\",\"server\":\"s1\","
		 "\"weight\":\"x\"},%s]}", entry);
	write_text(f->path, text);
	struct proc *p = proc_new(f);
	assert_int_equal(sstate_load(f->path, &p->cfg, &p->rt, &f->log, 2), 1);
	assert_int_equal(srv(p, 0)->admin, CFG_SRV_DRAINING);
	proc_free(p);
}

/* The save goes through a tmp file renamed over the target: afterwards the
 * directory holds the state file alone, and no overrides is an empty list. */
static void atomic_write_leaves_no_tmp(void **state)
{
	struct fx *f = *state;
	save_overrides(f);
	struct proc *p = proc_new(f);
	assert_int_equal(sstate_save(f->path, &p->cfg, &p->rt, &f->log), 0);
	proc_free(p);
	char dir[128];
	snprintf(dir, sizeof(dir), "%s/lib", f->dir);
	DIR *d = opendir(dir);
	assert_non_null(d);
	int n = 0;
	for (struct dirent *e; (e = readdir(d));)
		if (e->d_name[0] != '.') {
			assert_string_equal(e->d_name, "server-state.json");
			n++;
		}
	closedir(d);
	assert_int_equal(n, 1);
	FILE *fp = fopen(f->path, "r");
	char buf[256] = "";
	assert_non_null(fp);
	assert_true(fread(buf, 1, sizeof(buf) - 1, fp) > 0);
	fclose(fp);
	assert_non_null(strstr(buf, "\"servers\": []"));
}

static void empty_path_is_off(void **state)
{
	struct fx *f = *state;
	struct proc *p = proc_new(f);
	assert_int_equal(sstate_save("", &p->cfg, &p->rt, &f->log), 0);
	assert_int_equal(sstate_load("", &p->cfg, &p->rt, &f->log, 2), 0);
	assert_int_equal(access(f->path, F_OK), -1);
	proc_free(p);
}

static void unwritable_directory_fails_cleanly(void **state)
{
	struct fx *f = *state;
	struct proc *p = proc_new(f);
	char path[160];
	/* The parent of the directory is missing: only one level is created. */
	snprintf(path, sizeof(path), "%s/no/such/state.json", f->dir);
	assert_true(sstate_save(path, &p->cfg, &p->rt, &f->log) < 0);
	proc_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(file_wins_for_a_setting_it_changed, setup, teardown),
		cmocka_unit_test_setup_teardown(unknown_server_or_address_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_files_change_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(malformed_entry_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(atomic_write_leaves_no_tmp, setup, teardown),
		cmocka_unit_test_setup_teardown(empty_path_is_off, setup, teardown),
		cmocka_unit_test_setup_teardown(unwritable_directory_fails_cleanly, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
