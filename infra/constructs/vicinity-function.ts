import { execFileSync } from 'node:child_process';
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

/**
 * The function's code: infra/bundle.ts run on this machine (never in Docker: the image is a
 * placeholder that is never pulled), in a child process because local bundling is synchronous. The
 * entry and the SDK choice are part of the asset's cache key through `command`, so two functions never
 * share a bundle by accident; the asset hash is the output's.
 */
export function bundledCode(entry: string, bundleAwsSdk: boolean): Code {
  return Code.fromAsset(PROJECT_ROOT, {
    assetHashType: AssetHashType.OUTPUT,
    bundling: {
      image: DockerImage.fromRegistry('dummy'),
      // Never run (local bundling always succeeds); it carries the options into the cache key.
      command: ['bundle', relative(PROJECT_ROOT, entry), String(bundleAwsSdk)],
      local: {
        tryBundle(outdir: string): boolean {
          execFileSync(
            process.execPath,
            [
              '--import',
              'tsx',
              join(PROJECT_ROOT, 'infra', 'bundle-main.ts'),
              entry,
              outdir,
              String(bundleAwsSdk),
            ],
            { cwd: PROJECT_ROOT, stdio: ['ignore', 'inherit', 'inherit'] },
          );
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
 * A Node.js 24 function bundled locally by esbuild and Rollup from node_modules (never in Docker, see
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
        // loads at every cold start. The bundle maps a stack when it is formatted (infra/bundle.ts).
        POWERTOOLS_SERVICE_NAME: props.serviceName,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        ...props.environment,
      },
    });
  }
}
