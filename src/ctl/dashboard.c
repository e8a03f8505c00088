/* The dashboard: one static page (contrib/dashboard/) compiled into the
 * daemon by scripts/embed, so it works without files, a CDN or network
 * access; its script reads the JSON API like any other client. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/api.h"
#include "ctl/dashboard_assets.h"

static const struct {
	const char *path, *ctype;
	const unsigned char *data;
	const unsigned *len;
} assets[] = {
	{ "/", "text/html; charset=utf-8", dash_index, &dash_index_len },
	{ "/dashboard.js", "text/javascript; charset=utf-8", dash_js, &dash_js_len },
	{ "/dashboard.css", "text/css; charset=utf-8", dash_css, &dash_css_len },
};

int api_dashboard(const char *url, struct api_reply *out)
{
	for (size_t i = 0; i < sizeof(assets) / sizeof(assets[0]); i++) {
		if (strcmp(url, assets[i].path))
			continue;
		char *body = malloc(*assets[i].len + 1);
		if (!body)
			return -ENOMEM;
		memcpy(body, assets[i].data, *assets[i].len);
		body[*assets[i].len] = 0;
		*out = (struct api_reply){ 200, assets[i].ctype, body };
		return 1;
	}
	return 0;
}
