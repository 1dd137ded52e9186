// Compaction of a large encrypted store: throughput, and how long the event loop is held while it runs.
//
//   npm run build && node bench/compaction.js [--gib 1] [--value-size 1024] [--overwrite 0.5] [--reps 1]
//
// Loads a VarMap of about --gib GiB of live data (16-byte keys, --value-size values), overwrites the
// fraction --overwrite of the keys (those records become dead), closes and reopens it, then runs
// compact() while perf_hooks.monitorEventLoopDelay samples the event loop every 5 ms and a 1 ms timer
// does small gets, as an application would. Reports the event-loop delay percentiles (the target of the
// space issue: p99 ≤ 50 ms), compaction MB/s (bytes read), and bytes on disk before and after.
// Nothing here is asserted: these machines are shared and noisy.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { VarMap } from '../dist/index.js';
import { median, parseOptions, printTable } from './lib/harness.js';

const args = parseOptions('npm run build && node bench/compaction.js [options]', {
  gib: { type: 'number', default: 1, min: 0.001, help: 'GiB of live data' },
  'value-size': { type: 'number', default: 1024, min: 1, integer: true, help: 'bytes per value' },
  overwrite: { type: 'number', default: 0.5, min: 0.001, help: 'share of the keys overwritten, up to 1' },
  shards: { type: 'number', default: 4, min: 1, integer: true },
  reps: { type: 'number', default: 1, min: 1, integer: true, help: 'repetitions' },
});
const valueSize = args['value-size'];
const count = Math.ceil((args.gib * 2 ** 30) / (16 + valueSize));
const overwriteCount = Math.min(count, Math.floor(count * args.overwrite));
const { shards, reps } = args;
const MB = 1e6;
/** @type {{ seconds: number[], mbPerSecond: number[], p99Ms: number[], maxMs: number[] }} */
const summary = { seconds: [], mbPerSecond: [], p99Ms: [], maxMs: [] };

const key = randomBytes(32);
const options = { keySize: 16, encryption: { key }, shards, syncIntervalMs: 0, autoCompact: false };

function keyOf(index) {
  const bytes = new Uint8Array(16);
  new DataView(bytes.buffer).setUint32(0, Math.imul(index, 2654435761) >>> 0);
  new DataView(bytes.buffer).setUint32(12, index);
  return bytes;
}

function diskBytes(directory) {
  let total = 0;
  for (const entry of fs.readdirSync(directory, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += fs.statSync(path.join(entry.parentPath ?? entry.path, entry.name)).size;
  }
  return total;
}

// monitorEventLoopDelay records the time between two ticks of its timer, the interval included: what
// the event loop was held beyond the interval is the recorded value less the resolution.
const RESOLUTION_MS = 5;
const beyondInterval = (/** @type {number} */ nanoseconds) => Math.max(0, nanoseconds / 1e6 - RESOLUTION_MS);
const ms = (/** @type {number} */ nanoseconds) => beyondInterval(nanoseconds).toFixed(1);

for (let rep = 0; rep < reps; rep++) {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'armdb-compaction-'));
  try {
    const value = new Uint8Array(valueSize).fill(rep + 1);
    let db = await VarMap.open(directory, options);
    let started = performance.now();
    for (let i = 0; i < count; i++) {
      db.put(keyOf(i), value);
      if (i % 65536 === 65535) await new Promise(setImmediate);
    }
    for (let i = 0; i < overwriteCount; i++) {
      db.put(keyOf(i * Math.floor(count / overwriteCount)), value);
      if (i % 65536 === 65535) await new Promise(setImmediate);
    }
    await db.close();
    const loadSeconds = (performance.now() - started) / 1000;
    const before = diskBytes(directory);

    db = await VarMap.open(directory, options);
    const liveBytes = count * (16 + valueSize);
    const histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    let gets = 0;
    let longestGap = 0;
    let last = performance.now();
    const probe = setInterval(() => {
      const now = performance.now();
      longestGap = Math.max(longestGap, now - last);
      last = now;
      db.get(keyOf(gets++ % count));
    }, 1);
    histogram.enable();
    started = performance.now();
    const report = await db.compact();
    const seconds = (performance.now() - started) / 1000;
    histogram.disable();
    clearInterval(probe);
    const liveKeys = db.size;
    await db.close();
    const after = diskBytes(directory);

    console.log(
      `repetition ${rep + 1}: ${count.toLocaleString('en')} keys × ${valueSize} B (${(liveBytes / 2 ** 30).toFixed(2)} GiB live), ${overwriteCount.toLocaleString('en')} overwritten; load + close ${loadSeconds.toFixed(1)} s`,
    );
    console.log(
      `  on disk: ${(before / 2 ** 30).toFixed(2)} GiB before, ${(after / 2 ** 30).toFixed(2)} GiB after (${(after / liveBytes).toFixed(2)}× live)`,
    );
    console.log(
      `  compact(): ${seconds.toFixed(1)} s, ${report.filesIn} files in, ${report.filesOut} out, ${report.recordsMoved.toLocaleString('en')} records moved, ${(report.bytesReclaimed / 2 ** 30).toFixed(2)} GiB reclaimed`,
    );
    console.log(
      `  throughput: ${(before / MB / seconds).toFixed(0)} MB/s of files read (${(liveBytes / MB / seconds).toFixed(0)} MB/s of live data rewritten)`,
    );
    console.log(
      `  event-loop delay while compacting (beyond the 5 ms sampling interval): p50 ${ms(histogram.percentile(50))} ms, p99 ${ms(histogram.percentile(99))} ms, max ${ms(histogram.max)} ms (target p99 ≤ 50 ms); longest gap between 1 ms timer ticks ${longestGap.toFixed(1)} ms; ${gets.toLocaleString('en')} gets served meanwhile`,
    );
    console.log(`  live keys after: ${liveKeys.toLocaleString('en')} (expected ${count.toLocaleString('en')})`);
    summary.seconds.push(seconds);
    summary.mbPerSecond.push(before / MB / seconds);
    summary.p99Ms.push(beyondInterval(histogram.percentile(99)));
    summary.maxMs.push(beyondInterval(histogram.max));
  } finally {
    fs.rmSync(directory, { recursive: true, force: true });
  }
}

printTable(
  ['compact()', 'median', 'repetitions'],
  Object.entries(summary).map(([name, samples]) => [
    name,
    (median(samples) ?? Number.NaN).toFixed(1),
    samples.map((sample) => sample.toFixed(1)).join(', '),
  ]),
);
