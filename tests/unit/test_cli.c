/* The command-line rules of ikelb and ikelbd (src/cli/args.c): per-command
 * help, no extra or repeated arguments, options before the command, numbers
 * read like the configuration file. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "cli/args.h"

#define MAXARGS 16

struct run {
	struct cli_args a;
	char err[256];
	int rc;
};

/* Parse the NULL-terminated words after the program name. */
static struct run parse(enum cli_prog prog, const char *first, ...)
{
	char *argv[MAXARGS + 1] = { (char *)"ikelb" };
	int argc = 1;
	va_list ap;
	va_start(ap, first);
	for (const char *w = first; w && argc < MAXARGS; w = va_arg(ap, const char *))
		argv[argc++] = (char *)w;
	va_end(ap);
	struct run r = { .err = "" };
	r.rc = cli_parse(prog, argc, argv, &r.a, r.err, sizeof(r.err));
	return r;
}

#define IKELB(...) parse(CLI_IKELB, __VA_ARGS__, NULL)
#define IKELBD(...) parse(CLI_IKELBD, __VA_ARGS__, NULL)

static void assert_error(struct run r, const char *needle)
{
	assert_int_equal(r.rc, -1);
	if (!strstr(r.err, needle))
		fail_msg("error '%s' lacks '%s'", r.err, needle);
}

static void no_command_is_not_help(void **state)
{
	(void)state;
	struct run r = parse(CLI_IKELB, NULL);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.a.cmd, CLI_NONE);
	assert_false(r.a.help);
}

static void help_is_per_command(void **state)
{
	(void)state;
	struct run r = IKELB("--help");
	assert_true(r.a.help);
	assert_int_equal(r.a.cmd, CLI_NONE);
	const char *cmds[] = { "run", "check-config", "status", "stats", "server", "reload", "stop" };
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		r = IKELB(cmds[i], "--help");
		assert_int_equal(r.rc, 0);
		assert_true(r.a.help);
		assert_string_equal(cli_cmd_name(r.a.cmd), cmds[i]);
		r = IKELB(cmds[i], "-h");
		assert_true(r.a.help);
	}
	r = IKELB("help", "server");
	assert_true(r.a.help);
	assert_int_equal(r.a.cmd, CLI_SERVER);
	assert_error(IKELB("help", "nosuch"), "unknown command 'nosuch'");
}

static void version_flags(void **state)
{
	(void)state;
	assert_int_equal(IKELB("-V").a.cmd, CLI_VERSION);
	assert_int_equal(IKELB("--version").a.cmd, CLI_VERSION);
	assert_int_equal(IKELBD("-V").a.cmd, CLI_VERSION);
	assert_int_equal(IKELB("version").a.cmd, CLI_VERSION);
	assert_error(IKELB("-V", "status"), "unexpected argument 'status'");
}

static void extra_arguments_are_errors(void **state)
{
	(void)state;
	assert_error(IKELB("server", "drain", "s2", "s3"), "unexpected argument 's3'");
	assert_error(IKELB("check-config", "-c", "a.yaml", "extra"), "unexpected argument 'extra'");
	assert_error(IKELB("status", "now"), "unexpected argument 'now'");
	assert_error(IKELB("server", "weight", "a", "1", "2"), "unexpected argument '2'");
}

static void repeated_options_are_errors(void **state)
{
	(void)state;
	assert_error(IKELB("check-config", "-c", "a", "-c", "b"), "given twice");
	assert_error(IKELB("-c", "a", "status", "--config=b"), "given twice");
	assert_error(IKELB("status", "--json", "-j"), "given twice");
}

static void unknown_and_misplaced_options(void **state)
{
	(void)state;
	assert_error(IKELB("status", "--bogus"), "unknown option '--bogus'");
	assert_error(IKELB("status", "-jh"), "unknown option '-jh'");
	assert_error(IKELB("status", "--flush-state"), "does not apply");
	assert_error(IKELB("-a", "x", "run"), "run: option -a/--api does not apply");
	assert_error(IKELB("--json", "status"), "must follow the command");
	assert_error(IKELB("status", "--json=1"), "takes no value");
	assert_error(IKELB("status", "-c"), "needs a value");
	assert_error(IKELB("nosuch"), "unknown command 'nosuch'");
	assert_error(IKELBD("status"), "unknown command 'status'");
	assert_error(IKELB("run", "--log-level", "loud"), "--log-level");
}

static void global_options_before_the_command(void **state)
{
	(void)state;
	struct run r = IKELB("-c", "f.yaml", "status");
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.a.cmd, CLI_STATUS);
	assert_string_equal(r.a.config, "f.yaml");
	r = IKELB("-a", "unix:/x", "stats", "--json");
	assert_int_equal(r.a.cmd, CLI_STATS);
	assert_string_equal(r.a.api, "unix:/x");
	assert_true(r.a.json);
	r = IKELB("--config=g.yaml", "run", "--log-level", "debug", "--flush-state");
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.a.config, "g.yaml");
	assert_int_equal(r.a.log_level, LOG_LVL_DEBUG);
	assert_true(r.a.flush_state);
	r = IKELB("stop", "-ah:1", "--keep-forwarding");
	assert_string_equal(r.a.api, "h:1");
	assert_true(r.a.keep_forwarding);
}

static void options_may_follow_operands(void **state)
{
	(void)state;
	struct run r = IKELB("server", "drain", "vpn/s2", "-a", "unix:/x");
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.a.action, CLI_SRV_DRAIN);
	assert_string_equal(r.a.server, "vpn/s2");
	assert_string_equal(r.a.api, "unix:/x");
}

static void weights_read_like_the_file(void **state)
{
	(void)state;
	struct run r = IKELB("server", "weight", "a", "0x10");
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.a.action, CLI_SRV_WEIGHT);
	assert_int_equal(r.a.weight, 16);
	assert_int_equal(IKELB("server", "weight", "a", "65535").a.weight, 65535);
	assert_error(IKELB("server", "weight", "a", "65536"), "weight must be 0..65535");
	assert_error(IKELB("server", "weight", "a", "0x10000"), "weight must be 0..65535");
	assert_error(IKELB("server", "weight", "a", "abc"), "weight must be 0..65535");
	/* The first bad operand is reported before any surplus after it. */
	assert_error(IKELB("server", "weight", "a", "--", "-1", "-a", "x"), "weight must be");
}

static void server_operands(void **state)
{
	(void)state;
	assert_error(IKELB("server"), "missing ACTION");
	assert_error(IKELB("server", "drain"), "missing [SERVICE/]NAME");
	assert_error(IKELB("server", "weight", "a"), "missing N");
	assert_error(IKELB("server", "explode", "a"), "unknown server action 'explode'");
	assert_error(IKELB("server", "drain", "a?b"), "bad server name");
	assert_int_equal(IKELB("server", "enable", "a").a.action, CLI_SRV_ENABLE);
	assert_int_equal(IKELB("server", "disable", "a").a.action, CLI_SRV_DISABLE);
}

/* lookup takes an address or --spi, clients filters and pages, log
 * switches the decision log. */
static void lookup_clients_log_operands(void **state)
{
	(void)state;
	struct run r = IKELB("lookup", "[2001:db8::1]:4500", "--json");
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.a.target, "[2001:db8::1]:4500");
	assert_true(r.a.json);
	r = IKELB("lookup", "--spi", "8a3f0c11d2e4f501");
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.a.spi, "8a3f0c11d2e4f501");
	assert_error(IKELB("lookup"), "missing ADDRESS");
	assert_error(IKELB("lookup", "1.2.3.4", "--spi", "ab"), "not both");
	assert_error(IKELB("lookup", "1.2.3.4", "5.6.7.8"), "unexpected argument");
	r = IKELB("clients", "--service", "vpn", "--server", "s1", "--offset", "200", "--limit",
		  "50");
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.a.service, "vpn");
	assert_string_equal(r.a.server_filter, "s1");
	assert_int_equal(r.a.offset, 200);
	assert_int_equal(r.a.limit, 50);
	assert_error(IKELB("clients", "--limit", "20000"), "--limit");
	assert_error(IKELB("clients", "--spi", "ab"), "does not apply");
	assert_true(IKELB("log", "decisions", "on").a.log_on);
	assert_false(IKELB("log", "decisions", "off").a.log_on);
	assert_error(IKELB("log", "decisions"), "on or off");
	assert_error(IKELB("log", "everything", "on"), "decisions");
}

static void config_is_optional_for_run_and_check(void **state)
{
	(void)state;
	struct run r = IKELBD("run");
	assert_int_equal(r.rc, 0);
	assert_null(r.a.config);
	assert_int_equal(r.a.log_level, LOG_LVL_INFO);
	assert_int_equal(IKELBD("check-config").rc, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(no_command_is_not_help),
		cmocka_unit_test(help_is_per_command),
		cmocka_unit_test(version_flags),
		cmocka_unit_test(extra_arguments_are_errors),
		cmocka_unit_test(repeated_options_are_errors),
		cmocka_unit_test(unknown_and_misplaced_options),
		cmocka_unit_test(global_options_before_the_command),
		cmocka_unit_test(options_may_follow_operands),
		cmocka_unit_test(weights_read_like_the_file),
		cmocka_unit_test(server_operands),
		cmocka_unit_test(lookup_clients_log_operands),
		cmocka_unit_test(config_is_optional_for_run_and_check),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
