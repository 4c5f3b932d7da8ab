// Summarises V8 .cpuprofile files (from `node --cpu-prof`): self time by package and by function, and
// with --callers <function name>, which call paths lead to it. A .heapprofile (`npm run bench -- --heap-sample`):
// bytes allocated by package and by function, per saga with --sagas N.
//   node scripts/profile-summary.mjs <file.cpuprofile>... [--top 25] [--callers writeBuffer] [--skip-ms 5000]
//   node scripts/profile-summary.mjs <pid.heapprofile> --sagas 3546
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '25' }, callers: { type: 'string' }, inclusive: { type: 'string' }, 'skip-ms': { type: 'string', default: '0' }, sagas: { type: 'string' } } });
const TOP = Number(values.top);

/** node_modules/<pkg> (scoped too), our workspace folder, node: internals, or what V8 calls it. */
function packageOf(url, name) {
  if (!url) return `(${name || 'native'})`;
  const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (modules) return modules[1];
  if (url.startsWith('node:')) return 'node:' + url.slice(5).split('/')[0];
  const ours = /\/(orchestrator|services\/\w+|shared)\/dist\/(.*)$/.exec(url);
  return ours ? `sagaflow ${ours[1]}/${ours[2].split('/')[0]}` : url;
}

/** A sampling heap profile (a tree of call frames, each with the bytes it allocated itself). */
function summariseHeap(file, profile) {
  const sagas = Number(values.sagas ?? 0);
  const byPackage = new Map();
  const byFunction = new Map();
  let total = 0;
  const visit = (node) => {
    const { callFrame, selfSize } = node;
    if (selfSize) {
      const pkg = packageOf(callFrame.url, callFrame.functionName);
      const fn = `${callFrame.functionName || '(anonymous)'} ${pkg}:${callFrame.lineNumber + 1}`;
      byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + selfSize);
      byFunction.set(fn, (byFunction.get(fn) ?? 0) + selfSize);
      total += selfSize;
    }
    for (const child of node.children ?? []) visit(child);
  };
  visit(profile.head);
  const amount = (bytes) => (sagas > 0 ? `${(bytes / sagas / 1024).toFixed(1).padStart(6)} KB/saga` : `${(bytes / 1024 / 1024).toFixed(1).padStart(6)} MB`);
  const show = (map) =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, TOP)
      .map(([key, bytes]) => `  ${amount(bytes)} ${((100 * bytes) / total).toFixed(1).padStart(5)}%  ${key}`)
      .join('\n');
  console.log(`${file}: ${amount(total).trim()} allocated (sampled)\n by package:\n${show(byPackage)}\n by function:\n${show(byFunction)}\n`);
}

for (const file of positionals) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  if (profile.head) {
    summariseHeap(file, profile);
    continue;
  }
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map();
  // --skip-ms: leave out the first milliseconds (start-up: module loading, migrations).
  let clock = 0;
  profile.samples.forEach((id, index) => {
    clock += profile.timeDeltas[index] ?? 0;
    if (clock / 1000 >= Number(values['skip-ms'])) self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[index] ?? 0));
  });
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const byPackage = new Map();
  const byFunction = new Map();
  for (const [id, micros] of self) {
    const { callFrame } = byId.get(id);
    const pkg = packageOf(callFrame.url, callFrame.functionName);
    byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + micros);
    const fn = `${callFrame.functionName || '(anonymous)'} ${pkg}:${callFrame.lineNumber + 1}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + micros);
  }
  const show = (map) =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, TOP)
      .map(([key, micros]) => `  ${((100 * micros) / total).toFixed(1).padStart(5)}%  ${key}`)
      .join('\n');
  console.log(`${file}: ${(total / 1000).toFixed(0)} ms sampled\n by package:\n${show(byPackage)}\n by function:\n${show(byFunction)}\n`);
  if (values.inclusive) {
    // Time spent in (or under) each named function, counted once per sample.
    const parent = new Map();
    for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
    const names = values.inclusive.split(',');
    const under = new Map(names.map((name) => [name, 0]));
    for (const [id, micros] of self) {
      const seen = new Set();
      for (let at = id; at !== undefined; at = parent.get(at)) seen.add(byId.get(at).callFrame.functionName);
      for (const name of names) if (seen.has(name)) under.set(name, under.get(name) + micros);
    }
    console.log(` inclusive:\n${show(under)}\n`);
  }
  if (values.callers) {
    const parent = new Map();
    for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
    const paths = new Map();
    for (const [id, micros] of self) {
      if (byId.get(id).callFrame.functionName !== values.callers) continue;
      const chain = [];
      for (let at = parent.get(id); at !== undefined && chain.length < 8; at = parent.get(at)) {
        const { callFrame } = byId.get(at);
        chain.push(`${callFrame.functionName || '(anon)'}@${packageOf(callFrame.url, callFrame.functionName)}`);
      }
      const key = chain.join(' < ');
      paths.set(key, (paths.get(key) ?? 0) + micros);
    }
    console.log(` callers of ${values.callers}:\n${show(paths)}\n`);
  }
}
