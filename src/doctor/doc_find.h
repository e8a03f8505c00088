/* The doctor's findings, rule by rule (doc_find.c: shared helpers and the
 * driver; doc_rules.c: one function per kind). Internal. */
#ifndef IKELB_DOC_FIND_H
#define IKELB_DOC_FIND_H

#include "doctor/doc_int.h"

#define SWAN_COOKIE_IP 3
#define SWAN_BLOCK_IP 5
#define RRAS_SAS_PER_IP 10

struct doc_set {
	struct ikelb_addr *a;
	size_t n, cap;
};

/* Sort the SAs by client (d->by_client); 0 or -ENOMEM. */
int doc_index(struct doc *d);
/* The SA indices of client A (n of them), or of the client run starting at
 * *pos, advancing *pos past it (NULL at the end). */
const uint32_t *doc_client_sas(const struct doc *d, const struct ikelb_addr *a, size_t *n);
const uint32_t *doc_next_client(const struct doc *d, size_t *pos, size_t *n);

int doc_set_add(struct doc_set *set, const struct ikelb_addr *a);
int doc_set_add_new(struct doc_set *set, const struct ikelb_addr *a);
void doc_set_free(struct doc_set *set);
/* Responder-side and initiator-side addresses of every SA. */
void doc_roles(const struct doc *d, struct doc_set *servers, struct doc_set *clients);
bool doc_near(const struct ikelb_addr *a, const struct doc_set *servers);

/* Not a health probe or another IKE_SA_INIT the server refused outright. */
bool doc_sa_usable(const struct doc_sa *sa);
bool doc_sa_established(const struct doc_sa *sa);
int doc_max_overlap(const double *start, const double *end, size_t n);
int doc_concurrent(const struct doc *d, const struct ikelb_addr *a, const struct ikelb_addr *s,
		   bool half);

/* Each appends its findings to r; 0 or -ENOMEM. */
int doc_find_no_reply(const struct doc *d, const struct ikelb_addr *server, struct doc_report *r);
int doc_find_per_ip(const struct doc *d, const struct ikelb_addr *client,
		    const struct doc_set *servers, struct doc_report *r);
int doc_find_nat(const struct doc *d, const struct ikelb_addr *client,
		 const struct doc_set *servers, struct doc_report *r);
int doc_find_split(const struct doc *d, struct doc_report *r);
int doc_find_frag(const struct doc *d, struct doc_report *r);

#endif
