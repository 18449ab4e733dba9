#!/usr/bin/env python3
"""A forqd proc: handler in Python with forq.serve: the payload is a JSON
document like the json handler's, {"op": "sum", "args": [1, 2, 3]}, and the
result is the sum of its args.

    forqd --handler 'proc:python3 examples/proc_sum.py'

forq comes from clients/python (pip install clients/python, or PYTHONPATH);
from a checkout this script finds it by itself."""

import json
import os
import sys

try:
    import forq
except ImportError:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "python"))
    import forq


def handle(payload: bytes) -> str:
    doc = json.loads(payload)  # invalid JSON fails the task: "JSONDecodeError: ..."
    args = doc.get("args") if isinstance(doc, dict) else None
    if not isinstance(args, list) or not args:
        raise forq.Fail("args must be a non-empty array")
    return str(sum(args))


if __name__ == "__main__":
    forq.serve(handle)
