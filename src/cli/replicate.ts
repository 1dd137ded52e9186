/**
 * `armdb restore` and `armdb replicate status` (docs/replication.md): the two commands that read a
 * store's NATS JetStream stream. The NATS client is loaded only when one of them runs.
 */
import { KEY_HELP, KEY_OPTIONS, type Command, type OptionValues, print, stringOption, UsageError } from './command.js';
import { integrityError } from '../errors.js';
import { openExisting } from './store.js';

const NATS_OPTIONS = { nats: { type: 'string' }, name: { type: 'string' } } as const;

function required(values: OptionValues, name: string, command: string): string {
  const value = stringOption(values, name);
  if (value === undefined || value.length === 0) throw new UsageError(`missing --${name}; see armdb ${command} --help`);
  return value;
}

/** `--at`: a stream sequence (digits) or an ISO 8601 time. */
function pointOf(text: string | undefined): number | Date | undefined {
  if (text === undefined) return undefined;
  if (/^\d+$/.test(text)) return Number(text);
  const time = new Date(text);
  if (!/^\d{4}-\d{2}-\d{2}/.test(text) || Number.isNaN(time.getTime()))
    throw new UsageError(`--at expects a stream sequence or an ISO 8601 time, got "${text}"`);
  return time;
}

export const restoreCommand: Command = {
  name: 'restore',
  summary: 'build a store from its NATS JetStream stream, as of a sequence or a time',
  maxPositionals: 0,
  options: { ...KEY_OPTIONS, ...NATS_OPTIONS, to: { type: 'string' }, at: { type: 'string' } },
  help: `Usage: armdb restore --nats <url> --name <name> --to <dir> [--at <ISO time | sequence>] [key options]

Rebuilds the files of the replicated store <name> in <dir> (new or empty): the newest object-store
snapshot at or before --at (or, without one, the oldest snapshot the stream holds), then every
complete batch of the stream after it up to --at (a stream sequence, or an ISO 8601 time: the last
batch the manifest history records at or before it; default: all of it). Then opens the result with
the key, which authenticates it as recovery does (pages, MANIFEST, KEYRING) and checks the snapshot
manifest's MAC, and prints what it holds. A trimmed stream reaches back to its oldest snapshot kept.

${KEY_HELP}

Exit codes: 0 restored and authenticated; 1 nothing to restore, or it failed authentication; 2 usage.`,
  async run(values) {
    const servers = required(values, 'nats', 'restore');
    const name = required(values, 'name', 'restore');
    const to = required(values, 'to', 'restore');
    const at = pointOf(stringOption(values, 'at'));
    const { restoreFromStream, verifyRestoredSnapshot } = await import('../replication/restore.js');
    const report = await restoreFromStream({ servers: servers.split(','), name, to, ...(at === undefined ? {} : { at }) });
    const opened = await openExisting(to, values, { hints: false });
    try {
      if (!verifyRestoredSnapshot(report, (info, length) => opened.engine.deriveKey(info, length))) {
        throw integrityError('restore: the object-store snapshot it started from failed authentication');
      }
      print(
        `restored ${to} as of stream sequence ${report.sequence} (epoch ${report.epoch}, batch ${report.batch}` +
          `${report.snapshot === undefined ? '' : `, from the snapshot of sequence ${report.snapshot.sequence}`}): ${opened.engine.size} keys`,
      );
    } finally {
      await opened.engine.close();
    }
    return 0;
  },
};

export const replicateCommand: Command = {
  name: 'replicate',
  summary: 'replicate status: the stream, lease, snapshots and history of a replicated store',
  maxPositionals: 1,
  options: { ...NATS_OPTIONS, json: { type: 'boolean' } },
  help: `Usage: armdb replicate status --nats <url> --name <name> [--json]

Prints the stream of the replicated store <name> (messages, bytes, first and last sequence, the
sequence of the newest snapshot, its replicas and the NATS server leading it), its lease (the
holder, the epoch), the object store's snapshots (sequence, epoch, time, bytes, files; oldest
first) and the manifest history's range (entries, first and last sequence and time: what
\`armdb restore --at <time>\` can reach). Reads only; needs no key.

Exit codes: 0 printed; 1 no such stream or the servers are unreachable; 2 usage.`,
  async run(values, positionals) {
    if (positionals[0] !== 'status') throw new UsageError('usage: armdb replicate status --nats <url> --name <name>');
    const servers = required(values, 'nats', 'replicate');
    const name = required(values, 'name', 'replicate');
    const { replicationStatus } = await import('../replication/inspect.js');
    const status = await replicationStatus(servers.split(','), name);
    if (values['json'] === true) print(JSON.stringify(status));
    else {
      const { snapshots, history, ...scalars } = status;
      for (const [field, value] of Object.entries(scalars)) print(`${field.padEnd(16)}${value ?? '-'}`);
      print(`${'snapshots'.padEnd(16)}${snapshots.length}`);
      for (const snapshot of snapshots) {
        print(
          `  sequence ${snapshot.sequence}  epoch ${snapshot.epoch}  ${snapshot.time}  ${snapshot.bytes} bytes in ${snapshot.files} files`,
        );
      }
      print(
        `${'history'.padEnd(16)}${
          history === undefined
            ? '-'
            : `${history.entries} entries, sequence ${history.firstSequence} (${history.firstTime}) .. ${history.lastSequence} (${history.lastTime})`
        }`,
      );
    }
    return 0;
  },
};
