/**
 * A small parser for the Prometheus text exposition format (0.0.4), enough to read what bulb's `/metrics`
 * serves: `# HELP` / `# TYPE` lines and samples with escaped label values. Tests read numbers from it rather
 * than grepping text, so a malformed exposition fails them too.
 */

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Exposition {
  readonly samples: readonly Sample[];
  /** Metric family name → counter, gauge, histogram, summary or untyped. */
  readonly types: ReadonlyMap<string, string>;
  readonly help: ReadonlyMap<string, string>;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;

function parseValue(text: string): number {
  // Prometheus reads these with Go's ParseFloat, case-insensitively (prom-client writes NaN as "Nan").
  const lower = text.toLowerCase();
  if (lower === '+inf' || lower === 'inf') return Infinity;
  if (lower === '-inf') return -Infinity;
  if (lower === 'nan') return NaN;
  const n = Number(text);
  if (text === '' || Number.isNaN(n)) throw new Error(`not a sample value: ${JSON.stringify(text)}`);
  return n;
}

/** Parses `{a="x",b="y\"z"}` starting at `line[at] === '{'`; returns the labels and the index after `}`. */
function parseLabels(line: string, at: number): [Record<string, string>, number] {
  const labels: Record<string, string> = {};
  let i = at + 1;
  for (;;) {
    while (line[i] === ' ' || line[i] === ',') i++;
    if (line[i] === '}') return [labels, i + 1];
    const name = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(i))?.[0];
    if (!name || line[i + name.length] !== '=' || line[i + name.length + 1] !== '"') throw new Error(`bad label at ${i}: ${line}`);
    i += name.length + 2;
    let value = '';
    for (;;) {
      const c = line[i];
      if (c === undefined) throw new Error(`unterminated label value: ${line}`);
      if (c === '"') break;
      if (c === '\\') {
        const e = line[i + 1];
        value += e === 'n' ? '\n' : e === '\\' ? '\\' : e === '"' ? '"' : `\\${e ?? ''}`;
        i += 2;
      } else {
        value += c;
        i++;
      }
    }
    labels[name] = value;
    i++;
  }
}

export function parseExposition(text: string): Exposition {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) ?(.*)$/.exec(line);
      if (m?.[1] === 'TYPE') types.set(m[2], m[3]);
      else if (m?.[1] === 'HELP') help.set(m[2], m[3]);
      continue;
    }
    const name = NAME.exec(line)?.[0];
    if (!name) throw new Error(`bad sample line: ${line}`);
    let labels: Record<string, string> = {};
    let i = name.length;
    if (line[i] === '{') [labels, i] = parseLabels(line, i);
    const [value] = line.slice(i).trim().split(/\s+/); // an optional timestamp may follow
    samples.push({ name, labels, value: parseValue(value ?? '') });
  }
  return { samples, types, help };
}

/** Samples named `name` whose labels include every pair in `labels`. */
export function select(e: Exposition, name: string, labels: Record<string, string> = {}): Sample[] {
  return e.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

/** The one sample named `name` with exactly these labels, or undefined when there is none. */
export function sample(e: Exposition, name: string, labels: Record<string, string> = {}): number | undefined {
  const want = Object.keys(labels).length;
  return select(e, name, labels).find((s) => Object.keys(s.labels).length === want)?.value;
}

/** The sum of every sample named `name` matching `labels` (0 when none). */
export function total(e: Exposition, name: string, labels: Record<string, string> = {}): number {
  return select(e, name, labels).reduce((n, s) => n + s.value, 0);
}
