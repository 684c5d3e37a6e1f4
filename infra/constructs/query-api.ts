import { Annotations, Duration } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import {
  CorsHttpMethod,
  HttpApi,
  HttpMethod,
  HttpRoute,
  HttpRouteKey,
  type HttpStage,
  type IHttpRouteAuthorizer,
  LogGroupLogDestination,
} from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer, HttpJwtAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type { Table } from 'aws-cdk-lib/aws-dynamodb';
import type { IEventBus } from 'aws-cdk-lib/aws-events';
import { Effect, ManagedPolicy, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import type { ILayerVersion } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Bucket } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { ENV, SERVICE_NAME } from '../../functions/contract';
import type { FunctionSizing, ReadAuth } from '../config';
import { acknowledge, NAG_REASON, nagRef } from '../nag';
import { allowKey, allowList, allowObjects, allowTable } from './grants';
import { PREFIX } from './storage';
import { VicinityFunction } from './vicinity-function';

export interface RouteSpec {
  readonly method: HttpMethod;
  readonly path: string;
}

/**
 * Read routes (CONTRACT.md), served by the query function, behind `readAuth` (IAM by default; public
 * only when a deployer sets readAuth=none).
 */
export const READ_ROUTES: readonly RouteSpec[] = Object.freeze([
  { method: HttpMethod.GET, path: '/v1/health' },
  { method: HttpMethod.GET, path: '/v1/openapi.json' },
  { method: HttpMethod.GET, path: '/v1/spaces' },
  { method: HttpMethod.GET, path: '/v1/spaces/{space}' },
  { method: HttpMethod.GET, path: '/v1/spaces/{space}/versions' },
  { method: HttpMethod.GET, path: '/v1/spaces/{space}/versions/{version}' },
  { method: HttpMethod.GET, path: '/v1/spaces/{space}/history' },
  { method: HttpMethod.GET, path: '/v1/spaces/{space}/collections/{collection}/items/{id}' },
  { method: HttpMethod.GET, path: '/v1/spaces/{space}/collections/{collection}/items/{id}/similar' },
  { method: HttpMethod.POST, path: '/v1/spaces/{space}/collections/{collection}/items/{id}/similar' },
  { method: HttpMethod.POST, path: '/v1/spaces/{space}/collections/{collection}/query' },
  { method: HttpMethod.POST, path: '/v1/spaces/{space}/batch' },
  { method: HttpMethod.GET, path: '/v1/spaces/{space}/diff' },
  { method: HttpMethod.GET, path: '/v1/spaces/{space}/collections/{collection}/items' },
  { method: HttpMethod.GET, path: '/v1/spaces/{space}/collections/{collection}/projection' },
]);

/**
 * Admin routes (CONTRACT.md): they move the pointer, erase items or delete a space — and the erasure
 * list names people — so they always require IAM (SigV4).
 */
export const ADMIN_ROUTES: readonly RouteSpec[] = Object.freeze([
  { method: HttpMethod.POST, path: '/v1/spaces/{space}/activate' },
  { method: HttpMethod.POST, path: '/v1/spaces/{space}/rollback' },
  { method: HttpMethod.DELETE, path: '/v1/spaces/{space}/collections/{collection}/items/{id}' },
  { method: HttpMethod.POST, path: '/v1/spaces/{space}/collections/{collection}/items/{id}/restore' },
  { method: HttpMethod.GET, path: '/v1/spaces/{space}/erasures' },
  { method: HttpMethod.DELETE, path: '/v1/spaces/{space}' },
  { method: HttpMethod.PUT, path: '/v1/spaces/{space}/settings' },
]);

/** Fields of the API's access log lines (JSON, one per request). */
export const ACCESS_LOG_FIELDS: Readonly<Record<string, string>> = Object.freeze({
  requestId: '$context.requestId',
  time: '$context.requestTime',
  ip: '$context.identity.sourceIp',
  caller: '$context.identity.userArn',
  method: '$context.httpMethod',
  path: '$context.path',
  route: '$context.routeKey',
  status: '$context.status',
  bytes: '$context.responseLength',
  latencyMs: '$context.responseLatency',
  integrationMs: '$context.integrationLatency',
  integrationStatus: '$context.integrationStatus',
  integrationError: '$context.integrationErrorMessage',
  authorizerError: '$context.authorizer.error',
  userAgent: '$context.identity.userAgent',
});

/** A route path as it appears in an execute-api ARN: each path parameter becomes `*`. */
export function executeApiPath(path: string): string {
  return path.replace(/\{[^}]+\}/g, '*');
}

/** ID of the synth warning emitted when readAuth is `none`. */
export const PUBLIC_READS_WARNING_ID = 'vicinity:publicReads';

/** The routes readAuth governs, as route keys: every read route and `$default`. */
export function readRouteKeys(): string[] {
  return [...READ_ROUTES.map((r) => `${r.method} ${r.path}`), '$default'];
}

/** The synth warning for readAuth=none: what becomes public and what the query function withholds. */
export function publicReadsWarning(publicMetadataFields: readonly string[]): string {
  const shown = publicMetadataFields.length > 0 ? publicMetadataFields.join(', ') : 'none';
  return (
    'readAuth=none: these routes are PUBLIC on the internet, without authentication: ' +
    `${readRouteKeys().join('; ')}. ` +
    `API Gateway cannot gate a query parameter, so the query function (${ENV.publicReads}=true) refuses ` +
    'include=vector (403) and returns only the metadata fields listed in vicinity:publicMetadataFields ' +
    `(now: ${shown}) to unauthenticated callers, and caps diff/projection samples. Anyone can still ` +
    'search, list and read ids and versions, within the stage throttling. Deploy with readAuth=iam ' +
    '(the default) or jwt unless this is what you want.'
  );
}

export interface QueryApiProps {
  readonly bucket: Bucket;
  readonly table: Table;
  readonly key?: IKey;
  readonly eventBus: IEventBus;
  readonly layer: ILayerVersion;
  readonly querySizing: FunctionSizing;
  readonly adminSizing: FunctionSizing;
  readonly pointerTtlMs: number;
  /** ENV.switchGraceMs of the query function (the only function that reads it). */
  readonly switchGraceMs: number;
  readonly readAuth: ReadAuth;
  /** With readAuth `none`: metadata fields anonymous callers may see. */
  readonly publicMetadataFields?: readonly string[];
  readonly jwtIssuer?: string;
  readonly jwtAudience: readonly string[];
  readonly throttleRateLimit: number;
  readonly throttleBurstLimit: number;
  readonly corsOrigins: readonly string[];
  readonly logRetention: RetentionDays;
  readonly bundleAwsSdk: boolean;
}

/**
 * The HTTP API: read routes → query function, admin routes → admin function behind IAM. Anything
 * else reaches the query function through `$default`, so unknown paths get the service's own
 * problem+json 404 rather than API Gateway's bare one.
 */
export class QueryApi extends Construct {
  readonly api: HttpApi;
  readonly stage: HttpStage;
  readonly query: VicinityFunction;
  readonly admin: VicinityFunction;
  readonly accessLogs: LogGroup;
  /** Attach to the users/roles that may call the admin routes. */
  readonly adminInvokePolicy: ManagedPolicy;
  /** With readAuth `iam`: attach to the users/roles that may call the read routes. */
  readonly readInvokePolicy?: ManagedPolicy;

  constructor(scope: Construct, id: string, props: QueryApiProps) {
    super(scope, id);
    const cors = props.corsOrigins.join(',');
    const publicReads = props.readAuth === 'none';
    const publicMetadataFields = props.publicMetadataFields ?? [];

    this.query = new VicinityFunction(this, 'Query', {
      entry: 'functions/query/handler.ts',
      description: 'Vicinity: read routes (search, items, versions) from HNSW snapshots',
      sizing: props.querySizing,
      layer: props.layer,
      serviceName: SERVICE_NAME.query,
      logRetention: props.logRetention,
      bundleAwsSdk: props.bundleAwsSdk,
      environment: {
        [ENV.bucket]: props.bucket.bucketName,
        [ENV.table]: props.table.tableName,
        [ENV.eventBusName]: props.eventBus.eventBusName,
        [ENV.pointerTtlMs]: String(props.pointerTtlMs),
        [ENV.switchGraceMs]: String(props.switchGraceMs),
        // The disk budget defaults to 80% of it (functions/common/config.ts).
        [ENV.ephemeralStorageMb]: String(props.querySizing.ephemeralMb),
        ...(cors ? { [ENV.corsOrigins]: cors } : {}),
        ...(publicReads
          ? { [ENV.publicReads]: 'true', [ENV.publicMetadataFields]: publicMetadataFields.join(',') }
          : {}),
      },
    });
    acknowledge(this.query.fn, 'Serverless-LambdaDLQ', NAG_REASON.queryDlq);
    // Reads snapshots and the registry only: no PutObject, no PutItem/UpdateItem.
    allowObjects(this.query.fn, props.bucket, [PREFIX.snapshots], ['GetObject']);
    allowList(this.query.fn, props.bucket, [PREFIX.snapshots]);
    allowKey(this.query.fn, props.key, false);
    allowTable(this.query.fn, props.table, ['GetItem', 'Query', 'BatchGetItem']);

    this.admin = new VicinityFunction(this, 'Admin', {
      entry: 'functions/admin/handler.ts',
      description: 'Vicinity: admin routes (activate, rollback) that move a space pointer',
      sizing: props.adminSizing,
      layer: props.layer,
      serviceName: SERVICE_NAME.admin,
      logRetention: props.logRetention,
      bundleAwsSdk: props.bundleAwsSdk,
      environment: {
        [ENV.bucket]: props.bucket.bucketName,
        [ENV.table]: props.table.tableName,
        [ENV.eventBusName]: props.eventBus.eventBusName,
        ...(cors ? { [ENV.corsOrigins]: cors } : {}),
      },
    });
    acknowledge(this.admin.fn, 'Serverless-LambdaDLQ', NAG_REASON.apiOnlyDlq);
    // DynamoDB only: compatibility checks read version records, the pointer moves by a conditional
    // write; no S3 (the deploy rehearsal's IAM-by-use found the snapshot grants unused). The key (with
    // encryption=kms) covers the table.
    allowKey(this.admin.fn, props.key, false);
    // BatchWriteItem: erasure records, 25 to a request (admin/erasure.ts).
    allowTable(this.admin.fn, props.table, ['GetItem', 'PutItem', 'UpdateItem', 'Query', 'BatchWriteItem']);
    props.eventBus.grantPutEventsTo(this.admin.fn);

    this.api = new HttpApi(this, 'Api', {
      description: 'Vicinity similarity service',
      createDefaultStage: false,
      ...(props.corsOrigins.length > 0
        ? {
            corsPreflight: {
              allowOrigins: [...props.corsOrigins],
              allowMethods: [CorsHttpMethod.GET, CorsHttpMethod.POST, CorsHttpMethod.OPTIONS],
              allowHeaders: [
                'content-type',
                'authorization',
                'x-amz-date',
                'x-amz-security-token',
                'x-amz-content-sha256',
              ],
              exposeHeaders: ['vicinity-version', 'server-timing', 'retry-after'],
              maxAge: Duration.days(1),
            },
          }
        : {}),
    });

    this.accessLogs = new LogGroup(this, 'AccessLogs', { retention: props.logRetention });
    this.stage = this.api.addStage('Stage', {
      stageName: '$default',
      autoDeploy: true,
      throttle: { rateLimit: props.throttleRateLimit, burstLimit: props.throttleBurstLimit },
      accessLogSettings: {
        destination: new LogGroupLogDestination(this.accessLogs),
        format: AccessLogFormat.custom(JSON.stringify(ACCESS_LOG_FIELDS)),
      },
    });

    // One resource-policy statement per function instead of one per route.
    const queryIntegration = new HttpLambdaIntegration('QueryIntegration', this.query.fn, {
      scopePermissionToRoute: false,
    });
    const adminIntegration = new HttpLambdaIntegration('AdminIntegration', this.admin.fn, {
      scopePermissionToRoute: false,
    });
    const readAuthorizer = this.readAuthorizer(props);
    const adminAuthorizer = new HttpIamAuthorizer();

    const readRoutes = [
      ...READ_ROUTES.map(
        (r) =>
          new HttpRoute(this, `${r.method}${r.path}`, {
            httpApi: this.api,
            routeKey: HttpRouteKey.with(r.path, r.method),
            integration: queryIntegration,
            authorizer: readAuthorizer,
          }),
      ),
      new HttpRoute(this, 'Default', {
        httpApi: this.api,
        routeKey: HttpRouteKey.DEFAULT,
        integration: queryIntegration,
        authorizer: readAuthorizer,
      }),
    ];
    if (publicReads) {
      for (const route of readRoutes) acknowledge(route, 'AwsSolutions-APIG4', NAG_REASON.publicRead);
      Annotations.of(this).addWarningV2(PUBLIC_READS_WARNING_ID, publicReadsWarning(publicMetadataFields));
    }
    for (const r of ADMIN_ROUTES) {
      new HttpRoute(this, `${r.method}${r.path}`, {
        httpApi: this.api,
        routeKey: HttpRouteKey.with(r.path, r.method),
        integration: adminIntegration,
        authorizer: adminAuthorizer,
      });
    }

    this.adminInvokePolicy = this.invokePolicy(
      'AdminInvokePolicy',
      'Allows calling the Vicinity admin routes (activate, rollback, erase, restore, erasures, delete space, settings) with SigV4',
      ADMIN_ROUTES,
    );
    if (props.readAuth === 'iam') {
      this.readInvokePolicy = this.invokePolicy(
        'ReadInvokePolicy',
        'Allows calling the Vicinity read routes (search, items, versions) with SigV4',
        READ_ROUTES,
      );
    }
  }

  /** A managed policy allowing execute-api:Invoke on exactly the given routes (any stage, any path parameter). */
  private invokePolicy(id: string, description: string, routes: readonly RouteSpec[]): ManagedPolicy {
    const policy = new ManagedPolicy(this, id, {
      description,
      statements: [
        new PolicyStatement({
          effect: Effect.ALLOW,
          actions: ['execute-api:Invoke'],
          resources: routes.map((r) => this.api.arnForExecuteApi(r.method, executeApiPath(r.path), '*')),
        }),
      ],
    });
    const api = nagRef(this.api);
    for (const r of routes) {
      acknowledge(
        policy,
        `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:${api}/*/${r.method}${executeApiPath(r.path)}]`,
        NAG_REASON.executeApi,
      );
    }
    return policy;
  }

  private readAuthorizer(props: QueryApiProps): IHttpRouteAuthorizer | undefined {
    switch (props.readAuth) {
      case 'none':
        return undefined;
      case 'iam':
        return new HttpIamAuthorizer();
      case 'jwt':
        if (!props.jwtIssuer) throw new Error('readAuth=jwt needs a JWT issuer');
        return new HttpJwtAuthorizer('ReadJwt', props.jwtIssuer, { jwtAudience: [...props.jwtAudience] });
    }
  }

  /** The API's base URL (…/v1 routes hang below it). */
  get url(): string {
    return this.stage.url;
  }
}
