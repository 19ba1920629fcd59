"""A real ``clawdesk serve`` on 127.0.0.1 (a free port), driven by the real ``openai`` client.

The server runs in a thread of the test process on the session's shared engine, against the
test's own store (``CLAWDESK_HOME`` is a tmp dir): uvicorn, Starlette, the worker thread and the
store are the production ones; only the process boundary is missing (``test_cli_serve.py``
starts the real command)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from clawdesk import locations
from clawdesk.server import ServeState, create_app
from clawdesk.settings import Settings
from clawdesk.store import Store, open_store

from serve_helpers import TOKEN, Served


@pytest.fixture(scope="session")
def engine(model_path: str):
    """This folder's own engine, one thread: two llama.cpp threads spin-waiting on a busy 2-core
    machine run many times slower, and a test that swaps adapters in must not touch the engine
    other folders share."""
    from clawdesk.engine import Engine

    e = Engine(model_path, n_ctx=2048, n_threads=1)
    yield e
    e.close()


@pytest.fixture
def server(engine, settings: Settings, clawdesk_home) -> Iterator[Served]:
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    state = ServeState(locations.db_path(), engine, settings.replace(max_tokens=16), TOKEN)
    srv = uvicorn.Server(uvicorn.Config(create_app(state), log_level="warning", lifespan="on"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield Served(f"http://127.0.0.1:{port}/v1", TOKEN, state)
    finally:
        srv.should_exit = True
        thread.join(30)
        sock.close()


@pytest.fixture
def db(server: Served) -> Iterator[Store]:
    """A separate connection to the server's store, as another process (the trainer) would have."""
    s = open_store(locations.db_path())
    yield s
    s.close()
