/** `armdb compact <dir>`: rewrites data files with dead bytes and reports what it reclaimed. */
import { byteSize, count, flag, KEY_HELP, KEY_OPTIONS, existingDirectory, note, print, type Command } from './command.js';
import { openExisting } from './store.js';

export const compactCommand: Command = {
  name: 'compact',
  summary: 'rewrite files to reclaim dead bytes',
  maxPositionals: 1,
  options: { ...KEY_OPTIONS, reencrypt: { type: 'boolean' }, json: { type: 'boolean' } },
  help: `Usage: armdb compact <dir> [--reencrypt] [--json] [key options]

Seals the active files, then rewrites every data file that holds dead bytes (overwritten or deleted
records, padding) into new files and deletes the old ones once the new state is durable. With
--reencrypt, also rewrites every file that is not under the active data key.

Options:
  --reencrypt         also rewrite files under older data keys
  --json              print the report as one JSON object
  -h, --help          show this help

${KEY_HELP}

Exit codes: 0 ok; 1 wrong key, integrity failure, I/O error; 2 usage.`,
  async run(values, positionals) {
    const directory = existingDirectory(positionals, 'compact');
    const { engine } = await openExisting(directory, values, { cacheBytes: 0 });
    try {
      const report = await engine.compact({ reencrypt: flag(values, 'reencrypt') });
      if (flag(values, 'json')) print(JSON.stringify(report, null, 2));
      else {
        // A summary, not data: stderr, as docs/cli.md says (--json is the data form, on stdout).
        if (report.filesIn === 0) note('armdb compact: no file had dead bytes to reclaim');
        else if (report.filesOut === 0)
          note(`armdb compact: rewrote ${count(report.filesIn, 'file')}: every record in them was dead, so no new file was needed`);
        else
          note(
            `armdb compact: rewrote ${count(report.filesIn, 'file')} into ${report.filesOut}: ${count(report.recordsMoved, 'live record')} moved`,
          );
        note(`armdb compact: reclaimed ${byteSize(report.bytesReclaimed)} in ${(report.durationMs / 1000).toFixed(1)} s`);
      }
    } finally {
      await engine.close();
    }
    return 0;
  },
};
