#!/usr/bin/env node
// A forqd proc: handler in Node.js, the framing of handlers/PROC.md written out
// in full: the payload is {"op": "sum", "args": [1, 2, 3]}, the result the sum.
//
//   forqd --handler 'proc:node examples/proc_sum.js'
'use strict';

class Retry extends Error {} // throw new Retry('...'): forqd tries the task again later

function handle(payload) { // Buffer -> string or Buffer; throw to fail the task
  const doc = JSON.parse(payload.toString('utf8'));
  if (!Array.isArray(doc.args) || doc.args.length === 0) throw new Error('args must be a non-empty array');
  return String(doc.args.reduce((a, b) => a + b, 0));
}

let buf = Buffer.alloc(0);
process.stdin.on('data', (chunk) => {
  buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
  const out = [];
  let pos = 0;
  for (;;) {
    // forqd -> child: TASK <id> <attempt> <len>\n<len bytes>\n
    const nl = buf.indexOf(10, pos);
    if (nl < 0) break;
    const [word, id, , len] = buf.toString('latin1', pos, nl).trim().split(/ +/);
    if (word !== 'TASK') {
      process.stderr.write(`proc_sum.js: bad frame header "${word}"\n`);
      process.exit(1);
    }
    const end = nl + 1 + Number(len);
    if (buf.length <= end) break; // the payload and its "\n" are not all here yet
    let status = 'RESULT';
    let body;
    try {
      const r = handle(buf.subarray(nl + 1, end));
      body = Buffer.isBuffer(r) ? r : Buffer.from(r == null ? '' : String(r), 'utf8');
    } catch (e) {
      status = e instanceof Retry ? 'RETRY' : 'FAIL';
      body = Buffer.from(`${e.name}: ${e.message}`, 'utf8');
    }
    // child -> forqd: RESULT|FAIL|RETRY <id> <len>\n<len bytes>\n
    out.push(Buffer.from(`${status} ${id} ${body.length}\n`), body, Buffer.from('\n'));
    pos = end + 1;
  }
  buf = buf.subarray(pos);
  if (out.length) process.stdout.write(Buffer.concat(out)); // every reply before waiting for more
});
process.stdin.on('end', () => process.exit(0));
