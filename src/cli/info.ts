/**
 * `armdb info <dir>`: what a store is and how full it is. No secret is printed: no key material, no
 * record keys or values, no database id.
 *
 * Class, immutable options, files, epoch and key ids come from the authenticated MANIFEST as found.
 * Live keys and the dead-byte ratio need the index, so the store is opened (recovery authenticates
 * every page), `stats()` read, and the store closed — unless `--manifest-only`.
 */
import * as path from 'node:path';
import type { StoreDescription } from '../engine/describe.js';
import { byteSize, count, flag, KEY_HELP, KEY_OPTIONS, existingDirectory, print, type Command } from './command.js';
import { describe, encryptionFor, openExisting, requireStore, wipeEncryption } from './store.js';

interface InfoReport {
  directory: string;
  formatVersion: number;
  collection: string;
  options: { keySize: number; valueSize: number | null; shards: number; shardPrefixBits: number; encrypted: boolean };
  filesPerShard: number[];
  files: number;
  sealedPages: number;
  epoch: number;
  activeKeyId: number | null;
  keyIdsInUse: number[];
  keyringVersion: number | null;
  /** Labels, kinds and creation times of the key slots; never a secret. */
  keySlots: { label: string; kind: string; createdAt: string; providerId?: string }[];
  /** Every data key in the KEYRING: creation time and age at the time of the report. */
  dataKeys: { keyId: number; createdAt: string; ageMs: number; active: boolean }[];
  liveKeys?: number;
  totalBytes?: number;
  deadBytes?: number;
  deadRatio?: number;
}

function reportOf(directory: string, description: StoreDescription): InfoReport {
  return {
    directory: path.resolve(directory),
    formatVersion: description.formatVersion,
    collection: description.collection,
    options: {
      keySize: description.keySize,
      valueSize: description.valueSize === 0 ? null : description.valueSize,
      shards: description.shards,
      shardPrefixBits: description.shardPrefixBits,
      encrypted: description.encrypted,
    },
    filesPerShard: [...description.filesPerShard],
    files: description.filesPerShard.reduce((sum, count) => sum + count, 0),
    sealedPages: description.sealedPages,
    epoch: description.epoch,
    activeKeyId: description.encrypted ? description.activeKeyId : null,
    keyIdsInUse: description.encrypted ? [...description.keyIdsInUse] : [],
    keyringVersion: description.keyringVersion ?? null,
    keySlots: description.keySlots.map((slot) => ({
      label: slot.label,
      kind: slot.kind,
      createdAt: new Date(slot.createdAtMs).toISOString(),
      ...(slot.providerId === undefined ? {} : { providerId: slot.providerId }),
    })),
    dataKeys: description.dataKeys.map(({ keyId, createdAtMs }) => ({
      keyId,
      createdAt: new Date(createdAtMs).toISOString(),
      ageMs: Math.max(0, Date.now() - createdAtMs),
      active: keyId === description.activeKeyId,
    })),
  };
}

/** `3d 4h`, `5h 2m`, `40s`: a key age for people. */
export function formatAge(ageMs: number): string {
  const seconds = Math.floor(ageMs / 1000);
  const [days, hours, minutes] = [Math.floor(seconds / 86_400), Math.floor(seconds / 3600) % 24, Math.floor(seconds / 60) % 60];
  if (days > 0) return `${days}d ${hours}h`;
  if (hours > 0) return `${hours}h ${minutes}m`;
  if (minutes > 0) return `${minutes}m ${seconds % 60}s`;
  return `${seconds}s`;
}

function printText(report: InfoReport): void {
  const rows: [string, string][] = [
    ['store', report.directory],
    ['format version', String(report.formatVersion)],
    ['collection', report.collection],
    ['encrypted', report.options.encrypted ? 'yes (AES-256-GCM pages)' : "no (encryption 'none': CRC-32 pages, no confidentiality)"],
    ['key size', `${report.options.keySize} bytes`],
    ['value size', report.options.valueSize === null ? 'variable' : `${report.options.valueSize} bytes`],
    ['shards', `${report.options.shards} (shardPrefixBits ${report.options.shardPrefixBits})`],
    [
      'files per shard',
      `${report.filesPerShard.join(' ')} (${count(report.files, 'data file')}, ${count(report.sealedPages, 'sealed page')})`,
    ],
    ['epoch', String(report.epoch)],
    [
      'data key ids',
      report.options.encrypted
        ? `in use: ${report.keyIdsInUse.join(', ') || 'none yet'}; active: ${report.activeKeyId}`
        : 'none (unencrypted)',
    ],
  ];
  if (report.options.encrypted) {
    rows.push([
      'key slots',
      report.keySlots
        .map((slot) => `${slot.label} (${slot.kind}${slot.providerId === undefined ? '' : ` ${slot.providerId}`}, ${slot.createdAt})`)
        .join('; '),
    ]);
    rows.push([
      'data key ages',
      report.dataKeys.map((key) => `key ${key.keyId}${key.active ? ' (active)' : ''}: ${formatAge(key.ageMs)}`).join('; '),
    ]);
    rows.push(['keyring version', String(report.keyringVersion)]);
  }
  if (report.liveKeys !== undefined) {
    rows.push(['live keys', report.liveKeys.toLocaleString('en-US')]);
    rows.push([
      'data bytes',
      `${byteSize(report.totalBytes!)}, of which ${byteSize(report.deadBytes!)} dead (${(report.deadRatio! * 100).toFixed(1)}%)`,
    ]);
  }
  for (const [label, value] of rows) print(`${label.padEnd(16)}${value}`);
}

export const infoCommand: Command = {
  name: 'info',
  summary: 'class, options, files, live keys, dead bytes, epoch, key slots and key ages of a store',
  maxPositionals: 1,
  options: { ...KEY_OPTIONS, json: { type: 'boolean' }, 'manifest-only': { type: 'boolean' } },
  help: `Usage: armdb info <dir> [--json] [--manifest-only] [key options]

Prints what the store in <dir> is: format version, collection class, immutable options (keySize,
valueSize, shards, shardPrefixBits, encrypted), data files per shard, epoch, data key ids in use,
key slots (label, kind, creation time), the age of every data key, and — after opening it — live
keys and the share of dead bytes. Never prints a secret.

Options:
  --json              print one JSON object instead of text
  --manifest-only     read only the authenticated MANIFEST: no live keys or dead bytes, and the
                      store is not opened, so not one byte of it changes
  -h, --help          show this help

Opening the store (the default) runs recovery, as every open does: it authenticates the MANIFEST,
the KEYRING and every page it replays, but files whose hint file is intact are indexed from the
hint, not re-read, so opening is no check of every page (armdb verify is). Like every open, it
writes a new MANIFEST (the epoch grows). The files and epoch printed are those found before opening.

${KEY_HELP}

Exit codes: 0 ok; 1 wrong key, integrity failure, I/O error; 2 usage.`,
  async run(values, positionals) {
    const directory = existingDirectory(positionals, 'info');
    let report: InfoReport;
    if (flag(values, 'manifest-only')) {
      const encryption = await encryptionFor(values, requireStore(directory));
      try {
        report = reportOf(directory, await describe(directory, encryption));
      } finally {
        wipeEncryption(encryption);
      }
    } else {
      const { engine, description } = await openExisting(directory, values, { cacheBytes: 0 });
      try {
        const stats = engine.stats();
        report = {
          ...reportOf(directory, description),
          liveKeys: stats.keys,
          totalBytes: stats.totalBytes,
          deadBytes: stats.deadBytes,
          deadRatio: stats.totalBytes === 0 ? 0 : stats.deadBytes / stats.totalBytes,
        };
      } finally {
        await engine.close();
      }
    }
    if (flag(values, 'json')) print(JSON.stringify(report, null, 2));
    else printText(report);
    return 0;
  },
};
