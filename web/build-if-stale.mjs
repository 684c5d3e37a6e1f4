// `npm start` runs this first: builds the explorer page (web/dist) only when it is missing or older
// than its sources, so a fresh clone gets the page and a restart costs nothing. `npm run build:web`
// always builds.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const web = dirname(fileURLToPath(import.meta.url));
const built = join(web, 'dist', 'index.html');

function newest(path) {
  const s = statSync(path);
  if (!s.isDirectory()) return s.mtimeMs;
  let t = s.mtimeMs;
  for (const name of readdirSync(path)) t = Math.max(t, newest(join(path, name)));
  return t;
}

const sources = [
  join(web, 'src'),
  join(web, 'index.html'),
  join(web, 'vite.config.ts'),
  join(web, '..', 'package-lock.json'),
];
const sourceTime = Math.max(...sources.filter((p) => existsSync(p)).map(newest));
if (existsSync(built) && statSync(built).mtimeMs >= sourceTime) process.exit(0);

const t0 = Date.now();
const { build } = await import('vite');
await build({ configFile: join(web, 'vite.config.ts'), logLevel: 'warn' });
console.log(`Built the explorer page into web/dist in ${Date.now() - t0} ms.`);
