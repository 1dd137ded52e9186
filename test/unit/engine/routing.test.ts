/**
 * Shard routing is part of the format (SPEC §4: xxh64 of the key, or of its first `shardPrefixBits`
 * bits, mod shards): the engine computes it without BigInt arithmetic, and must agree with the
 * definition for every shard count.
 */
import xxhash from 'xxhash-wasm';
import { describe, expect } from 'vitest';
import type { Engine } from '../../../src/engine/engine.js';
import { VarMap } from '../../../src/index.js';
import { storeTest as it } from '../../helpers/store.js';

describe('shard routing', () => {
  it.for([2, 3, 7, 64, 255, 256])('%i shards: xxh64(key) mod shards, as the BigInt definition', async (shards, { tempDir }) => {
    const hasher = await xxhash();
    const map = await VarMap.open(tempDir(), { keySize: 16, encryption: 'none', shards, syncIntervalMs: 0 });
    try {
      const engine = (map as unknown as { engine: Engine }).engine;
      let mismatches = 0;
      const seen = new Set<number>();
      for (let index = 0; index < 4000; index++) {
        const key = new Uint8Array(16);
        new DataView(key.buffer).setUint32(0, Math.imul(index, 0x9e3779b1) >>> 0);
        new DataView(key.buffer).setUint32(12, index);
        const expected = Number(hasher.h64Raw(key, 0n) % BigInt(shards));
        const routed = engine.shardOf(key);
        seen.add(routed);
        if (routed !== expected) mismatches++;
      }
      expect(mismatches).toBe(0);
      expect(seen.size).toBe(shards);
    } finally {
      await map.close();
    }
  });
});
