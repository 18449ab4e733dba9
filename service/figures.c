/* figures.c — see figures.h. */
#include "figures.h"

#include <stdio.h>

#include "forq_admin.h"
#include "bridge.h"
#include "journal.h"
#include "stream.h"

/* The TCP server's counters into the snapshot. With --tcp off,
 * forq_tcp_commands_total still has one series per command (0), so that
 * dashboards and rate() see the family from the start. */
void figures_tcp(struct metrics_snapshot *s, struct tcp_server *tcp)
{
	_Static_assert(TCP_COUNTED_CMDS <= METRICS_MAX_TCP_COMMANDS, "room for every command");
	struct tcp_counters t = {0};
	if (tcp)
		tcp_counters_read(tcp, &t);
	s->remote_workers = t.remote_workers;
	s->leases_outstanding = t.leases;
	s->tcp_connections = t.accepted;
	s->tcp_refused = t.refused;
	s->tcp_bytes_in = t.bytes_in;
	s->tcp_bytes_out = t.bytes_out;
	s->n_tcp_commands = TCP_COUNTED_CMDS;
	for (int i = 0; i < TCP_COUNTED_CMDS; i++) {
		struct metrics_tcp_command *m = &s->tcp_commands[i];
		snprintf(m->name, sizeof m->name, "%s", tcp_counter_label(i));
		m->count = t.cmds[i].count;
		m->bytes_in = t.cmds[i].bytes_in;
		m->bytes_out = t.cmds[i].bytes_out;
	}
}

void figures_queue(struct metrics_snapshot *s, struct forq *q, int workers)
{
	struct forq_stats st;
	struct forq_hists hs;
	forq_stats_read(q, &st);
	forq_hists_read(q, &hs);
	metrics_snapshot_queue(s, &st);
	s->shm_bytes = forq_admin_resident(q);
	metrics_snapshot_controls(s, q);
	s->full_waits = hs.full_waits;
	s->rate_wait_ns = hs.rate_wait_ns;
	s->rate_limit = forq_admin_rate(q);
	for (int k = 0; k < METRICS_HIST_BUCKETS; k++) {
		s->wait.buckets[k] = hs.wait[k];
		s->wait.count += hs.wait[k];
		s->run.buckets[k] = hs.run[k];
		s->run.count += hs.run[k];
	}
	s->wait.sum_ns = hs.wait_sum_ns;
	s->run.sum_ns = hs.run_sum_ns;

	static const uint32_t state_map[] = {
		[FORQ_WORKER_STOPPED] = METRICS_WORKER_STOPPED,
		[FORQ_WORKER_RUNNING] = METRICS_WORKER_RUNNING,
		[FORQ_WORKER_BACKOFF] = METRICS_WORKER_BACKOFF,
		[FORQ_WORKER_STARTING] = METRICS_WORKER_STARTING};
	struct forq_worker_info rows[FORQ_MAX_WORKERS];
	forq_admin_workers(q, rows, workers);
	s->n_workers = (uint32_t)workers;
	for (int w = 0; w < workers; w++) {
		struct metrics_worker *mw = &s->workers[w];
		mw->index = (uint32_t)w;
		mw->pid = rows[w].pid;
		mw->state = rows[w].state < 4 ? state_map[rows[w].state] : METRICS_WORKER_STOPPED;
		mw->restarts = rows[w].restarts;
		mw->tasks_done = rows[w].tasks_done;
		mw->tasks_failed = rows[w].tasks_failed;
		mw->current_task = rows[w].current_task;
		s->worker_restarts += mw->restarts;
		s->results_blocked += rows[w].results_errno != 0;
	}
	s->lease_expired += hs.lease_expired;
}


void figures_journal(struct metrics_snapshot *s, struct journal *j)
{
	struct journal_stats js;
	journal_stats_read(j, &js);
	s->journal_bytes = js.bytes;
	s->journal_fsyncs = js.fsyncs;
	s->journal_write_errors = js.write_errors;
	s->journal_pending = js.pending;
	s->journal_segments = js.segments;
}

void figures_upstream(struct metrics_snapshot *s, struct upstream *u, struct bridge *b)
{
	if (!u)
		return;
	struct upstream_counters *n = upstream_counters(u);
	s->upstream_enabled = 1;
	s->upstream_connected = upstream_connected(u);
	s->upstream_held = bridge_held(b);
	s->upstream_fetched = atomic_load(&n->fetched);
	s->upstream_acked = atomic_load(&n->acked);
	s->upstream_naked = atomic_load(&n->naked);
	s->upstream_terminated = atomic_load(&n->terminated);
	s->upstream_reconnects = atomic_load(&n->reconnects);
	s->upstream_publish_errors = atomic_load(&n->publish_errors);
	bridge_lag(b, &s->upstream_stream_pending, &s->upstream_ack_pending);
}
