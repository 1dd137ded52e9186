/**
 * The Level crash tests' child runner: starts a child script (through the build) on a directory,
 * counts its output lines after "ready", and kills it with SIGKILL after `lines` of them (no sleeps).
 */
import { spawn } from 'node:child_process';

/** Runs `child` until it has printed `lines` lines after "ready", kills it; the last "synced N" it printed (0 if none). */
export function writeAndKill(child: string, directory: string, lines: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const running = spawn(process.execPath, [child, directory], { stdio: ['ignore', 'pipe', 'pipe'] });
    let buffered = '';
    let seen = -1;
    let synced = 0;
    let stderr = '';
    running.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    running.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      for (let end = buffered.indexOf('\n'); end >= 0; end = buffered.indexOf('\n')) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 1);
        seen++;
        const match = /^synced (\d+)$/.exec(line);
        if (match !== null) synced = Number(match[1]);
        if (seen >= lines && running.exitCode === null) running.kill('SIGKILL');
      }
    });
    running.on('error', reject);
    running.on('close', (_code, signal) =>
      signal === 'SIGKILL' ? resolve(synced) : reject(new Error(`child ended without the kill: ${stderr}`)),
    );
  });
}
