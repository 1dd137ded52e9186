// The README's quick start as a program: node examples/quick-start.mjs [directory]
// The key is created once in <directory>.key (mode 0600) and read from there on every later run, so a
// second run opens the same store. Keep that file apart from the data in real use: without it the
// data is gone, and with it anyone can read it.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { VarMap, keys } from 'armdb';

const directory = process.argv[2] ?? './sessions';
const keyFile = `${directory}.key`;
if (!existsSync(keyFile)) writeFileSync(keyFile, randomBytes(32), { mode: 0o600, flag: 'wx' });
const key = new Uint8Array(readFileSync(keyFile));

const db = await VarMap.open(directory, { keySize: 16, encryption: { key } });
key.fill(0); // open() keeps what it needs; drop our copy

const id = keys.fromString('session-42', 16); // keys are fixed-size byte strings
const before = db.get(id);
db.put(id, new TextEncoder().encode('{"user":7}'));
console.log(before === undefined ? 'new store' : 'opened the store again');
console.log(new TextDecoder().decode(db.get(id))); // {"user":7}

await db.sync(); // durable: survives a crash or power loss
await db.close();
