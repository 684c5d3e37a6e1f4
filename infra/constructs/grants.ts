import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { Effect, type IGrantable, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import { acknowledge, NAG_REASON, nagRef } from '../nag';

/**
 * Least-privilege grants written out action by action. CDK's `grantRead`/`grantReadWrite` would add
 * `s3:List*`/`s3:GetBucket*` on the whole bucket and every DynamoDB read/write action; these add only
 * what each function calls.
 */

export type TableAction =
  | 'GetItem'
  | 'BatchGetItem'
  | 'Query'
  | 'PutItem'
  | 'UpdateItem'
  | 'DeleteItem'
  | 'BatchWriteItem';

export function allowTable(fn: IFunction, table: ITable, actions: readonly TableAction[]): void {
  fn.addToRolePolicy(
    new PolicyStatement({
      effect: Effect.ALLOW,
      actions: actions.map((a) => `dynamodb:${a}`),
      resources: [table.tableArn],
    }),
  );
}

export type ObjectAction = 'GetObject' | 'PutObject' | 'DeleteObject' | 'AbortMultipartUpload';

/** Object actions on keys under the given prefixes. */
export function allowObjects(
  fn: IFunction,
  bucket: IBucket,
  prefixes: readonly string[],
  actions: readonly ObjectAction[],
): void {
  fn.addToRolePolicy(
    new PolicyStatement({
      effect: Effect.ALLOW,
      actions: actions.map((a) => `s3:${a}`),
      resources: prefixes.map((p) => bucket.arnForObjects(`${p}*`)),
    }),
  );
  if (!fn.role) throw new Error(`${fn.node.path} has no role`);
  for (const p of prefixes) {
    acknowledge(
      fn.role,
      `AwsSolutions-IAM5[Resource::${nagRef(bucket, 'Arn')}/${p}*]`,
      NAG_REASON.prefixObjects,
    );
  }
}

/**
 * ListBucket limited to the given prefixes. Besides listing, it is what makes S3 answer a GET of a
 * missing key with 404 instead of 403 (S3 evaluates the key as `s3:prefix` for that decision).
 */
export function allowList(fn: IFunction, bucket: IBucket, prefixes: readonly string[]): void {
  fn.addToRolePolicy(
    new PolicyStatement({
      effect: Effect.ALLOW,
      actions: ['s3:ListBucket'],
      resources: [bucket.bucketArn],
      conditions: { StringLike: { 's3:prefix': prefixes.map((p) => `${p}*`) } },
    }),
  );
}

/**
 * With a customer managed key, reading needs kms:Decrypt and writing (SSE-KMS PutObject, multipart
 * uploads) also kms:GenerateDataKey — written out instead of CDK's grantEncryptDecrypt, whose
 * `kms:GenerateDataKey*`/`kms:ReEncrypt*` wildcards the function never needs.
 */
export function allowKey(grantee: IGrantable, key: IKey | undefined, write: boolean): void {
  if (!key) return;
  grantee.grantPrincipal.addToPrincipalPolicy(
    new PolicyStatement({
      effect: Effect.ALLOW,
      actions: write ? ['kms:Decrypt', 'kms:GenerateDataKey'] : ['kms:Decrypt'],
      resources: [key.keyArn],
    }),
  );
}
