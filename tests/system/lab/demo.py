"""`make demo`: build the lab, put ikelb in front of three strongSwan
servers, connect clients, show who landed where, tear down.

Environment: KEEP=1 leaves the lab running (prints how to look around and
how to tear it down); IKELB_BIN; PERSISTENCE=source-ip|ike;
SERVERS/CLIENTS/NAT_CLIENTS counts.
`python3 -m lab.demo teardown FILE` removes a kept lab."""
import os
import sys
import time

from . import (NAT_PUBLIC, VIP, Lab, LabError, ikelb_available, ikelb_bin, start_balancer,
               teardown_saved_lab)
from .checks import sas_by_client


def banner(text):
    line = "=" * max(len(l) for l in text.splitlines())
    print("\n%s\n%s\n%s" % (line, text, line), flush=True)


def show_servers(lab):
    by_client = sas_by_client(lab)
    for s in lab.servers:
        held = sorted((c, sa) for c, lst in by_client.items() for srv, sa in lst
                      if srv == s.name)
        print("  %s (%s): %d client(s)" % (s.name, s.addr, len(held)))
        for c, sa in held:
            child = sa["children"][0]["state"] if sa["children"] else "-"
            print("      %-4s seen from %s:%s  IKE %s  CHILD %s  vip %s" % (
                c, sa["remote-host"], sa["remote-port"], sa["state"], child,
                ",".join(sa["remote-vips"]) or "-"))
        st = lab.server_stats(s)
        ctr = lab.server_counters(s)
        print("      IKE_SAs %d (half-open %d), invalid-spi %d" % (
            st["ike_sas"], st["half_open"], ctr["invalid-spi"]))


def keep_instructions(lab, state_file):
    banner("KEEP=1: the lab stays up")
    print("  namespaces:     ip netns list | grep %s" % lab.prefix)
    c, s = lab.clients[0], lab.servers[0]
    print("  a client:       ip netns exec %s ping -c 2 198.19.255.1" % c.ns)
    print("  server SAs:     STRONGSWAN_CONF=%s swanctl --list-sas --uri %s" % (
        s.charon.conf, s.charon.uri))
    print("  server log:     less %s" % s.charon.logfile)
    print("  balancer ns:    ip netns exec %s nft list ruleset; "
          "ip netns exec %s tc filter show dev c0 ingress" % (lab.lb_ns, lab.lb_ns))
    if lab.balancer and lab.balancer.name == "ikelb":
        print("  ikelb status:   %s status -a %s" % (ikelb_bin(), lab.balancer.api()))
        print("  ikelb stats:    %s stats -a %s" % (ikelb_bin(), lab.balancer.api()))
    print("  tear down:      sh scripts/demo teardown %s" % state_file)


def main(argv):
    if len(argv) > 1 and argv[1] == "teardown":
        teardown_saved_lab(argv[2])
        print("lab torn down")
        return 0
    if os.geteuid() != 0:
        print("demo: needs root (network namespaces)", file=sys.stderr)
        return 1
    keep = os.environ.get("KEEP") == "1"
    nserv = int(os.environ.get("SERVERS", 3))
    ncli = int(os.environ.get("CLIENTS", 6))
    nnat = int(os.environ.get("NAT_CLIENTS", 4))
    persistence = os.environ.get("PERSISTENCE", "source-ip")
    t0 = time.monotonic()
    lab = Lab(servers=nserv, clients=ncli, nat_clients=nnat, die_with_parent=not keep)
    detached = False
    try:
        banner("ikelb demo: %d strongSwan servers behind VIP %s, %d clients + %d behind "
               "one NAT (%s)" % (nserv, VIP, ncli, nnat, NAT_PUBLIC))
        lab.start()
        print("lab %s built (namespaces %s*)" % (lab.prefix, lab.prefix), flush=True)
        lab.start_charons()
        ok, reason = ikelb_available()
        if not ok:
            raise LabError(reason)
        b = start_balancer(lab, "ikelb", forwarding="dnat", persistence=persistence)
        print("ikelb running (%s), config %s:" % (b.describe(), b.conf))
        with open(b.conf) as f:
            print("  " + f.read().rstrip().replace("\n", "\n  "))
        print("charons up (%.1fs); connecting %d clients ..." % (
            time.monotonic() - t0, len(lab.clients)), flush=True)
        results = lab.initiate_all(timeout=20)
        up = [n for n, r in results.items() if r.ok]
        print("clients connected: %d/%d" % (len(up), len(results)))
        for c in lab.clients:
            r = results[c.name]
            ping = lab.ping_through_tunnel(c, count=1) if r.ok else False
            print("  %-4s %-15s %s in %.1fs, ping through tunnel %s" % (
                c.name, c.addr, "up" if r.ok else "FAILED", r.seconds,
                "ok" if ping else "FAILED"))
        banner("what the servers see")
        show_servers(lab)
        banner("ikelb status")
        print(lab.balancer.ctl("status").stdout.rstrip())
        banner("ikelb stats")
        print(lab.balancer.stats() or "(no stats)")
        print("\ndemo finished in %.1fs" % (time.monotonic() - t0))
        if keep:
            state = lab.detach()
            detached = True
            keep_instructions(lab, state)
        return 0 if len(up) == len(results) else 1
    except LabError as e:
        print("demo failed: %s" % e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        if not detached:
            lab.stop()
            print("lab torn down")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
