/* Steering internals shared by steer.c (the decision) and steer_state.c
 * (the state tables: lookups, learning, expiry, counts). */
#ifndef IKELB_CORE_STEER_INT_H
#define IKELB_CORE_STEER_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/lru_table.h"
#include "core/steer.h"

struct steer_srv {
	int state;            /* REAL_* */
	bool evacuating;      /* REAL_F_EVACUATING */
	bool has_label;
	bool has_esp;
	uint64_t label;
	uint32_t esp_min, esp_max;
};

struct steer_svc {
	enum cfg_persist_mode mode;
	enum cfg_sched kind;
	int netmask, netmask6;
	uint64_t spi_mask;
	uint64_t seed;
	uint64_t persist_to, flow_to; /* seconds, 0 = none */
	bool esp_labels;
	int n;
	uint32_t base;        /* global id of server 0 */
	struct steer_srv *srv;
	uint32_t *table;
	uint32_t m;
	uint64_t pkts[SVC_CTR__MAX];
	uint64_t bytes[SVC_CTR__MAX];
};

enum { T_PERSIST, T_SA, T_HALFOPEN, T_FLOW, T__MAX };

struct steer {
	struct runtime *rt;   /* schedulers of rr/wrr/lc/wlc/fo */
	int nsvc;
	struct steer_svc svc[CFG_MAX_SERVICES];
	struct lru_table *t[T__MAX];
	bool mixed_timeouts[T__MAX]; /* services disagree: sweep needs a full pass */
};

/* steer_state.c */
int steer_tables_new(struct steer *st, const struct cfg *cfg, const struct steer_opts *o);
void steer_tables_free(struct steer *st);
void steer_set_table_timeouts(struct steer *st);
long steer_purge_server(struct steer *st, const struct steer_svc *s, int srv);
void steer_key_persist(struct persist_key *k, int svc, const struct steer_svc *s,
		       const struct ikelb_addr *client);
void steer_key_sa(struct sa_key *k, int svc, uint64_t spi_i);
void steer_key_flow(struct flow_key *k, int svc, const struct ikelb_addr *client,
		    uint16_t cport, uint16_t vport);
int steer_lookup(struct steer *st, int t, const struct steer_svc *s, const void *key,
		 uint64_t now);
void steer_learn(struct steer *st, int svc, struct steer_svc *s, const struct ikelb_addr *client,
		 const struct flow_key *fk, const struct ike_info *in, int srv,
		 enum ikelb_rule rule, uint64_t now);
int steer_is_ike(const struct ike_info *in);

/* steer.c: service svc, or NULL when st has none by that index. */
struct steer_svc *steer_svc_get(const struct steer *st, int svc);
int steer_fallback_pick(const struct steer_svc *s, uint64_t h);
struct ikelb_addr steer_hash_addr(const struct steer_svc *s, const struct ikelb_addr *client);

#endif
