/**
 * A real NATS JetStream cluster for the replication tests: `nats-server` (Debian's 2.9.10 in CI)
 * started as child processes on loopback ports chosen at run time, storage in a temporary directory,
 * stopped by PID and removed afterwards. A cluster route cannot listen on port 0, so each port is
 * found free by binding a socket to port 0 and closing it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';

const NATS_SERVER = process.env['NATS_SERVER'] ?? '/usr/sbin/nats-server';

export interface NatsNode {
  readonly name: string;
  readonly clientPort: number;
  readonly clusterPort: number;
  readonly storeDirectory: string;
  process: ChildProcess | undefined;
  /** Everything the server printed, for the readiness checks below and for failures. */
  log: string;
}

export interface NatsCluster {
  readonly nodes: readonly NatsNode[];
  /** Every node's client URL. */
  readonly servers: string[];
  /** The parent of every node's JetStream storage directory. */
  readonly storageRoot: string;
  /** SIGKILL of one node (by PID); it stays down. */
  kill(node: NatsNode): Promise<void>;
  /** Stops every node by PID and removes the storage. */
  stop(): Promise<void>;
}

export function natsServerAvailable(): boolean {
  return fs.existsSync(NATS_SERVER);
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

function configOf(node: NatsNode, peers: readonly NatsNode[], clustered: boolean): string {
  const lines = [
    `server_name: ${node.name}`,
    `listen: 127.0.0.1:${node.clientPort}`,
    'jetstream {',
    `  store_dir: ${JSON.stringify(node.storeDirectory)}`,
    '  max_memory_store: 64MB',
    '  max_file_store: 1GB',
    '}',
  ];
  if (clustered) {
    const routes = peers.filter((peer) => peer !== node).map((peer) => `nats-route://127.0.0.1:${peer.clusterPort}`);
    lines.push('cluster {', '  name: armdb-test', `  listen: 127.0.0.1:${node.clusterPort}`, `  routes: [${routes.join(', ')}]`, '}');
  }
  return `${lines.join('\n')}\n`;
}

/** Resolves once the server printed `pattern`; rejects if it exits first. */
function printed(node: NatsNode, pattern: RegExp): Promise<void> {
  const child = node.process!;
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (pattern.test(node.log)) {
        child.stderr!.off('data', check);
        child.off('exit', exited);
        resolve();
      }
    };
    const exited = (): void => reject(new Error(`nats-server ${node.name} exited:\n${node.log}`));
    child.stderr!.on('data', check);
    child.once('exit', exited);
    check();
  });
}

/**
 * Resolves once every node answers a JetStream request (account info, which in a cluster needs the
 * metadata leader). A node's log does not say so reliably: a node that learns of the leader while it
 * joins may never print a "metadata leader" line, which once left a healthy cluster "not ready".
 */
async function jetStreamAnswers(servers: readonly string[]): Promise<void> {
  for (const server of servers) {
    for (;;) {
      const connection = await connect({ servers: server, timeout: 2000 }).catch(() => undefined);
      try {
        if (connection !== undefined) {
          await (await jetstreamManager(connection)).getAccountInfo();
          break;
        }
      } catch {
        // Not ready yet (no metadata leader, or JetStream still starting): ask again.
      } finally {
        await connection?.close().catch(() => undefined);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** Starts `size` nodes (1, or 3 for a cluster with JetStream replicas), ready for JetStream. */
export async function startNatsCluster(size: 1 | 3 = 3): Promise<NatsCluster> {
  const storageRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'armdb-nats-'));
  const nodes: NatsNode[] = [];
  for (let index = 1; index <= size; index++) {
    nodes.push({
      name: `n${index}`,
      clientPort: await freePort(),
      clusterPort: await freePort(),
      storeDirectory: path.join(storageRoot, `n${index}`),
      process: undefined,
      log: '',
    });
  }
  const clustered = size > 1;
  const ready: Promise<void>[] = [];
  for (const node of nodes) {
    const configPath = path.join(storageRoot, `${node.name}.conf`);
    fs.writeFileSync(configPath, configOf(node, nodes, clustered));
    const child = spawn(NATS_SERVER, ['-c', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
    node.process = child;
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      node.log += chunk;
    });
    ready.push(printed(node, /Server is ready/));
  }
  // A test run that ends without its afterAll (a worker torn down) must not leave servers behind.
  const killOnExit = (): void => {
    for (const node of nodes) if (node.process?.pid !== undefined && node.process.exitCode === null) node.process.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  const cluster: NatsCluster = {
    nodes,
    servers: nodes.map((node) => `nats://127.0.0.1:${node.clientPort}`),
    storageRoot,
    async kill(node) {
      const child = node.process;
      if (child === undefined || child.exitCode !== null) return;
      const exited = once(child, 'exit');
      process.kill(child.pid!, 'SIGKILL');
      await exited;
      node.process = undefined;
    },
    async stop() {
      for (const node of nodes) {
        const child = node.process;
        if (child === undefined || child.exitCode !== null || child.signalCode !== null) continue;
        const exited = once(child, 'exit');
        process.kill(child.pid!, 'SIGTERM');
        await exited;
        node.process = undefined;
      }
      process.off('exit', killOnExit);
      fs.rmSync(storageRoot, { recursive: true, force: true });
    },
  };
  // Not a timing assertion: on a loaded machine an election can take long, but one that never ends
  // should fail with the servers' logs rather than as a bare hook timeout.
  let timer: NodeJS.Timeout | undefined;
  const stalled = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`the NATS cluster did not become ready:\n${nodes.map((node) => node.log).join('\n')}`)),
      50_000,
    );
  });
  try {
    await Promise.race([Promise.all(ready).then(() => jetStreamAnswers(cluster.servers)), stalled]);
    clearTimeout(timer);
  } catch (error) {
    clearTimeout(timer);
    await cluster.stop();
    throw error;
  }
  return cluster;
}
