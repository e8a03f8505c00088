/* Glue between the daemon loop and the health checker: probe results
 * become run-time health of real servers (rt_set_health). */
#ifndef IKELB_DAEMON_HEALTH_H
#define IKELB_DAEMON_HEALTH_H

struct daemon;

int daemon_health_start(struct daemon *d);
int daemon_health_add_fds(struct daemon *d);
void daemon_health_on_fd(struct daemon *d, int fd);
void daemon_health_tick(struct daemon *d);
long daemon_health_timeout_ms(struct daemon *d);
void daemon_health_stop(struct daemon *d);

#endif
