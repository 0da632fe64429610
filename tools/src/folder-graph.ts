import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/**
 * The import graph of a service's folders (docs/decisions.md "cost-cap folders import one way"). Files at
 * the root of src/ are nodes of their own: app.module.ts and main.ts compose everything, config.ts and
 * logger.ts are imported by everyone. Relative imports only; libs are below every folder by construction.
 */
export function folderGraph(srcRoot: string): Map<string, Set<string>> {
  const root = resolve(srcRoot);
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (path.endsWith('.ts') && !/\.(spec|int-spec|e2e-spec)\.ts$/.test(path)) files.push(path);
    }
  };
  walk(root);
  const nodeOf = (file: string) => {
    const folder = relative(root, dirname(file));
    return folder === '' ? relative(root, file).replace(/\.ts$/, '') : folder;
  };
  const graph = new Map<string, Set<string>>();
  for (const file of files) {
    const from = nodeOf(file);
    if (!graph.has(from)) graph.set(from, new Set());
    for (const match of readFileSync(file, 'utf8').matchAll(/from '(\.\.?\/[^']+)'/g)) {
      const to = nodeOf(`${resolve(dirname(file), match[1]!)}.ts`);
      if (to !== from) graph.get(from)!.add(to);
    }
  }
  return graph;
}

/** The groups of folders that import each other, directly or through others (strongly connected). */
export function importCycles(graph: Map<string, Set<string>>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (node: string) => {
    index.set(node, next);
    low.set(node, next++);
    stack.push(node);
    onStack.add(node);
    for (const to of graph.get(node) ?? []) {
      if (!index.has(to)) {
        visit(to);
        low.set(node, Math.min(low.get(node)!, low.get(to)!));
      } else if (onStack.has(to)) low.set(node, Math.min(low.get(node)!, index.get(to)!));
    }
    if (low.get(node) === index.get(node)) {
      const group: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        group.push(member);
      } while (member !== node);
      if (group.length > 1) cycles.push(group.sort());
    }
  };
  for (const node of graph.keys()) if (!index.has(node)) visit(node);
  return cycles;
}

/** `node dist/tools/tools/src/folder-graph.js services/cost-cap/src`: prints the graph, fails on a cycle. */
if (require.main === module) {
  const graph = folderGraph(process.argv[2] ?? 'services/cost-cap/src');
  for (const [from, to] of [...graph].sort()) console.log(`${from} -> ${[...to].sort().join(', ')}`);
  const cycles = importCycles(graph);
  for (const cycle of cycles) console.error(`folders importing each other: ${cycle.join(', ')}`);
  process.exit(cycles.length > 0 ? 1 : 0);
}
