import { configDefaults, defineConfig } from 'vitest/config';

// Lambda runs Node 22; the SDK's Node 20 deprecation notice is noise in this repo's own runs.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

/**
 * Four projects, each file in exactly one of them, so `vitest run` runs everything once:
 * - unit: test/unit, on in-memory ports (test/support/memory): no stand-in is started;
 * - infra: test/infra, CDK synth and the layer: no stand-in either;
 * - faults: test/faults, fault injection (crashes, a fault proxy); each file starts its own local
 *   stacks, so no shared stand-in either;
 * - integration: every other test file, against the stand-ins (s3rver, dynalite, DynamoDB Local)
 *   that test/support/global-setup.ts starts, only when this project has a test to run.
 */
const UNIT = 'test/unit/**/*.test.ts';
const INFRA = 'test/infra/**/*.test.ts';
const FAULTS = 'test/faults/**/*.test.ts';

export default defineConfig({
  test: {
    pool: 'forks',
    // Every run in a new order (files and tests): a test that needs another's leftovers fails here, not
    // in a reviewer's filtered run. The seed is printed; `--sequence.seed=<seed>` replays an order.
    sequence: { shuffle: true },
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default'],
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', POWERTOOLS_METRICS_DISABLED: 'true' },
    projects: [
      { extends: true, test: { name: 'unit', include: [UNIT] } },
      { extends: true, test: { name: 'infra', include: [INFRA] } },
      { extends: true, test: { name: 'faults', include: [FAULTS] } },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, UNIT, INFRA, FAULTS],
          globalSetup: ['test/support/global-setup.ts'],
        },
      },
    ],
  },
});
