"""A tiny authoritative DNS responder for the integration tests (stdlib only).

  python3 dns_server.py RECORDS.json PORTFILE

Binds UDP 127.0.0.1 on a free port, writes the port to PORTFILE, and answers
every query from RECORDS.json, read again for each query so that a test can
change the answers while it runs:

  {"svc.test": {"A": ["127.0.0.2", "127.0.0.3"], "AAAA": []}, "_mode": "ok"}

A name that is absent gets NXDOMAIN; a known name without records of the type
asked gets an empty NOERROR answer. "_mode": "servfail" answers SERVFAIL to
everything, "drop" answers nothing (a dead nameserver).
"""

import json
import socket
import struct
import sys


def parse_question(data):
    qid, flags, qd = struct.unpack("!HHH", data[:6])
    pos, labels = 12, []
    while data[pos]:
        n = data[pos]
        labels.append(data[pos + 1:pos + 1 + n].decode("ascii", "replace").lower())
        pos += n + 1
    qtype, qclass = struct.unpack("!HH", data[pos + 1:pos + 5])
    return qid, flags, ".".join(labels), data[12:pos + 5], qtype


def answer(data, records):
    qid, flags, name, question, qtype = parse_question(data)
    rd = flags & 0x0100
    mode = records.get("_mode", "ok")
    if mode == "drop":
        return None
    entry = records.get(name)
    rcode = 2 if mode == "servfail" else (3 if entry is None else 0)
    rrs = []
    if rcode == 0:
        kind = {1: "A", 28: "AAAA"}.get(qtype)
        for addr in (entry.get(kind, []) if kind else []):
            fam = socket.AF_INET if kind == "A" else socket.AF_INET6
            rdata = socket.inet_pton(fam, addr)
            rrs.append(b"\xc0\x0c" + struct.pack("!HHIH", qtype, 1, 1, len(rdata)) + rdata)
    head = struct.pack("!HHHHHH", qid, 0x8000 | 0x0400 | rd | rcode, 1, len(rrs), 0, 0)
    return head + question + b"".join(rrs)


def main():
    path, portfile = sys.argv[1], sys.argv[2]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    with open(portfile + ".tmp", "w") as f:
        f.write(str(s.getsockname()[1]))
    import os
    os.rename(portfile + ".tmp", portfile)
    while True:
        data, peer = s.recvfrom(4096)
        try:
            with open(path) as f:
                records = json.load(f)
            reply = answer(data, records)
        except (ValueError, IndexError, OSError, struct.error):
            continue
        if reply is not None:
            s.sendto(reply, peer)


if __name__ == "__main__":
    main()
