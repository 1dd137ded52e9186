// `await using` closes the store when the block ends, even when it throws. TypeScript ≥ 5.2 compiles
// it for Node 20; plain JavaScript needs Node 24 or later (README, Requirements).
// npx tsc -p examples && node examples/.build/await-using.js [directory]
import { keys, VarTree } from 'armdb';

const directory = process.argv[2] ?? './events';

async function record(events: readonly string[]): Promise<number> {
  await using tree = await VarTree.open(directory, { keySize: 8, encryption: 'none' });
  let sequence = tree.size;
  for (const event of events) tree.put(keys.u64(++sequence), new TextEncoder().encode(event));
  await tree.sync();
  return tree.size;
} // tree.close() runs here

const total = await record(['started', 'stopped']);
// Closed: the directory can be opened again at once.
await using again = await VarTree.open(directory, { keySize: 8, encryption: 'none' });
const last = again.last();
console.log(`${total} events, last: ${last === undefined ? 'none' : new TextDecoder().decode(last[1])}`);
