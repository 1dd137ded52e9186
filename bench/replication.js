// Replication over NATS JetStream (docs/replication.md): sync() latency of a leader with
// ack 'local' and ack 'replicated' beside a store without replication (the peer of the same run), how
// fast a follower applies the leader's sealed pages, and how fast a new follower of a large store
// bootstraps from the object-store snapshot beside replaying the stream.
//
//   npm run build && node bench/replication.js [--part all|latency|bootstrap|restart] [--nodes 1|3] [--syncs 200]
//     [--batch 16] [--value-bytes 1024] [--reps 3] [--bootstrap-keys 100000] [--bootstrap-value-bytes 100]
//
// nats-server (NATS_SERVER, default /usr/sbin/nats-server) is started on loopback ports chosen at run
// time, storage in a temporary directory, and stopped by PID afterwards. Each repetition runs every
// mode in turn so that drift of a busy machine hits them alike; figures are medians over repetitions.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { keys, VarMap } from '../dist/index.js';
import { natsReplication } from '../dist/replication/index.js';
import { median, parseOptions, printTable } from './lib/harness.js';

const options = parseOptions('npm run build && node bench/replication.js [options]', {
  nodes: { type: 'number', default: 3, min: 1, max: 3, integer: true, help: 'NATS servers (1, or 3 for an R3 stream)' },
  syncs: { type: 'number', default: 200, min: 10, integer: true, help: 'syncs per mode and repetition' },
  batch: { type: 'number', default: 16, min: 1, integer: true, help: 'puts before each sync' },
  'value-bytes': { type: 'number', default: 1024, min: 1, integer: true, help: 'bytes of each value' },
  reps: { type: 'number', default: 3, min: 1, integer: true, help: 'repetitions' },
  part: { type: 'string', default: 'all', choices: ['all', 'latency', 'bootstrap', 'restart'], help: 'what to measure' },
  'bootstrap-keys': { type: 'number', default: 100_000, min: 1000, integer: true, help: 'keys of the bootstrapped store' },
  'bootstrap-rounds': { type: 'number', default: 3, min: 1, integer: true, help: 'times every key is written (then one compaction)' },
  'bootstrap-value-bytes': { type: 'number', default: 100, min: 1, integer: true, help: 'bytes of each value of the bootstrapped store' },
  'stream-syncs': {
    type: 'number',
    default: 40,
    min: 1,
    integer: true,
    help: 'syncs of the streaming-follower measurement (a passphrase store, follower open while the leader writes)',
  },
});
const part = String(options.part);
const bootstrapKeys = Number(options['bootstrap-keys']);
const bootstrapValueBytes = Number(options['bootstrap-value-bytes']);
const bootstrapRounds = Number(options['bootstrap-rounds']);
const syncs = Number(options.syncs);
const batch = Number(options.batch);
const valueBytes = Number(options['value-bytes']);
const nodeCount = Number(options.nodes);
const NATS_SERVER = process.env['NATS_SERVER'] ?? '/usr/sbin/nats-server';

async function freePort() {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = /** @type {net.AddressInfo} */ (server.address());
  server.close();
  await once(server, 'close');
  return address.port;
}

/** Starts the servers; resolves once every one is ready for JetStream. */
async function startServers(root) {
  const nodes = [];
  for (let index = 1; index <= nodeCount; index++) nodes.push({ name: `n${index}`, client: await freePort(), cluster: await freePort() });
  const children = [];
  for (const node of nodes) {
    const lines = [
      `server_name: ${node.name}`,
      `listen: 127.0.0.1:${node.client}`,
      `jetstream { store_dir: ${JSON.stringify(path.join(root, node.name))} }`,
    ];
    if (nodeCount > 1) {
      const routes = nodes.filter((peer) => peer !== node).map((peer) => `nats-route://127.0.0.1:${peer.cluster}`);
      lines.push(`cluster { name: bench, listen: 127.0.0.1:${node.cluster}, routes: [${routes.join(', ')}] }`);
    }
    const config = path.join(root, `${node.name}.conf`);
    fs.writeFileSync(config, `${lines.join('\n')}\n`);
    const child = spawn(NATS_SERVER, ['-c', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    const ready = new Promise((resolve, reject) => {
      child.stderr.on('data', (chunk) => {
        log += chunk;
        if ((nodeCount > 1 ? /metadata leader/ : /Server is ready/).test(log)) resolve(undefined);
      });
      child.once('exit', () => reject(new Error(`nats-server exited:\n${log}`)));
    });
    children.push({ child, ready });
  }
  await Promise.all(children.map(({ ready }) => ready));
  return {
    servers: nodes.map((node) => `nats://127.0.0.1:${node.client}`),
    async stop() {
      for (const { child } of children) {
        const exited = once(child, 'exit');
        if (child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
        await exited;
      }
    },
  };
}

const percentile = (samples, fraction) =>
  [...samples].sort((left, right) => left - right)[Math.min(samples.length - 1, Math.floor(samples.length * fraction))];

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'armdb-bench-replication-'));
const cluster = await startServers(root);
const connection = await connect({ servers: cluster.servers });
const encryption = { key: new Uint8Array(randomBytes(32)) };
const value = new Uint8Array(randomBytes(valueBytes));
const storeOptions = { keySize: 16, encryption, syncIntervalMs: 0, autoCompact: false };
/** @type {Record<string, { p50: number[], p99: number[] }>} */
const latency = { none: { p50: [], p99: [] }, local: { p50: [], p99: [] }, replicated: { p50: [], p99: [] } };
/** @type {number[]} */
const followerMegabytesPerSecond = [];
/** @type {Record<'stream' | 'objects', { seconds: number[], cpuSeconds: number[], megabytes: number[], streamMegabytes: number[] }>} */
const bootstrap = {
  stream: { seconds: [], cpuSeconds: [], megabytes: [], streamMegabytes: [] },
  objects: { seconds: [], cpuSeconds: [], megabytes: [], streamMegabytes: [] },
};
/** @type {number[]} */
const streamingMegabytesPerSecond = [];
/** @type {Record<'resume' | 'snapshot', { seconds: number[], cpuSeconds: number[] }>} */
const restart = { resume: { seconds: [], cpuSeconds: [] }, snapshot: { seconds: [], cpuSeconds: [] } };
/** @type {number[]} */
const streamingFollowerCpuSeconds = [];
/** A passphrase store at the default scrypt cost: every open of its KEYRING runs the KDF unless it is remembered. */
const passphraseOptions = { ...storeOptions, encryption: { passphrase: new Uint8Array(randomBytes(24)) } };
let run = 0;

/**
 * A leader writes `bootstrapKeys` keys `bootstrapRounds` times in syncs of 1000 puts and compacts (so
 * the stream holds several times the store, as a store that lives does); then a new follower opens and catches up,
 * timed from its open. 'stream': no snapshots, the follower replays the epoch from its first batch;
 * 'objects': snapshots at every batch (one stored at a time), the stream trimmed behind the newest, the
 * follower starts from it. CPU time is this process's (the follower's work; the leader is idle).
 */
async function measureBootstrap(mode) {
  const name = `boot${++run}`;
  const snapshots = mode === 'objects' ? { snapshotEveryBytes: 1, retainSnapshots: 1 } : {};
  const leader = await VarMap.open(path.join(root, name), {
    ...storeOptions,
    replication: natsReplication({ servers: cluster.servers, name, role: 'leader', ack: 'replicated', ...snapshots }),
  });
  const bootstrapValue = new Uint8Array(randomBytes(bootstrapValueBytes));
  try {
    for (let round = 0; round < bootstrapRounds; round++) {
      for (let index = 0; index < bootstrapKeys; index++) {
        leader.put(keys.fromString(`key-${index}`, 16), bootstrapValue);
        if (index % 1000 === 999) await leader.sync();
      }
    }
    await leader.compact();
    await leader.sync();
    await leader.replication.caughtUp();
    const streamInfo = await (await jetstreamManager(connection)).streams.info(`ARMDB_${name}`);
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    const follower = await VarMap.open(path.join(root, `${name}-follower`), {
      ...storeOptions,
      replication: natsReplication({ servers: cluster.servers, name, role: 'follower' }),
    });
    await follower.replication.caughtUp();
    const seconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    if (follower.size !== bootstrapKeys) throw new Error(`the follower holds ${follower.size} keys, not ${bootstrapKeys}`);
    await follower.close();
    bootstrap[mode].seconds.push(seconds);
    bootstrap[mode].cpuSeconds.push((cpu.user + cpu.system) / 1e6);
    bootstrap[mode].megabytes.push(leader.stats().totalBytes / 1e6);
    bootstrap[mode].streamMegabytes.push(streamInfo.state.bytes / 1e6);
  } finally {
    await leader.close();
  }
}

/**
 * A follower that ran before, restarted after its leader wrote 10 more syncs: timed from its open to
 * caught up. 'resume': it goes on from its progress file (REPLICA); 'snapshot': the same directory
 * without it, so it starts again from the stream's snapshot and replays the epoch. Both start from one
 * copy of the follower's directory; the modes alternate.
 */
async function measureRestart() {
  const name = `restart${++run}`;
  const leader = await VarMap.open(path.join(root, name), {
    ...storeOptions,
    replication: natsReplication({ servers: cluster.servers, name, role: 'leader', ack: 'replicated' }),
  });
  const restartValue = new Uint8Array(randomBytes(bootstrapValueBytes));
  try {
    for (let round = 0; round < bootstrapRounds; round++) {
      for (let index = 0; index < bootstrapKeys; index++) {
        leader.put(keys.fromString(`key-${index}`, 16), restartValue);
        if (index % 1000 === 999) await leader.sync();
      }
    }
    const original = path.join(root, `${name}-follower`);
    const follower = await VarMap.open(original, {
      ...storeOptions,
      replication: natsReplication({ servers: cluster.servers, name, role: 'follower' }),
    });
    await follower.replication.caughtUp();
    await follower.close();
    for (let round = 0; round < 10; round++) {
      for (let index = 0; index < batch; index++) leader.put(keys.fromString(`tail-${round}-${index}`, 16), value);
      await leader.sync();
    }
    await leader.replication.caughtUp();
    const modes = /** @type {const} */ (['resume', 'snapshot']);
    for (const mode of run % 2 === 0 ? modes : [...modes].reverse()) {
      const directory = path.join(root, `${name}-${mode}`);
      fs.cpSync(original, directory, { recursive: true });
      if (mode === 'snapshot') fs.rmSync(path.join(directory, 'REPLICA'), { force: true });
      const cpuBefore = process.cpuUsage();
      const started = performance.now();
      const restarted = await VarMap.open(directory, {
        ...storeOptions,
        replication: natsReplication({ servers: cluster.servers, name, role: 'follower' }),
      });
      await restarted.replication.caughtUp();
      const seconds = (performance.now() - started) / 1000;
      const cpu = process.cpuUsage(cpuBefore);
      if (restarted.size !== leader.size) throw new Error(`the follower holds ${restarted.size} keys, not ${leader.size}`);
      await restarted.close();
      restart[mode].seconds.push(seconds);
      restart[mode].cpuSeconds.push((cpu.user + cpu.system) / 1e6);
    }
  } finally {
    await leader.close();
  }
}

try {
  for (let rep = 0; rep < Number(options.reps) && part === 'restart'; rep++) await measureRestart();
  for (let rep = 0; rep < Number(options.reps) && (part === 'all' || part === 'bootstrap'); rep++) {
    // Alternating, so that drift of a busy machine hits both alike.
    const modes = /** @type {const} */ (['stream', 'objects']);
    for (const mode of rep % 2 === 0 ? modes : [...modes].reverse()) await measureBootstrap(mode);
  }
  for (let rep = 0; rep < Number(options.reps) && (part === 'all' || part === 'latency'); rep++) {
    for (const mode of /** @type {const} */ (['none', 'local', 'replicated'])) {
      const name = `bench${++run}`;
      const replication =
        mode === 'none' ? {} : { replication: natsReplication({ servers: cluster.servers, name, role: 'leader', ack: mode }) };
      const db = await VarMap.open(path.join(root, name), { ...storeOptions, ...replication });
      const samples = [];
      for (let round = 0; round < syncs; round++) {
        for (let index = 0; index < batch; index++) db.put(keys.fromString(`${round}-${index}`, 16), value);
        const started = performance.now();
        await db.sync();
        samples.push(performance.now() - started);
      }
      if (mode === 'replicated') {
        // Follower apply rate: from its open (it applies the whole stream) to caught up.
        const started = performance.now();
        const follower = await VarMap.open(path.join(root, `${name}-follower`), {
          ...storeOptions,
          replication: natsReplication({ servers: cluster.servers, name, role: 'follower' }),
        });
        await follower.replication.caughtUp();
        const seconds = (performance.now() - started) / 1000;
        const bytes = db.stats().totalBytes;
        followerMegabytesPerSecond.push(bytes / 1e6 / seconds);
        await follower.close();
      }
      await db.close();
      if (mode === 'replicated') {
        // A follower applying while a passphrase store's leader writes: it reopens at each caught-up
        // point. MB/s of sealed pages from the leader's first write to the follower caught up, and the
        // CPU time of this process over that span (leader and follower both run here).
        const streamName = `bench${++run}`;
        const leader = await VarMap.open(path.join(root, streamName), {
          ...passphraseOptions,
          replication: natsReplication({ servers: cluster.servers, name: streamName, role: 'leader', ack: 'replicated' }),
        });
        const follower = await VarMap.open(path.join(root, `${streamName}-follower`), {
          ...passphraseOptions,
          replication: natsReplication({ servers: cluster.servers, name: streamName, role: 'follower' }),
        });
        await follower.replication.caughtUp();
        const bytesBefore = leader.stats().totalBytes;
        const cpuBefore = process.cpuUsage();
        const started = performance.now();
        for (let round = 0; round < Number(options['stream-syncs']); round++) {
          for (let index = 0; index < batch; index++) leader.put(keys.fromString(`${round}-${index}`, 16), value);
          await leader.sync();
        }
        await follower.replication.caughtUp();
        const seconds = (performance.now() - started) / 1000;
        const cpu = process.cpuUsage(cpuBefore);
        streamingMegabytesPerSecond.push((leader.stats().totalBytes - bytesBefore) / 1e6 / seconds);
        streamingFollowerCpuSeconds.push((cpu.user + cpu.system) / 1e6);
        await follower.close();
        await leader.close();
      }
      latency[mode].p50.push(percentile(samples, 0.5));
      latency[mode].p99.push(percentile(samples, 0.99));
    }
  }
} finally {
  await connection.close();
  await cluster.stop();
  fs.rmSync(root, { recursive: true, force: true });
}

const middle = (samples) => median(samples) ?? Number.NaN;
if (part === 'restart') {
  printTable(
    [`restarted follower of ${bootstrapKeys} keys × ${bootstrapRounds} writes`, 'seconds', 'CPU s (this process)', 'time / from snapshot'],
    Object.entries(restart).map(([mode, { seconds, cpuSeconds }]) => [
      mode === 'resume' ? 'resumes from REPLICA' : 'starts from the snapshot',
      middle(seconds).toFixed(2),
      middle(cpuSeconds).toFixed(2),
      (middle(seconds) / middle(restart.snapshot.seconds)).toFixed(2),
    ]),
  );
}
if (part === 'all' || part === 'latency') {
  const base = middle(latency.none.p50);
  printTable(
    ['sync() of a leader', 'p50 ms', 'p99 ms', 'p50 / no replication'],
    Object.entries(latency).map(([mode, { p50, p99 }]) => [
      mode === 'none' ? 'no replication' : `ack '${mode}'`,
      middle(p50).toFixed(2),
      middle(p99).toFixed(2),
      (middle(p50) / base).toFixed(2),
    ]),
  );
  printTable(
    ['follower catch-up from empty', 'MB/s of sealed pages'],
    [[`${nodeCount} NATS node(s)`, middle(followerMegabytesPerSecond).toFixed(1)]],
  );
  printTable(
    ['follower streaming, passphrase store', 'MB/s of sealed pages', 'CPU s of the process'],
    [
      [
        `${options['stream-syncs']} syncs of ${batch} puts`,
        middle(streamingMegabytesPerSecond).toFixed(3),
        middle(streamingFollowerCpuSeconds).toFixed(2),
      ],
    ],
  );
}
if (part === 'all' || part === 'bootstrap') {
  const streamSeconds = middle(bootstrap.stream.seconds);
  printTable(
    [
      `new follower of ${bootstrapKeys} keys`,
      'MB sealed',
      'MB in stream',
      'seconds',
      'MB/s',
      'CPU s (this process)',
      'time / stream replay',
    ],
    Object.entries(bootstrap).map(([mode, { seconds, cpuSeconds, megabytes, streamMegabytes }]) => [
      mode === 'stream' ? 'replays the stream' : 'object-store snapshot',
      middle(megabytes).toFixed(1),
      middle(streamMegabytes).toFixed(1),
      middle(seconds).toFixed(2),
      (middle(megabytes) / middle(seconds)).toFixed(1),
      middle(cpuSeconds).toFixed(2),
      (middle(seconds) / streamSeconds).toFixed(2),
    ]),
  );
}
