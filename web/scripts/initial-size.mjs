// Prints the console's initial download (what index.html loads before any lazy page), raw and gzipped,
// measured from web/dist (docs/benchmarks.md "Console initial JavaScript").
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

const dist = join(import.meta.dirname, '..', 'dist');
const html = readFileSync(join(dist, 'index.html'), 'utf8');
const files = [...html.matchAll(/(?:src|href)="\/(assets\/[^"]+\.(?:js|css))"/g)].map((m) => m[1]);
let js = 0;
let all = 0;
for (const file of files) {
  const body = readFileSync(join(dist, file));
  const gzipped = gzipSync(body, { level: 9 }).length;
  all += gzipped;
  if (file.endsWith('.js')) js += gzipped;
  console.log(`${file}\t${(body.length / 1024).toFixed(1)} KiB\t${(gzipped / 1024).toFixed(1)} KiB gzipped`);
}
console.log(`initial JavaScript: ${(js / 1024).toFixed(1)} KiB gzipped; with CSS: ${(all / 1024).toFixed(1)} KiB`);
