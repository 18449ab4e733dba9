"""The markdown report of bench/handlers.sh: the table, the issue's goals as
ratios of rows of the same run, and why a row did not run."""

# (numerator, denominator, what, goal as a fraction or None, aim)
RATIOS = [
    ("proc", "pipe-64", "forq `proc:` / bare pipe, 64 per write", 0.5, 0.7),
    ("worker", "pipe-64", "`forq.Worker` / bare pipe, 64 per write", 0.5, None),
    ("worker-256", "pipe-64", "`forq.Worker(batch=256)` / bare pipe, 64 per write", 0.5, None),
    ("proc", "celery-delay", "forq `proc:` / Celery `.delay`", 100.0, None),
    ("worker", "celery-delay", "`forq.Worker` / Celery `.delay`", 100.0, None),
    ("proc", "exec-python", "forq `proc:` / forq `exec:python3`", None, None),
    ("push-many", "celery-apply", "`Client.push_many` / Celery `apply_async`", None, None),
    ("push-many", "rq-enqueue", "`Client.push_many` / RQ `enqueue`", None, None),
]


def rate_text(r):
    if r["status"] == "ok":
        v = r["rate"]
        return "{:,.0f}".format(v) if v >= 100 else "%.1f" % v
    return "not available" if r["status"] == "n/a" else "**failed**"


def ratio_text(x, goal):
    if goal is not None and goal >= 10 or goal is None and x >= 10:
        return "{:,.0f}×".format(x)
    if goal is not None:
        return "%.0f%%" % (100 * x)
    return "%.1f×" % x


def goal_text(goal, aim):
    if goal is None:
        return "—"
    g = "≥ {:,.0f}×".format(goal) if goal >= 10 else "≥ %.0f%%" % (100 * goal)
    if aim:
        g += " (aim ≥ %.0f%%)" % (100 * aim)
    return g


def report(rows, meta):
    by = {r["key"]: r for r in rows}
    out = []
    out.append("| path | tasks | tasks/s |")
    out.append("|---|---:|---:|")
    producers = False
    for r in rows:
        if r["key"] in ("push-many", "push", "celery-apply", "rq-enqueue") and not producers:
            producers = True
            out.append("| *producers: enqueue only, one Python process* | | |")
        out.append("| %s | %s | %s |" % (r["label"], "{:,}".format(r["tasks"]) if r["tasks"] else "—",
                                         rate_text(r)))
    out.append("")
    lines = []
    for num, den, what, goal, aim in RATIOS:
        a, b = by.get(num), by.get(den)
        if not a or not b:
            continue
        if a["status"] != "ok" or b["status"] != "ok":
            missing = [x["key"] for x in (a, b) if x["status"] != "ok"]
            lines.append("| %s | — (%s did not run) | | %s | |" % (what, ", ".join(missing),
                                                                   goal_text(goal, aim)))
            continue
        x = a["rate"] / b["rate"]
        met = "" if goal is None else ("met" if x >= goal else "**not met**")
        if met == "met" and aim and x < aim:
            met = "met (not the aim)"
        rounds = ""
        if len(a["rates"]) == len(b["rates"]) > 1:
            rounds = ", ".join(ratio_text(p / q, goal) for p, q in zip(a["rates"], b["rates"]))
        lines.append("| %s | %s | %s | %s | %s |" % (what, ratio_text(x, goal), rounds,
                                                   goal_text(goal, aim), met))
    if lines:
        out.append("| ratio (same run) | of the medians | in each round | goal (issue 12) | |")
        out.append("|---|---:|---|---|---|")
        out.extend(lines)
        out.append("")
    for r in rows:
        if r["status"] != "ok":
            what = "not available" if r["status"] == "n/a" else "FAILED"
            out.append("- %s: %s — %s" % (r["key"], what, r["note"]))
    out.append("- checked: every consumer row's results, each task's value exactly once (`exec:cat`: "
               "the payload itself); every producer row's queue depth afterwards.")
    out.append("- %d CPUs; %s; forqd %s; Redis %s; %s; run took %.0f s."
               % (meta["cpus"] or 0, meta["python"], meta["forqd"] or "?", meta["redis"] or "—",
                  "quick sizes" if meta["quick"] else "full sizes", meta["seconds"]))
    return "\n".join(out) + "\n"
