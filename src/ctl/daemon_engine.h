/* Opens the engine the configuration asks for. */
#ifndef IKELB_DAEMON_ENGINE_H
#define IKELB_DAEMON_ENGINE_H

struct daemon;

int daemon_engine_open(struct daemon *d);

#endif
