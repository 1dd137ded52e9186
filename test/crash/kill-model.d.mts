/** Types of kill-model.mjs (the shared workload of the SIGKILL crash tests). */

export declare const KEY_SIZE: 16;
export declare const PLAIN_KEYS: number;
export declare const GROUPS: number;
export declare const GROUP_SIZE: number;
export declare const BATCH: number;

export declare const STORE_OPTIONS: Readonly<{
  keySize: number;
  shards: number;
  shardPrefixBits: number;
  maxFileBytes: number;
  writeBufferBytes: number;
  syncIntervalMs: number;
}>;

export declare class Random {
  constructor(seed: number);
  next(): number;
  int(low: number, high: number): number;
}

export declare function keyId(kind: 'plain' | 'group', n: number, j?: number): number;
export declare function keyOf(id: number): Uint8Array;
export declare function groupKeyIds(group: number): number[];
export declare function allKeyIds(): number[];

export interface ValueFields {
  readonly run: number;
  readonly op: number;
  readonly id: number;
  readonly generation: number;
}
export declare function encodeValue(run: number, op: number, id: number, generation: number, length: number): Uint8Array;
export declare function decodeValue(bytes: Uint8Array): ValueFields | undefined;

export type Operation = { readonly index: number; readonly syncAfter: boolean } & (
  | { readonly kind: 'put'; readonly id: number; readonly value: Uint8Array }
  | { readonly kind: 'delete'; readonly id: number }
  | {
      readonly kind: 'group-put';
      readonly group: number;
      readonly generation: number;
      readonly writes: readonly { readonly id: number; readonly value: Uint8Array }[];
    }
  | { readonly kind: 'group-delete'; readonly group: number; readonly ids: readonly number[] }
);

export declare function operations(run: number, seed: number, syncEveryOp?: boolean): Generator<Operation, never, void>;
