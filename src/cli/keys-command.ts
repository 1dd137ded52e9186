/**
 * `armdb keys list|add|remove <dir>`: the key slots of an encrypted store (docs/security-model.md
 * §Key slots, docs/cli.md). No secret is ever printed; new secrets come from a key file, an
 * environment variable or a hidden prompt, never from an argument.
 */
import { type EncryptionOption, resolveCredential } from '../config.js';
import { checkSlotLabel } from '../crypto/keys.js';
import { flag, KEY_HELP, KEY_OPTIONS, note, print, stringOption, type Command } from './command.js';
import { formatAge } from './info.js';
import { encryptionFrom, UsageError } from './key-source.js';
import { openExisting, wipeEncryption } from './store.js';

const SUBCOMMANDS = ['list', 'add', 'remove'] as const;

function labelOf(label: string | undefined, subcommand: string): string {
  if (label === undefined) throw new UsageError(`armdb keys ${subcommand} needs --label <name>`);
  try {
    return checkSlotLabel('--label', label);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

export const keysCommand: Command = {
  name: 'keys',
  summary: 'list, add or remove the key slots of a store',
  maxPositionals: 2,
  options: {
    ...KEY_OPTIONS,
    label: { type: 'string' },
    'new-key-file': { type: 'string' },
    'scrypt-log-n': { type: 'string' },
    'rotate-kek': { type: 'boolean' },
    json: { type: 'boolean' },
  },
  help: `Usage: armdb keys list <dir> [--json] [key options]
       armdb keys add <dir> --label <name> [--new-key-file <path>] [--scrypt-log-n <10..18>] [key options]
       armdb keys remove <dir> --label <name> [--rotate-kek] [key options]

Key slots: each wraps the store's key-encryption key under one credential, and any slot opens the
store (at most 16). The key options give a credential of any slot, to open the store.

  list      label, kind and creation time of every slot, and the age of every data key
  add       a new slot under a new key or passphrase:
              --new-key-file <path>   32 raw bytes or 64 hex digits, mode 0600
              ARMDB_NEW_PASSPHRASE    environment variable holding the new passphrase
              (otherwise a hidden prompt, asked twice, when standard input is a terminal)
  remove    drop a slot (never the last one). --rotate-kek also replaces the key-encryption key,
            so that a copy of an older KEYRING no longer yields the current one; every remaining
            slot must be the one opened with (the CLI has no other credentials).

${KEY_HELP}

Exit codes: 0 ok; 1 wrong key, integrity failure, I/O error; 2 usage.`,
  async run(values, positionals) {
    const [subcommand, directory] = positionals;
    if (subcommand === undefined || !(SUBCOMMANDS as readonly string[]).includes(subcommand))
      throw new UsageError(`armdb keys expects one of ${SUBCOMMANDS.join(', ')}; run armdb keys --help`);
    if (directory === undefined) throw new UsageError(`armdb keys ${subcommand} needs a store directory`);
    if (flag(values, 'no-encryption')) throw new UsageError("a store created with encryption 'none' has no key slots");
    const label = subcommand === 'list' ? undefined : labelOf(stringOption(values, 'label'), subcommand);
    const { engine } = await openExisting(directory, values, { cacheBytes: 0 });
    try {
      if (subcommand === 'add') {
        let next: EncryptionOption | undefined;
        try {
          next = await encryptionFrom(
            { keyFile: stringOption(values, 'new-key-file'), keyFileOption: '--new-key-file', environmentVariable: 'ARMDB_NEW_PASSPHRASE' },
            { question: 'Passphrase of the new slot: ', confirm: true },
          );
          const logN = stringOption(values, 'scrypt-log-n');
          const withCost =
            logN !== undefined && typeof next === 'object' && 'passphrase' in next ? { ...next, scryptLogN: Number(logN) } : next;
          let credential: ReturnType<typeof resolveCredential>;
          try {
            credential = resolveCredential(withCost);
          } catch (error) {
            throw new UsageError((error as Error).message);
          }
          if (credential === undefined) throw new UsageError('the new secret cannot be none');
          try {
            await engine.addKeySlot(credential, label!);
          } catch (error) {
            if (error instanceof RangeError) throw new UsageError(error.message);
            throw error;
          }
        } finally {
          if (next !== undefined) wipeEncryption(next);
        }
        note(`armdb keys add: slot ${JSON.stringify(label)} added; its credential now opens the store`);
      } else if (subcommand === 'remove') {
        try {
          await engine.removeKeySlot(label!, { rotateKek: flag(values, 'rotate-kek') });
        } catch (error) {
          if (error instanceof RangeError) throw new UsageError(error.message);
          throw error;
        }
        note(
          `armdb keys remove: slot ${JSON.stringify(label)} removed${flag(values, 'rotate-kek') ? ', and the key-encryption key replaced' : ''}`,
        );
      }
      const slots = engine.keySlots();
      const stats = engine.stats();
      if (flag(values, 'json')) {
        print(
          JSON.stringify(
            {
              slots: slots.map((slot) => ({ ...slot, createdAt: new Date(slot.createdAtMs).toISOString() })),
              activeDataKeyAgeMs: stats.dataKeyAgeMs,
            },
            null,
            2,
          ),
        );
      } else if (subcommand === 'list') {
        for (const slot of slots) {
          const provider = slot.providerId === undefined ? '' : ` ${slot.providerId}`;
          print(`${slot.label.padEnd(20)}${`${slot.kind}${provider}`.padEnd(24)}${new Date(slot.createdAtMs).toISOString()}`);
        }
        print(`active data key age: ${formatAge(stats.dataKeyAgeMs ?? 0)}`);
      }
    } finally {
      await engine.close();
    }
    return 0;
  },
};
