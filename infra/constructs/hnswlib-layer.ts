import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { Stack } from 'aws-cdk-lib';
import { Architecture, Code, LayerVersion } from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { PROJECT_ROOT } from '../paths';
import { LAMBDA_RUNTIME } from './vicinity-function';

export interface HnswlibLayerProps {
  /** The directory `npm run build:layer` wrote (holds nodejs/node_modules/hnswlib-node). */
  readonly layerPath: string;
}

/** The file whose presence means the layer was built. */
export function builtAddonPath(layerDir: string): string {
  return join(layerDir, 'nodejs', 'node_modules', 'hnswlib-node', 'build', 'Release', 'addon.node');
}

/**
 * The hnswlib-node native addon as a Lambda layer (x86_64, Node.js 24; Node-API only, so not tied to one Node version), built beforehand by
 * `npm run build:layer` (g++-11, static libstdc++, symbol-checked for Amazon Linux 2023).
 *
 * A synth that bundles (cdk synth/deploy) builds the default layer when it is missing (a fresh clone), and
 * refuses to go on without a layer given by path: a function without
 * its addon deploys fine and then fails every request. A synth that skips bundling (unit tests,
 * `-c aws:cdk:bundling-stacks=[]`) uses the layer's source folder as a stand-in asset.
 */
export class HnswlibLayer extends Construct {
  readonly layer: LayerVersion;

  constructor(scope: Construct, id: string, props: HnswlibLayerProps) {
    super(scope, id);
    const layerDir = isAbsolute(props.layerPath) ? props.layerPath : resolve(PROJECT_ROOT, props.layerPath);
    const defaultDir = resolve(PROJECT_ROOT, 'layers', 'hnswlib', 'build');
    // A fresh clone's `npx cdk deploy` (or synth) builds the default layer first, as `npm run synth` does.
    if (!existsSync(builtAddonPath(layerDir)) && Stack.of(this).bundlingRequired && layerDir === defaultDir) {
      const r = spawnSync(process.execPath, [join(PROJECT_ROOT, 'rehearse', 'ensure-layer.mjs')], {
        cwd: PROJECT_ROOT,
        stdio: ['ignore', 'inherit', 'inherit'],
      });
      if (r.status !== 0) throw new Error(`building the hnswlib-node layer failed (npm run build:layer)`);
    }
    const built = existsSync(builtAddonPath(layerDir));
    let code: Code;
    if (built) {
      code = Code.fromAsset(layerDir);
    } else if (!Stack.of(this).bundlingRequired) {
      code = Code.fromAsset(join(PROJECT_ROOT, 'layers', 'hnswlib'), { exclude: ['build', 'build/**'] });
    } else {
      throw new Error(
        `The hnswlib-node layer is not built (no ${builtAddonPath(layerDir)}). Run \`npm run build:layer\` first (it writes layers/hnswlib/build; point vicinity:layerPath at a copy of it).`,
      );
    }
    this.layer = new LayerVersion(this, 'Layer', {
      code,
      description: 'hnswlib-node 3.0.0 built with g++-11 and static libstdc++ for Amazon Linux 2023 (x86_64)',
      compatibleRuntimes: [LAMBDA_RUNTIME],
      compatibleArchitectures: [Architecture.X86_64],
      license: 'Apache-2.0',
    });
  }
}
