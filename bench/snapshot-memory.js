// Peak memory of an object-store snapshot (docs/replication.md §Object-store snapshots): a leader
// writes a store of incompressible values through replication in syncs of 1 MiB up to 4 MiB short of
// --store-mb (nothing snapshotted yet), then 8 MiB more in the same syncs: a snapshot of the whole
// store comes due at one of them (snapshotEveryBytes = --store-mb) and caughtUp() waits for it. Reported: the process's peak RSS
// (resourceUsage().maxRSS) before that last sync and after the snapshot, and the difference, which is
// what the snapshot cost in memory beside the server's max payload (the object chunk size).
//
//   npm run build && node bench/snapshot-memory.js [--store-mb 64] [--reps 2]
//
// Each repetition runs in a fresh child process (its own peak RSS); nats-server (NATS_SERVER, default
// /usr/sbin/nats-server, one node) is started on a loopback port chosen at run time and stopped by PID.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, parseOptions, printTable } from './lib/harness.js';

const options = parseOptions('npm run build && node bench/snapshot-memory.js [options]', {
  'store-mb': { type: 'number', default: 64, min: 4, integer: true, help: 'MiB of values written before the snapshot' },
  reps: { type: 'number', default: 2, min: 1, integer: true, help: 'repetitions (one child process each)' },
  child: { type: 'string', default: '', help: '(internal) the NATS url of a child run' },
});
const storeMegabytes = Number(options['store-mb']);
const NATS_SERVER = process.env['NATS_SERVER'] ?? '/usr/sbin/nats-server';
const MIB = 1024 * 1024;

async function child(server) {
  const { keys, VarMap } = await import('../dist/index.js');
  const { natsReplication } = await import('../dist/replication/index.js');
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'armdb-bench-snapshot-memory-'));
  const valueBytes = 16 * 1024;
  const perSync = 64;
  const leader = await VarMap.open(directory, {
    keySize: 16,
    encryption: { key: new Uint8Array(randomBytes(32)) },
    syncIntervalMs: 0,
    autoCompact: false,
    replication: natsReplication({
      servers: server,
      name: `memory${process.pid}`,
      role: 'leader',
      snapshotEveryBytes: storeMegabytes * MIB,
      retainSnapshots: 1,
    }),
  });
  const sizeOf = (folder) => {
    let bytes = 0;
    for (const entry of fs.readdirSync(folder, { withFileTypes: true })) {
      if (entry.isDirectory()) bytes += sizeOf(path.join(folder, entry.name));
      else bytes += fs.statSync(path.join(folder, entry.name)).size;
    }
    return bytes;
  };
  try {
    // Every byte written counts toward snapshotEveryBytes (files are appended, not rewritten): the
    // directory's size tells how close the next snapshot is. Stop 4 MiB short of it.
    let index = 0;
    while (sizeOf(directory) < storeMegabytes * MIB - 4 * MIB) {
      for (let put = 0; put < perSync; put++, index++)
        leader.put(keys.fromString(`k${index}`, 16), new Uint8Array(randomBytes(valueBytes)));
      await leader.sync();
    }
    await leader.replication.caughtUp();
    globalThis.gc?.();
    const beforeKb = process.resourceUsage().maxRSS;
    const cpuBefore = process.cpuUsage();
    // 8 MiB more, in syncs as before: the snapshot comes due at one of them.
    for (let put = 0; put < (8 * MIB) / valueBytes; put++, index++) {
      leader.put(keys.fromString(`k${index}`, 16), new Uint8Array(randomBytes(valueBytes)));
      if (put % perSync === perSync - 1) await leader.sync();
    }
    await leader.sync();
    await leader.replication.caughtUp();
    const cpu = process.cpuUsage(cpuBefore);
    const afterKb = process.resourceUsage().maxRSS;
    const storeBytes = sizeOf(directory);
    process.stdout.write(
      `${JSON.stringify({ beforeMb: beforeKb / 1024, afterMb: afterKb / 1024, storeMb: storeBytes / MIB, cpuSeconds: (cpu.user + cpu.system) / 1e6 })}\n`,
    );
  } finally {
    await leader.close();
    fs.rmSync(directory, { recursive: true, force: true });
  }
}

async function freePort() {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = /** @type {net.AddressInfo} */ (server.address());
  server.close();
  await once(server, 'close');
  return port;
}

async function main() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'armdb-bench-snapshot-memory-nats-'));
  const port = await freePort();
  const config = path.join(root, 'n1.conf');
  fs.writeFileSync(config, `listen: 127.0.0.1:${port}\njetstream { store_dir: ${JSON.stringify(path.join(root, 'n1'))} }\n`);
  const server = spawn(NATS_SERVER, ['-c', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  await new Promise((resolve, reject) => {
    server.stderr.on('data', (chunk) => {
      log += chunk;
      if (/Server is ready/.test(log)) resolve(undefined);
    });
    server.once('exit', () => reject(new Error(`nats-server exited:\n${log}`)));
  });
  const rows = [];
  try {
    for (let rep = 0; rep < Number(options.reps); rep++) {
      const script = fileURLToPath(import.meta.url);
      const run = spawn(
        process.execPath,
        ['--expose-gc', script, '--store-mb', String(storeMegabytes), '--child', `nats://127.0.0.1:${port}`],
        {
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      let output = '';
      run.stdout.on('data', (chunk) => {
        output += chunk;
      });
      const [code] = await once(run, 'exit');
      if (code !== 0) throw new Error(`child exited with ${code}`);
      rows.push(JSON.parse(output.trim().split('\n').at(-1) ?? '{}'));
    }
  } finally {
    const exited = once(server, 'exit');
    if (server.pid !== undefined) process.kill(server.pid, 'SIGTERM');
    await exited;
    fs.rmSync(root, { recursive: true, force: true });
  }
  const column = (name) => median(rows.map((row) => row[name])) ?? Number.NaN;
  printTable(
    ['store MiB', 'peak RSS before the snapshot MiB', 'peak RSS after MiB', 'snapshot cost MiB', 'CPU s of the last sync + snapshot'],
    [
      [column('storeMb'), column('beforeMb'), column('afterMb'), column('afterMb') - column('beforeMb'), column('cpuSeconds')].map(
        (value) => value.toFixed(1),
      ),
    ],
  );
}

if (options.child !== '') await child(String(options.child));
else await main();
