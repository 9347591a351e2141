/**
 * deploy/grafana/bulb.json: every query parses as PromQL (Prometheus's own grammar) and names only metrics a
 * running bulb exports, and the dashboard covers what operators asked for.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { parser } from '@prometheus-io/lezer-promql';
import * as admin from '../helpers/admin.js';
import { startBackend } from '../helpers/backend.js';
import { startBulb } from '../helpers/bulb.js';
import { request } from '../helpers/http.js';

const DASHBOARD = new URL('../../deploy/grafana/bulb.json', import.meta.url);

interface Panel {
  readonly title?: string;
  readonly type: string;
  readonly targets?: readonly { readonly expr: string }[];
  readonly panels?: readonly Panel[];
}
interface Dashboard {
  readonly uid: string;
  readonly panels: readonly Panel[];
  readonly templating: { readonly list: readonly { readonly name: string; readonly query?: unknown; readonly definition?: string }[] };
}

/** Every query of the dashboard: panel targets (rows' nested panels too) and variable queries. */
function queries(d: Dashboard): { where: string; expr: string }[] {
  const out: { where: string; expr: string }[] = [];
  const walk = (panels: readonly Panel[]) => {
    for (const p of panels) {
      for (const t of p.targets ?? []) out.push({ where: `panel "${p.title}"`, expr: t.expr });
      if (p.panels) walk(p.panels);
    }
  };
  walk(d.panels);
  for (const v of d.templating.list) {
    // label_values(metric, label) is Grafana's, not PromQL: check its metric the same way.
    const m = /^label_values\((.+),\s*\w+\)$/.exec(v.definition ?? '');
    if (m) out.push({ where: `variable $${v.name}`, expr: m[1] });
  }
  return out;
}

/** Grafana's variables in a query, replaced by what they stand for at run time, so Prometheus's grammar can parse it. */
const substitute = (expr: string) => expr.replaceAll('$__rate_interval', '1m').replaceAll('$instance', '.*');

/** The metric names a query reads, from the parse tree (the name in each vector selector); throws on a syntax error. */
function metricNames(expr: string): string[] {
  const tree = parser.parse(expr);
  const names: string[] = [];
  const errors: number[] = [];
  tree.iterate({
    enter: (n) => {
      if (n.type.isError) errors.push(n.from);
      if (n.name === 'Identifier' && n.node.parent?.name === 'VectorSelector') names.push(expr.slice(n.from, n.to));
    },
  });
  if (errors.length > 0) throw new Error(`PromQL syntax error at ${errors[0]} in ${expr}`);
  return names;
}

/** Names in a real bulb's exposition, histograms with their _bucket, _sum and _count series. */
async function exported(t: TestContext): Promise<Set<string>> {
  const a = await startBackend('a');
  t.after(() => a.close());
  const bulb = await startBulb(t, ['--backend', a.url]);
  await request(`${bulb.url}/`);
  const text = await admin.metricsText(bulb);
  const names = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    names.add(m[1]);
    if (m[2] === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(m[1] + s);
  }
  for (const m of text.matchAll(/^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/gm)) names.add(m[1]);
  return names;
}

test('every dashboard query is valid PromQL and names only metrics bulb exports', async (t) => {
  const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as Dashboard;
  assert.equal(dashboard.uid, 'bulb');
  const all = queries(dashboard);
  assert.ok(all.length >= 20, `the dashboard has queries (${all.length})`);
  const names = await exported(t);
  const used = new Set<string>();
  for (const q of all) {
    assert.doesNotMatch(q.expr, /\$(?!__rate_interval\b|instance\b)/, `${q.where}: only the $__rate_interval and $instance variables`);
    const metrics = metricNames(substitute(q.expr));
    assert.ok(metrics.length > 0, `${q.where} reads a metric: ${q.expr}`);
    for (const m of metrics) {
      assert.ok(names.has(m), `${q.where} names ${m}, which bulb does not export`);
      used.add(m);
    }
    if (q.where.startsWith('panel')) assert.match(q.expr, /instance=~"\$instance"/, `${q.where} follows the instance picker`);
  }
  // What the dashboard is for: traffic and errors per backend, latency quantiles, health, ejections, retries and
  // the retry budget, discovery errors, reconcile time, memory and event-loop lag.
  for (const m of [
    'bulb_requests_total',
    'bulb_request_duration_seconds_bucket',
    'bulb_backend_healthy',
    'bulb_ejections_total',
    'bulb_retries_total',
    'bulb_retries_refused_total',
    'bulb_discovery_errors_total',
    'bulb_reconcile_duration_seconds_bucket',
    'process_resident_memory_bytes',
    'nodejs_eventloop_lag_p99_seconds',
  ]) {
    assert.ok(used.has(m), `the dashboard shows ${m}`);
  }
});

test('the query check itself: a misspelt metric and a syntax error are caught', () => {
  assert.deepEqual(metricNames('sum by (backend) (rate(bulb_request_total{code_class="5xx"}[1m]))'), ['bulb_request_total']);
  assert.throws(() => metricNames('sum by (backend) (rate(bulb_requests_total[1m])'), /syntax error/);
});
