/**
 * The fault-handling conditions where the stand-ins matter: conditional reads of S3 (If-Match, on
 * s3rver) and the conditional writes the lease and the sweeper rely on (dynalite, DynamoDB Local).
 */
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { describe, expect, inject, it } from 'vitest';
import { DynamoRegistry } from '../../functions/adapters/dynamo-registry';
import { S3Store } from '../../functions/adapters/s3-store';
import { BlobChangedError } from '../../functions/core/ports';
import { type DynamoBackend, freshTable, testDynamo, testS3 } from '../support/clients';

describe('conditional reads on the S3 stand-in', () => {
  const s3 = testS3();
  const store = new S3Store(s3, inject('bucket'));

  it('s3rver ignores If-Match on GetObject, so S3Store compares the ETag of every response itself', async () => {
    const key = `incoming/etag/r1/items-${Date.now()}.jsonl`;
    await store.putText(key, 'first');
    const first = (await store.head(key))?.etag as string;
    await store.putText(key, 'second, longer');
    // The stand-in's own answer to a stale If-Match: 200 with the new object (S3 would answer 412).
    const raw = await s3.send(
      new GetObjectCommand({ Bucket: inject('bucket'), Key: key, IfMatch: `"${first}"` }),
    );
    expect(await raw.Body?.transformToString()).toBe('second, longer');
    // The store refuses it either way, whole or ranged.
    await expect(store.getText(key, { ifMatch: first })).rejects.toBeInstanceOf(BlobChangedError);
    await expect(store.getStream(key, { offset: 0, bytes: 3 }, { ifMatch: first })).rejects.toThrow(
      /changed while it was read/,
    );
    const now = (await store.head(key))?.etag as string;
    expect(await store.getText(key, { ifMatch: now })).toBe('second, longer');
  });
});

describe.each<DynamoBackend>(['dynalite', 'dynamodb-local'])(
  'lease and sweeper conditions on %s',
  (backend) => {
    it('renews only an unexpired lease, and fails only an abandoned version once', async () => {
      const dynamo = testDynamo(backend);
      const registry = new DynamoRegistry(dynamo, await freshTable(dynamo, 'faults'));
      const base = {
        space: 'f',
        number: 1,
        version: 'v1',
        status: 'BUILDING' as const,
        release: 'r1',
        releaseKey: 'incoming/f/r1/release.json',
        sequencer: '1',
        createdAt: new Date(0).toISOString(),
      };
      await registry.ensureVersion(base);
      expect(await registry.acquireLease('f', 'v1', 'a', 2000, 1000)).toMatchObject({ attempts: 1 });
      expect(await registry.renewLease('f', 'v1', 'a', 3000, 1500)).toBe(true);
      // Woken after its lease ran out: it must not take it back.
      expect(await registry.renewLease('f', 'v1', 'a', 9000, 3001)).toBe(false);
      // Live lease, or an attempt started since the sweeper read it: not abandoned.
      expect(await registry.failAbandoned('f', 'v1', 2999, 1, { reason: 'x' })).toBe(false);
      expect(await registry.failAbandoned('f', 'v1', 3001, 0, { reason: 'x' })).toBe(false);
      expect(await registry.failAbandoned('f', 'v1', 3001, 1, { reason: 'abandoned' })).toBe(true);
      expect(await registry.getVersion('f', 'v1')).toMatchObject({ status: 'FAILED', reason: 'abandoned' });
      expect(await registry.failAbandoned('f', 'v1', 3001, 1, { reason: 'again' })).toBe(false);

      await registry.ensureVersion({ ...base, version: 'v2', number: 2 });
      expect(await registry.failAbandoned('f', 'v2', 1, 0, { reason: 'never leased' })).toBe(true);
      expect(await registry.setVersionFields('f', 'v2', 'READY', { notActivatedReason: 'x' })).toBe(false);
      expect(await registry.setVersionFields('f', 'v2', 'FAILED', { inputEtags: { 'a.jsonl': 'e' } })).toBe(
        true,
      );
      expect((await registry.getVersion('f', 'v2'))?.inputEtags).toEqual({ 'a.jsonl': 'e' });
      dynamo.destroy();
    });
  },
);
