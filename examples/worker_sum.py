#!/usr/bin/env python3
"""A remote forq worker in Python: leases tasks from forqd over TCP, runs the
handler of examples/proc_sum.py, and sends the results back.

    forqd --workers 0 --tcp 127.0.0.1:7070        # tasks wait for remote workers
    python3 examples/worker_sum.py 127.0.0.1:7070  # SIGTERM: finishes what it holds

forq comes from clients/python (pip install clients/python, or PYTHONPATH);
from a checkout this script finds it by itself."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from proc_sum import forq, handle  # the same function, the same contract

if __name__ == "__main__":
    addr = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:7070"
    max_tasks = int(sys.argv[2]) if len(sys.argv) > 2 else None
    forq.Worker(addr, handle, batch=64, token=os.environ.get("FORQ_TOKEN"),
                max_tasks=max_tasks).run()
