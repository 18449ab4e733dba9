"""The contract of a handler function, shared by Worker and serve.

fn(payload: bytes) -> bytes | str | None
  - returns: the task is done; its result is the bytes, the str in UTF-8, or
    empty for None (bytearray and memoryview are taken as bytes);
  - raises forq.Retry(reason): transient failure, forqd tries the task again;
  - raises forq.Fail(reason): permanent failure with exactly that reason;
  - raises any other Exception: permanent failure, reason "TypeName: message".
  BaseExceptions that are not Exceptions (SystemExit, KeyboardInterrupt) are
  not caught: they end the process, and forqd treats the task as a crash.
"""

from .errors import Fail, Retry

# What a task ends as; the words are the protocol's (TCP and proc: framing).
DONE = "RESULT"
FAILED = "FAIL"
RETRY = "RETRY"


def _reason(exc, default):
    msg = str(exc)
    if isinstance(exc, (Retry, Fail)):
        text = msg or default
    else:
        name = type(exc).__name__
        text = name + ": " + msg if msg else name
    return text.encode("utf-8", "replace")


def failure(exc):
    """(RETRY|FAILED, reason bytes) for an Exception fn raised."""
    if isinstance(exc, Retry):
        return RETRY, _reason(exc, "retry")
    return FAILED, _reason(exc, "failed")


def as_result(r):
    """What fn returned, other than bytes, as the result's bytes: a str in
    UTF-8 (UnicodeEncodeError for a lone surrogate), None as empty,
    bytearray and memoryview as bytes; TypeError for anything else.  (Hot
    loops test for bytes and str themselves and call this for the rest.)"""
    if isinstance(r, str):
        return r.encode("utf-8")
    if r is None:
        return b""
    if isinstance(r, (bytes, bytearray, memoryview)):
        return bytes(r)
    raise TypeError("handler returned %s (expected bytes, str or None)" % type(r).__name__)


def run_handler(fn, payload):
    """Runs fn on payload; returns (DONE|FAILED|RETRY, bytes)."""
    try:
        r = fn(payload)
        if r.__class__ is not bytes:
            r = as_result(r)
    except Exception as e:  # noqa: BLE001 - the contract: any Exception fails the task
        return failure(e)
    return DONE, r
