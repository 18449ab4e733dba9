"""forq: a client, a remote worker and a proc: handler helper for forqd.

    import forq

    with forq.Client("127.0.0.1:7070") as c:          # or "http://127.0.0.1:8080"
        tid = c.push(b"1+2", priority="high")
        ids = c.push_many(["3*4", {"op": "sum", "args": [1, 2]}])
        print(c.stats()["pending"], c.get(tid)["status"])

    def handler(payload: bytes) -> bytes:              # shared by Worker and serve
        if not payload:
            raise forq.Fail("empty task")
        return payload.upper()

    forq.Worker("127.0.0.1:7070", handler, batch=64).run()   # a remote worker over TCP
    forq.serve(handler)                                       # a forqd --handler proc:CMD child

Standard library only.
"""

from .client import Client
from .errors import (
    AuthError,
    ConnectionFailed,
    Draining,
    Fail,
    ForqError,
    NotFound,
    PayloadTooLarge,
    ProtocolError,
    QueueFull,
    Retry,
    ServerError,
    UnknownQueue,
)
from .serve import serve
from .worker import Worker

__version__ = "0.1.0"

__all__ = [
    "Client",
    "Worker",
    "serve",
    "Retry",
    "Fail",
    "ForqError",
    "ConnectionFailed",
    "ProtocolError",
    "QueueFull",
    "Draining",
    "AuthError",
    "PayloadTooLarge",
    "NotFound",
    "ServerError",
    "UnknownQueue",
]
