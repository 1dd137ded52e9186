// Manifest-history lookups (docs/replication.md §Manifest history): `restore --at <time>` finds the
// last batch acknowledged at or before a time. Before, it listed every key of the history bucket; now
// it bisects the bucket's stream. Both run here in the same process on the same bucket: the listing
// (the earlier code, kept below as the peer) and historyAt from dist/.
//
//   npm run build && node bench/history-lookup.js [--entries 1000,10000,50000] [--lookups 20]
//
// nats-server (NATS_SERVER, default /usr/sbin/nats-server) is started on a loopback port chosen at run
// time, storage in a temporary directory, and stopped by PID afterwards.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { historyAt } from '../dist/replication/history.js';
import { median, parseOptions, printTable } from './lib/harness.js';

const options = parseOptions('npm run build && node bench/history-lookup.js [options]', {
  entries: { type: 'string', default: '1000,10000,50000', help: 'history sizes, comma-separated' },
  lookups: { type: 'number', default: 20, min: 1, integer: true, help: 'lookups per size and method (alternating)' },
});
const sizes = String(options.entries)
  .split(',')
  .map((text) => Number(text));
const lookups = Number(options.lookups);
const NATS_SERVER = process.env['NATS_SERVER'] ?? '/usr/sbin/nats-server';
const START_MS = 1_700_000_000_000;

async function freePort() {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = /** @type {net.AddressInfo} */ (server.address());
  server.close();
  await once(server, 'close');
  return address.port;
}

/** The lookup before the bisection: every key listed, the best kept (src/replication/history.ts before). */
async function listingLookup(js, name, time) {
  const kv = await new Kvm(js).open(`ARMDBH_${name}`);
  const limitMs = time.getTime();
  let best;
  for await (const key of await kv.keys('t.>')) {
    const match = /^t\.(\d{15})\.(\d{16})$/.exec(key);
    if (match === null) continue;
    const timeMs = Number(match[1]);
    const sequence = Number(match[2]);
    if (timeMs > limitMs) continue;
    if (best === undefined || sequence > best.sequence) best = { timeMs, sequence, key };
  }
  if (best !== undefined) await kv.get(best.key);
  return best?.sequence;
}

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'armdb-bench-history-'));
const port = await freePort();
const config = path.join(root, 'n1.conf');
fs.writeFileSync(config, `listen: 127.0.0.1:${port}\njetstream { store_dir: ${JSON.stringify(path.join(root, 'n1'))} }\n`);
const child = spawn(NATS_SERVER, ['-c', config], { stdio: ['ignore', 'ignore', 'pipe'] });
let log = '';
await new Promise((resolve, reject) => {
  child.stderr.on('data', (chunk) => {
    log += chunk;
    if (/Server is ready/.test(log)) resolve(undefined);
  });
  child.once('exit', () => reject(new Error(`nats-server exited:\n${log}`)));
});
const connection = await connect({ servers: `nats://127.0.0.1:${port}` });
const js = jetstream(connection);
const rows = [];
try {
  for (const size of sizes) {
    const name = `bench${size}`;
    const kv = await new Kvm(js).create(`ARMDBH_${name}`, { history: 1 });
    // Entries as a leader writes them (in order): 3 batches per ms tick of 7 ms, sequences every 3.
    for (let index = 0; index < size; index += 500) {
      const puts = [];
      for (let entry = index; entry < Math.min(size, index + 500); entry++) {
        const timeMs = START_MS + 7 * Math.floor(entry / 3);
        const sequence = 3 * entry + 2;
        const key = `t.${String(timeMs).padStart(15, '0')}.${String(sequence).padStart(16, '0')}`;
        puts.push(kv.put(key, JSON.stringify({ sequence, timeMs, epoch: 1, batch: entry + 1, manifestEpoch: 1 })));
      }
      await Promise.all(puts);
    }
    const spanMs = 7 * Math.floor(size / 3);
    /** @type {Record<'listing' | 'bisection', { ms: number[], cpuMs: number[], messages: number[] }>} */
    const samples = { listing: { ms: [], cpuMs: [], messages: [] }, bisection: { ms: [], cpuMs: [], messages: [] } };
    for (let lookup = 0; lookup < lookups; lookup++) {
      const time = new Date(START_MS + Math.floor(((lookup + 0.5) * spanMs) / lookups));
      // Alternating, so that a busy machine's drift hits both alike; both must agree.
      const answers = [];
      for (const method of lookup % 2 === 0 ? ['listing', 'bisection'] : ['bisection', 'listing']) {
        const messages = connection.stats().inMsgs;
        const cpu = process.cpuUsage();
        const started = performance.now();
        answers.push(method === 'listing' ? await listingLookup(js, name, time) : (await historyAt(js, name, time))?.sequence);
        samples[method].ms.push(performance.now() - started);
        const used = process.cpuUsage(cpu);
        samples[method].cpuMs.push((used.user + used.system) / 1000);
        samples[method].messages.push(connection.stats().inMsgs - messages);
      }
      if (answers[0] !== answers[1]) throw new Error(`the lookups disagree at ${time.toISOString()}: ${answers.join(' / ')}`);
    }
    /** @param {number[]} values */
    const middle = (values) => median(values) ?? Number.NaN;
    const listing = samples.listing;
    const bisection = samples.bisection;
    rows.push([
      String(size),
      middle(listing.ms).toFixed(1),
      middle(bisection.ms).toFixed(1),
      (middle(listing.ms) / middle(bisection.ms)).toFixed(1),
      middle(listing.cpuMs).toFixed(1),
      middle(bisection.cpuMs).toFixed(1),
      String(middle(listing.messages)),
      String(middle(bisection.messages)),
    ]);
  }
} finally {
  await connection.close();
  const exited = once(child, 'exit');
  if (child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
  await exited;
  fs.rmSync(root, { recursive: true, force: true });
}
printTable(
  ['entries', 'listing ms', 'bisection ms', 'listing / bisection', 'listing CPU ms', 'bisection CPU ms', 'listing msgs', 'bisection msgs'],
  rows,
);
