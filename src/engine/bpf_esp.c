/* The raw ESP entry of a VIP in svc_map: key (VIP, port 0, IPPROTO_ESP),
 * value the service's own. The BPF side (bpf/ikelb_esp.h) finds raw ESP's
 * service through it, since ESP carries no port to look up. */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include <bpf/bpf.h>

#include "engine/bpf_engine_int.h"

void bpfe_esp_entry(const struct bpfe_svc *es, struct svc_key *k, struct svc_value *v)
{
	memset(k, 0, sizeof(*k));
	k->vip = es->vip;
	k->proto = IPPROTO_ESP;
	*v = es->val;
	v->natt = 0; /* no RFC 3948 framing: the payload is ESP */
}

int bpfe_esp_refresh(int svc_fd, const struct bpfe_svc *es)
{
	struct svc_key k;
	struct svc_value v, cur;

	bpfe_esp_entry(es, &k, &v);
	/* Another service on the same VIP holds it: not ours to write. */
	if (bpf_map_lookup_elem(svc_fd, &k, &cur) != 0 || cur.svc_id != v.svc_id)
		return 0;
	return bpf_map_update_elem(svc_fd, &k, &v, BPF_EXIST) < 0 ? -errno : 0;
}
