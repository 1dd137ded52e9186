/** Text encodings of keys and values in JSON lines (`--format hex|base64`), strict on input. */

export type ByteFormat = 'hex' | 'base64';

export const BYTE_FORMATS: readonly ByteFormat[] = ['hex', 'base64'];

export function encodeBytes(bytes: Uint8Array, format: ByteFormat): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString(format);
}

const HEX = /^(?:[0-9a-fA-F]{2})*$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** The bytes `text` encodes, or undefined if it is not exactly valid `format` (no silent skipping). */
export function decodeBytes(text: string, format: ByteFormat): Uint8Array | undefined {
  if (format === 'hex') {
    if (!HEX.test(text)) return undefined;
    return new Uint8Array(Buffer.from(text, 'hex'));
  }
  if (!BASE64.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64');
  // Non-canonical padding bits ("QR==" for "QQ==") decode to the same bytes: refuse them too.
  if (bytes.toString('base64') !== text) return undefined;
  return new Uint8Array(bytes);
}
