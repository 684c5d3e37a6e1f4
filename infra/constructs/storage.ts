import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, BillingMode, Table } from 'aws-cdk-lib/aws-dynamodb';
import { Key } from 'aws-cdk-lib/aws-kms';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership } from 'aws-cdk-lib/aws-s3';
import { S3_SERVER_ACCESS_LOGS_USE_BUCKET_POLICY } from 'aws-cdk-lib/cx-api';
import { Construct } from 'constructs';
import type { BucketEncryptionChoice } from '../config';
import { acknowledge, NAG_REASON } from '../nag';

/** Key prefixes of the bucket (CONTRACT.md: incoming/{space}/{release}/…, snapshots/{space}/{version}/…). */
export const PREFIX = Object.freeze({
  incoming: 'incoming/',
  snapshots: 'snapshots/',
  staging: 'staging/',
} as const);

export interface StorageProps {
  readonly bucketName?: string;
  readonly encryption: BucketEncryptionChoice;
  readonly incomingExpirationDays: number;
  readonly retainData: boolean;
  readonly tableDeletionProtection: boolean;
  /** Days the bucket's server access logs are kept. */
  readonly accessLogExpirationDays: number;
}

/**
 * The bucket (producers' releases under incoming/, immutable snapshots under snapshots/) and the
 * single DynamoDB table (pk/sk strings) holding versions, pointers, history and the spaces registry.
 */
export class Storage extends Construct {
  readonly bucket: Bucket;
  /** Server access logs of `bucket` (who uploaded, read or deleted which key, from where). */
  readonly accessLogs: Bucket;
  readonly table: Table;
  /** The bucket's customer managed key when encryption is `kms`. */
  readonly key?: Key;

  constructor(scope: Construct, id: string, props: StorageProps) {
    super(scope, id);
    // Access log delivery through a bucket policy (the log bucket has ACLs disabled), not the legacy ACL.
    this.node.setContext(S3_SERVER_ACCESS_LOGS_USE_BUCKET_POLICY, true);
    const removalPolicy = props.retainData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;

    if (props.encryption === 'kms') {
      this.key = new Key(this, 'BucketKey', {
        description: 'Vicinity bucket encryption',
        enableKeyRotation: true,
        removalPolicy,
      });
    }

    // S3 delivers access logs only to an SSE-S3 bucket, whatever the data bucket uses.
    this.accessLogs = new Bucket(this, 'AccessLogs', {
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      versioned: false,
      lifecycleRules: [
        { id: 'expire-access-logs', expiration: Duration.days(props.accessLogExpirationDays) },
      ],
      removalPolicy,
      autoDeleteObjects: !props.retainData,
    });
    acknowledge(this.accessLogs, 'AwsSolutions-S1', NAG_REASON.accessLogBucket);

    this.bucket = new Bucket(this, 'Bucket', {
      bucketName: props.bucketName,
      serverAccessLogsBucket: this.accessLogs,
      serverAccessLogsPrefix: 'data/',
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      // Snapshots are immutable (a new version gets a new prefix) and retention deletes them on purpose:
      // versioning would only keep deleted snapshots around at full price.
      versioned: false,
      ...(this.key
        ? { encryption: BucketEncryption.KMS, encryptionKey: this.key, bucketKeyEnabled: true }
        : { encryption: BucketEncryption.S3_MANAGED }),
      lifecycleRules: [
        {
          id: 'expire-incoming',
          prefix: PREFIX.incoming,
          expiration: Duration.days(props.incomingExpirationDays),
          abortIncompleteMultipartUploadAfter: Duration.days(1),
        },
        {
          id: 'abort-incomplete-multipart-uploads',
          abortIncompleteMultipartUploadAfter: Duration.days(1),
        },
      ],
      removalPolicy,
      autoDeleteObjects: !props.retainData,
    });

    this.table = new Table(this, 'Table', {
      partitionKey: { name: 'pk', type: AttributeType.STRING },
      sortKey: { name: 'sk', type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: props.tableDeletionProtection,
      // Encrypted at rest with an AWS owned key (the default): no KMS charges, no key policy to manage.
      removalPolicy,
    });
  }
}
