/**
 * Reading a MANIFEST without its key, as an attacker who knows the layout can (docs/format.md §7):
 * every unit (base, log record) is "verified" against the MAC stored right after its body, so the
 * state the file records is parsed through the one reader, `decodeManifestLog`, log included.
 */
import { decodeManifestLog, type DecodedManifest } from '../../src/format/manifest.js';
import type { MacFunction } from '../../src/format/tag-file.js';

/** A MAC function that returns, for a body inside `bytes`, the 32 bytes stored right after it. */
export function storedMacOf(bytes: Uint8Array): MacFunction {
  return (body) => {
    const end = body.byteOffset - bytes.byteOffset + body.length;
    return bytes.subarray(end, end + 32);
  };
}

/** The state a MANIFEST records, read without its key (nothing is authenticated). */
export function readManifestUnauthenticated(bytes: Uint8Array): DecodedManifest {
  return decodeManifestLog(bytes, storedMacOf(bytes));
}
