/**
 * The synthesized template as the rehearsal sees it: resources, intrinsic functions resolved to the
 * local stand-ins' names (bucket, table, queue, function names; ARNs in the rehearsal's account and
 * region), and the pieces each stage reads (functions, routes, notifications, rules, role policies).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface CfnResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
  readonly Metadata?: Record<string, unknown>;
}

export interface CfnTemplate {
  readonly Resources: Record<string, CfnResource>;
  readonly Parameters?: Record<string, { Default?: unknown }>;
}

export const ACCOUNT = '123456789012';
export const REGION = 'us-east-1';

/** A problem found in the template, naming the resource and property at fault. */
export interface Finding {
  readonly resource: string;
  readonly property: string;
  readonly message: string;
}

export function formatFinding(f: Finding): string {
  return `${f.resource}: ${f.property} ${f.message}`;
}

export class ResolveError extends Error {}

/** Finds the stack template in a cdk.out directory (the one with Lambda functions). */
export function findTemplate(outDir: string): string {
  if (!existsSync(outDir)) throw new Error(`${outDir} does not exist: run npm run synth first`);
  const files = readdirSync(outDir).filter((f) => f.endsWith('.template.json'));
  if (files.length === 0) throw new Error(`no *.template.json in ${outDir}: run npm run synth first`);
  const withFunctions = files.filter((f) =>
    readFileSync(join(outDir, f), 'utf8').includes('AWS::Lambda::Function'),
  );
  const file = withFunctions[0] ?? files[0];
  if (!file) throw new Error(`no template in ${outDir}`);
  return join(outDir, file);
}

export interface StackNames {
  /** Endpoint of the HTTP API stand-in (for ApiEndpoint attributes). */
  apiEndpoint?: string;
}

/** The template plus the rules that turn its references into local names. */
export class Stack {
  readonly resources: Record<string, CfnResource>;
  readonly stackName: string;

  constructor(
    readonly templatePath: string,
    readonly template: CfnTemplate,
    /** cdk.out: asset paths are relative to it. */
    readonly outDir: string,
    readonly names: StackNames = {},
  ) {
    this.resources = template.Resources;
    this.stackName = templatePath.replace(/^.*\//, '').replace(/\.template\.json$/, '');
  }

  static load(templatePath: string, outDir: string): Stack {
    return new Stack(templatePath, JSON.parse(readFileSync(templatePath, 'utf8')) as CfnTemplate, outDir);
  }

  ofType(type: string): Array<[string, CfnResource]> {
    return Object.entries(this.resources).filter(([, r]) => r.Type === type);
  }

  get(id: string): CfnResource {
    const r = this.resources[id];
    if (!r) throw new ResolveError(`no resource ${id} in the template`);
    return r;
  }

  /** The local physical name of a resource (its explicit name property, or stack-logicalId). */
  physicalName(id: string): string {
    const r = this.get(id);
    const p = r.Properties ?? {};
    const explicit: Record<string, string> = {
      'AWS::S3::Bucket': 'BucketName',
      'AWS::DynamoDB::Table': 'TableName',
      'AWS::Lambda::Function': 'FunctionName',
      'AWS::SQS::Queue': 'QueueName',
      'AWS::IAM::Role': 'RoleName',
      'AWS::Logs::LogGroup': 'LogGroupName',
      'AWS::Events::Rule': 'Name',
      'AWS::Events::EventBus': 'Name',
      'AWS::SNS::Topic': 'TopicName',
      'AWS::IAM::ManagedPolicy': 'ManagedPolicyName',
    };
    const prop = explicit[r.Type];
    if (prop && p[prop] !== undefined) return String(this.resolve(p[prop], `${id}.${prop}`));
    const generated = `${this.stackName}-${id}`;
    if (r.Type === 'AWS::S3::Bucket')
      return generated
        .toLowerCase()
        .replace(/[^a-z0-9.-]/g, '-')
        .slice(0, 63);
    if (r.Type === 'AWS::ApiGatewayV2::Api') return id.toLowerCase().slice(0, 10);
    return generated;
  }

  arnOf(id: string): string {
    const r = this.get(id);
    const name = this.physicalName(id);
    const ra = `${REGION}:${ACCOUNT}`;
    switch (r.Type) {
      case 'AWS::S3::Bucket':
        return `arn:aws:s3:::${name}`;
      case 'AWS::DynamoDB::Table':
        return `arn:aws:dynamodb:${ra}:table/${name}`;
      case 'AWS::Lambda::Function':
        return `arn:aws:lambda:${ra}:function:${name}`;
      case 'AWS::SQS::Queue':
        return `arn:aws:sqs:${ra}:${name}`;
      case 'AWS::IAM::Role':
        return `arn:aws:iam::${ACCOUNT}:role/${name}`;
      case 'AWS::IAM::ManagedPolicy':
        return `arn:aws:iam::${ACCOUNT}:policy/${name}`;
      case 'AWS::Logs::LogGroup':
        return `arn:aws:logs:${ra}:log-group:${name}:*`;
      case 'AWS::Events::Rule':
        return `arn:aws:events:${ra}:rule/${name}`;
      case 'AWS::Events::EventBus':
        return `arn:aws:events:${ra}:event-bus/${name}`;
      case 'AWS::SNS::Topic':
        return `arn:aws:sns:${ra}:${name}`;
      case 'AWS::Lambda::LayerVersion':
        return `arn:aws:lambda:${ra}:layer:${id}:1`;
      case 'AWS::KMS::Key':
        return `arn:aws:kms:${ra}:key/${id}`;
      default:
        return `arn:aws:local:${ra}:${id}`;
    }
  }

  queueUrl(id: string): string {
    return `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/${this.physicalName(id)}`;
  }

  ref(id: string, where: string): string {
    switch (id) {
      case 'AWS::Region':
        return REGION;
      case 'AWS::AccountId':
        return ACCOUNT;
      case 'AWS::Partition':
        return 'aws';
      case 'AWS::URLSuffix':
        return 'amazonaws.com';
      case 'AWS::StackName':
        return this.stackName;
      case 'AWS::StackId':
        return `arn:aws:cloudformation:${REGION}:${ACCOUNT}:stack/${this.stackName}/local`;
    }
    const param = this.template.Parameters?.[id];
    if (param) return String(param.Default ?? '');
    const r = this.resources[id];
    if (!r) throw new ResolveError(`${where}: Ref to ${id}, which is not in the template`);
    switch (r.Type) {
      case 'AWS::SQS::Queue':
        return this.queueUrl(id);
      case 'AWS::Lambda::LayerVersion':
      case 'AWS::IAM::ManagedPolicy':
      case 'AWS::SNS::Topic':
        return this.arnOf(id);
      case 'AWS::S3::Bucket':
      case 'AWS::DynamoDB::Table':
      case 'AWS::Lambda::Function':
      case 'AWS::IAM::Role':
      case 'AWS::Logs::LogGroup':
      case 'AWS::Events::Rule':
      case 'AWS::Events::EventBus':
      case 'AWS::ApiGatewayV2::Api':
        return this.physicalName(id);
      default:
        return id;
    }
  }

  getAtt(id: string, attr: string, where: string): string {
    const r = this.resources[id];
    if (!r) throw new ResolveError(`${where}: Fn::GetAtt of ${id}, which is not in the template`);
    if (attr === 'Arn') return this.arnOf(id);
    if (r.Type === 'AWS::SQS::Queue' && attr === 'QueueUrl') return this.queueUrl(id);
    if (r.Type === 'AWS::SQS::Queue' && attr === 'QueueName') return this.physicalName(id);
    if (r.Type === 'AWS::ApiGatewayV2::Api' && attr === 'ApiEndpoint')
      return this.names.apiEndpoint ?? 'http://127.0.0.1';
    if (r.Type === 'AWS::ApiGatewayV2::Api' && attr === 'ApiId') return this.physicalName(id);
    if (r.Type === 'AWS::S3::Bucket' && /DomainName$/.test(attr))
      return `${this.physicalName(id)}.s3.amazonaws.com`;
    if (r.Type === 'AWS::DynamoDB::Table' && attr === 'StreamArn') return `${this.arnOf(id)}/stream/local`;
    throw new ResolveError(`${where}: Fn::GetAtt ${id}.${attr} is not supported by the rehearsal`);
  }

  /** Resolves intrinsic functions to local values. `where` names the resource and property for errors. */
  resolve(value: unknown, where: string): unknown {
    if (Array.isArray(value)) return value.map((v, i) => this.resolve(v, `${where}[${i}]`));
    if (value === null || typeof value !== 'object') return value;
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj);
    if (keys.length === 1) {
      const k = keys[0] as string;
      const arg = obj[k];
      switch (k) {
        case 'Ref':
          return this.ref(String(arg), where);
        case 'Fn::GetAtt': {
          const [id, attr] = Array.isArray(arg) ? (arg as string[]) : String(arg).split(/\.(.*)/);
          return this.getAtt(String(id), String(attr), where);
        }
        case 'Fn::Join': {
          const [sep, parts] = arg as [string, unknown[]];
          return (this.resolve(parts, where) as unknown[]).map(String).join(sep);
        }
        case 'Fn::Select': {
          const [i, list] = arg as [unknown, unknown];
          return (this.resolve(list, where) as unknown[])[Number(this.resolve(i, where))];
        }
        case 'Fn::Split': {
          const [sep, s] = arg as [string, unknown];
          return String(this.resolve(s, where)).split(sep);
        }
        case 'Fn::Sub': {
          const [text, vars] = Array.isArray(arg)
            ? (arg as [string, Record<string, unknown>])
            : [String(arg), {} as Record<string, unknown>];
          return text.replace(/\$\{([^}]+)\}/g, (_, name: string) => {
            if (name in vars) return String(this.resolve(vars[name], where));
            const [id, attr] = name.split(/\.(.*)/);
            return attr ? this.getAtt(String(id), attr, where) : this.ref(name, where);
          });
        }
        default:
          if (k.startsWith('Fn::'))
            throw new ResolveError(`${where}: ${k} is not supported by the rehearsal`);
      }
    }
    return Object.fromEntries(keys.map((k) => [k, this.resolve(obj[k], `${where}.${k}`)]));
  }

  /** The logical ID a value refers to (Ref X, GetAtt X.Arn, or a resolved name/ARN of X). */
  referencedId(value: unknown, type?: string): string | undefined {
    if (value && typeof value === 'object') {
      const o = value as Record<string, unknown>;
      if (typeof o.Ref === 'string') return o.Ref;
      const ga = o['Fn::GetAtt'];
      if (Array.isArray(ga)) return String(ga[0]);
      if (typeof ga === 'string') return ga.split('.')[0];
      const join = o['Fn::Join'];
      if (Array.isArray(join)) {
        for (const part of (join[1] as unknown[]) ?? []) {
          const id = this.referencedId(part, type);
          if (id && (!type || this.resources[id]?.Type === type)) return id;
        }
      }
      return undefined;
    }
    if (typeof value === 'string') {
      for (const [id, r] of Object.entries(this.resources)) {
        if (type && r.Type !== type) continue;
        if (value === this.arnOf(id) || value === this.physicalName(id)) return id;
      }
    }
    return undefined;
  }

  assetPath(id: string): string | undefined {
    const p = this.get(id).Metadata?.['aws:asset:path'];
    return typeof p === 'string' ? join(this.outDir, p) : undefined;
  }
}
