/** The fan-in's conditional updates on DynamoDB Local and dynalite (no transactions: single-item writes). */
import { describe, expect, it } from 'vitest';
import { DynamoRegistry } from '../../functions/adapters/dynamo-registry';
import { type DynamoBackend, freshTable, testDynamo } from '../support/clients';

describe.each<DynamoBackend>(['dynalite', 'dynamodb-local'])('fan-in on %s', (backend) => {
  it('counts each task once, under concurrency, with exactly one completer', async () => {
    const ddb = testDynamo(backend);
    const r = new DynamoRegistry(ddb, await freshTable(ddb, 'fanin'));
    const event = { space: 's', release: 'r', key: 'incoming/s/r/release.json', sequencer: '1' };
    const { version } = await r.claimRelease(event, new Date());
    await r.ensureVersion({
      space: 's',
      version,
      number: 1,
      status: 'BUILDING',
      release: 'r',
      releaseKey: event.key,
      sequencer: '1',
      createdAt: new Date().toISOString(),
    });
    await r.acquireLease('s', version, 'b', Date.now() + 60_000, Date.now());
    expect(await r.startTasks('s', version, 'x', 't', Date.now() + 1e6, { partitions: 1, shards: 8 })).toBe(
      false,
    );
    expect(await r.startTasks('s', version, 'b', 't', Date.now() + 1e6, { partitions: 1, shards: 8 })).toBe(
      true,
    );
    expect((await r.beginTask('s', version, 's:c:3'))?.attempts).toBe(1);
    expect((await r.beginTask('s', version, 's:c:3'))?.attempts).toBe(2);
    const p = await r.completeTask('s', version, 'p:c:0', 100);
    expect(p?.record.tasks).toMatchObject({ partitionsDone: 1, rows: 100 });
    const keys = [...Array.from({ length: 8 }, (_, j) => `s:c:${j}`), 's:c:2', 's:c:5'];
    const done = await Promise.all(keys.map((k) => r.completeTask('s', version, k, 12)));
    expect(done.filter((d) => d?.recorded)).toHaveLength(8);
    expect(done.filter((d) => d?.recorded && d.record.tasks?.shardsDone === 8)).toHaveLength(1);
    const v = await r.getVersion('s', version);
    expect(v?.tasks).toMatchObject({ shards: 8, shardsDone: 8, partitionsDone: 1, rows: 100 });
    expect(await r.finishVersion('s', version, 't', { status: 'READY' })).toBe(true);
    expect(await r.completeTask('s', version, 's:c:0', 1)).toBeUndefined();
    ddb.destroy();
  });
});
