// Turns per-repetition samples into medians, ratios to the best peer of the same run, target verdicts,
// and the Markdown report. Absolute numbers only ever appear in the per-run table.
import { markdownTable as table, median } from './harness.js';

/** Every reported metric. `peerMetric`: which peer metric it is compared with (default: the same). */
export const METRICS = [
  { key: 'load', label: 'load: N puts, 100 B values, then one durable sync', unit: 'ops/s', better: 'higher' },
  { key: 'hotGet', label: 'random get, data in cache', unit: 'ops/s', better: 'higher' },
  { key: 'hotGetCpu', label: 'random get, data in cache, per second of process CPU time', unit: 'ops/s', better: 'higher' },
  { key: 'coldGet', label: 'random get, cold cache (cache ≈ 1/32 of data)', unit: 'ops/s', better: 'higher' },
  { key: 'mix', label: '90/10 get/put mix (random keys, overwrites)', unit: 'ops/s', better: 'higher' },
  { key: 'scan', label: 'ordered scan (range from a random key)', unit: 'keys/s', better: 'higher' },
  {
    key: 'scanCompacted',
    label: 'ordered scan after compact() (armdb Tree: records in key order)',
    unit: 'keys/s',
    better: 'higher',
    peerMetric: 'scan',
    armdbOnly: true,
  },
  { key: 'syncP50', label: 'sync latency p50 (100 puts, then durable commit)', unit: 'ms', better: 'lower' },
  { key: 'syncP99', label: 'sync latency p99', unit: 'ms', better: 'lower' },
  { key: 'openMs', label: 'open a store of N keys', unit: 'ms', better: 'lower' },
  { key: 'openCpuMs', label: 'open a store of N keys, CPU time of the process', unit: 'ms', better: 'lower' },
  {
    key: 'openNoHintsMs',
    label: 'open a store of N keys, armdb `hints: false`',
    unit: 'ms',
    better: 'lower',
    peerMetric: 'openMs',
    armdbOnly: true,
  },
  { key: 'space', label: 'bytes on disk (du) / live bytes (N × 116), after load', unit: '×', better: 'lower' },
  { key: 'load4k', label: 'load, 4 KiB values', unit: 'ops/s', better: 'higher', large: true },
  { key: 'get4k', label: 'random get, 4 KiB values, in cache', unit: 'ops/s', better: 'higher', large: true },
  { key: 'load64k', label: 'load, 64 KiB values', unit: 'ops/s', better: 'higher', large: true },
  { key: 'get64k', label: 'random get, 64 KiB values, in cache', unit: 'ops/s', better: 'higher', large: true },
];

/** { storeId: { metric: [samples] } } → { storeId: { metric: median } } */
export function medians(samples) {
  return Object.fromEntries(
    Object.entries(samples).map(([store, metrics]) => [
      store,
      Object.fromEntries(Object.entries(metrics).map(([metric, values]) => [metric, median(values)])),
    ]),
  );
}

/** The best peer for a metric in this run: { id, value } or undefined when no peer measured it. */
export function bestPeer(metric, adapters, values) {
  const peerKey = metric.peerMetric ?? metric.key;
  let best;
  for (const adapter of adapters) {
    if (adapter.family !== 'peer') continue;
    const value = values[adapter.id]?.[peerKey];
    if (value === undefined) continue;
    if (best === undefined || (metric.better === 'higher' ? value > best.value : value < best.value)) best = { id: adapter.id, value };
  }
  return best;
}

/** { metric: { bestPeer, ratios: { storeId: value / best } } } for every metric with a best peer. */
export function ratios(adapters, values) {
  const table = {};
  for (const metric of METRICS) {
    const best = bestPeer(metric, adapters, values);
    if (best === undefined) continue;
    const row = {};
    for (const adapter of adapters) {
      const value = values[adapter.id]?.[metric.key];
      if (value !== undefined) row[adapter.id] = value / best.value;
    }
    table[metric.key] = { bestPeer: best.id, ratios: row };
  }
  return table;
}

/** The design targets of the issue, judged on this run's medians. */
export function judgeTargets(values, physical, memory) {
  const armdb = values.armdb ?? {};
  const lmdb = values.lmdb;
  const encryptedSqlite = ['sqlcipher', 'sqlite-chacha20'].filter((id) => values[id]?.load !== undefined);
  const bestEncryptedSqlite = encryptedSqlite.sort((a, b) => values[b].load - values[a].load)[0];
  const tree = memory?.VarTree;
  const map = values['armdb-map'];
  const mapNote = (metric, peer) =>
    map?.[metric] !== undefined && peer?.[metric] !== undefined && `VarMap: ${fixed(map[metric] / peer[metric])}×`;
  const target = (text, measured, comparison, threshold, how, note) => ({
    text,
    measured,
    threshold,
    comparison,
    how,
    note,
    status:
      measured === undefined ? 'not measured' : (comparison === '>=' ? measured >= threshold : measured <= threshold) ? 'met' : 'missed',
  });
  return [
    target(
      'put throughput (encrypted) ≥ 2× lmdb-js',
      lmdb && armdb.load / lmdb.load,
      '>=',
      2,
      'armdb (VarTree) load ÷ lmdb-js load',
      mapNote('load', lmdb),
    ),
    target(
      'put throughput (encrypted) ≥ 20× encrypted SQLite',
      bestEncryptedSqlite && armdb.load / values[bestEncryptedSqlite].load,
      '>=',
      20,
      `armdb (VarTree) load ÷ the faster encrypted SQLite (${bestEncryptedSqlite ?? 'none'})`,
      bestEncryptedSqlite && mapNote('load', values[bestEncryptedSqlite]),
    ),
    target(
      'hot get ≥ 2× lmdb-js',
      lmdb && armdb.hotGet / lmdb.hotGet,
      '>=',
      2,
      'armdb (VarTree) hot get ÷ lmdb-js hot get',
      mapNote('hotGet', lmdb),
    ),
    target(
      'cold get within 1.5× of raw pread + decrypt',
      armdb.coldVsBaseline,
      '<=',
      1.5,
      'time per armdb cold get ÷ time per bare random 4 KiB pread + AES-256-GCM open, the floor measured right after the gets (median of the per-repetition ratios)',
      physical.preadDecryptPerSecond &&
        `against the separate physical-limits measurement: ${fixed(physical.preadDecryptPerSecond / armdb.coldGet)}×`,
    ),
    target('scan ≥ 1.3× lmdb-js', lmdb && armdb.scan / lmdb.scan, '>=', 1.3, 'armdb scan ÷ lmdb-js scan'),
    target(
      'scan after compact() ≥ 1.3× lmdb-js',
      lmdb && armdb.scanCompacted !== undefined ? armdb.scanCompacted / lmdb.scan : undefined,
      '>=',
      1.3,
      'armdb scan after compact() (live records rewritten in key order) ÷ lmdb-js scan',
    ),
    target(
      'index overhead ≤ 64 bytes/key beyond the key',
      tree && tree.indexBytesPerKey - 16,
      '<=',
      64,
      'VarTree stats().indexBytes / N − 16-byte key',
      tree &&
        `heap+external delta ${tree.heapBytesPerKey.toFixed(0)} B/key, RSS delta ${tree.rssBytesPerKey.toFixed(0)} B/key (key included)`,
    ),
    armdb.spaceCompacted === undefined
      ? target(
          'space ≤ 1.3× live data (after compaction)',
          armdb.space,
          '<=',
          1.3,
          'du of the directory ÷ (N × 116 B), measured right after the load',
          'this build has no compact(): measured as is',
        )
      : target(
          'space ≤ 1.3× live data (after compaction)',
          armdb.spaceCompacted,
          '<=',
          1.3,
          'du ÷ live bytes after the 90/10 mix (overwrites), the sync rounds and an explicit compact()',
          `compact() rewrote ${fixed(armdb.compactFilesIn, 0)} files, reclaimed ${fixed(armdb.compactReclaimedBytes / 1e6, 1)} MB; right after the load (no dead data): ${fixed(armdb.space)}×`,
        ),
  ];
}

// ---------------------------------------------------------------- Markdown

const fixed = (value, digits = 2) => (value === undefined || Number.isNaN(value) ? '–' : value.toFixed(digits));

function formatAbsolute(value, unit) {
  if (value === undefined) return '–';
  if (unit === 'ms') return value < 10 ? value.toFixed(2) : value.toFixed(0);
  if (unit === '×') return value.toFixed(2);
  return value >= 1e6 ? `${(value / 1e6).toFixed(2)} M` : value >= 1e4 ? `${(value / 1e3).toFixed(0)} k` : value.toFixed(0);
}

function labelOf(adapters, id) {
  return adapters.find((adapter) => adapter.id === id)?.label ?? id;
}

function activeMetrics(values) {
  return METRICS.filter((metric) => Object.values(values).some((store) => store[metric.key] !== undefined));
}

/** `median [min–max]` of a metric's repetitions, for the per-run table. */
function withSpread(samples, value, unit) {
  if (samples === undefined || samples.length < 2) return formatAbsolute(value, unit);
  return `${formatAbsolute(value, unit)} [${formatAbsolute(Math.min(...samples), unit)}–${formatAbsolute(Math.max(...samples), unit)}]`;
}

export function renderMarkdown(result) {
  const { meta, profile, adapters, skipped, samples, values, ratioTable, targets, physical, memory, armdbDetails } = result;
  const ids = adapters.map((adapter) => adapter.id);
  const lines = [];
  lines.push(`# armdb benchmark: ${profile.name} profile (N = ${profile.n.toLocaleString('en-US')}, ${profile.reps} repetitions, medians)`);
  lines.push('');
  lines.push(
    `${meta.date} · ${meta.cpus} × ${meta.cpuModel} · ${meta.memoryGiB} GiB RAM · Node ${meta.node} · OpenSSL ${meta.openssl} · ${meta.platform}/${meta.arch} · ` +
      `load average ${meta.loadAverageBefore[0].toFixed(1)} before, ${meta.loadAverageAfter[0].toFixed(1)} after (1 min; above ${meta.cpus} means other processes competed for the CPUs)`,
  );
  lines.push('');
  lines.push('## Ratios to the best peer of this run');
  lines.push('');
  lines.push(
    'Each cell is `store ÷ best peer` for that row. Throughput rows: above 1 beats the best peer. Rows marked ↓ (latency, open time, space): below 1 beats it.',
  );
  lines.push('');
  const ratioRows = activeMetrics(values)
    .filter((metric) => ratioTable[metric.key] !== undefined)
    .map((metric) => {
      const row = ratioTable[metric.key];
      return [
        `${metric.label}${metric.better === 'lower' ? ' ↓' : ''}`,
        labelOf(adapters, row.bestPeer),
        ...ids.map((id) => (metric.armdbOnly && !id.startsWith('armdb') ? '' : fixed(row.ratios[id]))),
      ];
    });
  lines.push(table(['workload', 'best peer', ...ids], ratioRows));
  lines.push('');
  lines.push('## Targets (issue 6)');
  lines.push('');
  lines.push(
    table(
      ['target', 'measured', 'verdict', 'how'],
      targets.map((entry) => [
        entry.text,
        `${fixed(entry.measured)}${entry.text.includes('bytes/key') ? ' B/key' : '×'}`,
        entry.status === 'met' ? '**met**' : entry.status === 'missed' ? '**missed**' : entry.status,
        [entry.how, entry.note].filter(Boolean).join('; '),
      ]),
    ),
  );
  lines.push('');
  lines.push('## armdb against the physical limits of this machine (same run)');
  lines.push('');
  const armdb = values.armdb ?? {};
  lines.push(
    table(
      ['comparison', 'ratio'],
      [
        ['armdb cold get ÷ bare 4 KiB pread + AES-GCM open measured right after it (throughput)', fixed(1 / armdb.coldVsBaseline)],
        [
          'armdb cold get ÷ bare 4 KiB pread + AES-GCM open of the physical-limits pass (throughput)',
          fixed(armdb.coldGet / physical.preadDecryptPerSecond),
        ],
        ['armdb cold get ÷ bare 4 KiB pread (throughput)', fixed(armdb.coldGet / physical.preadPerSecond)],
        [
          'armdb load MB/s (keys + values) ÷ sequential write MB/s with fsync',
          fixed(values.armdb?.loadMbPerSecond / physical.seqWriteMbPerSecond),
        ],
        ['armdb load MB/s ÷ AES-256-GCM seal MB/s (4 KiB pages)', fixed(values.armdb?.loadMbPerSecond / physical.aesGcmSealMbPerSecond)],
        ['armdb (noble) load ÷ armdb (node) load', fixed(values['armdb-noble']?.load / armdb.load)],
        ["armdb (encrypted) load ÷ armdb ('none') load", fixed(armdb.load / values['armdb-none']?.load)],
      ],
    ),
  );
  lines.push('');
  lines.push('## armdb details');
  lines.push('');
  for (const [name, figures] of Object.entries(memory ?? {})) {
    lines.push(
      `- ${name} index memory, N = ${figures.count.toLocaleString('en-US')}: stats().indexBytes ${fixed(figures.indexBytesPerKey, 1)} B/key; ` +
        `heap+external delta ${fixed(figures.heapBytesPerKey, 1)} B/key; RSS delta ${fixed(figures.rssBytesPerKey, 1)} B/key (16-byte keys included).`,
    );
  }
  const hitRates = (metric) =>
    ids
      .filter((id) => id.startsWith('armdb'))
      .map((id) => `${id} ${fixed(100 * (values[id]?.[metric] ?? NaN), 1)} %`)
      .join(', ');
  lines.push(
    `- Block-cache hit rate of the hot gets (after warmup()): ${hitRates('hotCacheHitRate')}; of the cold gets: ${hitRates('coldCacheHitRate')}.`,
  );
  if (armdb.get4kCacheHitRate !== undefined || armdb.get64kCacheHitRate !== undefined) {
    lines.push(
      `- Block-cache hit rate of the hot gets of large values (after warmup()): 4 KiB: ${hitRates('get4kCacheHitRate')}; 64 KiB: ${hitRates('get64kCacheHitRate')}.`,
    );
  }
  lines.push(
    `- Hint files after close: ${
      armdbDetails.hintFiles
        ? `present; the "open" row reads them, the \`hints: false\` row rebuilds the index from the data files${armdbDetails.hintFilesAfterNoHintsOpen ? '' : ' (WARNING: the hints: false open removed them, so the "open" row rebuilt the index too)'}`
        : 'none (hints are not implemented yet): both open rows rebuild the index by reading every data file'
    }.`,
  );
  const kinds = (prefix) =>
    Object.entries(armdb)
      .filter(([name]) => name.startsWith(`${prefix}.`))
      .map(([name, ratio]) => `${name.slice(prefix.length + 1)} ${fixed(ratio)}×`)
      .join(', ');
  lines.push(`- Space right after the load, by file kind (÷ live bytes): ${kinds('space')}.`);
  if (armdbDetails.compaction) {
    lines.push(
      `- Compaction: after the mix, the sync rounds and compact() (${fixed(armdb.compactMs, 0)} ms, ${fixed(armdb.compactFilesIn, 0)} files in, ` +
        `${fixed(armdb.compactReclaimedBytes / 1e6, 1)} MB reclaimed, ${fixed(armdb.compactMbPerSecond, 0)} MB/s of files read; event-loop delay beyond the 5 ms sampling interval ` +
        `p99 ${fixed(armdb.compactLoopP99Ms, 1)} ms, max ${fixed(armdb.compactLoopMaxMs, 1)} ms): ${fixed(armdb.spaceCompacted)}× live bytes (${kinds('spaceCompacted')}). ` +
        'The 1 GiB compaction is `bench/compaction.js`.',
    );
  } else lines.push('- Compaction: not in this build; space is measured as is.');
  lines.push('');
  lines.push('## Absolute numbers (this run only: never compare them across runs or machines)');
  lines.push('');
  lines.push('Median [lowest–highest] of the repetitions.');
  lines.push('');
  lines.push(
    table(
      ['workload', 'unit', ...ids],
      activeMetrics(values).map((metric) => [
        metric.label,
        metric.unit,
        ...ids.map((id) => withSpread(samples[id]?.[metric.key], values[id]?.[metric.key], metric.unit)),
      ]),
    ),
  );
  lines.push('');
  lines.push(
    `Physical limits: sequential write with fsync ${fixed(physical.seqWriteMbPerSecond, 0)} MB/s; random 4 KiB pread ${formatAbsolute(physical.preadPerSecond)}/s; ` +
      `pread + AES-256-GCM open ${formatAbsolute(physical.preadDecryptPerSecond)}/s; AES-256-GCM seal (4 KiB, node:crypto) ${fixed(physical.aesGcmSealMbPerSecond, 0)} MB/s.`,
  );
  lines.push('');
  lines.push('## Stores');
  lines.push('');
  for (const adapter of adapters) lines.push(`- **${adapter.id}** (${adapter.label}): ${adapter.config}`);
  for (const entry of skipped) lines.push(`- **${entry.id}** (${entry.label}): SKIPPED: ${entry.reason}`);
  lines.push('');
  lines.push('## Profile');
  lines.push('');
  lines.push('```json');
  lines.push(JSON.stringify(profile));
  lines.push('```');
  return `${lines.join('\n')}\n`;
}
