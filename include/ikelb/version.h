/* The one version string of ikelb and ikelbd (the Makefile may define it). */
#ifndef IKELB_VERSION_H
#define IKELB_VERSION_H

#ifndef IKELB_VERSION
#define IKELB_VERSION "0.1.0"
#endif

#endif
