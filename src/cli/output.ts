/**
 * Writing lines to stdout or a new file with backpressure: text is gathered into chunks, and when the
 * stream's buffer is full the writer waits for 'drain', so memory stays flat whatever the volume.
 * A new output file is created exclusively with mode 0600 (it holds plaintext), fsynced when done,
 * and removed if the export fails half-way (a partial export must not pass for a complete one).
 */
import * as fs from 'node:fs';
import { FILE_MODE } from '../io/node-file-system.js';

const CHUNK_CHARS = 256 * 1024;

export class LineWriter {
  readonly #stream: NodeJS.WritableStream;
  readonly #path: string | undefined;
  readonly #fd: number | undefined;
  #pending: string[] = [];
  #pendingChars = 0;
  #error: Error | undefined;

  private constructor(stream: NodeJS.WritableStream, path?: string, fd?: number) {
    this.#stream = stream;
    this.#path = path;
    this.#fd = fd;
    stream.on('error', (error: Error) => {
      this.#error ??= error;
    });
  }

  static toStdout(): LineWriter {
    return new LineWriter(process.stdout);
  }

  /** Creates `path` (it must not exist) with mode 0600. */
  static toNewFile(path: string): LineWriter {
    const fd = fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, FILE_MODE);
    return new LineWriter(fs.createWriteStream(path, { fd, autoClose: false }), path, fd);
  }

  /** Queues `text`; writes a chunk (awaiting 'drain' when the stream is full) every 256 KiB. */
  async write(text: string): Promise<void> {
    this.#pending.push(text);
    this.#pendingChars += text.length;
    if (this.#pendingChars >= CHUNK_CHARS) await this.#flush();
  }

  async #flush(): Promise<void> {
    if (this.#error !== undefined) throw this.#error;
    if (this.#pending.length === 0) return;
    const chunk = this.#pending.join('');
    this.#pending = [];
    this.#pendingChars = 0;
    if (!this.#stream.write(chunk)) await this.#drained();
  }

  #drained(): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = (error?: Error): void => {
        this.#stream.off('drain', onDrain);
        this.#stream.off('error', onError);
        if (error === undefined) resolve();
        else reject(error);
      };
      const onDrain = (): void => done();
      const onError = (error: Error): void => done(error);
      this.#stream.on('drain', onDrain);
      this.#stream.on('error', onError);
    });
  }

  /** Writes what is left; for a file: ends the stream, fsyncs and closes it. */
  async finish(): Promise<void> {
    await this.#flush();
    if (this.#fd === undefined) return;
    await new Promise<void>((resolve, reject) => {
      this.#stream.once('error', reject);
      this.#stream.end(() => resolve());
    });
    if (this.#error !== undefined) throw this.#error;
    fs.fsyncSync(this.#fd);
    fs.closeSync(this.#fd);
  }

  /** After a failure: closes and removes a file output. */
  abandon(): void {
    if (this.#fd === undefined || this.#path === undefined) return;
    try {
      fs.closeSync(this.#fd);
    } catch {
      // already closed
    }
    fs.rmSync(this.#path, { force: true });
  }
}
