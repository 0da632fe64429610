import { join } from 'node:path';
import { folderGraph, importCycles } from './folder-graph';

describe('folder graph', () => {
  it('finds a cycle through a third folder', () => {
    const graph = new Map([
      ['a', new Set(['b'])],
      ['b', new Set(['c'])],
      ['c', new Set(['a'])],
      ['d', new Set(['a'])],
    ]);
    expect(importCycles(graph)).toEqual([['a', 'b', 'c']]);
  });

  it('cost-cap: no folder imports a folder that imports it back', () => {
    const graph = folderGraph(join(__dirname, '../../services/cost-cap/src'));
    expect(graph.get('admission')).toBeDefined();
    expect(importCycles(graph)).toEqual([]);
  });
});
