// All-or-nothing updates: atomic() over keys of one shard, and compare-and-swap.
// node examples/atomic-and-cas.mjs [directory]
import { ArmdbError, VarMap, keys } from 'armdb';

const directory = process.argv[2] ?? './accounts';
// shardPrefixBits: 8 routes by the first byte of the key, so every key of customer 7 (first byte 7)
// is in one shard and one atomic() can touch them all.
const db = await VarMap.open(directory, { keySize: 16, encryption: 'none', shards: 4, shardPrefixBits: 8 });

const account = (customer, name) => {
  const key = keys.fromString(` ${name}`, 16);
  key[0] = customer;
  return key;
};
const amount = (bytes) => (bytes === undefined ? 0 : new DataView(bytes.buffer, bytes.byteOffset).getUint32(0));
const bytesOf = (value) => {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, value);
  return bytes;
};

const checking = account(7, 'checking');
const savings = account(7, 'savings');
db.put(checking, bytesOf(100));
db.put(savings, bytesOf(0));

// Move 30 from checking to savings: both writes land, or (if the callback throws) neither.
db.atomic(checking, (tx) => {
  const balance = amount(tx.get(checking));
  if (balance < 30) throw new Error('insufficient funds'); // nothing is written
  tx.put(checking, bytesOf(balance - 30));
  tx.put(savings, bytesOf(amount(tx.get(savings)) + 30));
});
console.log(`checking ${amount(db.get(checking))}, savings ${amount(db.get(savings))}`); // checking 70, savings 30

// Compare-and-swap: replace the value only if it is still what we read.
db.cas(savings, bytesOf(30), bytesOf(35));
try {
  db.cas(savings, bytesOf(30), bytesOf(99)); // stale: the value is 35 now
} catch (error) {
  if (!(error instanceof ArmdbError) || error.code !== 'ARMDB_CAS_MISMATCH') throw error;
  console.log(`stale update refused: ${error.code}`);
}
console.log(`savings ${amount(db.get(savings))}`); // savings 35

await db.close();
