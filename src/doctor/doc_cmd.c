/* `ikelb doctor`: read the captures (or the interface), analyse, print.
 * Exit status: 1 with an error-severity finding, 0 without, 2 when the
 * input could not be read. */
#include <stdio.h>
#include <stdlib.h>

#include "doctor/doctor.h"

static int read_all(struct doc *d, const char *const *files, int nfiles, const char *live,
		    unsigned seconds)
{
	char err[512];
	if (live && doc_read_live(d, live, seconds, err, sizeof(err)) < 0) {
		fprintf(stderr, "ikelb doctor: %s\n", err);
		return -1;
	}
	for (int i = 0; i < nfiles; i++) {
		if (doc_read_pcap(d, files[i], err, sizeof(err)) < 0) {
			fprintf(stderr, "ikelb doctor: %s\n", err);
			return -1;
		}
	}
	return 0;
}

static int print_report(const struct doc_report *r, int json)
{
	if (!json) {
		doc_print_text(stdout, r);
		return 0;
	}
	json_t *j = doc_report_json(r);
	char *s = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
	json_decref(j);
	if (!s) {
		fprintf(stderr, "ikelb doctor: out of memory\n");
		return -1;
	}
	puts(s);
	free(s);
	return 0;
}

int doc_cmd_run(const char *const *files, int nfiles, const char *live, unsigned seconds,
		int json)
{
	struct doc *d = doc_new();
	struct doc_report r;
	int rc = 2;

	if (!d) {
		fprintf(stderr, "ikelb doctor: out of memory\n");
		return 2;
	}
	if (read_all(d, files, nfiles, live, seconds) == 0) {
		if (doc_analyze(d, &r) < 0)
			fprintf(stderr, "ikelb doctor: out of memory\n");
		else if (print_report(&r, json) == 0)
			rc = doc_exit_status(&r);
		doc_report_free(&r);
	}
	doc_free(d);
	return rc;
}
