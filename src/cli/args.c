#include "cli/args.h"

#include <stdarg.h>
#include <string.h>

#include "core/config.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
/* More positional arguments than any command takes, so the first bad one
 * is reported before the surplus. */
#define MAX_POS (CLI_MAX_FILES + 1)

enum {
	OPT_CONFIG = 1u << 0,
	OPT_API = 1u << 1,
	OPT_JSON = 1u << 2,
	OPT_FLUSH = 1u << 3,
	OPT_KEEP = 1u << 4,
	OPT_LOGLEVEL = 1u << 5,
	OPT_HELP = 1u << 6,
	OPT_VERSION = 1u << 7,
	OPT_LIVE = 1u << 8,
	OPT_DURATION = 1u << 9,
	OPT_SPI = 1u << 10,
	OPT_SERVICE = 1u << 11,
	OPT_SERVER = 1u << 12,
	OPT_OFFSET = 1u << 13,
	OPT_LIMIT = 1u << 14,
};

/* What may come before the command; each command says which of -c/-a apply. */
#define GLOBAL_OPTS (OPT_CONFIG | OPT_API | OPT_HELP | OPT_VERSION)
#define CTL_OPTS (OPT_CONFIG | OPT_API)

struct opt_spec {
	unsigned bit;
	char short_name; /* 0: long form only */
	const char *long_name;
	bool has_arg;
};

static const struct opt_spec opt_specs[] = {
	{ OPT_CONFIG, 'c', "config", true },
	{ OPT_API, 'a', "api", true },
	{ OPT_JSON, 'j', "json", false },
	{ OPT_FLUSH, 0, "flush-state", false },
	{ OPT_KEEP, 0, "keep-forwarding", false },
	{ OPT_LOGLEVEL, 0, "log-level", true },
	{ OPT_HELP, 'h', "help", false },
	{ OPT_VERSION, 'V', "version", false },
	{ OPT_LIVE, 0, "live", true },
	{ OPT_DURATION, 0, "duration", true },
	{ OPT_SPI, 0, "spi", true },
	{ OPT_SERVICE, 0, "service", true },
	{ OPT_SERVER, 0, "server", true },
	{ OPT_OFFSET, 0, "offset", true },
	{ OPT_LIMIT, 0, "limit", true },
};

#define IN_IKELB (1u << CLI_IKELB)
#define IN_BOTH (IN_IKELB | 1u << CLI_IKELBD)

struct cmd_spec {
	const char *name;
	unsigned progs;
	unsigned opts;
	const char *synopsis; /* after "PROG NAME " */
	const char *summary;  /* its line in the command list */
	const char *details;  /* the rest of `PROG NAME --help` */
};

static const char cfg_help[] =
	"  -c, --config FILE   the configuration (default " CLI_DEFAULT_CONFIG ")\n";

static const struct cmd_spec cmd_specs[CLI_NCMDS] = {
	[CLI_RUN] = { "run", IN_BOTH, OPT_CONFIG | OPT_FLUSH | OPT_LOGLEVEL,
		      "[-c FILE] [--flush-state] [--log-level LEVEL]",
		      "run the load balancer in the foreground, logging to stderr",
		      "  --flush-state       start without the clients, SAs and flows learned\n"
		      "                      by the previous run (kept in pinned maps)\n"
		      "  --log-level LEVEL   error, warning, notice, info (default) or debug\n"
		      "`ikelb run` runs ikelbd from ikelb's own directory (same process).\n" },
	[CLI_CHECK_CONFIG] = { "check-config", IN_BOTH, OPT_CONFIG, "[-c FILE]",
			       "validate a configuration, print every error",
			       "Each error is printed as FILE:LINE:COL: MESSAGE; exit status 1 if any.\n" },
	[CLI_STATUS] = { "status", IN_IKELB, CTL_OPTS | OPT_JSON, "[-c FILE | -a ADDR] [--json]",
			 "services, real servers, state, health, clients",
			 "  -j, --json          the API's JSON (GET /v1/status)\n" },
	[CLI_STATS] = { "stats", IN_IKELB, CTL_OPTS | OPT_JSON, "[-c FILE | -a ADDR] [--json]",
			"packet and byte counters, steering decisions, drops",
			"  -j, --json          the API's JSON (GET /v1/stats)\n" },
	[CLI_SERVER] = { "server", IN_IKELB, CTL_OPTS,
			 "[-c FILE | -a ADDR] drain|enable|disable|evacuate|weight [SERVICE/]NAME [N]",
			 "drain, enable, disable, evacuate a real server or set its weight",
			 "  drain     no new clients; existing ones stay until idle\n"
			 "  enable    back to active\n"
			 "  disable   like health down: its clients move elsewhere\n"
			 "  evacuate  drain, forget its persistence and, with `vici:` configured,\n"
			 "            have its charon REDIRECT every IKE SA to the VIP (RFC 5685);\n"
			 "            progress in `ikelb status` (SAs left)\n"
			 "  weight N  N in 0..65535 (decimal or 0x-hex); new clients only\n"
			 "NAME alone must be unique across services, else give SERVICE/NAME.\n" },
	[CLI_RELOAD] = { "reload", IN_IKELB, CTL_OPTS, "[-c FILE | -a ADDR]",
			 "reload the daemon's configuration file and wait for the result",
			 "Like SIGHUP, but waits: prints each change, or why the file was refused\n"
			 "(FILE:LINE:COL: MESSAGE), and exits 1 when it was. -c only picks the API\n"
			 "address from FILE: the daemon reloads the file it was started with.\n" },
	[CLI_STOP] = { "stop", IN_IKELB, CTL_OPTS | OPT_KEEP, "[-c FILE | -a ADDR] [--keep-forwarding]",
		       "stop the daemon and wait (up to 10 s) until it is gone",
		       "  --keep-forwarding   the kernel data path keeps running on its last tables\n" },
	[CLI_DOCTOR] = { "doctor", IN_IKELB, OPT_JSON | OPT_LIVE | OPT_DURATION,
			 "[--json] CAPTURE.pcap... | [--json] --live IFACE --duration N",
			 "why VPN clients fail (error 809): IKE SAs, NAT, limits, from packets",
			 "Reads pcap/pcapng captures taken at a VPN server or either side of a balancer\n"
			 "(tcpdump -ni IF -w FILE 'udp port 500 or udp port 4500 or esp'), or captures\n"
			 "live, and reports source NAT, per-IP limits, shared NAT, split ports, silent\n"
			 "servers and fragmented IKE_AUTH with evidence. See docs/doctor.md.\n"
			 "  -j, --json          findings as JSON\n"
			 "  --live IFACE        capture on IFACE (root) instead of reading files\n"
			 "  --duration N        seconds to capture with --live, 1..3600\n"
			 "Exit status: 1 when a finding is an error, 0 otherwise, 2 on usage or I/O errors.\n" },
	[CLI_LOOKUP] = { "lookup", IN_IKELB, CTL_OPTS | OPT_JSON | OPT_SPI,
			 "[-c FILE | -a ADDR] [--json] ADDRESS[:PORT] | --spi HEX",
			 "which server a client (address, [IPv6]:port or SPI) goes to, and why",
			 "Prints one line per state entry placing the client: every client port\n"
			 "behind a NAT address, its rule (label, flow, sa, persist, fallback), when\n"
			 "it was last seen and when it expires (GET /v1/lookup).\n"
			 "  --spi HEX           an IKE SPI (9..16 hex digits, as swanctl prints it)\n"
			 "                      or an ESP SPI (up to 8)\n"
			 "  -j, --json          the API's JSON\n" },
	[CLI_CLIENTS] = { "clients", IN_IKELB,
			  CTL_OPTS | OPT_JSON | OPT_SERVICE | OPT_SERVER | OPT_OFFSET | OPT_LIMIT,
			  "[-c FILE | -a ADDR] [--service S] [--server NAME] [--offset N] "
			  "[--limit N] [--json]",
			  "list the state entries (flows, SAs, persistence), like ipvsadm -Lnc",
			  "  --service S         one service\n"
			  "  --server NAME       one server ([SERVICE/]NAME)\n"
			  "  --offset N, --limit N  paging (default 0 and 100, limit at most 10000)\n"
			  "  -j, --json          the API's JSON (GET /v1/clients)\n" },
	[CLI_LOG] = { "log", IN_IKELB, CTL_OPTS, "[-c FILE | -a ADDR] decisions on|off",
		      "switch the placement decision log on or off at run time",
		      "The daemon then logs each placement (client, SPI, service, server,\n"
		      "rule), at most 50 lines per second; dropped lines are counted.\n" },
	[CLI_HEALTH_CHECK] = { "health-check", IN_IKELB, CTL_OPTS, "[-c FILE | -a ADDR]",
			       "exit 0 only when the daemon answers and forwards (keepalived, bgp)",
			       "Asks GET /v1/status (2 s timeout): exit 0 when an engine runs and at\n"
			       "least one real server is active, else 1 with the reason on stderr. For\n"
			       "keepalived's track_script and a BGP announcement (docs/ha.md).\n" },
	[CLI_VERSION] = { "version", IN_BOTH, 0, "", "print the version (also -V, --version)", "" },
	[CLI_HELP] = { "help", IN_BOTH, 0, "[COMMAND]", "this text, or a command's (also COMMAND --help)",
		       "" },
};

struct parse {
	enum cli_prog prog;
	int argc, i;
	char *const *argv;
	unsigned seen;
	const char *pos[MAX_POS];
	int npos;
	struct cli_args *a;
	char *err;
	size_t errlen;
};

__attribute__((format(printf, 2, 3))) static int fail(struct parse *p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->err, p->errlen, fmt, ap);
	va_end(ap);
	return -1;
}

const char *cli_prog_name(enum cli_prog prog)
{
	return prog == CLI_IKELBD ? "ikelbd" : "ikelb";
}

const char *cli_cmd_name(enum cli_cmd cmd)
{
	return cmd > CLI_NONE && cmd < CLI_NCMDS ? cmd_specs[cmd].name : "";
}

static enum cli_cmd find_cmd(enum cli_prog prog, const char *name)
{
	for (int c = CLI_NONE + 1; c < CLI_NCMDS; c++)
		if ((cmd_specs[c].progs & 1u << prog) && !strcmp(cmd_specs[c].name, name))
			return (enum cli_cmd)c;
	return CLI_NONE;
}

/* ARG as "-c", "-cVAL", "--config" or "--config=VAL"; *val is set when the
 * value is attached. NULL when no option is spelled so. */
static const struct opt_spec *find_opt(const char *arg, const char **val)
{
	*val = NULL;
	for (size_t k = 0; k < NELEM(opt_specs); k++) {
		const struct opt_spec *o = &opt_specs[k];
		size_t n = strlen(o->long_name);
		if (arg[1] == '-' && !strncmp(arg + 2, o->long_name, n) &&
		    (arg[2 + n] == 0 || arg[2 + n] == '=')) {
			*val = arg[2 + n] ? arg + 3 + n : NULL;
			return o;
		}
		if (arg[1] != '-' && o->short_name && arg[1] == o->short_name) {
			*val = arg[2] ? arg + 2 : NULL;
			/* "-jh": bundled flags are not supported, say so plainly. */
			return o->has_arg || !*val ? o : NULL;
		}
	}
	return NULL;
}

static const char *opt_label(const struct opt_spec *o, char *buf, size_t len)
{
	if (o->short_name)
		snprintf(buf, len, "-%c/--%s", o->short_name, o->long_name);
	else
		snprintf(buf, len, "--%s", o->long_name);
	return buf;
}

static int set_opt(struct parse *p, unsigned bit, const char *val)
{
	struct cli_args *a = p->a;
	switch (bit) {
	case OPT_CONFIG: a->config = val; break;
	case OPT_API: a->api = val; break;
	case OPT_JSON: a->json = true; break;
	case OPT_FLUSH: a->flush_state = true; break;
	case OPT_KEEP: a->keep_forwarding = true; break;
	case OPT_HELP: a->help = true; break;
	case OPT_VERSION: a->cmd = CLI_VERSION; break;
	case OPT_LIVE: a->live = val; break;
	case OPT_SPI: a->spi = val; break;
	case OPT_SERVICE: a->service = val; break;
	case OPT_SERVER: a->server_filter = val; break;
	case OPT_OFFSET:
	case OPT_LIMIT: {
		uint64_t n;
		if (cfg_parse_u64(val, &n) < 0 || n > (bit == OPT_LIMIT ? 10000 : 1u << 30))
			return fail(p, "--%s: '%s' is not a count", bit == OPT_LIMIT ? "limit" : "offset",
				    val);
		*(bit == OPT_LIMIT ? &a->limit : &a->offset) = (unsigned long)n;
		break;
	}
	case OPT_DURATION: {
		uint64_t n;
		if (cfg_parse_u64(val, &n) < 0 || n < 1 || n > CLI_DOCTOR_MAX_SECONDS)
			return fail(p, "--duration: '%s' is not 1..%d seconds", val,
				    CLI_DOCTOR_MAX_SECONDS);
		a->duration = (unsigned)n;
		break;
	}
	case OPT_LOGLEVEL:
		if (log_level_parse(val, &a->log_level) < 0)
			return fail(p, "--log-level: '%s' is not error, warning, notice, info or debug",
				    val);
		break;
	}
	return 0;
}

/* argv[p->i] is an option; ALLOWED are those valid here (0 for CMD: before
 * the command). Consumes its value too. */
static int take_opt(struct parse *p, unsigned allowed, enum cli_cmd cmd)
{
	const char *arg = p->argv[p->i], *val;
	const struct opt_spec *o = find_opt(arg, &val);
	char name[32];

	if (!o)
		return fail(p, "unknown option '%s'", arg);
	opt_label(o, name, sizeof(name));
	if (!(allowed & o->bit))
		return cmd ? fail(p, "%s: option %s does not apply", cmd_specs[cmd].name, name) :
			     fail(p, "option %s must follow the command", name);
	if (p->seen & o->bit)
		return fail(p, "option %s given twice", name);
	p->seen |= o->bit;
	if (!o->has_arg && val)
		return fail(p, "option %s takes no value", name);
	if (o->has_arg && !val && p->i + 1 < p->argc)
		val = p->argv[++p->i];
	if (o->has_arg && (!val || !*val))
		return fail(p, "option %s needs a value", name);
	return set_opt(p, o->bit, val);
}

static bool is_option(const char *arg)
{
	return arg[0] == '-' && arg[1];
}

/* Options before the command; stops at the command word, at --help or
 * after -V (which acts as the `version` command). */
static int parse_global(struct parse *p)
{
	for (; p->i < p->argc && is_option(p->argv[p->i]); p->i++) {
		if (!strcmp(p->argv[p->i], "--")) {
			p->i++;
			break;
		}
		if (take_opt(p, GLOBAL_OPTS, CLI_NONE) < 0)
			return -1;
		if (p->a->help)
			return 0;
		if (p->a->cmd == CLI_VERSION) {
			p->i++;
			break;
		}
	}
	return 0;
}

/* Options and operands after the command, in any order; `--` ends options. */
static int parse_rest(struct parse *p)
{
	const struct cmd_spec *spec = &cmd_specs[p->a->cmd];
	bool operands_only = false;

	for (; p->i < p->argc; p->i++) {
		const char *arg = p->argv[p->i];
		if (!operands_only && !strcmp(arg, "--")) {
			operands_only = true;
		} else if (!operands_only && is_option(arg)) {
			if (take_opt(p, spec->opts | OPT_HELP, p->a->cmd) < 0)
				return -1;
			if (p->a->help)
				return 0;
		} else if (p->npos == MAX_POS) {
			return fail(p, "%s: too many arguments", spec->name);
		} else {
			p->pos[p->npos++] = arg;
		}
	}
	return 0;
}

static int no_more(struct parse *p, int used)
{
	if (p->npos > used)
		return fail(p, "%s: unexpected argument '%s'", cmd_specs[p->a->cmd].name,
			    p->pos[used]);
	return 0;
}

static int parse_weight(struct parse *p, const char *s)
{
	uint64_t w;
	if (cfg_parse_u64(s, &w) < 0 || w > CFG_WEIGHT_MAX)
		return fail(p, "weight must be 0..%d (decimal or 0x-hex), not '%s'", CFG_WEIGHT_MAX,
			    s);
	p->a->weight = (uint32_t)w;
	return 0;
}

static int parse_server(struct parse *p)
{
	static const char *const actions[] = {
		[CLI_SRV_DRAIN] = "drain",
		[CLI_SRV_ENABLE] = "enable",
		[CLI_SRV_DISABLE] = "disable",
		[CLI_SRV_WEIGHT] = "weight",
		[CLI_SRV_EVACUATE] = "evacuate",
	};
	struct cli_args *a = p->a;
	size_t k = 0;

	if (p->npos < 1)
		return fail(p, "server: missing ACTION");
	while (k < NELEM(actions) && strcmp(p->pos[0], actions[k]))
		k++;
	if (k == NELEM(actions))
		return fail(p, "unknown server action '%s' (drain, enable, disable, evacuate, weight)",
			    p->pos[0]);
	a->action = (enum cli_server_action)k;
	int need = a->action == CLI_SRV_WEIGHT ? 3 : 2;
	if (p->npos < 2)
		return fail(p, "server %s: missing [SERVICE/]NAME", p->pos[0]);
	a->server = p->pos[1];
	/* The name goes into the request path: nothing that would end it. */
	if (!*a->server || strpbrk(a->server, "?# ") || strlen(a->server) > 200)
		return fail(p, "bad server name '%s'", a->server);
	if (need == 3 && p->npos < 3)
		return fail(p, "server weight: missing N");
	if (need == 3 && parse_weight(p, p->pos[2]) < 0)
		return -1;
	return no_more(p, need);
}

static int parse_doctor(struct parse *p)
{
	struct cli_args *a = p->a;
	if (a->live && !a->duration)
		return fail(p, "doctor: --live needs --duration N (1..%d seconds)",
			    CLI_DOCTOR_MAX_SECONDS);
	if (a->duration && !a->live)
		return fail(p, "doctor: --duration applies to --live only");
	if (a->live && p->npos)
		return fail(p, "doctor: give capture files or --live, not both");
	if (!a->live && !p->npos)
		return fail(p, "doctor: missing CAPTURE.pcap (or --live IFACE --duration N)");
	if (p->npos > CLI_MAX_FILES)
		return fail(p, "doctor: at most %d capture files", CLI_MAX_FILES);
	for (int i = 0; i < p->npos; i++)
		a->files[i] = p->pos[i];
	a->nfiles = p->npos;
	return 0;
}

static int parse_lookup(struct parse *p)
{
	struct cli_args *a = p->a;
	if (a->spi && p->npos)
		return fail(p, "lookup: give ADDRESS[:PORT] or --spi HEX, not both");
	if (!a->spi && !p->npos)
		return fail(p, "lookup: missing ADDRESS[:PORT] (or --spi HEX)");
	if (!a->spi)
		a->target = p->pos[0];
	return no_more(p, a->spi ? 0 : 1);
}

static int parse_log(struct parse *p)
{
	if (p->npos < 1 || strcmp(p->pos[0], "decisions"))
		return fail(p, "log: expected 'decisions on|off'");
	if (p->npos < 2 || (strcmp(p->pos[1], "on") && strcmp(p->pos[1], "off")))
		return fail(p, "log decisions: expected on or off");
	p->a->log_on = !strcmp(p->pos[1], "on");
	return no_more(p, 2);
}

static int parse_help(struct parse *p)
{
	p->a->help = true;
	if (p->npos == 0) {
		p->a->cmd = CLI_NONE;
		return 0;
	}
	enum cli_cmd c = find_cmd(p->prog, p->pos[0]);
	if (c == CLI_NONE)
		return fail(p, "help: unknown command '%s'", p->pos[0]);
	if (no_more(p, 1) < 0)
		return -1;
	p->a->cmd = c;
	return 0;
}

/* The operands of the command, then -c/-a given before it must apply. */
static int finish(struct parse *p)
{
	const struct cmd_spec *spec = &cmd_specs[p->a->cmd];
	unsigned stray = p->seen & CTL_OPTS & ~spec->opts;
	char name[32];

	for (size_t k = 0; k < NELEM(opt_specs) && stray; k++)
		if (stray & opt_specs[k].bit)
			return fail(p, "%s: option %s does not apply", spec->name,
				    opt_label(&opt_specs[k], name, sizeof(name)));
	if (p->a->cmd == CLI_SERVER)
		return parse_server(p);
	if (p->a->cmd == CLI_HELP)
		return parse_help(p);
	if (p->a->cmd == CLI_DOCTOR)
		return parse_doctor(p);
	if (p->a->cmd == CLI_LOOKUP)
		return parse_lookup(p);
	if (p->a->cmd == CLI_LOG)
		return parse_log(p);
	return no_more(p, 0);
}

int cli_parse(enum cli_prog prog, int argc, char *const *argv, struct cli_args *a, char *err,
	      size_t errlen)
{
	struct parse p = { .prog = prog, .argc = argc, .i = 1, .argv = argv, .a = a, .err = err,
			   .errlen = errlen };

	*a = (struct cli_args){ .log_level = LOG_LVL_INFO };
	if (parse_global(&p) < 0)
		return -1;
	if (a->help || (a->cmd == CLI_NONE && p.i >= argc))
		return 0;
	if (a->cmd == CLI_NONE) {
		a->cmd = find_cmd(prog, argv[p.i]);
		if (a->cmd == CLI_NONE)
			return fail(&p, "unknown command '%s'", argv[p.i]);
		p.i++;
	}
	if (parse_rest(&p) < 0)
		return -1;
	return a->help ? 0 : finish(&p);
}

void cli_synopsis(FILE *f, enum cli_prog prog, enum cli_cmd cmd)
{
	const char *name = cli_prog_name(prog);
	if (cmd == CLI_NONE) {
		fprintf(f, "usage: %s [-c FILE%s] COMMAND [ARGS]\n", name,
			prog == CLI_IKELB ? " | -a ADDR" : "");
		fprintf(f, "       %s COMMAND --help\n       %s --help | --version\n", name, name);
		return;
	}
	fprintf(f, "usage: %s %s%s%s\n", name, cmd_specs[cmd].name, *cmd_specs[cmd].synopsis ? " " : "",
		cmd_specs[cmd].synopsis);
}

static void command_list(FILE *f, enum cli_prog prog)
{
	fprintf(f, "\ncommands:\n");
	for (int c = CLI_NONE + 1; c < CLI_NCMDS; c++)
		if (cmd_specs[c].progs & 1u << prog)
			fprintf(f, "  %-14s %s\n", cmd_specs[c].name, cmd_specs[c].summary);
	if (prog == CLI_IKELB)
		fprintf(f, "\nrun and check-config read -c FILE, default " CLI_DEFAULT_CONFIG ";\n"
			   "doctor reads captures; the others talk to a running daemon\n"
			   "(see `ikelb status --help`).\n");
}

static void ctl_help(FILE *f)
{
	fprintf(f, "  -a, --api ADDR      the daemon's API: unix:PATH or HOST:PORT\n"
		   "  -c, --config FILE   use FILE's api.listen\n"
		   "Without either: $IKELB_API, else " CLI_DEFAULT_API ".\n");
}

void cli_usage(FILE *f, enum cli_prog prog, enum cli_cmd cmd)
{
	const struct cmd_spec *spec = &cmd_specs[cmd];
	cli_synopsis(f, prog, cmd);
	if (cmd == CLI_NONE) {
		command_list(f, prog);
		return;
	}
	fprintf(f, "\n%s.\n", spec->summary);
	fputs(spec->details, f);
	if (spec->opts & OPT_API)
		ctl_help(f);
	else if (spec->opts & OPT_CONFIG)
		fputs(cfg_help, f);
}

int cli_start(enum cli_prog prog, int argc, char *const *argv, struct cli_args *a)
{
	char err[256];
	if (cli_parse(prog, argc, argv, a, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s: %s\n", cli_prog_name(prog), err);
		cli_synopsis(stderr, prog, a->cmd);
		return 2;
	}
	if (a->help) {
		cli_usage(stdout, prog, a->cmd);
		return 0;
	}
	if (a->cmd == CLI_NONE) {
		cli_usage(stderr, prog, CLI_NONE);
		return 2;
	}
	if (a->cmd == CLI_VERSION) {
		printf("%s %s\n", cli_prog_name(prog), IKELB_VERSION);
		return 0;
	}
	return -1;
}
