/** The query-shard slot functions: how many, their environment, and who may invoke what. */
import { beforeAll, describe, expect, it } from 'vitest';
import { ENV } from '../../functions/contract';
import { actionsOf, type PolicyStatementJson, type Synthesised, statementsOfRole, synth } from './synth';

let s: Synthesised;
beforeAll(() => {
  s = synth();
});

const withAction = (st: PolicyStatementJson[], a: string) =>
  st.filter((x) => (Array.isArray(x.Action) ? x.Action : [x.Action]).includes(a));
const fns = () => s.template.findResources('AWS::Lambda::Function');

describe('shard slots', () => {
  it('defines 8 slot functions by default, each told its slot, named by the prefix the query function is told', () => {
    const slots = s.stack.shardSlots.slots;
    expect(slots).toHaveLength(8);
    const query = fns()[s.idOf(s.stack.queryApi.query.fn)];
    const vars = query?.Properties.Environment.Variables as Record<string, unknown>;
    expect(vars[ENV.shardSlots]).toBe('8');
    const prefix = vars[ENV.slotFunctionPrefix] as string;
    expect(prefix).toBe(s.stack.shardSlots.prefix);
    for (const [i, slot] of slots.entries()) {
      const p = fns()[s.idOf(slot.fn)]?.Properties;
      expect(p.FunctionName).toBe(`${prefix}${i}`);
      expect(p.FunctionName.length).toBeLessThanOrEqual(64);
      expect(p.Environment.Variables).toMatchObject({ [ENV.slot]: String(i), [ENV.shardSlots]: '8' });
    }
  });

  it('the build function is told the slot count, the slots’ and the query function’s memory (it shards or refuses what they could not load)', () => {
    const build = fns()[s.idOf(s.stack.buildPipeline.fn.fn)];
    expect(build?.Properties.Environment.Variables).toMatchObject({
      [ENV.shardSlots]: '8',
      [ENV.slotMemoryMb]: String(s.config.query.memoryMb),
      [ENV.queryMemoryMb]: '2048',
    });
  });

  it('the query function may invoke exactly the slot functions', () => {
    const st = statementsOfRole(s.template, s.idOf(s.stack.queryApi.query.role));
    const invoke = withAction(st, 'lambda:InvokeFunction');
    expect(invoke).toHaveLength(1);
    const resources = invoke[0]?.Resource;
    expect(resources).toEqual(s.stack.shardSlots.slots.map((x) => ({ 'Fn::GetAtt': [s.idOf(x.fn), 'Arn'] })));
  });

  it('a slot reads snapshots and version records only, and invokes nothing', () => {
    const slot = s.stack.shardSlots.slots[3];
    const st = statementsOfRole(s.template, s.idOf(slot?.role as never));
    expect(actionsOf(st).filter((a) => !a.startsWith('xray:'))).toEqual([
      'dynamodb:GetItem',
      'logs:CreateLogStream',
      'logs:PutLogEvents',
      's3:GetObject',
      's3:ListBucket',
    ]);
  });

  it('shardSlots is configurable up to 64', () => {
    const big = synth({ 'vicinity:shardSlots': 64 });
    expect(big.stack.shardSlots.slots).toHaveLength(64);
    expect(() => synth({ 'vicinity:shardSlots': 65 })).toThrow();
  });
});
