import threading

import pytest

from openrouter.client import close_shared_session


@pytest.fixture(autouse=True)
def _close_openrouter_connections():
    """A kept-alive connection to live_server pins a server thread and its database session.

    Close ours, then give the live server's request threads a moment to notice and close their
    database connections, so PostgreSQL can drop the test database at the end of the session.
    """
    yield
    close_shared_session()
    for thread in threading.enumerate():
        if "process_request_thread" in thread.name:
            thread.join(timeout=3)
