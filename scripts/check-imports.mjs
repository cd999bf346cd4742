// The import graph of src/ (run by `npm run lint`): fails when modules import each other in a
// cycle, or when a layer imports one above it (text → model → train → jobs → api → cli, see
// docs/architecture.md). Every import counts: type-only ones, `export … from`, `import('…')` in
// types and dynamic import() — a cycle of types alone still ties the modules' concepts together.
// Reads the sources with the TypeScript compiler's parser; resolves relative specifiers only (a
// package is no module of ours).
import { readdirSync, readFileSync, existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const src = path.join(root, 'src');
const LAYERS = ['text', 'model', 'train', 'jobs', 'api', 'cli'];

function sources(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (/\.(ts|js|mjs)$/.test(name) && !name.endsWith('.as.ts')) out.push(p);
  }
  return out;
}

/** Relative specifiers a file imports, in any form. */
function specifiers(file) {
  const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const out = [];
  const visit = (node) => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      out.push(node.moduleSpecifier.text);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      out.push(node.argument.literal.text);
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] &&
      ts.isStringLiteral(node.arguments[0])
    ) {
      out.push(node.arguments[0].text);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out.filter((s) => s.startsWith('.'));
}

/** The file a relative specifier names (`./x.js` is `./x.ts` in a TypeScript source). */
function resolve(from, spec) {
  const p = path.resolve(path.dirname(from), spec);
  for (const c of [p, p.replace(/\.js$/, '.ts'), p.replace(/\.mjs$/, '.mts'), `${p}.ts`, path.join(p, 'index.ts')]) {
    if (existsSync(c) && statSync(c).isFile()) return c;
  }
  return undefined;
}

const rel = (f) => path.relative(root, f);
const layerOf = (f) => LAYERS.indexOf(path.relative(src, f).split(path.sep)[0]);

const files = sources(src);
const graph = new Map();
const problems = [];
for (const f of files) {
  const deps = new Set();
  for (const s of specifiers(f)) {
    const to = resolve(f, s);
    if (!to) continue; // a missing file is tsc's error to report
    if (!to.startsWith(src + path.sep)) continue;
    deps.add(to);
    const [a, b] = [layerOf(f), layerOf(to)];
    if (a >= 0 && b > a) problems.push(`layer: ${rel(f)} imports ${rel(to)} (${LAYERS[a]} is below ${LAYERS[b]})`);
  }
  graph.set(f, deps);
}

// Tarjan's strongly connected components: every component of more than one module (or a module
// importing itself) is a cycle
let index = 0;
const idx = new Map();
const low = new Map();
const stack = [];
const onStack = new Set();
function strongConnect(v) {
  idx.set(v, index);
  low.set(v, index++);
  stack.push(v);
  onStack.add(v);
  for (const w of graph.get(v) ?? []) {
    if (!idx.has(w)) {
      strongConnect(w);
      low.set(v, Math.min(low.get(v), low.get(w)));
    } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
  }
  if (low.get(v) === idx.get(v)) {
    const comp = [];
    let w;
    do {
      w = stack.pop();
      onStack.delete(w);
      comp.push(w);
    } while (w !== v);
    if (comp.length > 1 || graph.get(v)?.has(v)) problems.push(`cycle: ${describeCycle(new Set(comp))}`);
  }
}

/** One concrete loop inside a component, for the message: a → b → … → a. */
function describeCycle(comp) {
  const start = [...comp].sort()[0];
  const prev = new Map([[start, null]]);
  const queue = [start];
  while (queue.length) {
    const v = queue.shift();
    for (const w of graph.get(v)) {
      if (!comp.has(w)) continue;
      if (w === start) {
        const loop = [];
        for (let x = v; x !== null; x = prev.get(x)) loop.unshift(rel(x));
        return [...loop, rel(start)].join(' → ') + (comp.size > loop.length ? ` (and ${comp.size - loop.length} more modules in the same knot)` : '');
      }
      if (!prev.has(w)) {
        prev.set(w, v);
        queue.push(w);
      }
    }
  }
  return [...comp].map(rel).join(', ');
}

for (const f of files) if (!idx.has(f)) strongConnect(f);

if (problems.length) {
  for (const p of problems) console.error(p);
  process.exit(1);
}
console.log(`check-imports: ${files.length} modules in src/, no import cycles, every import goes down the layers`);
