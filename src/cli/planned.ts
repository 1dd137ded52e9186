/**
 * `change-key`, `rotate-key`: planned commands whose engine operations this version does
 * not have yet. They say so and exit 1 — they never pretend to have done something.
 */
import { KEY_OPTIONS, note, type Command } from './command.js';

function planned(name: string, summary: string, usage: string, what: string): Command {
  return {
    name,
    summary: `${summary} (not available yet)`,
    maxPositionals: Number.MAX_SAFE_INTEGER,
    options: { ...KEY_OPTIONS },
    help: `Usage: ${usage}

${what}

Not available yet in this version: the engine does not support it. Running it changes nothing and
exits with code 1.`,
    async run() {
      note(`armdb ${name}: not available yet in this version (the engine does not support it); nothing was changed`);
      return 1;
    },
  };
}

export const changeKeyCommand = planned(
  'change-key',
  're-wrap the data keys under a new key or passphrase',
  'armdb change-key <dir> [--key-file <old>] [--new-key-file <new>]',
  'Planned: re-wraps the data keys in the KEYRING under a new key or passphrase; data files are\nnot touched.',
);

export const rotateKeyCommand = planned(
  'rotate-key',
  'make a new data key active for new files',
  'armdb rotate-key <dir> [key options]',
  'Planned: adds a new data key to the KEYRING and makes it active for files written from now on\n(compact --reencrypt then rewrites older files under it).',
);
