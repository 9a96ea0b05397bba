#!/usr/bin/env python3
"""A TCP proxy to take a dependency away from a running service by hand, as
tests/support/proxy.rs does in the tests: SIGUSR1 cuts (open connections
closed, new ones refused), SIGUSR2 stalls (connections stay open, every byte is
held: a black hole), SIGHUP restores. For the outage figures in
docs/BENCHMARKS.md; it listens on loopback only.

    python3 scripts/fault_proxy.py 6380 127.0.0.1:6379 &   # REDIS_URL=redis://127.0.0.1:6380
    kill -USR1 %1; kill -HUP %1                             # cut, then back
"""

import asyncio
import signal
import sys

state = {"mode": "open"}
links = set()
flowing = None  # asyncio.Event, set while bytes may pass


async def pump(reader, writer):
    try:
        while data := await reader.read(65536):
            await flowing.wait()
            if state["mode"] == "cut":
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def handle(client_reader, client_writer, target):
    if state["mode"] == "cut":
        client_writer.close()
        return
    await flowing.wait()
    host, port = target
    try:
        server_reader, server_writer = await asyncio.open_connection(host, port)
    except OSError:
        client_writer.close()
        return
    tasks = {
        asyncio.ensure_future(pump(client_reader, server_writer)),
        asyncio.ensure_future(pump(server_reader, client_writer)),
    }
    links.update(tasks)
    await asyncio.wait(tasks)
    links.difference_update(tasks)


def set_mode(mode):
    state["mode"] = mode
    print(f"fault proxy: {mode}", file=sys.stderr, flush=True)
    if mode == "stall":
        flowing.clear()
    else:
        flowing.set()
    if mode == "cut":
        for task in list(links):
            task.cancel()


async def main():
    global flowing
    listen, target = int(sys.argv[1]), sys.argv[2].rsplit(":", 1)
    flowing = asyncio.Event()
    flowing.set()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, set_mode, "cut")
    loop.add_signal_handler(signal.SIGUSR2, set_mode, "stall")
    loop.add_signal_handler(signal.SIGHUP, set_mode, "open")
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, (target[0], int(target[1]))), "127.0.0.1", listen
    )
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
