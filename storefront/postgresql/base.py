"""Django's PostgreSQL backend with a health check that costs no round trip when nothing is wrong.

With persistent connections, `CONN_HEALTH_CHECKS` makes Django send `SELECT 1` before the first
query of every request, so a connection the server dropped (a restart, a failover, an idle
timeout) is replaced instead of failing a customer's request. That is one more round trip per
request: a status poll, whose answer is one query, paid for two (docs/WEB_SPEED.md).

An idle connection has nothing to read unless the server is closing it (or has a notice to
send): PostgreSQL writes its "terminating connection" error and closes the socket, which makes
it readable. So the check first asks the socket, without waiting; only a readable socket gets
Django's full `SELECT 1` check. A connection that vanished without a word (no FIN reaches us)
is what the full check could not have caught before the request either: its query fails, and
Django drops the broken connection at the end of that request.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed:
            return False
        try:
            readable, _, _ = select.select([connection.fileno()], [], [], 0)
        except (OSError, ValueError):  # the descriptor is gone: the connection with it
            return False
        return super().is_usable() if readable else True
