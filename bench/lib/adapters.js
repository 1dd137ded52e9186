// One adapter per store. Every adapter has the same shape:
//
//   adapter = { id, label, family: 'armdb' | 'peer', encrypted, config, open(directory, options) }
//   options = { cacheBytes, valueSize, hints? }          (hints: armdb only)
//   store   = await adapter.open(...)
//     put(key, value)      void, or a promise the caller must await before the next put (back-pressure)
//     get(key)             Uint8Array | undefined, synchronous for every store here
//     scan(start, limit)   entries visited from the first key >= start, in key order (number or promise);
//                          undefined for a store without order (armdb VarMap): the scan workload skips it
//     warm()               promise: the whole store read into the store's own cache (before hot reads)
//     settle()             promise: every issued write is applied and readable (not necessarily durable)
//     sync()               promise: every issued write is durable (fsync or the store's equivalent)
//     close()              promise
//     stats?()             armdb only
//     compact?()           armdb only, when the build has compaction: promise of its report
//
// Each store is configured the way its own documentation recommends for throughput; `config` says how,
// and the report copies it.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const KEY_SIZE = 16;
/** Transactions of 1000 writes for SQLite, batches of 1000 for LevelDB. */
const WRITE_BATCH = 1000;
/**
 * lmdb-js: async puts in flight before the writer awaits a commit. lmdb-js batches every put of one event
 * turn into one transaction; awaiting every 1,000 or 10,000 puts measured 3 to 10 times slower here than
 * leaving them all in flight, so the bench gives lmdb-js its fastest setting.
 */
const LMDB_IN_FLIGHT = 1_000_000;
/** A key past every random key in the bench, written by LevelDB's sync barrier. */
const MARKER_KEY = Buffer.alloc(KEY_SIZE, 0xff);
const MARKER_VALUE = Buffer.from([1]);

// ---------------------------------------------------------------- armdb

/**
 * @param {any} armdb
 * @param {{ id: string, label: string, encryption: any, cipher: string, collection?: string, sealThreads?: number }} options
 */
function armdbAdapter(armdb, { id, label, encryption, cipher, collection = 'VarTree', sealThreads }) {
  const encrypted = encryption !== 'none';
  const ordered = collection === 'VarTree';
  return {
    id,
    label,
    family: 'armdb',
    encrypted,
    config:
      `${collection}, keySize 16, shards 4 (default), ${encrypted ? `AES-256-GCM pages, cipher '${cipher}'` : "encryption 'none' (CRC pages)"}, ` +
      'syncIntervalMs 0 (durable only at sync()/close()), cacheBytes per workload, ' +
      `${sealThreads === undefined ? '' : `sealThreads ${sealThreads}, `}other options default`,
    async open(directory, { cacheBytes, hints = true }) {
      // sealThreads only when asked for: a build from before the option refuses it.
      const threads = sealThreads === undefined ? {} : { sealThreads };
      const db = await armdb[collection].open(directory, {
        keySize: KEY_SIZE,
        encryption,
        cipher,
        cacheBytes,
        hints,
        syncIntervalMs: 0,
        ...threads,
      });
      const scan = (start, limit) => {
        let visited = 0;
        for (const [, value] of db.range({ gte: start, limit })) visited += value === undefined ? 0 : 1;
        return visited;
      };
      return {
        put: (key, value) => db.put(key, value),
        get: (key) => db.get(key),
        scan: ordered ? scan : undefined,
        async warm() {
          // Builds without warmup(): a full range fills the cache; a VarMap has no such pass (the hit rate shows it).
          if (typeof db.warmup === 'function') await db.warmup();
          else if (ordered) for (const entry of db.range()) void entry;
        },
        settle: async () => db.flush(),
        sync: () => db.sync(),
        close: () => db.close(),
        stats: () => db.stats(),
        compact: typeof db.compact === 'function' ? () => db.compact() : undefined,
      };
    },
  };
}

// ---------------------------------------------------------------- lmdb-js

function lmdbAdapter(lmdb) {
  return {
    id: 'lmdb',
    label: 'lmdb-js',
    family: 'peer',
    encrypted: false,
    config:
      `lmdb-js ${lmdb.version}: open({ encoding: 'binary', keyEncoding: 'binary' }), default sync flags (durable commits, overlappingSync on Linux); ` +
      `writes with the recommended async put() (lmdb-js batches the puts of an event turn into one transaction), up to ${LMDB_IN_FLIGHT.toLocaleString('en-US')} in flight before awaiting a commit; ` +
      'sync = await the last put and db.flushed; reads with synchronous get() (a copy) and getRange()',
    async open(directory) {
      const db = lmdb.module.open({
        path: path.join(directory, 'data.mdb'),
        encoding: 'binary',
        keyEncoding: 'binary',
        compression: false,
      });
      let last;
      let inFlight = 0;
      return {
        put(key, value) {
          last = db.put(key, value);
          if (++inFlight >= LMDB_IN_FLIGHT) {
            inFlight = 0;
            return last;
          }
          return undefined;
        },
        get: (key) => db.get(key),
        scan(start, limit) {
          let visited = 0;
          for (const entry of db.getRange({ start, limit })) visited += entry.value === undefined ? 0 : 1;
          return visited;
        },
        async warm() {
          for (const entry of db.getRange()) void entry; // faults every page of the map in
        },
        async settle() {
          await last;
          inFlight = 0;
        },
        async sync() {
          await last;
          await db.flushed;
          inFlight = 0;
        },
        close: () => db.close(),
      };
    },
  };
}

// ---------------------------------------------------------------- LevelDB (classic-level)

function levelAdapter(level) {
  return {
    id: 'leveldb',
    label: 'LevelDB (classic-level)',
    family: 'peer',
    encrypted: false,
    config:
      `classic-level ${level.version}: buffer encodings, cacheSize per workload, other options default (snappy on, 4 MiB write buffer); ` +
      `writes in batch() of ${WRITE_BATCH} puts without sync; sync = a batch with { sync: true } (fsyncs the log); reads with getSync() and iterator().nextv(1000)`,
    async open(directory, { cacheBytes }) {
      const db = new level.module.ClassicLevel(directory, { keyEncoding: 'buffer', valueEncoding: 'buffer', cacheSize: cacheBytes });
      await db.open();
      let operations = [];
      const write = (options) => {
        const batch = operations;
        operations = [];
        return db.batch(batch, options);
      };
      return {
        put(key, value) {
          operations.push({ type: 'put', key, value });
          return operations.length >= WRITE_BATCH ? write() : undefined;
        },
        get: (key) => db.getSync(key),
        async scan(start, limit) {
          const iterator = db.iterator({ gte: start, limit });
          let visited = 0;
          for (let entries = await iterator.nextv(1000); entries.length > 0; entries = await iterator.nextv(1000))
            visited += entries.length;
          await iterator.close();
          return visited;
        },
        async warm() {
          const iterator = db.iterator({ fillCache: true }); // iterators skip the block cache by default
          for (let entries = await iterator.nextv(1000); entries.length > 0; entries = await iterator.nextv(1000));
          await iterator.close();
        },
        async settle() {
          if (operations.length > 0) await write();
        },
        async sync() {
          operations.push({ type: 'put', key: MARKER_KEY, value: MARKER_VALUE });
          await write({ sync: true });
        },
        async close() {
          if (operations.length > 0) await write();
          await db.close();
        },
      };
    },
  };
}

// ---------------------------------------------------------------- SQLite (better-sqlite3 and the cipher fork)

/**
 * WAL pages between automatic checkpoints (SQLite's default is 1000). With random keys each 1000-row
 * transaction dirties about 1000 pages, so the default checkpoints (and fsyncs) after nearly every commit;
 * 10,000 made SQLite loads 1.7× (plain 1.0×–1.2×) faster here. It favours the peer.
 */
const SQLITE_AUTOCHECKPOINT = 10_000;

/**
 * SQLite with WAL, synchronous=NORMAL, prepared statements, transactions of 1000 writes. Values up to 256
 * bytes live in a WITHOUT ROWID table (the documented layout for small rows); larger values in a rowid table
 * with a primary-key index, as SQLite recommends. The durable commit is one transaction committed under
 * synchronous=FULL, which fsyncs the WAL and with it every earlier commit.
 * @param {any} sqlite the imported peer: `{ module, version, sqliteVersion }`
 * @param {{ id: string, label: string, cipher?: { name: string, legacy?: number } }} store `cipher`: the SQLite3MultipleCiphers cipher, or none
 */
function sqliteAdapter(sqlite, { id, label, cipher }) {
  const rawKey = randomBytes(32).toString('hex');
  const encryptionConfig =
    cipher === undefined
      ? ''
      : `, PRAGMA cipher='${cipher.name}'${cipher.legacy ? `, legacy=${cipher.legacy}` : ''}, raw 256-bit PRAGMA key (no KDF)`;
  return {
    id,
    label,
    family: 'peer',
    encrypted: cipher !== undefined,
    config:
      `${sqlite.name} ${sqlite.version} (SQLite ${sqlite.sqliteVersion})${encryptionConfig}: journal_mode=WAL, synchronous=NORMAL, ` +
      `wal_autocheckpoint=${SQLITE_AUTOCHECKPOINT} (default 1000), cache_size per workload, ` +
      `prepared INSERT OR REPLACE / SELECT, transactions of ${WRITE_BATCH} writes; sync = a commit under synchronous=FULL (fsyncs the WAL); scan = SELECT … WHERE k >= ? ORDER BY k LIMIT ?`,
    async open(directory, { cacheBytes, valueSize = 100 }) {
      const db = new sqlite.module(path.join(directory, 'kv.sqlite'));
      if (cipher !== undefined) {
        db.pragma(`cipher = '${cipher.name}'`);
        if (cipher.legacy) db.pragma(`legacy = ${cipher.legacy}`);
        db.pragma(`key = "x'${rawKey}'"`);
      }
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma(`wal_autocheckpoint = ${SQLITE_AUTOCHECKPOINT}`);
      db.pragma(`cache_size = -${Math.max(64, Math.ceil(cacheBytes / 1024))}`);
      const layout = valueSize <= 256 ? 'WITHOUT ROWID' : '';
      db.exec(`CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) ${layout}`);
      db.exec(
        'CREATE TABLE IF NOT EXISTS sync_marker (id INTEGER PRIMARY KEY, n INTEGER NOT NULL); INSERT OR IGNORE INTO sync_marker VALUES (1, 0)',
      );
      const insert = db.prepare('INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)');
      const select = db.prepare('SELECT v FROM kv WHERE k = ?').pluck();
      const range = db.prepare('SELECT k, v FROM kv WHERE k >= ? ORDER BY k LIMIT ?').raw();
      const bump = db.prepare('UPDATE sync_marker SET n = n + 1 WHERE id = 1');
      const begin = db.prepare('BEGIN');
      const commit = db.prepare('COMMIT');
      let pending = -1; // -1: no transaction open
      const settle = () => {
        if (pending >= 0) commit.run();
        pending = -1;
      };
      return {
        put(key, value) {
          if (pending < 0) {
            begin.run();
            pending = 0;
          }
          insert.run(key, value);
          if (++pending >= WRITE_BATCH) settle();
        },
        get: (key) => select.get(key),
        scan(start, limit) {
          let visited = 0;
          for (const [, value] of range.iterate(start, limit)) visited += value === undefined ? 0 : 1;
          return visited;
        },
        async warm() {
          db.prepare('SELECT count(*), max(substr(v, length(v), 1)) FROM kv').get(); // every page, overflow pages too
        },
        settle: async () => settle(),
        async sync() {
          settle();
          db.pragma('synchronous = FULL');
          bump.run();
          db.pragma('synchronous = NORMAL');
        },
        async close() {
          settle();
          db.close();
        },
      };
    },
  };
}

// ---------------------------------------------------------------- loading

async function importPeer(specifier) {
  const module = await import(specifier);
  const manifest = new URL(`../node_modules/${specifier}/package.json`, import.meta.url);
  const version = JSON.parse(readFileSync(manifest, 'utf8')).version;
  return { name: specifier, version, module: module.default ?? module };
}

/** The store adapters in report order, the stores that had to be skipped (with the reason), armdb's features. */
export async function loadAdapters({ armdbOnly = false } = {}) {
  const adapters = [];
  const skipped = [];
  const armdb = await import('../../dist/index.js').catch((error) => {
    throw new Error(`cannot load armdb from dist/ (run \`npm run build\` first): ${error.message}`);
  });
  const key = new Uint8Array(randomBytes(32));
  adapters.push(armdbAdapter(armdb, { id: 'armdb', label: 'armdb (AES-GCM, node)', encryption: { key }, cipher: 'node' }));
  adapters.push(armdbAdapter(armdb, { id: 'armdb-noble', label: 'armdb (AES-GCM, noble)', encryption: { key }, cipher: 'noble' }));
  adapters.push(armdbAdapter(armdb, { id: 'armdb-none', label: "armdb (encryption 'none')", encryption: 'none', cipher: 'node' }));
  adapters.push(
    armdbAdapter(armdb, {
      id: 'armdb-map',
      label: 'armdb VarMap (AES-GCM, node)',
      encryption: { key },
      cipher: 'node',
      collection: 'VarMap',
    }),
  );
  // The sealing worker (docs/durability.md §Sealing worker): run only when named (`--only armdb,armdb-seal,…`).
  adapters.push(
    armdbAdapter(armdb, {
      id: 'armdb-seal',
      label: 'armdb (AES-GCM, node, sealThreads 1)',
      encryption: { key },
      cipher: 'node',
      sealThreads: 1,
    }),
  );
  const armdbFeatures = { compaction: typeof armdb.VarTree.prototype.compact === 'function' };
  if (armdbOnly) return { adapters, skipped, armdbFeatures };

  const attempt = async (id, label, build) => {
    try {
      adapters.push(...(await build()));
    } catch (error) {
      const reason = (error instanceof Error ? error.message : String(error)).split('\n')[0] ?? '';
      skipped.push({ id, label, reason: reason.replaceAll(fileURLToPath(new URL('..', import.meta.url)), 'bench/') });
    }
  };
  await attempt('lmdb', 'lmdb-js', async () => [lmdbAdapter(await importPeer('lmdb'))]);
  await attempt('leveldb', 'LevelDB (classic-level)', async () => [levelAdapter(await importPeer('classic-level'))]);
  await attempt('sqlite', 'SQLite (better-sqlite3)', async () => {
    const sqlite = await importPeer('better-sqlite3');
    sqlite.sqliteVersion = smokeTest(sqlite.module);
    return [sqliteAdapter(sqlite, { id: 'sqlite', label: 'SQLite (better-sqlite3)' })];
  });
  await attempt('sqlite-cipher', 'encrypted SQLite (better-sqlite3-multiple-ciphers)', async () => {
    const sqlite = await importPeer('better-sqlite3-multiple-ciphers');
    sqlite.sqliteVersion = smokeTest(sqlite.module, 'chacha20');
    return [
      sqliteAdapter(sqlite, {
        id: 'sqlcipher',
        label: 'SQLite + SQLCipher mode (AES-256-CBC + HMAC-SHA512)',
        cipher: { name: 'sqlcipher', legacy: 4 },
      }),
      sqliteAdapter(sqlite, { id: 'sqlite-chacha20', label: 'SQLite + ChaCha20-Poly1305', cipher: { name: 'chacha20' } }),
    ];
  });
  return { adapters, skipped, armdbFeatures };
}

/** Opens an in-memory database (native binding loads) and returns the SQLite version. */
function smokeTest(Database, cipher) {
  const db = new Database(':memory:');
  try {
    if (cipher !== undefined) db.pragma(`cipher = '${cipher}'`);
    return db.prepare('SELECT sqlite_version()').pluck().get();
  } finally {
    db.close();
  }
}
