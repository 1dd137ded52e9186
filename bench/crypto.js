// Page-cipher throughput: seal + open of 4096-byte pages through FileCipher, node vs noble provider.
//
//   npm run build && node bench/crypto.js [--seconds 2] [--reps 3] [--algorithm aes256gcm|none]
//
// Each repetition seals and opens pages with one fresh FileCipher (a fresh file: unit indexes restart
// at 0) for about `--seconds`; providers are interleaved per repetition so drift hits both alike. The
// figure is plaintext MB (10^6 bytes) per second of page round trips (one seal plus one open per page).
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { FileCipher } from '../dist/crypto/file-cipher.js';
import { nobleProvider } from '../dist/crypto/noble-provider.js';
import { nodeProvider } from '../dist/crypto/node-provider.js';
import { Algorithm, FileKind, KEY_BYTES, PAGE_BYTES, SALT_BYTES, DATABASE_ID_BYTES } from '../dist/format/constants.js';
import { median, parseOptions, printTable } from './lib/harness.js';

const options = parseOptions('npm run build && node bench/crypto.js [options]', {
  seconds: { type: 'number', default: 2, min: 0.01, help: 'seconds per repetition and provider' },
  reps: { type: 'number', default: 3, min: 1, integer: true, help: 'repetitions' },
  algorithm: { type: 'string', default: 'aes256gcm', choices: /** @type {(keyof typeof Algorithm)[]} */ (Object.keys(Algorithm)) },
});
const { seconds, reps } = options;
const algorithm = Algorithm[/** @type {keyof typeof Algorithm} */ (options.algorithm)];

const providers = [nodeProvider, nobleProvider];
const dataKey = new Uint8Array(randomBytes(KEY_BYTES));
const databaseId = new Uint8Array(randomBytes(DATABASE_ID_BYTES));
const page = new Uint8Array(randomBytes(PAGE_BYTES));

function newCipher(provider, fileId) {
  const identity = {
    algorithm,
    kind: FileKind.data,
    databaseId,
    shard: 0,
    fileId,
    keyId: 1,
    salt: new Uint8Array(randomBytes(SALT_BYTES)),
  };
  return new FileCipher(provider, identity, dataKey, 'write');
}

/**
 * Seals and opens pages for `durationMs`; returns MB/s of page plaintext.
 * @param {import('../dist/crypto/provider.js').CryptoProvider} provider
 * @param {number} durationMs
 * @param {number} fileId
 */
function run(provider, durationMs, fileId) {
  const cipher = newCipher(provider, fileId);
  let pages = 0;
  const start = performance.now();
  let elapsed = 0;
  /** @type {Uint8Array} */
  let last = new Uint8Array(0);
  do {
    for (let batch = 0; batch < 32; batch++, pages++) {
      const sealed = cipher.seal(pages, page);
      last = cipher.open(pages, sealed.ciphertext, sealed.tag);
    }
    elapsed = performance.now() - start;
  } while (elapsed < durationMs);
  if (Buffer.compare(last, page) !== 0) throw new Error(`${provider.name}: round trip mismatch`);
  cipher.destroy();
  return { mbPerSecond: (pages * PAGE_BYTES) / 1e6 / (elapsed / 1000), pages };
}

console.log(
  `armdb page cipher bench: ${options.algorithm}, ${PAGE_BYTES}-byte pages, seal+open, ${reps} × ${seconds} s per provider` +
    `\nnode ${process.version}, OpenSSL ${process.versions.openssl}, ${process.platform}/${process.arch}`,
);

// Warm-up: JIT for noble, OpenSSL init for node.
let fileId = 1;
for (const provider of providers) run(provider, Math.min(500, seconds * 250), fileId++);

/** @type {Map<string, { mbPerSecond: number, pages: number }[]>} */
const results = new Map(providers.map((provider) => [provider.name, []]));
for (let rep = 0; rep < reps; rep++) {
  for (const provider of providers) results.get(provider.name)?.push(run(provider, seconds * 1000, fileId++));
}

/** @type {Record<string, number>} */
const medians = {};
const rows = [];
for (const [name, runs] of results) {
  const rates = runs.map((result) => result.mbPerSecond);
  medians[name] = median(rates) ?? Number.NaN;
  const pages = runs.reduce((sum, result) => sum + result.pages, 0);
  rows.push([name, medians[name].toFixed(1), rates.map((rate) => rate.toFixed(1)).join(', '), pages]);
}
printTable(['provider', 'median MB/s', 'runs (MB/s)', 'pages'], rows);
console.log(`ratio node/noble: ${((medians['node'] ?? Number.NaN) / (medians['noble'] ?? Number.NaN)).toFixed(1)}×`);
