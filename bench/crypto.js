// Page-cipher throughput: seal + open of 4096-byte pages through FileCipher, node vs noble provider.
//
//   npm run build && node bench/crypto.js [--seconds 2] [--reps 3] [--algorithm aes256gcm|none]
//
// Each repetition seals and opens pages with one fresh FileCipher (a fresh file: unit indexes restart
// at 0) for about `--seconds`; providers are interleaved per repetition so drift hits both alike. The
// figure is plaintext MB (10^6 bytes) per second of page round trips (one seal plus one open per page).
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { FileCipher } from '../dist/crypto/file-cipher.js';
import { nobleProvider } from '../dist/crypto/noble-provider.js';
import { nodeProvider } from '../dist/crypto/node-provider.js';
import { Algorithm, FileKind, PAGE_BYTES } from '../dist/format/constants.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '2' },
    reps: { type: 'string', default: '3' },
    algorithm: { type: 'string', default: 'aes256gcm' },
  },
});
const seconds = Number(values.seconds);
const reps = Number(values.reps);
if (!(seconds > 0) || !Number.isInteger(reps) || reps < 1) throw new Error('--seconds must be > 0 and --reps a positive integer');
if (!(values.algorithm in Algorithm)) throw new Error(`--algorithm must be one of ${Object.keys(Algorithm).join(', ')}`);
const algorithm = Algorithm[values.algorithm];

const providers = [nodeProvider, nobleProvider];
const dataKey = new Uint8Array(randomBytes(32));
const databaseId = new Uint8Array(randomBytes(16));
const page = new Uint8Array(randomBytes(PAGE_BYTES));

function newCipher(provider, fileId) {
  const identity = {
    algorithm,
    kind: FileKind.data,
    databaseId,
    shard: 0,
    fileId,
    keyId: 1,
    salt: new Uint8Array(randomBytes(32)),
  };
  return new FileCipher(provider, identity, dataKey, 'write');
}

/** Seals and opens pages for `durationMs`; returns MB/s of page plaintext. */
function run(provider, durationMs, fileId) {
  const cipher = newCipher(provider, fileId);
  let pages = 0;
  const start = performance.now();
  let elapsed = 0;
  let last;
  do {
    for (let batch = 0; batch < 32; batch++, pages++) {
      const sealed = cipher.seal(pages, page);
      last = cipher.open(pages, sealed.ciphertext, sealed.tag);
    }
    elapsed = performance.now() - start;
  } while (elapsed < durationMs);
  if (Buffer.compare(Buffer.from(last), Buffer.from(page)) !== 0) throw new Error(`${provider.name}: round trip mismatch`);
  cipher.destroy();
  return { mbPerSecond: (pages * PAGE_BYTES) / 1e6 / (elapsed / 1000), pages };
}

const median = (numbers) => {
  const sorted = [...numbers].sort((left, right) => left - right);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
};

console.log(
  `armdb page cipher bench: ${values.algorithm}, ${PAGE_BYTES}-byte pages, seal+open, ${reps} × ${seconds} s per provider` +
    `\nnode ${process.version}, OpenSSL ${process.versions.openssl}, ${process.platform}/${process.arch}`,
);

// Warm-up: JIT for noble, OpenSSL init for node.
let fileId = 1;
for (const provider of providers) run(provider, Math.min(500, seconds * 250), fileId++);

const results = new Map(providers.map((provider) => [provider.name, []]));
for (let rep = 0; rep < reps; rep++) {
  for (const provider of providers) results.get(provider.name).push(run(provider, seconds * 1000, fileId++));
}

const medians = {};
for (const [name, runs] of results) {
  const rates = runs.map((result) => result.mbPerSecond);
  medians[name] = median(rates);
  const pages = runs.reduce((sum, result) => sum + result.pages, 0);
  console.log(
    `${name.padEnd(6)} median ${medians[name].toFixed(1).padStart(8)} MB/s` +
      `   (runs: ${rates.map((rate) => rate.toFixed(1)).join(', ')} MB/s; ${pages} pages)`,
  );
}
console.log(`ratio node/noble: ${(medians.node / medians.noble).toFixed(1)}×`);
