#include "ctl/daemon_engine.h"

#include "ctl/daemon.h"

int daemon_engine_open(struct daemon *d)
{
	log_err(&d->log, "engine %s is not available in this build",
		d->cfg.engine == CFG_ENGINE_BPF ? "bpf" : "socket");
	return -1;
}
