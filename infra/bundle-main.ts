/**
 * `tsx infra/bundle-main.ts <entry> <outdir> <bundleAwsSdk>`: one function's bundle (infra/bundle.ts),
 * in its own process, because CDK's local bundling (`tryBundle`) is synchronous and Rollup is not.
 */
import { bundleFunction } from './bundle';

const [entry, outdir, sdk] = process.argv.slice(2);
if (!entry || !outdir || (sdk !== 'true' && sdk !== 'false')) {
  console.error('usage: tsx infra/bundle-main.ts <entry> <outdir> <true|false>');
  process.exit(2);
}
await bundleFunction(entry, outdir, sdk === 'true');
