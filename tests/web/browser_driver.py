"""The browser device of the cross-client tests, seen from Python.

:class:`BrowserDevice` runs ``clients/web/test/e2e/driver.js`` (headless Chromium through
playwright-core) and sends it one JSON command per line; each command acts as a person
would on the web client's screens. :func:`serve_build` builds the web client once into a
temporary folder and serves it on a loopback port, as a static site.
"""

from __future__ import annotations

import asyncio
import functools
import http.server
import io
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from web_helpers import WEB, require_chromium, require_node


class DriverError(RuntimeError):
    """The driver could not carry out a command (its message has the page's console)."""


class BrowserDevice:
    """One browser profile: a phone-sized page of the web client."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.next_id = 0

    @classmethod
    async def start(cls, url: str, *, camera: Path | None = None) -> BrowserDevice:
        node = require_node()
        chromium = require_chromium()
        process = await asyncio.create_subprocess_exec(
            node,
            "test/e2e/driver.js",
            cwd=WEB,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=16 * 1024 * 1024,
        )
        device = cls(process)
        camera_file = None if camera is None else str(camera)
        await device.call("launch", url=url, executable=str(chromium), camera=camera_file)
        return device

    async def call(self, cmd: str, timeout: float = 180, **args: Any) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.next_id += 1
        line = json.dumps({"id": self.next_id, "cmd": cmd, **args}) + "\n"
        self.process.stdin.write(line.encode())
        await self.process.stdin.drain()
        raw = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        if not raw:
            raise DriverError(f"the browser driver stopped during {cmd}")
        reply: dict[str, Any] = json.loads(raw)
        if not reply.pop("ok"):
            console = "\n".join(reply.get("console", []))
            raise DriverError(f"{cmd} failed: {reply['error']}\nconsole:\n{console}")
        reply.pop("id", None)
        return reply

    async def settle(self, timeout: float = 60) -> dict[str, Any]:
        """Wait until every space's outbox is empty and the last sync went well."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            state = await self.call("state")
            spaces = state["spaces"]
            if all(s["outbox"] == 0 and s["status"] == "synced" for s in spaces):
                return state
            if loop.time() > deadline:
                raise DriverError(f"the browser did not settle: {state}")
            await asyncio.sleep(0.5)

    async def close(self) -> None:
        if self.process.returncode is None:
            try:
                await self.call("close", timeout=30)
            except (DriverError, TimeoutError):
                pass
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


def qr_video(png: bytes, path: Path, size: int = 480, frames: int = 10) -> Path:
    """A Y4M video of the picture `png` (a QR code) in the middle of a grey frame: what a
    phone's camera sees when it is held over the code. Chromium plays it as its camera."""
    from PIL import Image

    picture = Image.open(io.BytesIO(png)).convert("L")
    side = size * 3 // 4
    picture = picture.resize((side, side), Image.Resampling.NEAREST)
    frame = Image.new("L", (size, size), color=200)
    frame.paste(picture, ((size - side) // 2, (size - side) // 2))
    luma = frame.tobytes()
    chroma = bytes([128]) * (size * size // 4)
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{size} H{size} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            out.write(b"FRAME\n" + luma + chroma + chroma)
    return path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


@contextmanager
def serve_build(out_dir: Path, port: int = 0) -> Iterator[str]:
    """Build the web client into `out_dir` and serve it on 127.0.0.1; yields its URL."""
    node = require_node()
    vite = WEB / "node_modules" / "vite" / "bin" / "vite.js"
    subprocess.run(
        [node, str(vite), "build", "--outDir", str(out_dir), "--emptyOutDir", "--logLevel", "warn"],
        cwd=WEB,
        check=True,
        timeout=300,
    )
    handler = functools.partial(_QuietHandler, directory=str(out_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        shutil.rmtree(out_dir, ignore_errors=True)
