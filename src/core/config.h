/* Configuration model. The YAML parser (config.c, libyaml) fills these
 * structures; every other module reads them. Documented key by key in
 * docs/config.md. */
#ifndef IKELB_CONFIG_H
#define IKELB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ikelb/addr.h"
#include "ikelb/maps.h"

#define CFG_NAME_MAX 64
#define CFG_MAX_PORTS 16
#define CFG_MAX_TCP_PORTS 4 /* tcp_ports per service (SSTP: 443) */
#define CFG_MAX_SERVICES 32
#define CFG_SOCK_MAX_WORKERS 64
#define CFG_SOCK_MAX_COALESCE_US 1000 /* = SOCK_MOD_MAX_US */
#define CFG_SOCK_COALESCE_DEFAULT_US 0
#define CFG_MAX_SERVERS 1024 /* per service */
#define CFG_MAX_INTERFACES 16
#define CFG_IF_PUBLIC 0x1  /* clients reach the VIPs here */
#define CFG_IF_SERVERS 0x2 /* real servers are reached here */
#define CFG_MAX_SNAT_POOL 64
#define CFG_WEIGHT_MAX 65535

/* A configuration the validator accepts must fit the BPF maps. */
_Static_assert(CFG_MAX_SERVICES == IKELB_MAX_SERVICES, "one service id space for config and maps");
_Static_assert(CFG_MAX_SERVICES * (CFG_MAX_PORTS + CFG_MAX_TCP_PORTS) <= IKELB_MAX_SVC_PORTS,
	       "every (vip, port) of a full configuration needs a svc_map slot");
_Static_assert(CFG_MAX_SERVERS <= IKELB_MAX_REALS, "one service's servers must fit reals_map");

enum cfg_engine { CFG_ENGINE_BPF = 0, CFG_ENGINE_SOCKET = 1 };
/* bpf engine hooks: tc clsact ingress only, or XDP in front of it for the
 * dnat hot path (tc stays attached for everything XDP passes on). */
enum cfg_bpf_attach { CFG_BPF_ATTACH_TC = 0, CFG_BPF_ATTACH_XDP = 1 };
enum cfg_forwarding { CFG_FWD_DNAT = 0, CFG_FWD_DSR = 1, CFG_FWD_FULLNAT = 2 };
enum cfg_persist_mode { CFG_PERSIST_SOURCE_IP = 0, CFG_PERSIST_IKE = 1 };
enum cfg_sched {
	CFG_SCHED_MAGLEV = 0,
	CFG_SCHED_RR,
	CFG_SCHED_WRR,
	CFG_SCHED_LC,
	CFG_SCHED_WLC,
	CFG_SCHED_SH,
	CFG_SCHED_FO,
};
enum cfg_health_type { CFG_HEALTH_IKE = 0, CFG_HEALTH_UDP = 1, CFG_HEALTH_NONE = 2 };
/* Admin state; health is tracked separately at run time. */
enum cfg_server_state { CFG_SRV_ACTIVE = 0, CFG_SRV_DRAINING = 1, CFG_SRV_DISABLED = 2 };

struct cfg_health {
	enum cfg_health_type type;
	uint32_t interval_ms; /* default 5000 */
	uint32_t timeout_ms;  /* default 2000 */
	uint32_t rise;        /* default 2 */
	uint32_t fall;        /* default 3 */
	uint16_t port;        /* 0: first service port (normally 500) */
	uint8_t *send;        /* udp: payload to send (hex in YAML) */
	size_t send_len;
	uint8_t *expect;      /* udp: reply must start with these bytes */
	size_t expect_len;
};

struct cfg_persistence {
	enum cfg_persist_mode mode;
	uint32_t timeout_s;  /* idle timeout of client persistence, default 3600 */
	int netmask;         /* IPv4 prefix length for source-ip, default 32 */
	int netmask6;        /* IPv6 prefix length for source-ip, default 128 */
	uint32_t flow_timeout_s; /* idle timeout of flow entries, default 300 */
};

#define CFG_VICI_MAX 128 /* = VICI_URI_MAX */

struct cfg_server {
	char name[CFG_NAME_MAX];
	struct ikelb_addr addr;
	uint32_t weight;     /* 0..65535, default 100; 0 = no new clients */
	enum cfg_server_state state;
	/* init_state: down (default with a health check): until its first probe
	 * succeeds the server keeps existing clients but takes no new ones. */
	bool init_down;
	bool has_spi_label;
	uint64_t spi_label;  /* IKE SPI label, full 64-bit value (already shifted
			      * into place), compared under the service spi_mask */
	bool has_esp_range;
	uint32_t esp_spi_min; /* inbound ESP SPIs this server allocates */
	uint32_t esp_spi_max;
	/* strongSwan vici socket (unix:///PATH or tcp://ADDR:PORT) for
	 * evacuation by RFC 5685 REDIRECT; "" = none */
	char vici[CFG_VICI_MAX];
	uint32_t max_clients; /* capacity: no new clients at this many, 0 = no limit */
	uint32_t slow_start_ms; /* weight ramp after DOWN -> up, 0 = off (service default) */
	int line;            /* YAML line, for messages */
};

/* admission: new IKE SAs (docs/config.md, "admission"). Rates per second;
 * 0 = that limit is off. */
struct cfg_admission {
	bool enabled;               /* the mapping was given */
	uint32_t rate, burst;       /* the service's new SAs */
	uint32_t per_source_rate, per_source_burst; /* each client address's */
	bool cookie;                /* cookie_threshold was given */
	uint32_t cookie_threshold;  /* INITs per second let through without ikelb's
				     * COOKIE; 0 = every new INIT must return one */
};

struct cfg_service {
	char name[CFG_NAME_MAX];
	struct ikelb_addr vip;
	uint16_t ports[CFG_MAX_PORTS];
	int nports;
	/* TCP ports on the same VIP, same servers and persistence (SSTP on
	 * 443 beside IKEv2; docs/tcp.md). bpf engine only. */
	uint16_t tcp_ports[CFG_MAX_TCP_PORTS];
	int ntcp_ports;
	bool tcp_check;       /* health.tcp_check: connect (default with tcp_ports) */
	uint16_t ike_port;    /* the port with bare IKE framing (500's role);
			       * every other port uses RFC 3948 framing. Default 500 */
	enum cfg_forwarding forwarding;
	struct cfg_persistence persistence;
	enum cfg_sched scheduler;
	uint32_t maglev_size; /* prime, default 65537 */
	uint64_t spi_mask;    /* IKE SPI label mask, 0 = no IKE labels; the effective
			       * mask (0xff00000000000000 when labels are given
			       * without spi_mask) */
	struct cfg_health health;
	struct cfg_admission admission;
	bool init_down;        /* init_state default for the servers, default down */
	uint32_t slow_start_ms; /* slow_start default for the servers, 0 = off */
	struct ikelb_addr snat_pool[CFG_MAX_SNAT_POOL]; /* fullnat source addresses */
	int nsnat_pool;
	struct cfg_server *servers;
	int nservers;
	int line;
};

#define CFG_MAX_SYNC_PEERS 16

/* State sync between nodes (docs/ha.md): off unless `sync` is given. */
struct cfg_sync {
	bool enabled;
	struct ikelb_addr listen;   /* local address and port to bind */
	uint16_t listen_port;
	struct ikelb_addr peers[CFG_MAX_SYNC_PEERS];
	uint16_t peer_ports[CFG_MAX_SYNC_PEERS];
	int npeers;
	char key_file[256];         /* shared HMAC key, absolute path */
	uint32_t interval_ms;       /* batching / walk period, default 200 */
	uint32_t max_rate;          /* datagrams per second per peer, default 2000 */
	uint32_t refresh_s;         /* resend an unchanged entry after, default 60 */
};

struct cfg {
	enum cfg_engine engine;
	char interfaces[CFG_MAX_INTERFACES][CFG_NAME_MAX];
	/* CFG_IF_* per interface: the list form gives each both roles, the
	 * map form { public: [...], servers: [...] } what it names
	 * (docs/security.md: where replies of real servers are believed). */
	uint8_t interface_roles[CFG_MAX_INTERFACES];
	int ninterfaces;
	char api_listen[256];  /* "unix:/run/ikelb/api.sock" or "127.0.0.1:8080" */
	char api_token_file[256]; /* bearer token for a TCP listener; "" = none */
	uint64_t api_idle_timeout_ms; /* an API connection idle this long is closed */
	char bpf_pin_dir[256]; /* default /sys/fs/bpf/ikelb */
	/* API-set admin states and weights kept across restarts and re-execs
	 * (ctl/server_state.c); default /var/lib/ikelb/server-state.json, "" = off */
	char server_state_file[256];
	enum cfg_bpf_attach bpf_attach; /* default tc */
	uint64_t maglev_seed;  /* same on every node => same tables */
	uint32_t max_clients;  /* persistence / SA table capacity, default 1048576 */
	uint32_t max_flows;    /* flow table capacity, default 1048576 */
	uint32_t max_halfopen; /* half-open IKE SA table capacity, default 65536 */
	/* socket engine: worker threads (0 = auto: one per online CPU, at
	 * most SOCK_AUTO_WORKERS) and the receive
	 * moderation bound in us (engine/sock_mod.h; 0 = off) */
	uint32_t sock_workers;
	uint32_t sock_coalesce_us;
	struct cfg_service *services;
	int nservices;
	struct cfg_sync sync;
};

/* "198.51.100.2:7600" or "[2001:db8::1]:7600" into address and port;
 * 0 or -EINVAL. */
int cfg_parse_host_port(const char *s, struct ikelb_addr *a, uint16_t *port);

/* One error, formatted "file:line:col: message". */
struct cfg_error {
	char msg[512];
	int line, col; /* 1-based; 0 when the error has no position (file unreadable) */
};

struct cfg_errors {
	struct cfg_error *v;
	int n;
	int cap;
};

/* Parse and validate. Returns 0 and fills *out on success; on failure
 * returns -1 and appends every problem found to *errs, sorted by position
 * (the caller frees with cfg_errors_free). *out is left valid for cfg_free
 * either way; *errs must be zeroed or hold earlier errors. */
int cfg_load_file(const char *path, struct cfg *out, struct cfg_errors *errs);
int cfg_load_string(const char *name, const char *yaml, size_t len, struct cfg *out,
		    struct cfg_errors *errs);
void cfg_free(struct cfg *c);
void cfg_errors_free(struct cfg_errors *e);

/* Integers as the file writes them: decimal or 0x-hex, no sign, no spaces.
 * Returns 0, -1 (junk), -2 (overflow); the CLI parses its numbers alike. */
int cfg_parse_u64(const char *s, uint64_t *out);

/* Durations: "90s", "5m", "1h", "1d", "250ms", bare number = seconds. */
int cfg_parse_duration_ms(const char *s, uint64_t *ms);

/* Fill the documented defaults (used by the loader; handy for tests that
 * build a configuration in code). cfg_defaults leaves services NULL. */
void cfg_defaults(struct cfg *c);
void cfg_service_defaults(struct cfg_service *s);
void cfg_server_defaults(struct cfg_server *s);

/* api.listen: a unix socket (permission-controlled), or a TCP address whose
 * host is loopback (127.0.0.0/8, [::1], localhost). */
bool cfg_api_is_unix(const char *listen);
bool cfg_api_loopback(const char *listen);
const char *cfg_engine_name(enum cfg_engine e);
const char *cfg_forwarding_name(enum cfg_forwarding f);
const char *cfg_sched_name(enum cfg_sched s);
const char *cfg_persist_name(enum cfg_persist_mode m);
const char *cfg_health_name(enum cfg_health_type t);

/* State tables only some configurations use. The bpf engine creates a
 * table no service can use with CFG_UNUSED_TABLE_ENTRIES slots instead of
 * max_clients / max_flows (they are preallocated: 96 bytes a slot), so a
 * reload that needs it asks for a restart (docs/config.md, "Sizing"). */
#define CFG_UNUSED_TABLE_ENTRIES 64
bool cfg_uses_persist_table(const struct cfg *c); /* a source-ip service: persist_map */
bool cfg_uses_tcp_table(const struct cfg *c);     /* a service with tcp_ports: tcp_conn_map */
const char *cfg_server_state_name(enum cfg_server_state s);

#endif
