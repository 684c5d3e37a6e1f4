// Run by `npm run synth` before `cdk synth`: on a fresh clone the hnswlib layer is not built yet, and
// the synth refuses to run without it — so build it (npm run build:layer) when its addon is missing.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const addon = 'layers/hnswlib/build/nodejs/node_modules/hnswlib-node/build/Release/addon.node';
if (!existsSync(new URL(`../${addon}`, import.meta.url))) {
  console.log(`${addon} is missing: building the layer first (npm run build:layer)`);
  const r = spawnSync('npm', ['run', 'build:layer'], { cwd: root, stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
