import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HttpEvent } from '../../functions/common/http';
import { isAnonymous } from '../../functions/common/public-reads';
import { clusteredVectors, jsonlRows } from '../../local/synthetic';
import { type TestStack, testStack } from '../support/local';

// A readAuth=none deploy: the gateway lets everyone in, so the function keeps personal data to itself.
const DIMS = 8;

describe('public reads (readAuth=none): anonymous callers get no personal data', () => {
  let s: TestStack;
  beforeAll(async () => {
    s = await testStack({ publicReads: true, publicMetadataFields: ['name'] });
    const users = clusteredVectors(40, DIMS, 2, 1);
    const tracks = clusteredVectors(200, DIMS, 4, 2);
    const userIds = Array.from({ length: 40 }, (_, i) => `u${i}`);
    const trackIds = Array.from({ length: 200 }, (_, i) => `t${i}`);
    await s.publish(
      'music',
      'r1',
      {
        'users.jsonl': jsonlRows(userIds, users.vectors, DIMS, (i) => ({
          name: `user ${i}`,
          seen: ['t1', 't2'],
        })),
        'tracks.jsonl': jsonlRows(trackIds, tracks.vectors, DIMS, (i) => ({
          name: `track ${i}`,
          genre: 'rock',
        })),
      },
      {
        collections: {
          users: { file: 'users.jsonl', metric: 'l2' },
          tracks: { file: 'tracks.jsonl', metric: 'l2' },
        },
        seenField: 'seen',
      },
    );
  });
  afterAll(async () => s?.dispose());

  it('strips metadata fields not listed as public from items and results', async () => {
    const item = await s.get('/v1/spaces/music/collections/users/items/u3');
    expect(item.status).toBe(200);
    expect(item.body.metadata).toEqual({ name: 'user 3' });
    const similar = await s.get('/v1/spaces/music/collections/users/items/u3/similar?target=tracks&k=5');
    expect(similar.status).toBe(200);
    const results = similar.body.results as { metadata: Record<string, unknown> }[];
    expect(results).toHaveLength(5);
    for (const r of results) expect(Object.keys(r.metadata)).toEqual(['name']);
  });

  it('refuses a vector, a strong read and a private field with 403 problem+json', async () => {
    for (const path of [
      '/v1/spaces/music/collections/users/items/u3?include=vector',
      '/v1/spaces/music/collections/users/items/u3/similar?consistency=strong',
      '/v1/spaces/music/collections/tracks/items?prefix=r&field=genre',
      '/v1/spaces/music/collections/tracks/projection?fields=genre',
      '/v1/spaces/music/diff?from=v1&to=v1&sample=1000',
    ]) {
      const r = await s.get(path);
      expect(r.status, path).toBe(403);
      expect(r.headers.get('content-type')).toBe('application/problem+json');
      expect(String(r.body.detail)).toMatch(/SigV4/);
    }
    const ok = await s.get('/v1/spaces/music/collections/tracks/items?prefix=track%201&field=name');
    expect(ok.status).toBe(200);
  });

  it('treats a request with an IAM or JWT authorizer context as authenticated', () => {
    const o = { enabled: true, publicFields: [] };
    const event = (authorizer?: unknown) => ({ requestContext: { authorizer } }) as unknown as HttpEvent;
    expect(isAnonymous(event(), o)).toBe(true);
    expect(isAnonymous(event({ iam: { userArn: 'arn:aws:iam::1:user/a' } }), o)).toBe(false);
    expect(isAnonymous(event({ jwt: { claims: {} } }), o)).toBe(false);
    expect(isAnonymous(event(), { ...o, enabled: false })).toBe(false);
  });
});
