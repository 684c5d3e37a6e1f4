/**
 * The HTTP API as the template defines it: AWS::ApiGatewayV2::Route RouteKeys pick the route
 * (literal paths before parameters, greedy last, `$default` for the rest), the route's Target names
 * the Integration and so the function, AuthorizationType AWS_IAM refuses unsigned requests with 403
 * (the signature is re-computed with the rehearsal's key pair) and checks the caller's policies
 * (the template's ManagedPolicies attached to no role: those are for callers) allow execute-api:Invoke.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HttpEvent } from '../functions/common/http';
import { signatureProblem } from '../local/sigv4-verifier';
import { evaluate, type Statement } from './iam';
import type { InvokeResult } from './runtime';
import { ACCOUNT, type Finding, REGION, type Stack } from './template';

export interface RouteSpec {
  readonly id: string;
  readonly apiId: string;
  readonly routeKey: string;
  readonly method: string;
  readonly path: string;
  readonly auth: string;
  readonly integrationId?: string;
  readonly functionId?: string;
  readonly payloadVersion: string;
}

export function routeSpecs(stack: Stack, findings: Finding[]): RouteSpec[] {
  const out: RouteSpec[] = [];
  for (const [id, r] of stack.ofType('AWS::ApiGatewayV2::Route')) {
    const p = r.Properties ?? {};
    const routeKey = String(p.RouteKey);
    const [method = 'ANY', path = ''] = routeKey === '$default' ? ['ANY', ''] : routeKey.split(' ');
    const integrationId = stack.referencedId(p.Target, 'AWS::ApiGatewayV2::Integration');
    let functionId: string | undefined;
    let payloadVersion = '2.0';
    if (!integrationId) {
      findings.push({
        resource: id,
        property: 'Target',
        message: `(${routeKey}) names no AWS::ApiGatewayV2::Integration`,
      });
    } else {
      const ip = stack.get(integrationId).Properties ?? {};
      functionId = stack.referencedId(ip.IntegrationUri, 'AWS::Lambda::Function');
      payloadVersion = String(ip.PayloadFormatVersion ?? '2.0');
      if (!functionId)
        findings.push({
          resource: integrationId,
          property: 'IntegrationUri',
          message: `(${routeKey}) is not a function of this stack`,
        });
    }
    out.push({
      id,
      apiId: stack.referencedId(p.ApiId, 'AWS::ApiGatewayV2::Api') ?? '',
      routeKey,
      method: method.toUpperCase(),
      path,
      auth: String(p.AuthorizationType ?? 'NONE'),
      integrationId,
      functionId,
      payloadVersion,
    });
  }
  return out;
}

/** Route selection of an HTTP API: the most specific path, then an exact method before ANY. */
export function pickRoute(
  routes: readonly RouteSpec[],
  method: string,
  path: string,
): { route: RouteSpec; pathParameters: Record<string, string> } | undefined {
  let best: { route: RouteSpec; pathParameters: Record<string, string>; score: number } | undefined;
  const segs = path.split('/');
  for (const route of routes) {
    if (route.routeKey === '$default') continue;
    if (route.method !== 'ANY' && route.method !== method.toUpperCase()) continue;
    const tpl = route.path.split('/');
    const params: Record<string, string> = {};
    let score = 0;
    let ok = true;
    for (let i = 0; i < tpl.length; i++) {
      const t = tpl[i] as string;
      const greedy = /^\{(.+)\+\}$/.exec(t);
      if (greedy) {
        if (i >= segs.length) ok = false;
        else params[greedy[1] as string] = decodeURIComponent(segs.slice(i).join('/'));
        score += 1;
        break;
      }
      const s = segs[i];
      if (s === undefined) {
        ok = false;
        break;
      }
      const param = /^\{(.+)\}$/.exec(t);
      if (param) {
        if (s === '') ok = false;
        params[param[1] as string] = decodeURIComponent(s);
        score += 10;
      } else if (t === s) score += 100;
      else ok = false;
      if (!ok) break;
      if (i === tpl.length - 1 && segs.length !== tpl.length) ok = false;
    }
    if (!ok) continue;
    score = score * 2 + (route.method === 'ANY' ? 0 : 1);
    if (!best || score > best.score) best = { route, pathParameters: params, score };
  }
  if (best) return { route: best.route, pathParameters: best.pathParameters };
  const fallback = routes.find((r) => r.routeKey === '$default');
  return fallback ? { route: fallback, pathParameters: {} } : undefined;
}

export interface GatewayOptions {
  routes: readonly RouteSpec[];
  stack: Stack;
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** Policies the rehearsal's caller holds (the template's ManagedPolicies attached to no role). */
  callerStatements: readonly Statement[];
  invoke: (functionId: string, event: unknown) => Promise<InvokeResult>;
}

export interface GatewayRecord {
  method: string;
  path: string;
  route?: string;
  routeKey?: string;
  functionId?: string;
  status: number;
  signed: boolean;
  callerPolicy?: string;
  note?: string;
}

export interface Gateway {
  readonly url: string;
  readonly records: GatewayRecord[];
  stop(): Promise<void>;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export async function startGateway(opts: GatewayOptions): Promise<Gateway> {
  const records: GatewayRecord[] = [];
  const answer = (res: ServerResponse, status: number, body: unknown, rec: GatewayRecord) => {
    rec.status = status;
    records.push(rec);
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const server: Server = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      const url = new URL(req.url ?? '/', 'http://gateway');
      const method = req.method ?? 'GET';
      const rawPath = url.pathname;
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers))
        if (v !== undefined) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(',') : v;
      const signed = Boolean(headers.authorization);
      const rec: GatewayRecord = { method, path: rawPath, status: 0, signed };
      const picked = pickRoute(opts.routes, method, rawPath);
      if (!picked) return answer(res, 404, { message: 'Not Found' }, rec);
      const { route, pathParameters } = picked;
      Object.assign(rec, { route: route.id, routeKey: route.routeKey, functionId: route.functionId });
      const query: Record<string, string> = {};
      for (const [k, v] of url.searchParams) query[k] = k in query ? `${query[k]},${v}` : v;
      const text = body.toString('utf8');
      const binary = Buffer.compare(Buffer.from(text, 'utf8'), body) !== 0;
      const requestId = randomUUID();
      const event: HttpEvent & Record<string, unknown> = {
        version: '2.0',
        routeKey: route.routeKey,
        rawPath,
        rawQueryString: url.search.replace(/^\?/, ''),
        headers,
        ...(Object.keys(query).length ? { queryStringParameters: query } : {}),
        ...(Object.keys(pathParameters).length ? { pathParameters } : {}),
        requestContext: {
          accountId: ACCOUNT,
          apiId: opts.stack.physicalName(route.apiId),
          domainName: headers.host ?? 'localhost',
          domainPrefix: 'rehearsal',
          http: {
            method,
            path: rawPath,
            protocol: `HTTP/${req.httpVersion}`,
            sourceIp: '127.0.0.1',
            userAgent: headers['user-agent'] ?? '',
          },
          requestId,
          routeKey: route.routeKey,
          stage: '$default',
          time: new Date().toISOString(),
          timeEpoch: Date.now(),
        },
        ...(body.length ? { body: binary ? body.toString('base64') : text } : {}),
        isBase64Encoded: binary,
      };
      if (route.auth === 'AWS_IAM') {
        const problem = await signatureProblem(event, { credentials: opts.credentials, region: REGION });
        if (problem) return answer(res, 403, { message: 'Forbidden' }, { ...rec, note: problem });
        if (opts.callerStatements.length > 0) {
          const arn = `arn:aws:execute-api:${REGION}:${ACCOUNT}:${opts.stack.physicalName(route.apiId)}/$default/${method}${rawPath}`;
          const allowed = evaluate(opts.callerStatements, { action: 'execute-api:Invoke', resource: arn });
          if (!allowed || allowed === 'deny')
            return answer(
              res,
              403,
              { message: `User is not authorized to access this resource (${arn})` },
              rec,
            );
          rec.callerPolicy = allowed.source;
        }
        (event.requestContext as unknown as Record<string, unknown>).authorizer = {
          iam: {
            accessKey: opts.credentials.accessKeyId,
            accountId: ACCOUNT,
            callerId: 'AIDAREHEARSAL',
            cognitoIdentity: null,
            principalOrgId: null,
            userArn: `arn:aws:iam::${ACCOUNT}:user/rehearsal`,
            userId: 'AIDAREHEARSAL',
          },
        };
      } else if (route.auth !== 'NONE') {
        return answer(res, 501, { message: `AuthorizationType ${route.auth} is not rehearsed` }, rec);
      }
      if (!route.functionId)
        return answer(res, 500, { message: 'Internal Server Error' }, { ...rec, note: 'no function' });
      const result = await opts.invoke(route.functionId, event);
      if (!result.ok) {
        const timedOut = result.error.errorType === 'Sandbox.Timedout';
        return answer(
          res,
          timedOut ? 503 : 500,
          { message: timedOut ? 'Service Unavailable' : 'Internal Server Error' },
          { ...rec, note: `${result.error.errorType}: ${result.error.errorMessage}` },
        );
      }
      const v = result.value as Record<string, unknown> | string | null;
      if (v && typeof v === 'object' && 'statusCode' in v) {
        const out = Buffer.from(String(v.body ?? ''), v.isBase64Encoded ? 'base64' : 'utf8');
        const h = { ...((v.headers as Record<string, string>) ?? {}) };
        rec.status = Number(v.statusCode);
        records.push(rec);
        res.writeHead(Number(v.statusCode), h);
        res.end(out);
        return;
      }
      rec.status = 200;
      records.push(rec);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(typeof v === 'string' ? v : JSON.stringify(v));
    })().catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ message: 'Internal Server Error', detail: String(err) }));
    });
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => ok());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    records,
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
