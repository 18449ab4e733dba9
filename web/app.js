// app.js — forq status page: polls /stats every second, draws the throughput
// of the last 300 seconds, lists the queues (one row each) and the default
// queue's workers, and can POST /shutdown.
'use strict';

const POINTS = 300;
const history = [];

function $(id) { return document.getElementById(id); }

function fmt(n) {
  if (n === null || n === undefined) return '–';
  if (typeof n !== 'number') return String(n);
  // Plain digits, no grouping: tests and scripts read these with parseFloat.
  if (Number.isInteger(n)) return String(n);
  return String(Math.round(n * 10) / 10);
}

// A duration given in microseconds, in the unit that reads best: 38 µs, 120 ms, 4.51 s.
function fmtUs(us) {
  if (us === null || us === undefined || typeof us !== 'number') return fmt(us);
  const r3 = (x) => String(Number(x.toPrecision(3)));
  if (us < 999.5) return r3(us) + ' µs';
  if (us < 999500) return r3(us / 1000) + ' ms';
  return r3(us / 1e6) + ' s';
}

function setText(id, v) {
  const el = $(id);
  if (el) el.textContent = fmt(v);
}

function drawChart() {
  const c = $('chart');
  const ratio = window.devicePixelRatio || 1;
  const w = c.clientWidth || c.width, h = c.clientHeight || c.height;
  if (c.width !== Math.round(w * ratio)) { c.width = Math.round(w * ratio); c.height = Math.round(h * ratio); }
  const g = c.getContext('2d');
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, w, h);
  const max = Math.max(1, ...history);
  const pad = 28, pw = w - pad - 4, ph = h - 20;
  g.strokeStyle = '#d0d7de'; g.fillStyle = '#57606a'; g.font = '11px sans-serif'; g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = 4 + ph * i / 4;
    g.beginPath(); g.moveTo(pad, y); g.lineTo(w - 4, y); g.stroke();
    g.fillText(fmt(Math.round(max * (4 - i) / 4)), 0, y + 4);
  }
  c.dataset.points = history.length; /* what was drawn: read by the tests */
  if (history.length < 2) return;
  const step = pw / (POINTS - 1), x0 = pad + pw - step * (history.length - 1);
  g.beginPath();
  history.forEach((v, i) => {
    const x = x0 + i * step, y = 4 + ph - ph * v / max;
    if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
  });
  g.strokeStyle = '#0969da'; g.lineWidth = 2; g.stroke();
  g.lineTo(x0 + step * (history.length - 1), 4 + ph); g.lineTo(x0, 4 + ph); g.closePath();
  g.fillStyle = 'rgba(9, 105, 218, 0.12)'; g.fill();
}

function renderWorkers(workers) {
  const body = $('workers');
  const rows = [];
  for (const w of workers || []) {
    const tr = document.createElement('tr');
    tr.className = 'state-' + w.state;
    for (const v of [w.index, w.pid, w.state, w.done, w.failed, w.restarts, w.current_task]) {
      const td = document.createElement('td');
      td.textContent = fmt(v);
      tr.appendChild(td);
    }
    rows.push(tr);
  }
  body.replaceChildren(...rows);
}

// One row per queue of /stats's "queues": name, pending, running, done/s,
// paused, workers (running/all). Each row carries data-queue=NAME and each
// cell a class naming its figure, for the tests.
function renderQueues(queues) {
  const rows = [];
  for (const [name, q] of Object.entries(queues || {})) {
    const tr = document.createElement('tr');
    tr.dataset.queue = name;
    if (q.paused) tr.className = 'paused';
    const running = (q.workers || []).filter((w) => w.state === 'running').length;
    const cells = [['name', name], ['pending', fmt(q.pending.total)], ['running', fmt(q.in_progress)],
      ['rate', fmt(q.throughput)], ['paused', q.paused ? 'paused' : 'no'],
      ['workers', running + '/' + (q.workers || []).length]];
    for (const [cls, v] of cells) {
      const td = document.createElement('td');
      td.className = 'q-' + cls;
      td.textContent = v;
      tr.appendChild(td);
    }
    rows.push(tr);
  }
  $('queues').replaceChildren(...rows);
}

function render(s) {
  setText('pending', s.pending.total);
  $('pending-lanes').textContent =
    'high ' + fmt(s.pending.high) + ' · normal ' + fmt(s.pending.normal) + ' · low ' + fmt(s.pending.low);
  setText('in-progress', s.in_progress);
  setText('done', s.done);
  setText('failed', s.failed);
  $('dead').textContent = fmt(s.dead) + ' dead · ' + fmt(s.retry_waiting) + ' waiting to retry · ' +
    fmt(s.scheduled) + ' scheduled';
  setText('throughput', s.throughput);
  $('version').textContent = 'v' + s.version + ' · up ' + fmt(Math.floor(s.uptime_seconds)) + ' s';
  $('draining').hidden = !s.draining;
  $('paused').hidden = !s.paused;
  $('purged').textContent = s.purged ? fmt(s.purged) + ' purged' : '';
  $('stalled').hidden = !s.stalled && !s.workers_stuck;
  $('stalled').title = s.workers_stuck ? s.workers_stuck + ' worker(s) on one task past --stall-timeout'
                                       : 'tasks wait and none finishes';
  for (const h of ['wait', 'run']) {
    const d = s[h + '_us'];
    for (const q of ['p50', 'p95', 'p99']) $(h + '-' + q).textContent = fmtUs(d[q]);
    setText(h + '-count', d.count);
  }
  $('remote').textContent = s.remote ? '· remote: ' + fmt(s.remote.workers_connected) +
    ' connected, ' + fmt(s.remote.leases_outstanding) + ' leased' : '';
  renderQueues(s.queues);
  renderWorkers(s.workers);
  history.push(Number(s.throughput) || 0);
  while (history.length > POINTS) history.shift();
  drawChart();
}

async function poll() {
  try {
    const r = await fetch('stats', { cache: 'no-store' });
    if (!r.ok) throw new Error('HTTP ' + r.status);
    render(await r.json());
    $('conn').dataset.updates = (Number($('conn').dataset.updates) || 0) + 1;
    $('conn').textContent = 'live';
    $('conn').className = 'badge ok';
  } catch (e) {
    $('conn').textContent = 'disconnected: ' + e.message;
    $('conn').className = 'badge bad';
  } finally {
    setTimeout(poll, 1000);
  }
}

$('shutdown-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const now = $('now').checked;
  if (!window.confirm('Shut forqd down' + (now ? ' now' : ' after draining') + '?')) return;
  const headers = {};
  const token = $('token').value;
  if (token) headers['Authorization'] = 'Bearer ' + token;
  const out = $('shutdown-result');
  try {
    const r = await fetch('shutdown' + (now ? '?mode=now' : ''), { method: 'POST', headers });
    out.textContent = r.status + ' ' + (await r.text());
  } catch (e) {
    out.textContent = 'request failed: ' + e.message;
  }
});

window.addEventListener('resize', drawChart);
poll();
