"""Run localstripe, a fake Stripe over real HTTP, on 127.0.0.1 for the tests and the offline demo.

localstripe's own command binds every interface and keeps its store in /tmp/localstripe.pickle,
rewritten after every single write. Here it listens on 127.0.0.1 only, and its store lives in the
state folder we are given (saved at most once a second, and at stop) or nowhere at all.

As a command (the demo starts it this way)::

    python -m app.payments.localstripe_server --port 8420 --state-dir instance/localstripe

prints ``localstripe listening on http://127.0.0.1:8420`` once it accepts connections.
In a process (the test suite)::

    with LocalStripe(state_dir=tmp) as server:
        server.url   # http://127.0.0.1:<free port>
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import pickle
import random
import signal
import socket
import sys
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

with warnings.catch_warnings():
    # localstripe registers plain functions as aiohttp handlers, which aiohttp warns about once per route.
    warnings.simplefilter("ignore", DeprecationWarning)
    from localstripe import resources
    from localstripe import server as ls_server

# localstripe makes its ids with the `random` module, whose state a test framework may reseed
# (Hypothesis does, once per example): ids would repeat and localstripe would answer 409 Conflict.
# Its own random generator keeps them unique whatever happens to the global one.
resources.random = random.SystemRandom()

# Registered on localstripe's app when imported, so before it serves: Stripe Connect (accounts,
# onboarding, transfers), fees on charges and a real balance (their objects live in the same store,
# saved below); idempotency keys honoured on every POST, card errors that carry their PaymentIntent, a
# customer's PaymentIntents listed (what the one-request charge and its recovery rely on).
from app.payments import localstripe_connect, localstripe_stripe_like  # noqa: E402,F401

HOST = "127.0.0.1"
STATE_FILE = "localstripe.pickle"
SAVE_INTERVAL_SECONDS = 1.0

log = logging.getLogger(__name__)


class _StoreFile:
    """Where localstripe's store is saved: one file in a state folder, or nowhere.

    localstripe calls `Store.dump_to_disk()` on every item set and after every write request; each
    call pickles the whole store, so writes slow down as it grows. We only mark the store dirty
    there and save it from the server's loop at most once per interval (and when it stops).
    """

    path: Path | None = None
    dirty = False

    @classmethod
    def use(cls, state_dir: str | os.PathLike | None) -> None:
        cls.path = Path(state_dir) / STATE_FILE if state_dir else None
        cls.dirty = False
        resources.Store.dump_to_disk = _mark_dirty
        resources.Store.try_load_from_disk = _load

    @classmethod
    def save(cls) -> None:
        if not (cls.dirty and cls.path):
            cls.dirty = False
            return
        cls.path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a crash mid-save never leaves a truncated pickle behind.
        fd, tmp = tempfile.mkstemp(dir=cls.path.parent, prefix=".localstripe-")
        with os.fdopen(fd, "wb") as f:
            pickle.dump(dict(resources.store), f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, cls.path)
        cls.dirty = False


def _mark_dirty(store: resources.Store) -> None:
    _StoreFile.dirty = True


def _load(store: resources.Store) -> None:
    path = _StoreFile.path
    store.clear()
    if path and path.exists():
        with path.open("rb") as f:
            # dict.update: the Store's own __setitem__ would mark the store dirty once per item.
            dict.update(store, pickle.load(f))


STRIPE_JS_PATH = "/js.stripe.com/v3/"


@web.middleware
async def _block_scoped_stripe_js(request: web.Request, handler):
    """Serve localstripe's Stripe.js inside a block, so that its top-level `class Element` stays its own.

    As served, that declaration becomes a global binding that shadows the DOM's `Element` for every
    script of the page: Bootstrap's `Element.prototype.querySelectorAll.call(…)` then throws on each
    click, and the menu, alerts and dropdowns of the card pages stop working. In a block the class is
    block-scoped; `Stripe = …` still assigns the global the page uses, and `document.currentScript`
    (how it finds its own address) is unchanged.
    """
    if request.method == "GET" and request.path == STRIPE_JS_PATH:
        source = (Path(ls_server.__file__).parent / "localstripe-v3.js").read_text()
        return web.Response(text="{\n" + source + "\n}\n", content_type="application/javascript")
    return await handler(request)


if _block_scoped_stripe_js not in ls_server.app.middlewares:
    ls_server.app.middlewares.append(_block_scoped_stripe_js)


async def _serve(sock: socket.socket, ready: Callable[[int], None], stop: asyncio.Event) -> None:
    """Serve localstripe on an already bound socket until `stop` is set; save the store on the way out."""
    runner = web.AppRunner(ls_server.app, access_log=None)
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        ready(sock.getsockname()[1])
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SAVE_INTERVAL_SECONDS)
            _StoreFile.save()
    finally:
        await runner.cleanup()
        _StoreFile.save()
        # localstripe sends webhooks from fire-and-forget tasks; end them rather than leave them dangling.
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, port))
    return sock


class LocalStripe:
    """localstripe serving from a background thread of this process (the test suite uses this).

    Its store is the localstripe module's global one, so run one per process.
    """

    def __init__(self, port: int = 0, state_dir: str | os.PathLike | None = None) -> None:
        self.port = port
        self.state_dir = state_dir
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        """The base address to give the Stripe library (`STRIPE_API_BASE`)."""
        return f"http://{HOST}:{self.port}"

    def start(self, timeout: float = 10.0) -> str:
        """Start serving; returns the base URL once the port accepts connections."""
        _StoreFile.use(self.state_dir)
        resources.store.try_load_from_disk()
        sock = _bind(self.port)  # bound here, so a port in use fails in the caller's thread
        self._thread = threading.Thread(target=self._run, args=(sock,), name="localstripe", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"localstripe did not start within {timeout} s: {self._error!r}")
        if self._error:
            raise RuntimeError(f"localstripe failed to start: {self._error!r}")
        return self.url

    def _run(self, sock: socket.socket) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop, self._stop = loop, asyncio.Event()

        def ready(port: int) -> None:
            self.port = port
            self._ready.set()

        try:
            loop.run_until_complete(_serve(sock, ready, self._stop))
        except BaseException as exc:  # reported to start(), which waits on _ready
            self._error = exc
            self._ready.set()
        finally:
            loop.close()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and save the store (if it has a state folder)."""
        if self._loop and self._stop and self._thread and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout)

    def __enter__(self) -> LocalStripe:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def register_webhook(base_url: str, webhook_id: str, url: str, secret: str, events: list[str] | None = None) -> None:
    """Ask localstripe to send its events to `url`, signed with `secret` (as a Stripe endpoint would be).

    Registering the same `webhook_id` again replaces it. `events` limits the event types sent.
    """
    fields: list[tuple[str, str]] = [("url", url), ("secret", secret)]
    fields += [("events[]", event) for event in events or ()]
    request = urllib.request.Request(
        f"{base_url.rstrip('/')}/_config/webhooks/{urllib.parse.quote(webhook_id, safe='')}",
        data=urllib.parse.urlencode(fields).encode(),
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10):
            pass
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"localstripe refused the webhook {webhook_id!r}: HTTP {exc.code}") from None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # the onboarding page's answer is the redirect itself
        return None


def click_through_onboarding(onboarding_url: str, action: str = "complete") -> str:
    """What a creator does on the offline Stripe's hosted onboarding page: "complete" it or "leave"
    it halfway. Returns where the page sends the browser back (the app's return URL), not followed."""
    request = urllib.request.Request(onboarding_url, data=urllib.parse.urlencode({"action": action}).encode(), method="POST")
    try:
        urllib.request.build_opener(_NoRedirect).open(request, timeout=30)
    except urllib.error.HTTPError as answer:
        if answer.code in (302, 303):
            return answer.headers["Location"]
        raise
    raise RuntimeError("the onboarding page did not send the browser back")


def main(argv: list[str] | None = None) -> int:
    """Command line: serve on 127.0.0.1 until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8420, help="0 picks a free port (default 8420)")
    parser.add_argument("--state-dir", help="folder that keeps the store between runs (default: none)")
    parser.add_argument("--from-scratch", action="store_true", help="ignore a store saved in the state folder")
    args = parser.parse_args(argv)

    _StoreFile.use(args.state_dir)
    if not args.from_scratch:
        resources.store.try_load_from_disk()
    sock = _bind(args.port)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await _serve(sock, lambda port: print(f"localstripe listening on http://{HOST}:{port}", flush=True), stop)

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
