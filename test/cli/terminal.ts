/**
 * Runs the built `armdb` on a real pseudo-terminal (util-linux `script`), answering its prompts as a
 * person would: each answer is typed only after its prompt has appeared. No timing is involved: the
 * next answer waits for text, and the test's own timeout is the only bound.
 */
import { spawn } from 'node:child_process';
import { CLI } from './run.js';

export interface Exchange {
  /** Text the command prints (its prompt) before `answer` is typed. */
  readonly prompt: string;
  /** Typed, then Enter. */
  readonly answer: string;
}

export interface TerminalResult {
  readonly status: number | null;
  /** Everything the terminal showed: prompts, messages, and any echo. */
  readonly screen: string;
}

const quote = (word: string): string => `'${word.replaceAll("'", `'\\''`)}'`;

/**
 * `armdb …args` with stdin, stdout and stderr on a pseudo-terminal; `shellSuffix` is added to the
 * command line (e.g. `< records.jsonl` to give stdin to a file while prompts use the terminal).
 */
export function armdbOnTerminal(
  args: readonly string[],
  exchanges: readonly Exchange[],
  options: { env?: NodeJS.ProcessEnv; shellSuffix?: string } = {},
): Promise<TerminalResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env };
  delete env['ARMDB_PASSPHRASE'];
  delete env['ARMDB_NEW_PASSPHRASE'];
  const command = [process.execPath, CLI, ...args].map(quote).join(' ') + (options.shellSuffix ?? '');
  const child = spawn('script', ['--quiet', '--return', '--command', command, '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let screen = '';
  let next = 0;
  let searchFrom = 0;
  const answerWhenAsked = (): void => {
    while (next < exchanges.length) {
      const found = screen.indexOf(exchanges[next]!.prompt, searchFrom);
      if (found < 0) return;
      searchFrom = found + exchanges[next]!.prompt.length;
      child.stdin.write(`${exchanges[next]!.answer}\r`);
      next++;
    }
  };
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (text: string) => {
    screen += text;
    answerWhenAsked();
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text: string) => {
    screen += text;
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (status) => {
      child.stdin.destroy();
      resolve({ status, screen });
    });
  });
}
