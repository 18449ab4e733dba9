#!/usr/bin/env python3
"""Checks dashboards/forq.json (and the metric names in dashboards/alerts.yml).

  check_dashboard.py static   [--root DIR]
      Offline: the JSON parses; every panel uses the provisioned datasource
      uid and has targets with a non-empty expr that honours $job/$instance;
      panel ids are unique and the grid fits; the template variables exist;
      every metric name in any expr is one forqd exposes (KNOWN_METRICS);
      each expr parses as PromQL (promtool check rules, when promtool exists).
  check_dashboard.py live     --prom URL --job JOB --instance INSTANCE [--queues A,B]
                              [--root DIR]
      Runs every panel expr and variable query against a real Prometheus and
      expects a non-empty result from each; with --queues, every expr that
      uses $queue once per queue (and once for All), and $queue's values must
      include each.
  check_dashboard.py metrics  --url URL [--queues A,B]
      Compares KNOWN_METRICS with the families a running forqd exposes, and
      checks that exactly the PER_QUEUE families carry a queue label (first),
      with samples for each of --queues.

Prints one "ok - ..." or "not ok - ..." line per check (the shell tests count
them) and exits 1 if any check failed. Needs only the Python standard
library (plus PyYAML for alerts.yml, skipped with a note when missing).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request

# A static copy of the metric families forqd exposes on /metrics (the list in
# the metrics design). Keep it in step with metrics/: `check_dashboard.py
# metrics --url http://HOST:PORT/metrics` (run by test_dashboard_live.sh)
# reports any difference against a running forqd.
KNOWN_METRICS = {
    "forq_tasks_pending": "gauge",
    "forq_tasks_in_progress": "gauge",
    "forq_tasks_enqueued_total": "counter",
    "forq_tasks_started_total": "counter",
    "forq_tasks_done_total": "counter",
    "forq_tasks_failed_total": "counter",
    "forq_tasks_dead_total": "counter",
    "forq_tasks_retried_total": "counter",
    "forq_task_crashes_total": "counter",
    "forq_tasks_requeued_total": "counter",
    "forq_retry_waiting": "gauge",
    "forq_dead_letters": "gauge",
    "forq_throughput_tasks_per_second": "gauge",
    "forq_task_wait_seconds": "histogram",
    "forq_task_run_seconds": "histogram",
    "forq_queue_capacity": "gauge",
    "forq_queue_max_payload_bytes": "gauge",
    "forq_shm_bytes": "gauge",
    "forq_tasks_scheduled": "gauge",
    "forq_queue_rate_limit": "gauge",
    "forq_queue_rate_limited_seconds_total": "counter",
    "forq_queue_paused": "gauge",
    "forq_tasks_purged_total": "counter",
    "forq_tasks_cancelled_total": "counter",
    "forq_queue_full_waits_total": "counter",
    "forq_journal_bytes_total": "counter",
    "forq_journal_fsyncs_total": "counter",
    "forq_journal_write_errors_total": "counter",
    "forq_journal_pending": "gauge",
    "forq_journal_segments": "gauge",
    "forq_upstream_enabled": "gauge",
    "forq_upstream_connected": "gauge",
    "forq_upstream_held": "gauge",
    "forq_upstream_fetched_total": "counter",
    "forq_upstream_acked_total": "counter",
    "forq_upstream_naked_total": "counter",
    "forq_upstream_terminated_total": "counter",
    "forq_upstream_reconnects_total": "counter",
    "forq_upstream_publish_errors_total": "counter",
    "forq_upstream_stream_pending_tasks": "gauge",
    "forq_upstream_ack_pending_tasks": "gauge",
    "forq_workers": "gauge",
    "forq_worker_restarts_total": "counter",
    "forq_results_write_blocked": "gauge",
    "forq_stalled": "gauge",
    "forq_workers_stuck": "gauge",
    "forq_draining": "gauge",
    "forq_http_requests_total": "counter",
    "forq_remote_workers_connected": "gauge",
    "forq_leases_outstanding": "gauge",
    "forq_lease_expired_total": "counter",
    "forq_tcp_commands_total": "counter",
    "forq_tcp_bytes_total": "counter",
    "forq_tcp_connections_total": "counter",
    "forq_tcp_connections_refused_total": "counter",
    "forq_tcp_command_bytes_total": "counter",
    "forq_build_info": "gauge",
    "forq_start_time_seconds": "gauge",
    "process_cpu_seconds_total": "counter",
    "process_resident_memory_bytes": "gauge",
    "process_virtual_memory_bytes": "gauge",
    "process_open_fds": "gauge",
    "process_max_fds": "gauge",
    "process_start_time_seconds": "gauge",
}
# The families with a queue label (one sample set per queue forqd serves);
# every other family is the service's and has none. Panels filter these by
# queue=~"$queue", and the alert rules keep the label.
PER_QUEUE = {
    "forq_tasks_pending", "forq_tasks_in_progress", "forq_tasks_enqueued_total",
    "forq_tasks_started_total", "forq_tasks_done_total", "forq_tasks_failed_total",
    "forq_tasks_dead_total", "forq_tasks_retried_total", "forq_task_crashes_total",
    "forq_tasks_requeued_total", "forq_retry_waiting", "forq_dead_letters",
    "forq_throughput_tasks_per_second", "forq_task_wait_seconds", "forq_task_run_seconds",
    "forq_queue_capacity", "forq_queue_max_payload_bytes", "forq_shm_bytes",
    "forq_tasks_scheduled", "forq_queue_rate_limit", "forq_queue_rate_limited_seconds_total",
    "forq_queue_paused", "forq_tasks_purged_total", "forq_tasks_cancelled_total",
    "forq_queue_full_waits_total", "forq_journal_bytes_total", "forq_journal_fsyncs_total",
    "forq_journal_write_errors_total", "forq_journal_pending", "forq_journal_segments",
    "forq_workers", "forq_worker_restarts_total", "forq_results_write_blocked",
    "forq_stalled", "forq_workers_stuck", "forq_lease_expired_total",
    "forq_upstream_connected", "forq_upstream_held", "forq_upstream_fetched_total",
    "forq_upstream_acked_total", "forq_upstream_naked_total", "forq_upstream_terminated_total",
    "forq_upstream_reconnects_total", "forq_upstream_publish_errors_total",
    "forq_upstream_enabled", "forq_upstream_stream_pending_tasks", "forq_upstream_ack_pending_tasks",
}
# Series Prometheus itself makes; only the alert rules may use them.
SYNTHETIC = {"up"}

AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
                "count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio"}
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
KEYWORDS = {"and", "or", "unless", "offset", "bool", "atan2", "inf", "nan"} | GROUPING

# Values the live check gives Grafana's variables; the test scrapes every
# second, so 10s spans about ten samples.
GRAFANA_BUILTINS = {"__rate_interval": "10s", "__interval": "2s", "__range": "1m",
                    "__range_s": "60", "__interval_ms": "2000"}

results = {"ok": 0, "fail": 0}


def report(ok, what, why=""):
    results["ok" if ok else "fail"] += 1
    print(("ok - " if ok else "not ok - ") + what + ("" if ok or not why else ": " + why))
    sys.stdout.flush()


def allowed_name(name, synthetic_ok):
    """Returns None when NAME is a series forqd exposes, else a reason."""
    if name in SYNTHETIC:
        return None if synthetic_ok else "only Prometheus makes it"
    if KNOWN_METRICS.get(name) in (None, "histogram"):
        for suffix in ("_bucket", "_sum", "_count"):
            base = name[: -len(suffix)]
            if name.endswith(suffix) and KNOWN_METRICS.get(base) == "histogram":
                return None
        if KNOWN_METRICS.get(name) == "histogram":
            return "a histogram has no bare series: use _bucket/_sum/_count"
        return "forqd does not expose it"
    return None


def family_of(name):
    """The family a series name belongs to (a histogram's _bucket, _sum, _count)."""
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and KNOWN_METRICS.get(name[: -len(suffix)]) == "histogram":
            return name[: -len(suffix)]
    return name


def strip_strings(expr):
    return re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)


def selectors(expr):
    """Returns [(metric name, label matcher text)] for every vector selector.

    A small scanner, not a PromQL parser: enough for the expressions in this
    repository (functions, aggregations with by/without, on/group_left).
    """
    out = []
    m = re.match(r'\s*label_values\(\s*(.*)\)\s*$', expr, re.S)
    if m:  # Grafana's variable query: label_values([metric{sel},] label)
        inner = m.group(1)
        parts = inner.rsplit(",", 1)
        if len(parts) == 1:
            return []
        expr = parts[0]
    # Matchers are kept (for the $job check) before strings are blanked.
    i, n = 0, len(expr)
    while i < n:
        c = expr[i]
        if c == '"' or c == "'" or c == "`":
            j = i + 1
            while j < n and expr[j] != c:
                j += 2 if expr[j] == "\\" and c != "`" else 1
            i = j + 1
            continue
        if c == "[":
            i = expr.index("]", i) + 1
            continue
        if c.isdigit() or (c == "." and i + 1 < n and expr[i + 1].isdigit()):
            m = re.compile(r'[0-9.]+(?:[eE][+-]?[0-9]+)?[smhdwy]?').match(expr, i)
            i = m.end()
            continue
        if c == "$":  # a Grafana variable outside a matcher
            m = re.compile(r'\$\{?\w+\}?').match(expr, i)
            i = m.end()
            continue
        if c.isalpha() or c in "_:":
            m = re.compile(r'[A-Za-z_:][A-Za-z0-9_:]*').match(expr, i)
            word = m.group(0)
            j = m.end()
            while j < n and expr[j].isspace():
                j += 1
            nxt = expr[j] if j < n else ""
            if word in GROUPING and nxt == "(":
                i = expr.index(")", j) + 1  # skip the label list
                continue
            if word in KEYWORDS or (word in AGGREGATIONS and (nxt == "(" or expr.startswith(("by", "without"), j))):
                i = j
                continue
            if nxt == "(":  # a function call
                i = j
                continue
            matchers = ""
            if nxt == "{":
                k = j + 1
                depth_q = None
                while k < n:
                    ch = expr[k]
                    if depth_q:
                        if ch == "\\":
                            k += 1
                        elif ch == depth_q:
                            depth_q = None
                    elif ch in "\"'`":
                        depth_q = ch
                    elif ch == "}":
                        break
                    k += 1
                matchers = expr[j + 1:k]
                j = k + 1
            out.append((word, matchers))
            i = j
            continue
        if c == "{":  # a selector with no name: {__name__=~...}
            k = expr.index("}", i)
            out.append(("", expr[i + 1:k]))
            i = k + 1
            continue
        i += 1
    return out


def load_dashboard(root):
    with open(os.path.join(root, "dashboards", "forq.json"), encoding="utf-8") as f:
        return json.load(f)


def provisioned_uid(root):
    path = os.path.join(root, "dashboards", "grafana", "provisioning", "datasources", "prometheus.yaml")
    with open(path, encoding="utf-8") as f:
        m = re.search(r'^\s*uid:\s*["\']?([A-Za-z0-9_.-]+)', f.read(), re.M)
    return m.group(1) if m else None


def panels_of(dash):
    for p in dash.get("panels", []):
        yield p
        for q in p.get("panels", []):  # panels inside collapsed rows
            yield q


def panel_exprs(dash):
    """Yields (label, expr) for every panel target and variable query."""
    for p in panels_of(dash):
        if p.get("type") == "row":
            continue
        for t in p.get("targets", []):
            yield f'panel {p.get("id")} "{p.get("title")}" {t.get("refId")}', t.get("expr", "")
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            q = v.get("query")
            q = q.get("query", "") if isinstance(q, dict) else q
            yield f'variable ${v.get("name")}', q or ""


def substitute(expr, values):
    missing = []

    def one(m):
        name = m.group(1) or m.group(2)
        if name in values:
            return values[name]
        missing.append(name)
        return m.group(0)
    out = re.sub(r'\$\{(\w+)(?::\w+)?\}|\$(\w+)', one, expr)
    return out, missing


def alert_exprs(root):
    try:
        import yaml
    except ImportError:
        print("# PyYAML missing: alerts.yml metric names not checked (apt-get install python3-yaml)")
        return []
    with open(os.path.join(root, "dashboards", "alerts.yml"), encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    return [(f'alert {r.get("alert") or r.get("record")}', r["expr"])
            for g in doc["groups"] for r in g["rules"]]


def check_static(root):
    try:
        dash = load_dashboard(root)
    except (OSError, ValueError) as e:
        report(False, "dashboards/forq.json parses as JSON", str(e))
        return
    report(True, "dashboards/forq.json parses as JSON")
    report(all(dash.get(k) for k in ("uid", "title", "schemaVersion")) and dash.get("id") is None,
           "dashboard has uid, title, schemaVersion and a null id (needed for file provisioning)")

    uid = provisioned_uid(root)
    report(bool(uid), f"provisioned datasource has a fixed uid ({uid})")

    ids, bad_ds, bad_targets, bad_grid, cells = set(), [], [], [], {}
    dup = []
    for p in panels_of(dash):
        pid = p.get("id")
        if pid in ids:
            dup.append(pid)
        ids.add(pid)
        g = p.get("gridPos", {})
        if not all(isinstance(g.get(k), int) for k in "hwxy") or g["x"] < 0 or g["x"] + g["w"] > 24:
            bad_grid.append(f"{pid} {g}")
        else:
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    if (x, y) in cells:
                        bad_grid.append(f"{pid} overlaps {cells[(x, y)]}")
                        break
                    cells[(x, y)] = pid
                else:
                    continue
                break
        if p.get("type") == "row":
            continue
        ds = p.get("datasource") or {}
        if ds.get("uid") != uid or ds.get("type") != "prometheus":
            bad_ds.append(f'{pid} "{p.get("title")}" ({ds})')
        targets = p.get("targets") or []
        if not targets:
            bad_targets.append(f'{pid} "{p.get("title")}" has no target')
        for t in targets:
            if not (t.get("expr") or "").strip():
                bad_targets.append(f'{pid} {t.get("refId")} has an empty expr')
            if (t.get("datasource") or {}).get("uid") != uid:
                bad_ds.append(f'{pid} {t.get("refId")} target ({t.get("datasource")})')
    n_panels = sum(1 for p in panels_of(dash) if p.get("type") != "row")
    report(n_panels > 0 and not bad_ds, f"all {n_panels} panels and their targets use datasource uid {uid}",
           "; ".join(bad_ds))
    report(n_panels > 0 and not bad_targets, "every panel has a target with a non-empty expr", "; ".join(bad_targets))
    report(not dup, "panel ids are unique", f"duplicates {dup}")
    report(not bad_grid, "panels fit the 24-column grid without overlapping", "; ".join(bad_grid))

    variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    for name in ("job", "instance"):
        v = variables.get(name) or {}
        q = v.get("query")
        q = q.get("query", "") if isinstance(q, dict) else (q or "")
        report(v.get("type") == "query" and (v.get("datasource") or {}).get("uid") == uid
               and re.match(r'\s*label_values\(\s*forq_build_info\b.*,\s*' + name + r'\s*\)\s*$', q),
               f"template variable ${name} queries label_values(forq_build_info..., {name})", f"{v}")

    v = variables.get("queue") or {}
    q = v.get("query")
    q = q.get("query", "") if isinstance(q, dict) else (q or "")
    report(v.get("type") == "query" and (v.get("datasource") or {}).get("uid") == uid
           and re.match(r'\s*label_values\(\s*(\w+)\{.*\},\s*queue\s*\)\s*$', q)
           and re.match(r'\s*label_values\(\s*(\w+)', q).group(1) in PER_QUEUE
           and v.get("multi") is True and v.get("includeAll") is True and v.get("allValue") == ".*",
           "template variable $queue queries label_values(<a per-queue family>{...}, queue), "
           "multi-select with All", f"{v}")

    # Metric names, template variables in selectors, PromQL syntax.
    bad_names, unscoped, unqueued, no_legend, exprs = [], [], [], [], []
    for p in panels_of(dash):
        if p.get("type") in ("row", "stat"):
            continue  # a stat shows the selected queues' total
        for tg in p.get("targets", []):
            names = {family_of(n) for n, _ in selectors(tg.get("expr", ""))}
            if names & PER_QUEUE and "{{queue}}" not in (tg.get("legendFormat") or ""):
                no_legend.append(f'panel {p.get("id")} "{p.get("title")}" {tg.get("refId")}')
    for label, expr in panel_exprs(dash):
        for name, matchers in selectors(expr):
            why = allowed_name(name, synthetic_ok=False)
            if why:
                bad_names.append(f"{label}: {name or '{' + matchers + '}'} ({why})")
            if label.startswith("panel") and not (re.search(r'\bjob=~"\$job"', matchers)
                                                  and re.search(r'\binstance=~"\$instance"', matchers)):
                unscoped.append(f"{label}: {name}{{{matchers}}}")
            if (label.startswith("panel") and family_of(name) in PER_QUEUE
                    and not re.search(r'\bqueue=~"\$queue"', matchers)):
                unqueued.append(f"{label}: {name}{{{matchers}}}")
        if label.startswith("panel"):
            exprs.append((label, expr))
    for label, expr in alert_exprs(root):
        for name, matchers in selectors(expr):
            why = allowed_name(name, synthetic_ok=True)
            if why:
                bad_names.append(f"{label}: {name} ({why})")
    report(not bad_names, "every metric name in the dashboard and alert exprs is one forqd exposes",
           "; ".join(bad_names))
    report(not unscoped, 'every selector in a panel has job=~"$job" and instance=~"$instance"', "; ".join(unscoped))
    report(not unqueued, 'every selector of a per-queue family in a panel has queue=~"$queue"',
           "; ".join(unqueued))
    report(not no_legend, "every graph target of a per-queue family has {{queue}} in its legend",
           "; ".join(no_legend))
    bad_alerts = []
    for label, expr in alert_exprs(root):
        for m in re.finditer(r'\b(?:sum|max|min|avg|count)\s+by\s*\(([^)]*)\)|\bon\s*\(([^)]*)\)', expr):
            labels = {x.strip() for x in (m.group(1) or m.group(2) or "").split(",")}
            names = {family_of(n) for n, _ in selectors(expr)}
            if names & PER_QUEUE and "queue" not in labels:
                bad_alerts.append(f"{label}: {m.group(0)}")
    report(not bad_alerts, "every alert rule on a per-queue family keeps the queue label (by/on)",
           "; ".join(bad_alerts))

    promtool = shutil.which("promtool")
    if not promtool:
        print("# promtool missing: PromQL syntax of the panels not checked")
        return
    values = dict(GRAFANA_BUILTINS, job="forqd", instance="127.0.0.1:8080", queue=".*")
    lines = ["groups:", "  - name: dashboard", "    rules:"]
    unknown = []
    for i, (label, expr) in enumerate(exprs):
        e, missing = substitute(expr, values)
        if missing:
            unknown.append(f"{label}: ${', $'.join(missing)}")
        lines.append(f"      - record: dashboard:expr_{i}")
        lines.append("        expr: " + json.dumps(e))
    report(not unknown, "panel exprs use only the $job, $instance, $queue and Grafana's built-in variables",
           "; ".join(unknown))
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        f.write("\n".join(lines) + "\n")
    try:
        r = subprocess.run([promtool, "check", "rules", f.name], capture_output=True, text=True)
    finally:
        os.unlink(f.name)
    report(r.returncode == 0, f"all {len(exprs)} panel exprs parse as PromQL (promtool check rules)",
           (r.stdout + r.stderr).strip().replace("\n", " | "))


def prom_query(prom, expr):
    data = urllib.parse.urlencode({"query": expr}).encode()
    with urllib.request.urlopen(prom.rstrip("/") + "/api/v1/query", data=data, timeout=10) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise RuntimeError(body.get("error", "query failed"))
    return body["data"]


def check_live(root, prom, job, instance, queues):
    dash = load_dashboard(root)
    # As Grafana does for a single value: unescaped (a "." in the instance
    # matches itself too). An expr with $queue runs once for All and once
    # for each queue given: every panel must show data for each queue.
    values = dict(GRAFANA_BUILTINS, job=job, instance=instance, queue=".*")
    for label, expr in panel_exprs(dash):
        want = None
        if label.startswith("variable"):
            # label_values(metric{sel}, label) -> the label's values must exist.
            m = re.match(r'\s*label_values\(\s*(.*),\s*(\w+)\s*\)\s*$', expr, re.S)
            if not m:
                report(False, f"{label} runs", f"cannot read {expr!r}")
                continue
            expr = f"count by ({m.group(2)}) ({m.group(1)})"
            want = m.group(2) == "queue" and queues
        runs = [(label, ".*")]
        if queues and label.startswith("panel") and re.search(r'\$\{?queue\b', expr):
            runs += [(f"{label} for queue {q}", q) for q in queues]
        for what, qv in runs:
            e, missing = substitute(expr, dict(values, queue=qv))
            if missing:
                report(False, f"{what} returns data", f"unknown variables {missing}")
                continue
            try:
                data = prom_query(prom, e)
            except Exception as ex:  # noqa: BLE001 - any failure is the check's answer
                report(False, f"{what} returns data", f"{e}: {ex}")
                continue
            res = data.get("result")
            if want:
                got = {r["metric"].get("queue") for r in res}
                report(set(want) <= got, f"{what} lists every queue ({', '.join(want)})",
                       f"got {sorted(x for x in got if x)}")
            else:
                report(bool(res), f"{what} returns data", f"empty result for {e}")


def check_metrics(url, queues):
    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode()
    exposed = dict(re.findall(r'^# TYPE (\S+) (\S+)$', text, re.M))
    missing = sorted(set(KNOWN_METRICS) - set(exposed))
    wrong = sorted(f"{k} is {exposed[k]}, expected {v}" for k, v in KNOWN_METRICS.items()
                   if k in exposed and exposed[k] != v)
    extra = sorted(set(exposed) - set(KNOWN_METRICS))
    report(not missing, "forqd exposes every family in KNOWN_METRICS", f"missing {missing}")
    report(not wrong, "the exposed families have the expected types", "; ".join(wrong))
    report(not extra, "KNOWN_METRICS lists every family forqd exposes", f"add {extra}")
    # The queue label: first on every sample of a per-queue family, on no
    # other; each queue given has samples in each per-queue family.
    mislabelled, seen = [], {}
    for m in re.finditer(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? ', text, re.M):
        fam = family_of(m.group(1))
        q = re.match(r'\{queue="((?:[^"\\]|\\.)*)"', m.group(2) or "")
        if (fam in PER_QUEUE) != bool(q) or (fam not in PER_QUEUE and "queue=" in (m.group(2) or "")):
            mislabelled.append(m.group(0).strip())
        if q:
            seen.setdefault(fam, set()).add(q.group(1))
    report(not mislabelled, "exactly the PER_QUEUE families carry a queue label, first",
           "; ".join(mislabelled[:5]))
    if queues:
        short = sorted(f"{f} lacks {sorted(set(queues) - seen.get(f, set()))}" for f in PER_QUEUE
                       if not set(queues) <= seen.get(f, set()))
        report(not short, f"every per-queue family has samples for each queue ({', '.join(queues)})",
               "; ".join(short))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=("static", "live", "metrics"))
    ap.add_argument("--root", default=os.path.normpath(os.path.join(here, "..", "..")))
    ap.add_argument("--prom")
    ap.add_argument("--job")
    ap.add_argument("--instance")
    ap.add_argument("--url")
    ap.add_argument("--queues", default="", help="comma-separated queue names forqd serves")
    a = ap.parse_args()
    queues = [q for q in a.queues.split(",") if q]
    if a.mode == "static":
        check_static(a.root)
    elif a.mode == "live":
        if not (a.prom and a.job and a.instance):
            ap.error("live needs --prom, --job and --instance")
        check_live(a.root, a.prom, a.job, a.instance, queues)
    else:
        if not a.url:
            ap.error("metrics needs --url")
        check_metrics(a.url, queues)
    return 1 if results["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
