/**
 * The collection classes the behavioural suite runs over: how to open each, the value it stores for a
 * number, and what it supports. Not a test file itself (no `.test.ts` suffix).
 */
import {
  type Codec,
  type Collection,
  ConstMap,
  ConstTree,
  codecs,
  type OpenOptions,
  TypedMap,
  TypedTree,
  VarMap,
  VarTree,
} from '../../src/index.js';
import { patternBytes } from '../helpers/bytes.js';

/** Behaviours a class may lack; the suite registers a test only when its class has what it needs. */
export interface Supports {
  /** Ordered reads: range, keys, values, prefix, first, last (the Trees). */
  readonly ordered: boolean;
  /** Byte values of any length, empty and across pages, bounded by maxValueBytes (VarMap, VarTree). */
  readonly variableBytes: boolean;
}

/** Opens one class for a configuration (as abstract-level's test suite takes a `factory`). */
export interface Factory<V = unknown> {
  readonly name: string;
  readonly supports: Supports;
  open(directory: string, options: OpenOptions<V>): Promise<Collection<V>>;
  /** The value the suite stores for `n`: distinct for distinct `n`. */
  value(n: number): V;
}

interface Row {
  readonly n: number;
  readonly label: string;
  readonly tags: number[];
}

/** valueSize of the Const classes. */
export const VALUE_SIZE = 24;
const bytesOfLength = (n: number): Uint8Array => patternBytes(1 + ((n * 37) % 300), n);
const fixedBytes = (n: number): Uint8Array => patternBytes(VALUE_SIZE, n);
const row = (n: number): Row => ({ n, label: `value ${n}`, tags: [n % 3, n % 7] });
const json = codecs.json as Codec<Row>;

export const FACTORIES: readonly Factory[] = [
  {
    name: 'VarMap',
    supports: { ordered: false, variableBytes: true },
    open: (dir, options) => VarMap.open(dir, options as OpenOptions),
    value: bytesOfLength,
  },
  {
    name: 'VarTree',
    supports: { ordered: true, variableBytes: true },
    open: (dir, options) => VarTree.open(dir, options as OpenOptions),
    value: bytesOfLength,
  },
  {
    name: 'ConstMap',
    supports: { ordered: false, variableBytes: false },
    open: (dir, options) => ConstMap.open(dir, { ...(options as OpenOptions), valueSize: VALUE_SIZE }),
    value: fixedBytes,
  },
  {
    name: 'ConstTree',
    supports: { ordered: true, variableBytes: false },
    open: (dir, options) => ConstTree.open(dir, { ...(options as OpenOptions), valueSize: VALUE_SIZE }),
    value: fixedBytes,
  },
  {
    name: 'TypedMap',
    supports: { ordered: false, variableBytes: false },
    open: (dir, options) => TypedMap.open<Row>(dir, { ...(options as OpenOptions<Row>), codec: json }),
    value: row,
  },
  {
    name: 'TypedTree',
    supports: { ordered: true, variableBytes: false },
    open: (dir, options) => TypedTree.open<Row>(dir, { ...(options as OpenOptions<Row>), codec: json }),
    value: row,
  },
] as Factory[];
