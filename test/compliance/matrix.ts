/**
 * The configurations the behavioural suite (suite.ts) runs over. Dimensions: shards {1, 4} ×
 * cacheBytes {64 MiB, 0} × cipher {node, noble} × encryption {none, raw key, passphrase (scrypt
 * logN 10)} × {fresh, reopened}: 48 in all.
 * - VarMap runs all 48 (the full product), split by cipher over two test files so that vitest runs
 *   them in parallel: var-map.node.test.ts and var-map.noble.test.ts.
 * - VarTree, ConstMap, ConstTree, TypedMap and TypedTree each run a pairwise cover of the same
 *   dimensions (test/helpers/pairwise.ts, 8 configurations): every pair of values of any two dimensions
 *   appears in at least one configuration of each class, so every class runs under both ciphers, all
 *   three encryption modes, both shard counts, cache on and off, fresh and reopened
 *   (every-collection.test.ts). The list is deterministic; the test names show each configuration,
 *   as in `ConstMap [4sh cache0 noble passphrase fresh]`.
 *
 * Not a test file itself (no `.test.ts` suffix).
 */
import { pairwise } from '../helpers/pairwise.js';
import type { Configuration } from './suite.js';

const MIB = 2 ** 20;
export const DIMENSIONS = {
  shards: [1, 4],
  cacheBytes: [64 * MIB, 0],
  cipher: ['node', 'noble'],
  encryption: ['none', 'key', 'passphrase'],
  reopened: [false, true],
} as const;

const configuration = (row: Omit<Configuration, 'name'>): Configuration => ({
  ...row,
  name: `${row.shards}sh cache${row.cacheBytes === 0 ? '0' : '64M'} ${row.cipher} ${row.encryption} ${row.reopened ? 'reopened' : 'fresh'}`,
});

/** The full product of {@link DIMENSIONS}. */
export const everyConfiguration: Configuration[] = [];
for (const shards of DIMENSIONS.shards) {
  for (const cacheBytes of DIMENSIONS.cacheBytes) {
    for (const cipher of DIMENSIONS.cipher) {
      for (const encryption of DIMENSIONS.encryption) {
        for (const reopened of DIMENSIONS.reopened)
          everyConfiguration.push(configuration({ shards, cacheBytes, cipher, encryption, reopened }));
      }
    }
  }
}
export const pairwiseConfigurations: Configuration[] = pairwise(DIMENSIONS).map(configuration);
