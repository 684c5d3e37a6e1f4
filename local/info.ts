/**
 * `VICINITY_HOME/local.json`: how to reach a running local stack. The stack writes it; the CLI and
 * tools read it, so this file imports nothing (cli/ may import it, local/ never imports cli/).
 */
export interface LocalInfo {
  apiUrl: string;
  s3Endpoint: string;
  dynamodbEndpoint: string;
  region: string;
  bucket: string;
  table: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** `iam` when the admin routes check SigV4 signatures (VICINITY_ADMIN_AUTH=iam). */
  adminAuth?: AdminAuth;
  /** `iam`: read routes need SigV4 too (VICINITY_READ_AUTH=iam), as in a default AWS deploy. */
  readAuth?: AdminAuth;
}

/** How the local stack guards its admin routes: `none` (as before), or `iam` (SigV4, as AWS does). */
export type AdminAuth = 'none' | 'iam';

/** The file's name inside VICINITY_HOME. */
export const LOCAL_INFO_FILE = 'local.json';
