import { csvRows, flatten, longRows } from './csv.interceptor';

describe('CSV rows', () => {
  it('flattens nested objects into dotted columns and arrays into a JSON cell', () => {
    expect(flatten({ a: 1, b: { c: 'x', d: { e: null } }, f: [1, 2] })).toEqual({
      a: 1,
      'b.c': 'x',
      'b.d.e': null,
      f: '[1,2]',
    });
  });

  it('exports the list under a path, one row per item', () => {
    expect(csvRows({ items: [{ id: 1, t: { x: 2 } }], next_cursor: null }, { filename: 'x', rows: 'items' })).toEqual([
      { id: 1, 't.x': 2 },
    ]);
  });

  it('turns a dashboard into (section, item, field, value) rows', () => {
    expect(longRows({ day: '2026-11-25', spend: { total: '1.0' }, list: [{ a: 1 }, 'b'] })).toEqual([
      { section: 'day', item: '', field: '', value: '2026-11-25' },
      { section: 'spend', item: '', field: 'total', value: '1.0' },
      { section: 'list', item: 0, field: 'a', value: 1 },
      { section: 'list', item: 1, field: '', value: 'b' },
    ]);
  });
});
