// What every benchmark script shares: its command-line options, the median of its repetitions and the
// table it prints. Plain JavaScript typed with JSDoc, so the scripts run on Node 20 without a build
// step and `npm run typecheck` still checks them (bench/tsconfig.json).
import { parseArgs } from 'node:util';

/**
 * A numeric option: `--n 50000`. Its value must be a finite number at least `min` (an integer when
 * `integer` is set). Without a default, an option that is not given is undefined.
 * @typedef {object} NumberOption
 * @property {'number'} type
 * @property {number} [default]
 * @property {number} [min]
 * @property {boolean} [integer]
 * @property {string} [help]
 */

/**
 * A text option: `--collection VarTree`. With `choices`, the value must be one of them. Without a
 * default, an option that is not given is undefined.
 * @typedef {object} StringOption
 * @property {'string'} type
 * @property {string} [default]
 * @property {readonly string[]} [choices]
 * @property {string} [help]
 */

/**
 * A flag: `--full`. False unless given.
 * @typedef {object} BooleanOption
 * @property {'boolean'} type
 * @property {string} [help]
 */

/** @typedef {NumberOption | StringOption | BooleanOption} OptionSpec */

/**
 * The parsed value of an option of spec `O`.
 * @template {OptionSpec} O
 * @typedef {O extends BooleanOption ? boolean : O extends { default: infer D } ? D extends number ? number : string : O extends NumberOption ? number | undefined : string | undefined} OptionValue
 */

/**
 * Parses the command line of a benchmark script. Every option is `--name value` (or `--name` for a
 * flag); a wrong value or an unknown option prints `usage` and the option list, and exits with 2,
 * as does `--help` (with 0).
 *
 * @example
 * const options = parseOptions('node bench/engine.js [options]', {
 *   n: { type: 'number', default: 1_000_000, min: 1, integer: true, help: 'keys' },
 *   collection: { type: 'string', default: 'VarMap', choices: ['VarMap', 'VarTree'] },
 * });
 * options.n; // number
 *
 * @template {Record<string, OptionSpec>} S
 * @param {string} usage the first line of the help text: how the script is run
 * @param {S} spec
 * @param {readonly string[]} [argv] the arguments, by default those of this process
 * @returns {{ [K in keyof S]: OptionValue<S[K]> }}
 */
export function parseOptions(usage, spec, argv = process.argv.slice(2)) {
  /** @type {Record<string, { type: 'string' | 'boolean' }>} */
  const nodeOptions = { help: { type: 'boolean' } };
  for (const [name, option] of Object.entries(spec)) nodeOptions[name] = { type: option.type === 'boolean' ? 'boolean' : 'string' };
  /** @type {Record<string, string | boolean | undefined>} */
  let raw;
  try {
    raw = parseArgs({ args: [...argv], options: nodeOptions, strict: true }).values;
  } catch (error) {
    exitWithUsage(usage, spec, error instanceof Error ? error.message : String(error));
  }
  if (raw['help'] === true) exitWithUsage(usage, spec);
  /** @type {Record<string, unknown>} */
  const parsed = {};
  for (const [name, option] of Object.entries(spec)) {
    const given = raw[name];
    if (option.type === 'boolean') {
      parsed[name] = given === true;
    } else if (option.type === 'number') {
      const value = given === undefined ? option.default : Number(given);
      const low = option.min ?? Number.NEGATIVE_INFINITY;
      if (value !== undefined && (!Number.isFinite(value) || value < low || (option.integer === true && !Number.isInteger(value)))) {
        exitWithUsage(usage, spec, `--${name} expected ${option.integer ? 'an integer' : 'a number'} ≥ ${low}, got ${String(given)}`);
      }
      parsed[name] = value;
    } else {
      const value = typeof given === 'string' ? given : option.default;
      if (value !== undefined && option.choices !== undefined && !option.choices.includes(value)) {
        exitWithUsage(usage, spec, `--${name} expected one of ${option.choices.join(', ')}, got ${value}`);
      }
      parsed[name] = value;
    }
  }
  return /** @type {{ [K in keyof S]: OptionValue<S[K]> }} */ (parsed);
}

/**
 * @param {string} usage
 * @param {Record<string, OptionSpec>} spec
 * @param {string} [problem]
 * @returns {never}
 */
function exitWithUsage(usage, spec, problem) {
  const lines = [`Usage: ${usage}`, '', 'Options:'];
  for (const [name, option] of Object.entries(spec)) {
    const value = option.type === 'boolean' ? '' : option.type === 'number' ? ' <number>' : ` <${option.choices?.join('|') ?? 'text'}>`;
    const fallback = option.type !== 'boolean' && option.default !== undefined ? ` (default ${option.default})` : '';
    lines.push(`  --${name}${value}${option.help === undefined ? '' : `  ${option.help}`}${fallback}`);
  }
  if (problem !== undefined) {
    console.error(`${problem}\n\n${lines.join('\n')}`);
    process.exit(2);
  }
  console.log(lines.join('\n'));
  process.exit(0);
}

/**
 * The median of the finite numbers among `samples` (others are ignored); undefined when there are
 * none. With an even count, the mean of the two middle values.
 *
 * @example
 * median([3, 1, 2]); // 2
 * median([4, 1, 3, 2]); // 2.5
 *
 * @param {readonly (number | undefined)[]} samples
 * @returns {number | undefined}
 */
export function median(samples) {
  const sorted = /** @type {number[]} */ (samples.filter((value) => typeof value === 'number' && Number.isFinite(value))).sort(
    (left, right) => left - right,
  );
  if (sorted.length === 0) return undefined;
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/**
 * A Markdown table (GitHub's pipe syntax): readable in a terminal, and pasted as it is into
 * docs/benchmarks.md. Cells are printed as given; format numbers before.
 *
 * @example
 * markdownTable(['provider', 'MB/s'], [['node', '208.0'], ['noble', '12.4']]);
 *
 * @param {readonly string[]} header
 * @param {ReadonlyArray<ReadonlyArray<string | number>>} rows
 * @returns {string}
 */
export function markdownTable(header, rows) {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((row) => `| ${row.join(' | ')} |`)].join('\n');
}

/**
 * Prints {@link markdownTable} to standard output.
 * @param {readonly string[]} header
 * @param {ReadonlyArray<ReadonlyArray<string | number>>} rows
 */
export function printTable(header, rows) {
  console.log(markdownTable(header, rows));
}
