/** Types of crash-point-child.mjs (plain JS: the child runs without a TypeScript loader). */
export declare const KEYS: number;
export declare const OPTIONS: {
  readonly keySize: number;
  readonly shards: number;
  readonly maxFileBytes: number;
  readonly writeBufferBytes: number;
  readonly syncIntervalMs: number;
  readonly autoCompact: boolean;
  readonly hints: boolean;
};
export declare function keyOf(k: number): Uint8Array;
export declare function valueFor(round: number, k: number): Uint8Array;
