import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, BillingMode, Table } from 'aws-cdk-lib/aws-dynamodb';
import { Key } from 'aws-cdk-lib/aws-kms';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import type { BucketEncryptionChoice } from '../config';

/** Key prefixes of the bucket (CONTRACT.md: incoming/{space}/{release}/…, snapshots/{space}/{version}/…). */
export const PREFIX = Object.freeze({ incoming: 'incoming/', snapshots: 'snapshots/' } as const);

export interface StorageProps {
  readonly bucketName?: string;
  readonly encryption: BucketEncryptionChoice;
  readonly incomingExpirationDays: number;
  readonly retainData: boolean;
  readonly tableDeletionProtection: boolean;
}

/**
 * The bucket (producers' releases under incoming/, immutable snapshots under snapshots/) and the
 * single DynamoDB table (pk/sk strings) holding versions, pointers, history and the spaces registry.
 */
export class Storage extends Construct {
  readonly bucket: Bucket;
  readonly table: Table;
  /** The bucket's customer managed key when encryption is `kms`. */
  readonly key?: Key;

  constructor(scope: Construct, id: string, props: StorageProps) {
    super(scope, id);
    const removalPolicy = props.retainData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;

    if (props.encryption === 'kms') {
      this.key = new Key(this, 'BucketKey', {
        description: 'Vicinity bucket encryption',
        enableKeyRotation: true,
        removalPolicy,
      });
    }

    this.bucket = new Bucket(this, 'Bucket', {
      bucketName: props.bucketName,
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
