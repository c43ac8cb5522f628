"""What a hostile client costs the gateway: filters, waits, half-sent bodies, floods.

Each figure is printed beside a baseline from the same run (the same gateway without
the attack). ``--src`` runs another checkout's ``src`` (e.g. main before the hardening
pass) so before and after come from the same machine and the same script:

    python -m bench.bench_hardening                      # this checkout
    python -m bench.bench_hardening --src /tmp/main/src  # another one
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import grpc

from statusgate.v1 import status_pb2 as pb
from statusgate.v1 import status_service_pb2_grpc
from tests.fakes.finbox import FakeFinbox
from tests.fakes.harness import ENV
from tests.payloads import finbox_expiry
from tests.process import free_port

SECRET = "bench-secret-0123"
READER = "bench-reader"


def config(fake_url: str) -> str:
    return f"""
[sources.finbox]
provider = "finbox"
[sources.finbox.poll]
enabled = false
[sources.finbox.auth]
method = "shared_secret"
secret_env = "BENCH_SECRET"
[sources.finbox.api]
base_url = "{fake_url}"
api_key_env = "TEST_FINBOX_API_KEY"
server_hash_env = "TEST_FINBOX_SERVER_HASH"
[clients.reader]
token_sha256 = "{hashlib.sha256(READER.encode()).hexdigest()}"
sources = ["*"]
permissions = ["read"]
"""


class Gateway:
    def __init__(self, src: str | None, fake_url: str, nofile: int | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="bench-hardening-"))
        (self.dir / "g.toml").write_text(config(fake_url))
        self.http, self.grpc = free_port(), free_port()
        env = {**os.environ, **ENV, "BENCH_SECRET": SECRET, "STATUSGATE_LOG_LEVEL": "WARNING"}
        # By variable, not flag: an older --src without an API listener ignores it.
        env["STATUSGATE_API"] = f"127.0.0.1:{free_port()}"
        if src:
            env["PYTHONPATH"] = src
        limit = (
            (lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile)))
            if nofile
            else None
        )
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "statusgate.cli",
                "serve",
                "--config",
                str(self.dir / "g.toml"),
                "--http",
                f"127.0.0.1:{self.http}",
                "--grpc",
                f"127.0.0.1:{self.grpc}",
                "--store",
                f"sqlite:///{self.dir / 'g.db'}",
            ],
            env=env,
            stderr=subprocess.DEVNULL,
            preexec_fn=limit,
        )

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http}"

    async def ready(self) -> None:
        async with aiohttp.ClientSession() as http:
            for _ in range(600):
                try:
                    async with http.get(self.base + "/readyz") as r:
                        if r.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        raise RuntimeError("gateway not ready")

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


async def post_many(gw: Gateway, n: int, tag: str) -> float:
    async with aiohttp.ClientSession() as http:
        started = time.perf_counter()
        for i in range(n):
            async with http.post(
                gw.base + "/webhooks/finbox",
                json=finbox_expiry(f"{tag}{i}"),
                headers={"x-secret-key": SECRET},
            ) as r:
                assert r.status == 200, r.status
        return time.perf_counter() - started


async def item1_filters(src: str | None, url: str, webhooks: int, names: int) -> None:
    gw = Gateway(src, url)
    await gw.ready()
    try:
        base = await post_many(gw, webhooks, "base")
        channel = grpc.aio.insecure_channel(
            f"127.0.0.1:{gw.grpc}", options=[("grpc.max_send_message_length", 64 << 20)]
        )
        stub = status_service_pb2_grpc.StatusServiceStub(channel)
        meta = (("authorization", f"Bearer {READER}"),)
        flt = pb.StatusFilter(names=[f"sources/finbox/sessions/x{i}" for i in range(names)])
        streams = [
            stub.WatchStatuses(pb.WatchStatusesRequest(filter=flt), metadata=meta) for _ in range(8)
        ]
        opened = 0
        for s in streams:
            try:
                await asyncio.wait_for(anext(aiter(s)), 60)
                opened += 1
            except grpc.aio.AioRpcError as e:
                refused = e.code().name
        watched = await post_many(gw, webhooks, "watched")
        print(
            f"item 1: {webhooks} webhooks, 8 streams x {names:,} names ({opened} opened"
            + (f", others {refused}" if opened < 8 else "")
            + f"): {watched:.2f} s; "
            f"baseline without streams: {base:.2f} s"
        )
        for s in streams:
            s.cancel()
        await channel.close()
    finally:
        gw.stop()


async def item2_waits(src: str | None, url: str, fake: FakeFinbox) -> None:
    gw = Gateway(src, url)
    await gw.ready()
    try:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{gw.grpc}")
        stub = status_service_pb2_grpc.StatusServiceStub(channel)
        meta = (("authorization", f"Bearer {READER}"),)
        fake.calls.clear()
        started = time.perf_counter()
        await asyncio.gather(
            *(
                stub.WaitStatus(
                    pb.WaitStatusRequest(
                        name=f"sources/finbox/sessions/w{i}",
                        condition=pb.WaitCondition(terminal=True),
                    ),
                    timeout=4,
                    metadata=meta,
                )
                for i in range(300)
            ),
            return_exceptions=True,
        )
        print(
            f"item 2: 300 read-only WaitStatus for 4 s: {sum(fake.calls.values())} provider "
            f"calls in {time.perf_counter() - started:.1f} s; baseline (no waits): 0"
        )
        await channel.close()
    finally:
        gw.stop()


async def half_sent(port: int, length: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        (
            f"POST /webhooks/finbox HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n"
            "Content-Type: application/json\r\n\r\n"
        ).encode()
        + b" " * (length // 2)
    )
    return reader, writer


async def item5_bodies(src: str | None, url: str) -> None:
    gw = Gateway(src, url)
    await gw.ready()
    try:
        await post_many(gw, 20, "warm")
        before = gw.rss_mib()
        conns = [await half_sent(gw.http, 1024 * 1024) for _ in range(150)]
        await asyncio.sleep(3)
        after = gw.rss_mib()
        print(
            f"item 5: RSS after 150 half-sent 1 MiB unauthenticated bodies: "
            f"{after:.0f} MiB (+{after - before:.0f} MiB); baseline before them: {before:.0f} MiB"
        )
        for _, w in conns:
            w.close()
    finally:
        gw.stop()


async def item6_flood(src: str | None, url: str) -> None:
    gw = Gateway(src, url, nofile=1024)
    await gw.ready()
    try:

        async def latency() -> float:
            started = time.perf_counter()
            try:
                await asyncio.wait_for(post_many(gw, 1, f"legit{time.time_ns()}"), 30)
            except (TimeoutError, aiohttp.ClientError, AssertionError):
                return float("inf")
            return time.perf_counter() - started

        base = await latency()
        idle = []
        for _ in range(1023):
            try:
                idle.append(await asyncio.open_connection("127.0.0.1", gw.http))
            except OSError:
                break
        trickling = []
        for _ in range(500):
            try:
                r, w = await asyncio.open_connection("127.0.0.1", gw.http)
                w.write(b"POST /webhooks/finbox HTTP/1.1\r\n")
                trickling.append((r, w))
            except OSError:
                break

        async def trickle() -> None:
            for _ in range(300):
                for _, w in trickling:
                    if not w.is_closing():
                        w.write(b"X-a: b\r\n")
                await asyncio.sleep(0.1)

        feeding = asyncio.ensure_future(trickle())
        await asyncio.sleep(1)
        during = await latency()
        await asyncio.sleep(12)
        still_open = sum(1 for r, _ in trickling if not r.at_eof() and not r.exception())
        feeding.cancel()
        print(
            f"item 6: legitimate webhook during 500 trickling + {len(idle)} idle sockets "
            f"(gateway ulimit -n 1024): {during * 1000:.0f} ms; baseline without them: "
            f"{base * 1000:.0f} ms; trickling sockets still open 13 s later: {still_open}"
        )
        for _, w in idle + trickling:
            w.close()
    finally:
        gw.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--src", help="PYTHONPATH of the gateway under test")
    parser.add_argument("--webhooks", type=int, default=100)
    parser.add_argument("--names", type=int, default=150_000)
    parser.add_argument("--items", default="1,2,5,6")
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    fake = FakeFinbox()
    url = await fake.start()
    print(f"bench_hardening: src {args.src or 'this checkout'}")
    items = args.items.split(",")
    if "1" in items:
        await item1_filters(args.src, url, args.webhooks, args.names)
        await item1_filters(args.src, url, args.webhooks, 1000)
    if "2" in items:
        await item2_waits(args.src, url, fake)
    if "5" in items:
        await item5_bodies(args.src, url)
    if "6" in items:
        await item6_flood(args.src, url)
    await fake.close()


if __name__ == "__main__":
    asyncio.run(main())
