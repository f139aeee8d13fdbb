// Throughput of a widely used JavaScript PII redactor (redact-pii) over the
// English documents of the policy corpus, for comparison with bench_pol.
//   node redact_bench.js CORPUS.jsonl [seconds]
'use strict';
const fs = require('fs');
const path = require('path');
const { SyncRedactor } = require(path.join(__dirname, 'node_modules', 'redact-pii'));

const corpus = process.argv[2];
const seconds = Number(process.argv[3] || 3);
const texts = fs.readFileSync(corpus, 'utf8').split('\n').filter(Boolean)
  .map((l) => JSON.parse(l)).filter((d) => d.lang === 'en').map((d) => d.text);
const bytes = texts.reduce((n, t) => n + Buffer.byteLength(t, 'utf8'), 0);
const redactor = new SyncRedactor();
let passes = 0;
let sink = 0;
const t0 = process.hrtime.bigint();
const c0 = process.cpuUsage();
let el = 0;
do {
  for (const t of texts) sink += redactor.redact(t).length;
  passes++;
  el = Number(process.hrtime.bigint() - t0) / 1e9;
} while (el < seconds);
// CPU seconds of the whole process (all of node's threads; run.sh pins it
// to one CPU), which leaves out time spent preempted, like bench_pol.
const cu = process.cpuUsage(c0);
const cpu = (cu.user + cu.system) / 1e6;
console.log(`redact-pii: ${texts.length} docs, ${bytes} bytes/pass, ${passes} passes, ` +
  `${el.toFixed(3)} s, ${(bytes * passes / el / 1e6).toFixed(2)} MB/s, ` +
  `${(bytes * passes / cpu / 1e6).toFixed(2)} MB/s cpu (sink ${sink % 10})`);
