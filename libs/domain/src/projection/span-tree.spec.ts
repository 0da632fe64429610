import { resolveSpans, type SpanNode, type StoredSpanNode } from './span-tree';

/** The verification trace (docs/otlp.md "Aggregate spans"): a root llm.completion over llm.inference and llm.response.parse, all with usage. */
const root: SpanNode = { group: 'g', spanId: 'r', ancestors: [] };
const inference: SpanNode = { group: 'g', spanId: 'i', ancestors: ['r'] };
const parse: SpanNode = { group: 'g', spanId: 'p', ancestors: ['r'] };
const stored = (node: SpanNode, counted: boolean): StoredSpanNode => ({ ...node, counted });

describe('resolveSpans', () => {
  it.each([
    ['all in one batch', [], [root, inference, parse], ['aggregate', 'counted', 'counted'], []],
    ['children stored, root arrives', [stored(inference, true), stored(parse, true)], [root], ['aggregate'], []],
    ['root stored and counted, a child arrives', [stored(root, true)], [inference], ['counted'], ['r']],
    [
      'root already retracted, the other child arrives',
      [stored(root, false), stored(inference, true)],
      [parse],
      ['counted'],
      [],
    ],
    ['a re-export of a stored span', [stored(inference, true)], [inference], ['duplicate'], []],
    ['the same span twice in a batch', [], [inference, inference], ['counted', 'duplicate'], []],
  ])('%s', (_name, before, incoming, outcomes, retracted) => {
    const resolution = resolveSpans(before, incoming);
    expect(resolution.outcomes).toEqual(outcomes);
    expect(resolution.retract.map((node) => node.spanId)).toEqual(retracted);
  });

  it('links through an intermediate span the exporter saw, and never across traces or runs', () => {
    const grandchild = { group: 'g', spanId: 'c', ancestors: ['step', 'r'] };
    expect(resolveSpans([stored(root, true)], [grandchild]).retract.map((n) => n.spanId)).toEqual(['r']);
    const otherTrace = { group: 'h', spanId: 'c', ancestors: ['r'] };
    expect(resolveSpans([stored(root, true)], [otherTrace])).toEqual({ outcomes: ['counted'], retract: [] });
  });

  it('gives the same counted set in every arrival order', () => {
    const nodes = [root, inference, parse];
    const orders = [
      [0, 1, 2],
      [0, 2, 1],
      [1, 0, 2],
      [1, 2, 0],
      [2, 0, 1],
      [2, 1, 0],
    ];
    for (const order of orders) {
      let tree: StoredSpanNode[] = [];
      for (const index of order) {
        const { outcomes, retract } = resolveSpans(tree, [nodes[index]!]);
        tree = tree.map((node) => (retract.includes(node) ? { ...node, counted: false } : node));
        tree.push({ ...nodes[index]!, counted: outcomes[0] === 'counted' });
      }
      expect(
        tree
          .filter((node) => node.counted)
          .map((node) => node.spanId)
          .sort(),
      ).toEqual(['i', 'p']);
    }
  });

  it('ignores a span naming itself as its ancestor', () => {
    expect(resolveSpans([], [{ group: 'g', spanId: 'x', ancestors: ['x'] }]).outcomes).toEqual(['counted']);
  });
});
