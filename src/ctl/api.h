/* The control API: HTTP (libmicrohttpd) with JSON bodies (jansson), on a
 * unix socket ("unix:/run/ikelb/api.sock", mode 0660) or a TCP address.
 * Runs inside the daemon's epoll loop (MHD_USE_EPOLL), so handlers touch
 * the daemon model without locks.
 *
 *   GET  /v1/status                      services, servers, state, clients
 *   GET  /v1/stats                       counters per service / server / drop reason
 *   GET  /metrics                        Prometheus text format
 *   POST /v1/servers/SPEC/drain|enable|disable
 *   POST /v1/servers/SPEC/weight/N       SPEC = NAME or SERVICE/NAME
 *   POST /v1/shutdown[?keep=1]           stop (keep=1 leaves the data path)
 */
#ifndef IKELB_API_H
#define IKELB_API_H

struct daemon;
struct api;

struct api *api_start(struct daemon *d, const char *listen, char *err, int errlen);
int api_fd(const struct api *a);     /* add to epoll, readable -> api_run */
void api_run(struct api *a);
long api_timeout_ms(struct api *a);  /* -1 = none */
void api_stop(struct api *a);

#endif
