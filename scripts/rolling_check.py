#!/usr/bin/env python3
"""A client for a rolling restart under load (scripts/bench_scale.sh rolling).

Usage: python3 scripts/rolling_check.py BASE_URL OUT.json

Opens ROOMS rooms × SOCKETS sockets through BASE_URL (the balancer), touches
OUT.json.ready once all have joined, then sends RATE messages/s over the first
SENDERS sockets of each room until OUT.json.stop appears. A socket that is closed
(1001 while its instance drains, or dropped) reconnects with `since=` the last seq
it received, as PROTOCOL.md says, and a sender sends again, with the same
`client_msg_id`, what it did not see confirmed. At the end it checks, and writes
to OUT.json, that every acknowledged message reached every socket of its room
exactly once and in seq order, that the room holds nothing else, and that no
`client_msg_id` was stored twice. Exits 1 when a check fails.
"""

import asyncio
import json
import os
import sys
import time
import urllib.request

import websockets

ROOMS = int(os.environ.get("ROLLING_ROOMS", 20))
SOCKETS = int(os.environ.get("ROLLING_SOCKETS", 5))
SENDERS = int(os.environ.get("ROLLING_SENDERS", 2))
RATE = float(os.environ.get("ROLLING_RATE", 200))
SETTLE = 30.0  # seconds allowed, after the stop, for the last confirmations and deliveries


def rest(base, method, path, body=None):
    request = urllib.request.Request(
        base + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"content-type": "application/json", "x-user-id": "rolling"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


class Seat:
    """One socket of a room and everything it saw over its reconnections."""

    def __init__(self, base, room, index):
        self.ws_base = base.replace("http", "ws", 1)
        self.room = room
        self.user = f"r{room}-u{index}"
        self.sender = index < SENDERS
        self.seqs = []  # every message seq received, in arrival order
        self.seen = set()
        self.resent = set()  # client_msg_ids sent again after a reconnection
        self.repeat_answers = 0
        self.last_seq = 0
        self.connections = 0
        self.closes = {}
        self.socket = None
        self.joined = asyncio.Event()
        self.pending = {}  # client_msg_id -> frame, sent and not confirmed
        self.confirmed = {}  # client_msg_id -> seq
        self.sent = 0

    async def run(self, done):
        pause = 0.05
        while not done.is_set():
            query = f"user_id={self.user}" + (f"&since={self.last_seq}" if self.connections else "")
            try:
                async with websockets.connect(
                    f"{self.ws_base}/ws/{self.room}?{query}", open_timeout=10, max_queue=None
                ) as socket:
                    self.connections += 1
                    pause = 0.05
                    await self.read(socket, done)
            except websockets.ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else None
                self.closes[code] = self.closes.get(code, 0) + 1
            except websockets.InvalidStatus as refused:
                name = f"refused {refused.response.status_code}"
                self.closes[name] = self.closes.get(name, 0) + 1
            except (OSError, asyncio.TimeoutError, websockets.InvalidHandshake) as e:
                name = type(e).__name__
                self.closes[name] = self.closes.get(name, 0) + 1
            self.socket = None
            if not done.is_set():
                await asyncio.sleep(pause)
                pause = min(pause * 2, 1.0)

    async def read(self, socket, done):
        async for text in socket:
            frame = json.loads(text)
            kind = frame.get("type")
            if kind == "joined":
                self.socket = socket
                self.joined.set()
                # What was sent and not confirmed goes again, same client_msg_id.
                for key, pending in list(self.pending.items()):
                    self.resent.add(key)
                    await socket.send(json.dumps(pending))
            elif kind == "message":
                seq = frame["seq"]
                own = frame.get("user_id") == self.user
                if own and frame.get("client_msg_id") in self.resent and seq in self.seen:
                    # A message sent again comes back as its original: an answer, not a delivery.
                    self.repeat_answers += 1
                    continue
                self.seen.add(seq)
                self.seqs.append(seq)
                self.last_seq = max(self.last_seq, seq)
                if frame.get("user_id") == self.user and frame.get("client_msg_id") in self.pending:
                    key = frame["client_msg_id"]
                    del self.pending[key]
                    self.confirmed[key] = seq
            elif kind == "error" and frame.get("code") == "unavailable":
                key = frame.get("client_msg_id")
                if key in self.pending:
                    await asyncio.sleep(0.05)
                    await socket.send(json.dumps(self.pending[key]))
        # The iterator ends on a normal close; record it too.
        code = socket.close_code
        self.closes[code] = self.closes.get(code, 0) + 1

    async def send_one(self):
        key = f"{self.user}-{self.sent}"
        self.sent += 1
        frame = {"type": "message", "content": key, "client_msg_id": key}
        self.pending[key] = frame
        if self.socket is not None:
            try:
                await self.socket.send(json.dumps(frame))
            except websockets.ConnectionClosed:
                pass  # sent again after the reconnection


async def main(base, out):
    rooms = [rest(base, "POST", "/rooms", {"name": f"rolling {n}"})["id"] for n in range(ROOMS)]
    seats = [Seat(base, room, i) for room in rooms for i in range(SOCKETS)]
    done = asyncio.Event()
    tasks = [asyncio.create_task(seat.run(done)) for seat in seats]
    await asyncio.wait_for(asyncio.gather(*(s.joined.wait() for s in seats)), 60)
    open(out + ".ready", "w").close()
    senders = [s for s in seats if s.sender]
    interval = len(senders) / RATE
    started = time.monotonic()
    tick = 0
    while not os.path.exists(out + ".stop"):
        for seat in senders:
            await seat.send_one()
        tick += 1
        await asyncio.sleep(max(0.0, started + tick * interval - time.monotonic()))
    sending = time.monotonic() - started

    # Every sent message confirmed, then every socket caught up with its room.
    deadline = time.monotonic() + SETTLE
    while any(s.pending for s in senders) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    top = {}
    for seat in senders:
        for seq in seat.confirmed.values():
            top[seat.room] = max(top.get(seat.room, 0), seq)
    while any(s.last_seq < top.get(s.room, 0) for s in seats) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    done.set()
    for seat in seats:
        if seat.socket is not None:
            await seat.socket.close()
    await asyncio.gather(*tasks, return_exceptions=True)

    failures = []
    unconfirmed = sum(len(s.pending) for s in senders)
    if unconfirmed:
        failures.append(f"{unconfirmed} messages never confirmed")
    confirmed_by_room = {}
    for seat in senders:
        confirmed_by_room.setdefault(seat.room, []).extend(seat.confirmed.values())
    for room in rooms:
        seqs = sorted(confirmed_by_room.get(room, []))
        if len(set(seqs)) != len(seqs):
            failures.append(f"room {room}: two confirmations share a seq")
        stored = []
        after = 0
        while True:
            page = rest(base, "GET", f"/rooms/{room}/messages?limit=100&after={after}")
            stored.extend(page["items"])
            if not page["items"] or not page["has_more"]:
                break
            after = page["items"][-1]["seq"]
        stored_seqs = sorted(m["seq"] for m in stored)
        keys = [m["client_msg_id"] for m in stored]
        if len(set(keys)) != len(keys):
            failures.append(f"room {room}: a client_msg_id stored twice")
        if stored_seqs != seqs:
            failures.append(f"room {room}: {len(stored_seqs)} stored, {len(seqs)} confirmed")
    for seat in seats:
        want = sorted(confirmed_by_room.get(seat.room, []))
        if seat.seqs != want:
            doubles = len(seat.seqs) - len(set(seat.seqs))
            missing = len(set(want) - set(seat.seqs))
            ordered = all(a < b for a, b in zip(seat.seqs, seat.seqs[1:]))
            failures.append(
                f"{seat.user}: {len(seat.seqs)} received, {len(want)} confirmed "
                f"({missing} missing, {doubles} twice, in order: {ordered})"
            )
    closes = {}
    for seat in seats:
        for code, n in seat.closes.items():
            closes[str(code)] = closes.get(str(code), 0) + n
    report = {
        "rooms": ROOMS,
        "sockets": len(seats),
        "rate": RATE,
        "seconds_sending": round(sending, 1),
        "messages_confirmed": sum(len(s.confirmed) for s in senders),
        "deliveries_checked": sum(len(s.seqs) for s in seats),
        "reconnections": sum(s.connections - 1 for s in seats),
        "messages_sent_again": sum(len(s.resent) for s in senders),
        "repeats_answered": sum(s.repeat_answers for s in senders),
        "closes": closes,
        "failures": failures,
    }
    with open(out, "w") as f:
        json.dump(report, f, indent=2)
    print(json.dumps({k: v for k, v in report.items() if k != "failures"}))
    for failure in failures[:20]:
        print("FAIL", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2])))
