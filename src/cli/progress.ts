/**
 * Progress on stderr: a bar redrawn in place with `\r` when stderr is a terminal, otherwise a plain
 * line at every tenth of the work, 10% to 100% (logs and pipes stay readable). Redraws happen only when the shown
 * percentage changes, so the cost does not depend on how often progress is reported.
 */
export interface Progress {
  update(done: number, total: number): void;
  /** Ends the bar (a newline on a terminal). */
  finish(): void;
}

const WIDTH = 30;

export function progressReporter(label: string, options: { quiet?: boolean; stream?: NodeJS.WriteStream } = {}): Progress {
  const stream = options.stream ?? process.stderr;
  if (options.quiet) return { update() {}, finish() {} };
  if (stream.isTTY) {
    let shown = -1;
    let drawn = false;
    return {
      update(done, total) {
        const percent = total === 0 ? 100 : Math.floor((done / total) * 100);
        if (percent === shown) return;
        shown = percent;
        drawn = true;
        const filled = Math.round((percent / 100) * WIDTH);
        stream.write(
          `\r${label} [${'#'.repeat(filled)}${'-'.repeat(WIDTH - filled)}] ${String(percent).padStart(3)}% ${done.toLocaleString('en-US')}/${total.toLocaleString('en-US')}`,
        );
      },
      finish() {
        if (drawn) stream.write('\n');
      },
    };
  }
  // Without a terminal: one line per tenth of the work, each tenth printed even when one update
  // crosses several, with the count at that tenth; no line for 0%.
  let shownTenth = 0;
  return {
    update(done, total) {
      const tenth = total === 0 ? 10 : Math.min(10, Math.floor((done / total) * 10));
      while (shownTenth < tenth) {
        shownTenth++;
        const at = Math.ceil((shownTenth * total) / 10);
        stream.write(`${label}: ${shownTenth * 10}% (${at.toLocaleString('en-US')}/${total.toLocaleString('en-US')})\n`);
      }
    },
    finish() {},
  };
}
