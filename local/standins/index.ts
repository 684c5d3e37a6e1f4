// local/standins/: one file per wire-protocol stand-in (s3rver, dynalite, DynamoDB Local) on loopback.
// Imports only node and the stand-ins' packages; used by local/, the tests and the benchmarks.
/**
 * Local wire-protocol stand-ins for S3 and DynamoDB, used by `npm start` and the integration tests.
 * The use-case code talks to them through the same SDK clients it uses against AWS.
 */
export {
  type DynamoStandIn,
  ensureBucket,
  ensureTable,
  LOCAL_CREDENTIALS,
  LOCAL_REGION,
} from './common';
export { type StartDynaliteOptions, startDynalite } from './dynalite';
export { startDynamoDbLocal } from './dynamodb-local';
export { type FailedInvocation, type LambdaFunctionDef, type LambdaStandIn, startLambda } from './lambda';
export { type S3EventBatch, type S3StandIn, type StartS3Options, startS3 } from './s3rver';
