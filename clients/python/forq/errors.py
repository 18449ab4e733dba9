"""The exceptions of the forq package.

Everything the client and the worker raise for a server-side condition is a
ForqError; its ``code`` is the word forqd used (``queue-full``, ``draining``,
``unauthorized``, ...) or, over HTTP, the status code.  Handler functions use
the other two classes, Retry and Fail, to say how a task ends.
"""


class ForqError(Exception):
    """Base class of the errors forqd (or talking to it) produced."""

    def __init__(self, message, code=None):
        super().__init__(message)
        self.code = code


class ConnectionFailed(ForqError):
    """forqd cannot be reached, or the connection dropped mid-request."""


class ProtocolError(ForqError):
    """A reply that does not follow the protocol, or an ``ERR`` word saying the
    request was malformed (``bad-args``, ``unknown-command``, ...)."""


class QueueFull(ForqError):
    """The task's priority lane is full (``ERR queue-full``, HTTP 503).

    ``push_many`` sets ``ids``: one entry per payload, the id or None for the
    payloads that were not taken."""

    ids = None


class Draining(ForqError):
    """forqd is shutting down and takes no new tasks (``ERR draining``)."""

    ids = None


class AuthError(ForqError):
    """The token is missing or wrong (``ERR unauthorized``, HTTP 401/403)."""


class PayloadTooLarge(ForqError):
    """A payload is over the queue's ``--max-payload``."""

    ids = None


class NotFound(ForqError, LookupError):
    """``get(id)``: forqd does not know the id (never given, or forgotten)."""


class UnknownQueue(ForqError, LookupError):
    """forqd serves no queue of that name (``ERR unknown-queue``, HTTP 404
    on ``/queues/{name}/...``)."""


class ServerError(ForqError):
    """forqd failed (``ERR internal``, HTTP 5xx other than 503)."""


# ---- for handler functions (Worker and serve share them) ----


class Retry(Exception):
    """Raise in a handler for a transient failure: forqd runs the task again
    after its retry backoff, until ``--max-attempts``.  The message is the
    reason recorded for the attempt."""


class Fail(Exception):
    """Raise in a handler to fail the task for good with exactly this message
    as the reason.  Any other exception fails the task too, its reason being
    ``TypeName: message``."""


_BY_WORD = {
    "queue-full": QueueFull,
    "draining": Draining,
    "unauthorized": AuthError,
    "payload-too-large": PayloadTooLarge,
    "internal": ServerError,
    "too-many-connections": ConnectionFailed,
    "too-many-errors": ProtocolError,
    "unknown-queue": UnknownQueue,
}

_TEXT = {
    "queue-full": "queue full: the priority lane holds --capacity tasks",
    "draining": "forqd is shutting down and takes no new tasks",
    "unauthorized": "unauthorized: missing or wrong token",
    "payload-too-large": "payload over the queue's max payload",
    "internal": "forqd failed (see its log)",
    "too-many-connections": "forqd holds --tcp-max-conns connections already",
    "unknown-queue": "forqd serves no queue of that name",
}


def from_err_word(word):
    """The exception for ``ERR <word>``."""
    cls = _BY_WORD.get(word, ProtocolError)
    return cls(_TEXT.get(word, "forqd answered ERR " + word), word)
