/**
 * The audit trail (docs/security-model.md §Audit trail): one `diagnostics_channel`, `armdb:audit`,
 * carries an event for every open, failed open, key operation, verify result and integrity failure.
 *
 * Every event has `event`, `timestampMs` (the engine's clock), `directory` and `databaseId` (32 hex
 * digits, public: it is in every file header; undefined when a failed open never read one). Nothing
 * secret is ever published: no key, passphrase, PIN, KEK, wrapped key, provider blob or salt; slot
 * labels, kinds, key ids, epochs and error codes only.
 */
import { channel } from 'node:diagnostics_channel';

/** The channel name: subscribe with `diagnostics_channel.subscribe('armdb:audit', listener)`. */
export const AUDIT_CHANNEL = 'armdb:audit';

const auditChannel = channel(AUDIT_CHANNEL);

/** What every audit event carries, beside its own fields. */
export interface AuditEventBase {
  /** What happened. */
  readonly event: AuditEventName;
  /** When, in ms since the epoch. */
  readonly timestampMs: number;
  /** The store's absolute path. */
  readonly directory: string;
  /** The store's database id, 32 hex digits (unauthenticated for `open-failed`; undefined if unknown). */
  readonly databaseId: string | undefined;
}

/** The events of `armdb:audit` (docs/security-model.md §Audit trail). */
export type AuditEventName =
  | 'open'
  | 'open-failed'
  | 'add-key-slot'
  | 'remove-key-slot'
  | 'change-key'
  | 'rotate-data-key'
  | 'shred'
  | 'verify'
  | 'integrity-failure';

/** Where events come from: the store's directory, its database id, its clock. */
export interface AuditSource {
  readonly directory: string;
  readonly databaseId: Uint8Array | undefined;
  readonly now: () => number;
}

function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/**
 * Publishes one event when anyone listens. `fields` must hold only public values: callers pass
 * labels, kinds, ids, counts and codes, never bytes.
 */
export function publishAudit(source: AuditSource, event: AuditEventName, fields: Readonly<Record<string, unknown>> = {}): void {
  if (!auditChannel.hasSubscribers) return;
  const base: AuditEventBase = {
    event,
    timestampMs: source.now(),
    directory: source.directory,
    databaseId: source.databaseId === undefined ? undefined : toHex(source.databaseId),
  };
  auditChannel.publish(Object.freeze({ ...fields, ...base }));
}
