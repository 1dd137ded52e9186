/**
 * `armdb verify <dir>`: authenticates every page of every data file and reports each failure with
 * shard, file and page. Exit 1 if anything failed — including an open that the store refuses
 * (ARMDB_INTEGRITY, ARMDB_ROLLBACK: recovery authenticates every page and stops at the first bad one).
 */
import { ArmdbError } from '../errors.js';
import type { VerifyReport } from '../engine/engine.js';
import { flag, KEY_HELP, KEY_OPTIONS, existingDirectory, note, print, type Command } from './command.js';
import { progressReporter } from './progress.js';
import { dataFileName, openExisting } from './store.js';

interface Failure {
  shard: number | null;
  file: string | null;
  fileId: number | null;
  page: number | null;
  message: string;
}

function describeFailure(failure: Failure): string {
  if (failure.file === null) return failure.message;
  const page = failure.page === null ? '' : `, page ${failure.page}`;
  return `shard ${failure.shard}, file ${failure.file}${page}: ${failure.message}`;
}

/** The failure an open refused with, located by the error's details (a file, and the page when one failed). */
function fromOpenError(error: ArmdbError): Failure {
  const { shard, fileId, pageIndex } = error.details;
  if (shard === undefined || fileId === undefined) return { shard: null, file: null, fileId: null, page: null, message: error.message };
  return { shard, file: dataFileName(shard, fileId), fileId, page: pageIndex ?? null, message: error.message };
}

export const verifyCommand: Command = {
  name: 'verify',
  summary: 'authenticate every page of every file; exit 1 on any failure',
  maxPositionals: 1,
  options: { ...KEY_OPTIONS, json: { type: 'boolean' }, quiet: { type: 'boolean', short: 'q' } },
  help: `Usage: armdb verify <dir> [--json] [--quiet] [key options]

Checks the store in <dir> in two passes and reports each failure with shard, file and page:
  1. open: every file is checked against the authenticated MANIFEST (headers, footers, tag
     digests, sizes) and every page is authenticated while the log is replayed (hint files are
     not used). A store that fails here is refused before anything is written: not one byte of
     it changes. This pass stops at the first failure.
  2. verify: every page of every data file is authenticated again, with progress on stderr (a bar
     on a terminal, otherwise a line at every 10%), and every failure is listed.

Options:
  --json              print the report as one JSON object on stdout
  -q, --quiet         no progress output
  -h, --help          show this help

A store that opens is changed the way every open changes it: an empty active file per shard is
started and sealed, the epoch advances, and (as hints were not read) the hint files are rebuilt at
the next ordinary open. Record data is never rewritten.

${KEY_HELP}

Files that recovery set aside in quarantine/ (not listed in the MANIFEST, not proven redundant)
are listed as QUARANTINED and make the result a failure.

Exit codes: 0 every page authentic and nothing in quarantine; 1 a failure was found (or wrong key,
I/O error); 2 usage.`,
  async run(values, positionals) {
    const directory = existingDirectory(positionals, 'verify');
    const json = flag(values, 'json');
    const quiet = flag(values, 'quiet');
    let report: VerifyReport | undefined;
    let failures: Failure[];
    if (!quiet) note('armdb verify: opening the store (recovery authenticates every page it replays)…');
    let opened: Awaited<ReturnType<typeof openExisting>> | undefined;
    try {
      // hints: false makes recovery replay (and so authenticate) every page before anything is
      // written: a damaged store is refused as found, never changed by its verification.
      opened = await openExisting(directory, values, { cacheBytes: 0, hints: false });
    } catch (error) {
      if (!(error instanceof ArmdbError) || (error.code !== 'ARMDB_INTEGRITY' && error.code !== 'ARMDB_ROLLBACK')) throw error;
      failures = [fromOpenError(error)];
    }
    if (opened !== undefined) {
      const progress = progressReporter('verify', { quiet });
      try {
        report = await opened.engine.verify({ onProgress: ({ pagesDone, pagesTotal }) => progress.update(pagesDone, pagesTotal) });
      } finally {
        progress.finish();
        await opened.engine.close();
      }
      failures = report.failures.map((failure) => ({
        shard: failure.shard,
        file: dataFileName(failure.shard, failure.fileId),
        fileId: failure.fileId,
        page: failure.pageIndex,
        message: failure.message,
      }));
    }
    failures ??= [];
    const quarantinedFiles = report?.quarantinedFiles ?? [];
    const ok = failures.length === 0 && quarantinedFiles.length === 0;
    if (json) {
      print(
        JSON.stringify(
          { ok, opened: report !== undefined, files: report?.files ?? null, pages: report?.pages ?? null, failures, quarantinedFiles },
          null,
          2,
        ),
      );
    } else {
      for (const failure of failures) print(`FAILED ${describeFailure(failure)}`);
      for (const name of quarantinedFiles)
        print(`QUARANTINED ${name}: not listed in the MANIFEST and not proven redundant; inspect it, then remove it`);
      if (report === undefined) print('the store refused to open; pages after the first failure were not checked');
      else if (ok) print(`ok: ${report.pages.toLocaleString('en-US')} pages in ${report.files} files, every page authentic`);
      else if (failures.length === 0)
        print(
          `${report.pages.toLocaleString('en-US')} pages in ${report.files} files authentic, but ${quarantinedFiles.length} files are in quarantine`,
        );
      else print(`${failures.length} of ${report.pages.toLocaleString('en-US')} pages in ${report.files} files failed authentication`);
    }
    return ok ? 0 : 1;
  },
};
