// Writes a gzip and a Brotli copy beside each script and style sheet of web/dist/assets, which the query
// service sends to browsers that accept them (@fastify/static `preCompressed`), so no CPU is spent per request
// (docs/console.md "Pages and API on one port").
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

const assets = join(import.meta.dirname, '..', 'dist', 'assets');
for (const name of readdirSync(assets)) {
  if (!/\.(js|css|svg)$/.test(name)) continue;
  const body = readFileSync(join(assets, name));
  writeFileSync(join(assets, `${name}.gz`), gzipSync(body, { level: 9 }));
  writeFileSync(
    join(assets, `${name}.br`),
    brotliCompressSync(body, {
      params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: body.length },
    }),
  );
}
