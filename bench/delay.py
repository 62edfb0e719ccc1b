#!/usr/bin/env python3
"""Holds every packet of an NFQUEUE queue for a fixed time, then lets it go.

    bench/delay.py QUEUE_NUM DELAY_MS

A stand-in for `tc qdisc ... netem delay` on kernels built without netem:
bench/run.sh --network sends the packets of its network namespace's links
to this queue (iptables NFQUEUE, in that namespace) and runs this program
in the same namespace. Each packet is accepted DELAY_MS after it was queued,
in queueing order, so every packet, not just every message, is delayed and
TCP sees the round trip as it would on a long link.

Speaks the kernel's nfnetlink_queue protocol directly (no library): binds
the queue, asks for the packets' metadata only (not their bytes), and
accepts them with batch verdicts ("every packet up to this id"), one
message per batch. Prints "ready PID" on stdout once bound; exits on SIGTERM
or SIGINT (the packets still queued are then dropped: the kernel drops a
queue's packets when its listener goes, and TCP sends them again).
"""

import collections
import os
import select
import signal
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET = 0
NFQNL_MSG_CONFIG = 2
NFQNL_MSG_VERDICT_BATCH = 3
NFQA_PACKET_HDR = 1
NFQA_VERDICT_HDR = 2
NFQA_CFG_CMD = 1
NFQA_CFG_PARAMS = 2
NFQA_CFG_QUEUE_MAXLEN = 3
NFQA_CFG_MASK = 4
NFQA_CFG_FLAGS = 5
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_META = 1
NFQA_CFG_F_GSO = 4
NF_ACCEPT = 1
NLM_F_REQUEST = 1
NLM_F_ACK = 4
NLMSG_ERROR = 2
NLMSG_HDR = struct.Struct("=IHHII")
NFGEN_HDR = struct.Struct("=BBH")  # family, version, res_id (big-endian)
NLA_HDR = struct.Struct("=HH")


def attr(kind, payload):
    length = NLA_HDR.size + len(payload)
    return NLA_HDR.pack(length, kind) + payload + b"\0" * (-length % 4)


class Queue:
    def __init__(self, number):
        self.number = number
        self.seq = 0
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        # Room for bursts: a full receive buffer drops packets (ENOBUFS).
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE
        except OSError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 20)
        self.sock.bind((0, 0))

    def send(self, msg_type, attrs, ack=False):
        self.seq += 1
        body = NFGEN_HDR.pack(socket.AF_UNSPEC, 0, socket.htons(self.number)) + b"".join(attrs)
        flags = NLM_F_REQUEST | (NLM_F_ACK if ack else 0)
        header = NLMSG_HDR.pack(NLMSG_HDR.size + len(body), (NFNL_SUBSYS_QUEUE << 8) | msg_type,
                                flags, self.seq, 0)
        self.sock.send(header + body)
        if ack:
            self.expect_ack()

    def expect_ack(self):
        data = self.sock.recv(65536)
        _, kind, _, _, _ = NLMSG_HDR.unpack_from(data)
        if kind == NLMSG_ERROR:
            (err,) = struct.unpack_from("=i", data, NLMSG_HDR.size)
            if err:
                raise OSError(-err, f"nfnetlink_queue configuration: {os.strerror(-err)}")

    def bind(self):
        self.send(NFQNL_MSG_CONFIG, [attr(NFQA_CFG_CMD, struct.pack("=BBH", NFQNL_CFG_CMD_BIND, 0, 0))],
                  ack=True)
        self.send(NFQNL_MSG_CONFIG, [attr(NFQA_CFG_PARAMS, struct.pack("!IB", 0, NFQNL_COPY_META))],
                  ack=True)
        self.send(NFQNL_MSG_CONFIG, [attr(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", 1 << 20))], ack=True)
        # Whole GSO packets, not their segments: far fewer messages.
        self.send(NFQNL_MSG_CONFIG, [attr(NFQA_CFG_FLAGS, struct.pack("!I", NFQA_CFG_F_GSO)),
                                     attr(NFQA_CFG_MASK, struct.pack("!I", NFQA_CFG_F_GSO))], ack=True)

    def accept_through(self, packet_id):
        self.send(NFQNL_MSG_VERDICT_BATCH,
                  [attr(NFQA_VERDICT_HDR, struct.pack("!II", NF_ACCEPT, packet_id))])

    def packet_ids(self, data):
        """The packet ids in a buffer of netlink messages."""
        offset = 0
        while offset + NLMSG_HDR.size <= len(data):
            length, kind, _, _, _ = NLMSG_HDR.unpack_from(data, offset)
            if length < NLMSG_HDR.size:
                break
            if kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
                pos = offset + NLMSG_HDR.size + NFGEN_HDR.size
                end = offset + length
                while pos + NLA_HDR.size <= end:
                    alen, atype = NLA_HDR.unpack_from(data, pos)
                    if alen < NLA_HDR.size:
                        break
                    if atype & 0x7FFF == NFQA_PACKET_HDR:
                        yield struct.unpack_from("!I", data, pos + NLA_HDR.size)[0]
                        break
                    pos += (alen + 3) & ~3
            offset += (length + 3) & ~3


def main():
    if len(sys.argv) != 3:
        print("usage: bench/delay.py QUEUE_NUM DELAY_MS", file=sys.stderr)
        return 2
    number, delay = int(sys.argv[1]), float(sys.argv[2]) / 1000.0
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    queue = Queue(number)
    queue.bind()
    print(f"ready {os.getpid()}", flush=True)
    held = collections.deque()  # (due time, packet id), in queueing order
    packets = 0
    last_report = time.monotonic()
    while not stop:
        now = time.monotonic()
        if os.environ.get("DELAY_DEBUG") and now - last_report > 1:
            last_report = now
            print(f"debug: packets {packets} held {len(held)}", file=sys.stderr, flush=True)
        if held and held[0][0] <= now:
            last = None
            while held and held[0][0] <= now:
                last = held.popleft()[1]
            queue.accept_through(last)
        timeout = max(0.0, held[0][0] - time.monotonic()) if held else 1.0
        try:
            ready, _, _ = select.select([queue.sock], [], [], timeout)
        except InterruptedError:
            continue
        if not ready:
            continue
        # Everything queued meanwhile, in one go: on a busy machine this
        # process waits for a CPU between wake-ups.
        while True:
            try:
                data = queue.sock.recv(1 << 20, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            except OSError as err:  # ENOBUFS: the kernel dropped messages; TCP resends
                print(f"delay.py: {err}", file=sys.stderr, flush=True)
                break
            due = time.monotonic() + delay
            for packet_id in queue.packet_ids(data):
                held.append((due, packet_id))
                packets += 1
    print(f"delay.py: {packets} packets delayed by {delay * 1000:.0f} ms", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
