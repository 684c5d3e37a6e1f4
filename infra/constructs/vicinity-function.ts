import { join, relative } from 'node:path';
import { AssetHashType, DockerImage, Duration, RemovalPolicy, Size } from 'aws-cdk-lib';
import { Effect, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import {
  Architecture,
  Code,
  type ILayerVersion,
  Function as LambdaFunction,
  Runtime,
  Tracing,
} from 'aws-cdk-lib/aws-lambda';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { type BuildOptions, buildSync } from 'esbuild';
import { METRICS_NAMESPACE } from '../../functions/contract';
import type { FunctionSizing } from '../config';
import { acknowledge, NAG_REASON } from '../nag';
import { PROJECT_ROOT } from '../paths';

/**
 * The newest Node.js runtime Lambda offers that aws-cdk-lib knows (cdk-nag's L1/LambdaLatestVersion
 * compare against the same list). Node.js 24 runs on Amazon Linux 2023 like Node.js 22, so the layer's
 * symbol limits (glibc 2.34) hold; the addon uses Node-API only, so it loads on 24. Local runs and
 * `npm run synth`'s bundle check use Node.js 20 (package.json engines).
 */
export const LAMBDA_RUNTIME = Runtime.NODEJS_24_X;
/** esbuild target matching LAMBDA_RUNTIME. */
export const BUNDLE_TARGET = 'node24';

/**
 * ESM bundles still contain CommonJS dependencies that call `require`; esbuild's shim uses a global
 * `require` when one exists, so define it. The alias keeps it clear of a module's own createRequire.
 */
export const ESM_REQUIRE_BANNER =
  "import { createRequire as __vicinityCreateRequire } from 'node:module';" +
  'const require = __vicinityCreateRequire(import.meta.url);';

/**
 * Left to the runtime: the native addon (the layer) and, with `bundleAwsSdk: false` only, the SDK
 * (Lambda's Node.js 24 runtime ships a v3 of its choosing). Bundled (the default) the SDK is the
 * version package-lock.json pins and the tests ran, tree-shaken into the ESM bundle; left to the
 * runtime it is loaded through `require` from the ESM bundle, and Node's CommonJS loader (its
 * cjs-module-lexer parse of every @aws-sdk/* and @smithy/* file) costs about 100 ms of init
 * (docs/performance.md, "Cold start").
 */
export function externalModules(bundleAwsSdk: boolean): string[] {
  return bundleAwsSdk ? ['hnswlib-node'] : ['@aws-sdk/*', 'hnswlib-node'];
}

/**
 * esbuild's options for a function's bundle (everything but `outdir`). ESM with code splitting: the
 * entry `index.mjs` holds what the handler imports statically; every `import()` — the EventBridge and
 * Lambda clients, lib-storage's Upload, the Parquet readers, the explorer's maths, the OpenAPI
 * document, the SDK's rarely used credential providers and their STS/SSO clients — becomes a file in
 * `chunks/` that Node reads, parses and evaluates on first use only. In one file (NodejsFunction's
 * `--outfile`, which cannot split) V8 still parsed all of it at every cold start: ~25 % of the query
 * function's init (docs/performance.md, "Cold start"). Minified, with source maps (no sources inside)
 * that Node does not load (no `--enable-source-maps`): the injected functions/common/install-mapped-stacks.ts
 * maps a stack's frames when the stack is formatted, reading a map on the first stack that needs it.
 * No `keepNames` (its `__name` calls cost 4–11 ms of init, docs/performance.md "Cold start"): classes
 * and functions are renamed, so every error class states its `name` (core/errors.ts `errorName`;
 * test/infra/error-names.test.ts), the SDK's `NoOpLogger` gets its name back (the injected
 * functions/common/sdk-class-names.ts) and mapped stacks take function names from the map's `names`.
 * `mainFields: module` picks the SDK's ES builds, which tree-shake.
 */
export function bundleOptions(entry: string, bundleAwsSdk: boolean): BuildOptions {
  return {
    entryPoints: { index: entry },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: BUNDLE_TARGET,
    splitting: true,
    outExtension: { '.js': '.mjs' },
    chunkNames: 'chunks/[name]-[hash]',
    mainFields: ['module', 'main'],
    banner: { js: ESM_REQUIRE_BANNER },
    inject: [
      join(PROJECT_ROOT, 'functions', 'common', 'install-mapped-stacks.ts'),
      join(PROJECT_ROOT, 'functions', 'common', 'sdk-class-names.ts'),
    ],
    external: externalModules(bundleAwsSdk),
    minify: true,
    keepNames: false,
    sourcemap: true,
    sourcesContent: false,
    absWorkingDir: PROJECT_ROOT,
    logLevel: 'warning',
  };
}

/**
 * The function's code: `bundleOptions` run by esbuild from node_modules on this machine (never in
 * Docker: the image is a placeholder that is never pulled). The options (entry included) are part of
 * the asset's cache key through `command`, so two functions never share a bundle by accident; the
 * asset hash is the output's.
 */
export function bundledCode(entry: string, bundleAwsSdk: boolean): Code {
  const options = bundleOptions(entry, bundleAwsSdk);
  return Code.fromAsset(PROJECT_ROOT, {
    assetHashType: AssetHashType.OUTPUT,
    bundling: {
      image: DockerImage.fromRegistry('dummy'),
      // Never run (local bundling always succeeds); it carries the options into the cache key.
      command: ['esbuild', relative(PROJECT_ROOT, entry), JSON.stringify(options)],
      local: {
        tryBundle(outdir: string): boolean {
          buildSync({ ...options, outdir });
          return true;
        },
      },
    },
  });
}

export interface VicinityFunctionProps {
  /** Entry file relative to the project root, e.g. `functions/query/handler.ts`. */
  readonly entry: string;
  readonly description: string;
  readonly sizing: FunctionSizing;
  readonly layer: ILayerVersion;
  /** POWERTOOLS_SERVICE_NAME: the `service` dimension of the function's metrics. */
  readonly serviceName: string;
  readonly environment: Record<string, string>;
  readonly logRetention: RetentionDays;
  readonly bundleAwsSdk: boolean;
  readonly reservedConcurrentExecutions?: number;
  /** An explicit function name (the shard slots: the query function finds them by prefix). */
  readonly functionName?: string;
}

/**
 * A Node.js 24 function bundled locally by esbuild from node_modules (never in Docker, see
 * `bundledCode`), as ESM split into an entry and chunks loaded on first use, with source maps read when a stack is formatted, the hnswlib-node layer, its own log group with a retention, active X-Ray tracing, and
 * its own role: instead of the AWS managed AWSLambdaBasicExecutionRole (logs on every log group), it may
 * write to its own log group only.
 */
export class VicinityFunction extends Construct {
  readonly fn: LambdaFunction;
  readonly logGroup: LogGroup;
  readonly role: Role;

  constructor(scope: Construct, id: string, props: VicinityFunctionProps) {
    super(scope, id);
    this.logGroup = new LogGroup(this, 'Logs', {
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.role = new Role(this, 'Role', {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `Execution role of ${props.serviceName}`,
    });
    this.role.addToPolicy(
      new PolicyStatement({
        effect: Effect.ALLOW,
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [this.logGroup.logGroupArn],
      }),
    );
    acknowledge(this.role, 'AwsSolutions-IAM5[Resource::*]', NAG_REASON.xray);
    this.fn = new LambdaFunction(this, 'Function', {
      code: bundledCode(join(PROJECT_ROOT, props.entry), props.bundleAwsSdk),
      handler: 'index.handler',
      description: props.description,
      runtime: LAMBDA_RUNTIME,
      role: this.role,
      architecture: Architecture.X86_64,
      memorySize: props.sizing.memoryMb,
      ephemeralStorageSize: Size.mebibytes(props.sizing.ephemeralMb),
      timeout: Duration.seconds(props.sizing.timeoutSeconds),
      layers: [props.layer],
      logGroup: this.logGroup,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      ...(props.functionName ? { functionName: props.functionName } : {}),
      // Traces API Gateway → Lambda → S3/DynamoDB; the functions add subsegments with Powertools Tracer.
      tracing: Tracing.ACTIVE,
      environment: {
        // No NODE_OPTIONS=--enable-source-maps: Node would read and JSON-parse the .map of every file it
        // loads at every cold start. The bundle maps a stack when it is formatted (bundleOptions).
        POWERTOOLS_SERVICE_NAME: props.serviceName,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        ...props.environment,
      },
    });
  }
}
