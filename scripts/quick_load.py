"""A quick WebSocket load check (not the benchmark tool): S sockets join one room,
P of them send M messages each as fast as the server acknowledges them by echo;
prints messages/s persisted and deliveries/s, and send→delivery latency.

    python3 scripts/quick_load.py --url ws://127.0.0.1:8001 --sockets 200 --senders 10 --messages 200
"""
import argparse
import asyncio
import json
import statistics
import time
import urllib.request

import websockets


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--url", default="ws://127.0.0.1:8001")
    p.add_argument("--sockets", type=int, default=200)
    p.add_argument("--senders", type=int, default=10)
    p.add_argument("--messages", type=int, default=200)
    a = p.parse_args()
    http = a.url.replace("ws://", "http://")
    req = urllib.request.Request(f"{http}/rooms", data=json.dumps({"name": "load"}).encode(),
                                 headers={"content-type": "application/json"})
    room = json.load(urllib.request.urlopen(req))["id"]
    total = a.senders * a.messages
    sockets = []
    t0 = time.perf_counter()
    for i in range(a.sockets):
        ws = await websockets.connect(f"{a.url}/ws/{room}?user_id=u{i}", max_queue=None)
        await ws.recv()  # joined
        sockets.append(ws)
    connect_s = time.perf_counter() - t0
    latencies = []
    done = asyncio.Event()
    received = [0]

    async def reader(ws):
        count = 0
        while count < total:
            frame = json.loads(await ws.recv())
            if frame["type"] == "message":
                count += 1
                sent = float(frame["content"].split(":")[1])
                latencies.append(time.perf_counter() - sent)
        received[0] += count

    async def sender(ws, i):
        for n in range(a.messages):
            await ws.send(json.dumps({"type": "message", "content": f"{i}:{time.perf_counter()}"}))
            await asyncio.sleep(0)

    readers = [asyncio.create_task(reader(ws)) for ws in sockets]
    start = time.perf_counter()
    await asyncio.gather(*[sender(sockets[i], i) for i in range(a.senders)])
    await asyncio.gather(*readers)
    elapsed = time.perf_counter() - start
    latencies.sort()
    q = lambda f: latencies[min(len(latencies) - 1, int(f * len(latencies)))] * 1000
    print(json.dumps({
        "sockets": a.sockets, "connect_s": round(connect_s, 2), "messages": total,
        "elapsed_s": round(elapsed, 2), "messages_per_s": round(total / elapsed),
        "deliveries_per_s": round(received[0] / elapsed),
        "latency_ms": {"p50": round(q(0.5), 1), "p90": round(q(0.9), 1), "p99": round(q(0.99), 1), "max": round(latencies[-1] * 1000, 1)},
    }))
    for ws in sockets:
        await ws.close()

asyncio.run(main())
