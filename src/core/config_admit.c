/* A service's `admission` mapping: rates of new IKE SAs and ikelb's own
 * COOKIE (docs/config.md, "admission"; docs/security.md, "Admission"). */
#include "core/config_int.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define ADMIT_RATE_MAX 10000000ull

static const char *const admit_keys[] = { "rate", "burst", "per_source_rate",
					  "per_source_burst", "cookie_threshold", NULL };

/* "200", "200/s" (the unit is the only one there is): 1 when set. */
static int get_rate(struct cfg_ctx *x, yaml_node_t *m, const char *path, const char *key,
		    uint64_t min, uint32_t *out)
{
	char what[CFG_PATH_MAX], num[32];
	yaml_node_t *n = cfg_get(x, m, key);
	const char *s;
	uint64_t v;

	if (!n)
		return 0;
	cfg_path(what, sizeof(what), path, key);
	if (!(s = cfg_want_scalar(x, n, what)))
		return -1;
	size_t len = strlen(s);
	if (len > 2 && strcmp(s + len - 2, "/s") == 0)
		len -= 2;
	size_t digits = 0;
	while (digits < len && isdigit((unsigned char)s[digits]))
		digits++;
	if (len == 0 || len >= sizeof(num) || digits != len) {
		cfg_err(x, n, "%s: '%s' is not a rate (N or N/s, per second)", what, s);
		return -1;
	}
	memcpy(num, s, len);
	num[len] = '\0';
	if (cfg_parse_u64(num, &v) < 0 || v < min || v > ADMIT_RATE_MAX) {
		cfg_err(x, n, "%s: %s is out of range %llu..%llu per second", what, s,
			(unsigned long long)min, ADMIT_RATE_MAX);
		return -1;
	}
	*out = (uint32_t)v;
	return 1;
}

/* A burst needs its rate; without one, the burst is one second's worth. */
static void burst_of(struct cfg_ctx *x, yaml_node_t *m, const char *path, const char *rkey,
		     int rset, const char *bkey, uint32_t rate, uint32_t *burst)
{
	uint64_t v;
	int b = cfg_get_uint(x, m, path, bkey, 1, ADMIT_RATE_MAX, &v);

	if (b > 0 && rset == 0)
		cfg_err(x, cfg_get_key(x, m, bkey), "%s.%s: needs %s", path, bkey, rkey);
	if (b > 0)
		*burst = (uint32_t)v;
	else if (rset > 0)
		*burst = rate;
}

void cfg_parse_admission(struct cfg_ctx *x, yaml_node_t *svc, const char *path,
			 struct cfg_admission *a)
{
	char sub[CFG_PATH_MAX];
	yaml_node_t *m = cfg_get(x, svc, "admission");

	if (!m)
		return;
	cfg_path(sub, sizeof(sub), path, "admission");
	if (!cfg_want_map(x, m, sub))
		return;
	cfg_check_keys(x, m, sub, admit_keys);
	a->enabled = true;
	int r = get_rate(x, m, sub, "rate", 1, &a->rate);
	burst_of(x, m, sub, "rate", r, "burst", a->rate, &a->burst);
	int s = get_rate(x, m, sub, "per_source_rate", 1, &a->per_source_rate);
	burst_of(x, m, sub, "per_source_rate", s, "per_source_burst", a->per_source_rate,
		 &a->per_source_burst);
	int c = get_rate(x, m, sub, "cookie_threshold", 0, &a->cookie_threshold);
	a->cookie = c > 0;
	if (m->data.mapping.pairs.top == m->data.mapping.pairs.start)
		cfg_err(x, m, "%s: give rate, per_source_rate or cookie_threshold (an empty "
			      "admission limits nothing)", sub);
}

/* Admission lives in the BPF program only. */
void cfg_check_admission(struct cfg_ctx *x, const struct cfg *c, const struct cfg_service *s,
			 yaml_node_t *svc, const char *path)
{
	if (s->admission.enabled && x->engine_ok && c->engine != CFG_ENGINE_BPF)
		cfg_err(x, cfg_get_key(x, svc, "admission"),
			"%s.admission: needs engine: bpf (the socket engine has no admission "
			"control)", path);
}
