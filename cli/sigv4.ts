/**
 * Signs HTTP API requests with SigV4 for service `execute-api`, as the AWS CLI does: the admin routes
 * sit behind API Gateway's IAM authorizer in AWS (and, with VICINITY_ADMIN_AUTH=iam, locally too).
 */
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';

export interface SigningConfig {
  region: string;
  credentials: AwsCredentialIdentity | AwsCredentialIdentityProvider;
}

/** The headers to send: the given ones plus x-amz-date, x-amz-content-sha256, authorization (and a session token). */
export async function signedHeaders(
  config: SigningConfig,
  method: string,
  url: URL,
  headers: Record<string, string>,
  body?: string,
  signingDate?: Date,
): Promise<Record<string, string>> {
  const signer = new SignatureV4({
    service: 'execute-api',
    region: config.region,
    credentials: config.credentials,
    sha256: Sha256,
  });
  const query: Record<string, string> = {};
  for (const [k, v] of url.searchParams) query[k] = v;
  const signed = await signer.sign(
    {
      method,
      protocol: url.protocol,
      hostname: url.hostname,
      ...(url.port ? { port: Number(url.port) } : {}),
      path: url.pathname,
      query,
      // fetch sends Host as url.host; it must be signed with that very value.
      headers: { ...headers, host: url.host },
      ...(body === undefined ? {} : { body }),
    },
    signingDate ? { signingDate } : {},
  );
  const { host: _host, ...rest } = signed.headers;
  return rest;
}

/** The region in an execute-api URL (https://abc123.execute-api.eu-west-1.amazonaws.com), if it is one. */
export function regionOfApiUrl(url: string): string | undefined {
  try {
    return /\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$/.exec(new URL(url).hostname)?.[1];
  } catch {
    return undefined;
  }
}
