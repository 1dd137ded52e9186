/**
 * Bytewise order of keys, and the radix sort of entry handles by key that builds an ordered index
 * in one pass. Pure functions over key bytes.
 */

/** Ranges of the radix sort at most this long are finished by insertion sort. */
const INSERTION_SORT_MAX = 24;

/** Bytewise comparison of two keys. */
export function compareKeys(left: Uint8Array, right: Uint8Array): number {
  const length = Math.min(left.length, right.length);
  for (let index = 0; index < length; index++) {
    const difference = left[index]! - right[index]!;
    if (difference !== 0) return difference;
  }
  return left.length - right.length;
}

/**
 * The first four bytes of `length` bytes at `offset`, big-endian, missing bytes as zero. Two keys
 * whose prefixes differ compare as their prefixes do (a shorter key, padded with zeros, is smaller
 * than any longer key it starts, as in {@link compareKeys}); equal prefixes need the full comparison.
 */
export function keyPrefix(bytes: Uint8Array, offset: number, length: number): number {
  let prefix = 0;
  for (let index = 0; index < 4; index++) prefix = prefix * 256 + (index < length ? bytes[offset + index]! : 0);
  return prefix;
}

/**
 * Sorts `handles` by their keys (`keySize` bytes at `handle * keySize` in `keys`), bytewise; keys are
 * distinct. The first four bytes of each key are copied into a packed array and sorted with the
 * handles by an LSD radix sort (sequential memory, no comparisons); runs that share those four bytes
 * are then finished by an MSD radix sort on the remaining bytes, which skips a byte all keys of a run
 * share. Random keys have almost no such runs; keys with a long common prefix go through the second.
 * Returns the sorted prefixes ({@link keyPrefix} of each handle's key, slot by slot), which a B+
 * tree's leaves can take as they are instead of reading every key again.
 */
export function sortHandlesByKey(handles: Int32Array, keys: Uint8Array, keySize: number): Uint32Array {
  const count = handles.length;
  let prefixes = new Uint32Array(count);
  const prefixBytes = Math.min(4, keySize);
  for (let index = 0; index < count; index++) {
    const start = handles[index]! * keySize;
    let prefix = 0;
    for (let byte = 0; byte < 4; byte++) prefix = prefix * 256 + (byte < prefixBytes ? keys[start + byte]! : 0);
    prefixes[index] = prefix;
  }
  let sortedHandles: Int32Array = handles;
  let otherPrefixes = new Uint32Array(count);
  let otherHandles: Int32Array = new Int32Array(count);
  const counts = new Int32Array(256);
  for (let shift = 0; shift < 32; shift += 8) {
    counts.fill(0);
    for (let index = 0; index < count; index++) counts[(prefixes[index]! >>> shift) & 255]!++;
    if (counts.includes(count)) continue;
    let total = 0;
    for (let digit = 0; digit < 256; digit++) {
      const digitCount = counts[digit]!;
      counts[digit] = total;
      total += digitCount;
    }
    for (let index = 0; index < count; index++) {
      const prefix = prefixes[index]!;
      const target = counts[(prefix >>> shift) & 255]!++;
      otherPrefixes[target] = prefix;
      otherHandles[target] = sortedHandles[index]!;
    }
    [prefixes, otherPrefixes] = [otherPrefixes, prefixes];
    [sortedHandles, otherHandles] = [otherHandles, sortedHandles];
  }
  // After an odd number of passes the result is in the other buffer: copy it back, and that buffer
  // becomes the scratch space of the second sort.
  let scratch = otherHandles;
  if (sortedHandles !== handles) {
    handles.set(sortedHandles);
    scratch = sortedHandles;
  }
  if (keySize <= 4) return prefixes;
  let runStart = 0;
  for (let index = 1; index <= count; index++) {
    if (index < count && prefixes[index] === prefixes[runStart]) continue;
    if (index - runStart > 1) msdSortByKey(handles, scratch, keys, keySize, runStart, index, 4);
    runStart = index;
  }
  // The second sort reorders only within runs of equal prefixes: the prefixes stay slot by slot.
  return prefixes;
}

/** Sorts handles[low, high) whose keys share their first `byte` bytes: an MSD radix sort, one byte a level. */
function msdSortByKey(
  handles: Int32Array,
  scratch: Int32Array,
  keys: Uint8Array,
  keySize: number,
  low: number,
  high: number,
  byte: number,
): void {
  for (;;) {
    if (high - low <= INSERTION_SORT_MAX || byte >= keySize) {
      insertionSortByKey(handles, keys, keySize, low, high, byte);
      return;
    }
    const counts = new Int32Array(257);
    for (let index = low; index < high; index++) counts[keys[handles[index]! * keySize + byte]! + 1]!++;
    if (counts.includes(high - low)) {
      byte++;
      continue;
    }
    for (let digit = 1; digit <= 256; digit++) counts[digit]! += counts[digit - 1]!;
    const starts = counts.slice(0, 256);
    for (let index = low; index < high; index++) {
      const handle = handles[index]!;
      scratch[low + counts[keys[handle * keySize + byte]!]!++] = handle;
    }
    handles.set(scratch.subarray(low, high), low);
    for (let digit = 0; digit < 256; digit++) {
      const start = low + starts[digit]!;
      const end = digit === 255 ? high : low + starts[digit + 1]!;
      if (end - start > 1) msdSortByKey(handles, scratch, keys, keySize, start, end, byte + 1);
    }
    return;
  }
}

function insertionSortByKey(handles: Int32Array, keys: Uint8Array, keySize: number, low: number, high: number, fromByte: number): void {
  for (let index = low + 1; index < high; index++) {
    const handle = handles[index]!;
    const start = handle * keySize;
    let position = index - 1;
    for (; position >= low; position--) {
      const otherStart = handles[position]! * keySize;
      let difference = 0;
      for (let byte = fromByte; byte < keySize && difference === 0; byte++) difference = keys[otherStart + byte]! - keys[start + byte]!;
      if (difference <= 0) break;
      handles[position + 1] = handles[position]!;
    }
    handles[position + 1] = handle;
  }
}
