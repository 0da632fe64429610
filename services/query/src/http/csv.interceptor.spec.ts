import { csvRows, flatten, longRows, neutraliseCell, toCsv } from './csv.interceptor';

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

describe('CSV injection', () => {
  it.each(['=1+1', '+1+1', '-1+cmd|x', '@SUM(A1)', '\tx', '\rx', '=HYPERLINK("http://x")'])(
    'prefixes %j with a single quote',
    (cell) => expect(neutraliseCell(cell)).toBe(`'${cell}`),
  );

  it.each(['plain', '-0.500000', '+3', '12.5', '', "'=quoted already"])('leaves %j as it is', (cell) =>
    expect(neutraliseCell(cell)).toBe(cell),
  );

  it('neutralises cells and column names of a whole export', async () => {
    const file = toCsv([{ project: '=cmd', cost: '-1.000000', '@col': 'ok' }], 'x');
    let text = '';
    for await (const chunk of file.getStream()) text += String(chunk);
    expect(text).toBe(`project,cost,'@col\n'=cmd,-1.000000,ok\n`);
  });
});
