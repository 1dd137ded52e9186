/**
 * `armdb change-key` and `armdb rotate-key`: the key lifecycle of an encrypted store
 * (docs/security-model.md §Key lifecycle).
 */
import { flag, KEY_HELP, KEY_OPTIONS, existingDirectory, note, stringOption, count, type Command, type OptionValues } from './command.js';
import { encryptionFrom, UsageError } from './key-source.js';
import { type EncryptionOption, resolveCredential } from '../config.js';
import { wipeCredential } from '../crypto/keys.js';
import { describe, openExisting, wipeEncryption } from './store.js';

/**
 * With --no-encryption the store is described as unencrypted first, so an encrypted store answers
 * ARMDB_FORMAT_MISMATCH (exit 1) as with every other command; a store that really is unencrypted has
 * no key to act on, which is a usage error (exit 2).
 */
async function refuseUnencrypted(directory: string, values: OptionValues, why: string): Promise<void> {
  if (!flag(values, 'no-encryption')) return;
  await describe(directory, 'none'); // reads the MANIFEST only: nothing is written
  throw new UsageError(why);
}

export const changeKeyCommand: Command = {
  name: 'change-key',
  summary: 're-wrap the data keys under a new key or passphrase',
  maxPositionals: 1,
  options: { ...KEY_OPTIONS, 'new-key-file': { type: 'string' } },
  help: `Usage: armdb change-key <dir> [--new-key-file <path>] [key options]

Re-wraps the store's data keys under a new key or passphrase, in one atomic replace of the KEYRING
(with a new meta key, so the MANIFEST is signed anew); data files stay byte-identical, and a
passphrase store keeps its scrypt cost. Afterwards the old key is refused (ARMDB_WRONG_KEY) and the
new one opens the store.

The new secret, never an argument:
  --new-key-file <path>   32 raw bytes or 64 hex digits, mode 0600
  ARMDB_NEW_PASSPHRASE    environment variable holding the new passphrase
  (otherwise a hidden prompt, asked twice, when standard input is a terminal)

${KEY_HELP}

Exit codes: 0 ok; 1 wrong key, integrity failure, I/O error; 2 usage.`,
  async run(values, positionals) {
    const directory = existingDirectory(positionals, 'change-key');
    await refuseUnencrypted(directory, values, "a store created with encryption 'none' has no key to change");
    // The current secret first, as passwd asks: a wrong one fails before the new one is typed twice.
    const { engine } = await openExisting(directory, values, { cacheBytes: 0 });
    let next: EncryptionOption | undefined;
    try {
      next = await encryptionFrom(
        { keyFile: stringOption(values, 'new-key-file'), keyFileOption: '--new-key-file', environmentVariable: 'ARMDB_NEW_PASSPHRASE' },
        { question: 'New passphrase: ', confirm: true },
      );
      const credential = resolveCredential(next);
      if (credential === undefined) throw new UsageError('the new secret cannot be none');
      try {
        await engine.changeKey(credential);
      } catch (error) {
        wipeCredential(credential);
        throw error;
      }
    } finally {
      if (next !== undefined) wipeEncryption(next);
      await engine.close();
    }
    note('armdb change-key: the data keys are now wrapped under the new key; the old one no longer opens the store');
    return 0;
  },
};

export const rotateKeyCommand: Command = {
  name: 'rotate-key',
  summary: 'make a new data key active for new files',
  maxPositionals: 1,
  options: { ...KEY_OPTIONS, reencrypt: { type: 'boolean' } },
  help: `Usage: armdb rotate-key <dir> [--reencrypt] [key options]

Adds a fresh random data key to the KEYRING and makes it active: files written from now on are
sealed under it. With --reencrypt, then compacts with reencrypt, rewriting every older file under
the new key and removing data keys no file uses any more from the KEYRING (crypto-shredding: copies
of the old files can no longer be decrypted with the store's keys).

${KEY_HELP}

Exit codes: 0 ok; 1 wrong key, integrity failure, I/O error; 2 usage.`,
  async run(values, positionals) {
    const directory = existingDirectory(positionals, 'rotate-key');
    await refuseUnencrypted(directory, values, "a store created with encryption 'none' has no data keys");
    const { engine } = await openExisting(directory, values, { cacheBytes: 0 });
    try {
      await engine.rotateDataKey();
      const perKey = Object.entries(engine.stats().filesPerKeyId).map(([keyId, files]) => `key ${keyId}: ${count(files, 'file')}`);
      note(`armdb rotate-key: a new data key is active; data files per key id: ${perKey.join(', ') || 'none yet'}`);
      if (flag(values, 'reencrypt')) {
        const report = await engine.compact({ reencrypt: true });
        note(
          `armdb rotate-key: re-encrypted ${count(report.filesIn, 'file')} into ${report.filesOut}; data keys removed from the keyring: ${report.shreddedKeyIds.join(', ') || 'none'}`,
        );
      }
    } finally {
      await engine.close();
    }
    return 0;
  },
};
