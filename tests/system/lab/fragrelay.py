"""Reordering relay for the lab (run inside the sw namespace by
lab/impair.py): copies Ethernet frames between a client's switch port and
a veth toward the bridge, and holds every first IP fragment (IPv4: MF set,
offset 0; IPv6: fragment header with offset 0) it gets from the client until a later fragment of the same
datagram has gone out, so the later fragments reach the balancer first,
every time. The kernel has no netem here, and netem's `reorder` is random.

usage: fragrelay.py CLIENT_PORT BRIDGE_PORT HOLD_MS STATS_FILE
A held fragment whose later fragments never come leaves after HOLD_MS.
STATS_FILE (JSON) counts held and overtaken first fragments."""
import json
import os
import select
import socket
import sys
import time

ETH_P_ALL = 3
PACKET_OUTGOING = 4
MF, OFFMASK = 0x2000, 0x1fff
IP6_FRAG = 44


def frag_info(frame):
    """-> ((src, id), is_first) for an IPv4 fragment or an IPv6 one (a
    fragment header right after the fixed header), else None."""
    if len(frame) >= 34 and frame[12:14] == b"\x08\x00":
        fo = int.from_bytes(frame[20:22], "big")
        if not fo & (MF | OFFMASK):
            return None
        return (frame[26:30], frame[18:20]), not fo & OFFMASK
    if len(frame) >= 62 and frame[12:14] == b"\x86\xdd" and frame[20] == IP6_FRAG:
        fo = int.from_bytes(frame[56:58], "big")  # offset << 3 | M
        return (frame[22:38], frame[58:62]), not fo & 0xfff8
    return None


def save(path, stats):
    with open(path + ".tmp", "w") as f:
        json.dump(stats, f)
    os.rename(path + ".tmp", path)


def main():
    cport, bport, hold, path = sys.argv[1], sys.argv[2], float(sys.argv[3]) / 1000, sys.argv[4]
    socks = {}
    for name in (cport, bport):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.bind((name, 0))
        socks[name] = s
    c, b = socks[cport], socks[bport]
    held = []  # [deadline, key, frame]
    stats = {"frames": 0, "held": 0, "overtaken": 0, "timed_out": 0}
    save(path, stats)
    while True:
        wait = max(0.0, held[0][0] - time.monotonic()) if held else None
        ready, _, _ = select.select([c, b], [], [], wait)
        for s in ready:
            frame, addr = s.recvfrom(65535)
            if addr[2] == PACKET_OUTGOING:
                continue
            stats["frames"] += 1
            if s is b:
                c.send(frame)
                continue
            info = frag_info(frame)
            if info and info[1]:
                held.append([time.monotonic() + hold, info[0], frame])
                stats["held"] += 1
                continue
            b.send(frame)
            if info:
                for h in [h for h in held if h[1] == info[0]]:
                    held.remove(h)
                    b.send(h[2])
                    stats["overtaken"] += 1
        now = time.monotonic()
        while held and held[0][0] <= now:
            b.send(held.pop(0)[2])
            stats["timed_out"] += 1
        save(path, stats)


if __name__ == "__main__":
    main()
