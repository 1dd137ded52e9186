/** The page-aligned in-memory tail of the active file (docs/format.md §3): records gather here until whole pages can be sealed. */
import { PAGE_BYTES } from '../format/constants.js';
import { alignUpToPage } from '../format/page.js';

/** The page-aligned in-memory tail of the active file. */
export class WriteBuffer {
  buffer: Uint8Array;
  /** File position of buffer[0]; always a page boundary. */
  bufferPosition = 0;
  /** File position of the next record. */
  position = 0;

  constructor(writeBufferBytes: number) {
    this.buffer = new Uint8Array(Math.max(2, Math.ceil(writeBufferBytes / PAGE_BYTES)) * PAGE_BYTES);
  }

  fits(bytes: number): boolean {
    return this.position - this.bufferPosition + bytes <= this.buffer.length;
  }

  ensureCapacity(bytes: number): void {
    const needed = this.position - this.bufferPosition + bytes;
    if (needed <= this.buffer.length) return;
    const larger = new Uint8Array(alignUpToPage(needed));
    larger.set(this.buffer.subarray(0, this.position - this.bufferPosition));
    this.buffer = larger;
  }

  /** Drops `bytes` (whole pages) from the front after they were written. */
  consume(bytes: number): void {
    const used = this.position - this.bufferPosition;
    this.buffer.copyWithin(0, bytes, used);
    this.buffer.fill(0, used - bytes, used);
    this.bufferPosition += bytes;
  }
}
