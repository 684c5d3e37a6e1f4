import { join } from 'node:path';
import { Duration, RemovalPolicy, Size } from 'aws-cdk-lib';
import { Architecture, type ILayerVersion, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat, SourceMapMode } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { METRICS_NAMESPACE } from '../../functions/contract';
import type { FunctionSizing } from '../config';
import { PROJECT_ROOT } from '../paths';

/**
 * ESM bundles still contain CommonJS dependencies that call `require`; esbuild's shim uses a global
 * `require` when one exists, so define it. The alias keeps it clear of a module's own createRequire.
 */
export const ESM_REQUIRE_BANNER =
  "import { createRequire as __vicinityCreateRequire } from 'node:module';" +
  'const require = __vicinityCreateRequire(import.meta.url);';

/** Left to the runtime: the SDK (Lambda's Node.js 22 runtime ships v3) and the native addon (the layer). */
export function externalModules(bundleAwsSdk: boolean): string[] {
  return bundleAwsSdk ? ['hnswlib-node'] : ['@aws-sdk/*', 'hnswlib-node'];
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
  readonly tracing?: boolean;
}

/**
 * A Node.js 22 function bundled locally by esbuild from node_modules (never in Docker), as ESM, with
 * source maps, the hnswlib-node layer, and its own log group with a retention.
 */
export class VicinityFunction extends Construct {
  readonly fn: NodejsFunction;
  readonly logGroup: LogGroup;

  constructor(scope: Construct, id: string, props: VicinityFunctionProps) {
    super(scope, id);
    this.logGroup = new LogGroup(this, 'Logs', {
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.fn = new NodejsFunction(this, 'Function', {
      entry: join(PROJECT_ROOT, props.entry),
      handler: 'handler',
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: join(PROJECT_ROOT, 'package-lock.json'),
      description: props.description,
      runtime: Runtime.NODEJS_22_X,
      architecture: Architecture.X86_64,
      memorySize: props.sizing.memoryMb,
      ephemeralStorageSize: Size.mebibytes(props.sizing.ephemeralMb),
      timeout: Duration.seconds(props.sizing.timeoutSeconds),
      layers: [props.layer],
      logGroup: this.logGroup,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      tracing: props.tracing ? Tracing.ACTIVE : Tracing.DISABLED,
      environment: {
        NODE_OPTIONS: '--enable-source-maps',
        POWERTOOLS_SERVICE_NAME: props.serviceName,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        ...props.environment,
      },
      bundling: {
        forceDockerBundling: false,
        format: OutputFormat.ESM,
        target: 'node22',
        mainFields: ['module', 'main'],
        banner: ESM_REQUIRE_BANNER,
        externalModules: externalModules(props.bundleAwsSdk),
        minify: true,
        keepNames: true,
        sourceMap: true,
        sourceMapMode: SourceMapMode.DEFAULT,
        sourcesContent: false,
        metafile: false,
      },
    });
  }
}
