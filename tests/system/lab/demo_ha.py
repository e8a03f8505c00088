"""`make demo-ha`: two ikelb nodes under keepalived (VRRP) with state sync in
front of two strongSwan servers; clients connect (half of them while s2 is
disabled), the active node is lost, and the clients' tunnels are pinged
until they answer again through the standby. Tears everything down.

Environment: IKELB_BIN; CLIENTS (default 8); SYNC=0 to watch the same
failover without state sync (the clients placed off-hash stay down)."""
import os
import sys
import time

from . import Lab, LabError, ikelb_available
from . import ha


def banner(text):
    print("\n=== %s" % text, flush=True)


def run(lab, sync):
    lab.start()
    lab.start_charons()
    health = {"type": "ike", "interval": "1s", "timeout": "500ms", "rise": 1, "fall": 2}
    nodes = ha.start_nodes(lab, sync=sync, health=health)
    kas = [ha.Keepalived(lab, 1, nodes[0], 150).start(),
           ha.Keepalived(lab, 2, nodes[1], 100).start()]
    ha.wait_master(lab, 1)
    banner("lb1 is VRRP master (VIP + servers' gateway); state sync %s" % ("on" if sync else "off"))
    half = len(lab.clients) // 2
    nodes[0].ctl("server", "disable", "s2")
    lab.initiate_all(clients=lab.clients[:half])
    nodes[0].ctl("server", "enable", "s2")
    nodes[0].wait_healthy(time.monotonic() + 10)
    lab.initiate_all(clients=lab.clients[half:])
    print(lab.summary())
    time.sleep(1)
    if sync:
        print("lb2 received from lb1: %s" % {k: v for k, v in ha.sync_stats(nodes[1]).items()
                                              if k in ("recv_entries", "applied", "rej_auth")})
    banner("lb1 fails: links down, ikelb and keepalived killed")
    t0 = ha.fail_node(lab, 1, nodes[0], kas[0])
    ha.wait_master(lab, 2)
    print("lb2 took over in %.1f s" % (time.monotonic() - t0))
    times = ha.resume_times(lab, t0, 10.0)
    for name, t in sorted(times.items(), key=lambda kv: int(kv[0][1:])):
        print("  %-4s %s" % (name, "tunnel answers after %.2f s" % t if t is not None
                             else "DOWN (placed while s2 was disabled; lb2 has no state)"))
    print(lab.summary())
    return all(t is not None for t in times.values()) or not sync


def main():
    ok, why = ikelb_available()
    if not ok:
        print("demo-ha: %s" % why, file=sys.stderr)
        return 1
    lab = Lab(servers=2, clients=int(os.environ.get("CLIENTS", "8")), balancers=2)
    try:
        return 0 if run(lab, os.environ.get("SYNC", "1") != "0") else 1
    except LabError as e:
        print("demo-ha: %s" % e, file=sys.stderr)
        return 1
    finally:
        lab.stop()


if __name__ == "__main__":
    sys.exit(main())
