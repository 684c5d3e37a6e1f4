/** The router's slot-call deadline reaches the query function from the shared names module. */
import { describe, expect, it } from 'vitest';
import { ENV } from '../../functions/contract';
import { synth } from './synth';

const queryVars = (s: ReturnType<typeof synth>) =>
  s.template.findResources('AWS::Lambda::Function')[s.idOf(s.stack.queryApi.query.fn)]?.Properties.Environment
    .Variables as Record<string, unknown>;

describe('slot deadline', () => {
  it('defaults to the query function timeout less 3 s, and takes vicinity:slotDeadlineMs when given', () => {
    const d = synth();
    expect(queryVars(d)[ENV.slotDeadlineMs]).toBe(String(d.config.query.timeoutSeconds * 1000 - 3000));
    const s = synth({ 'vicinity:slotDeadlineMs': '7000' });
    expect(queryVars(s)[ENV.slotDeadlineMs]).toBe('7000');
  });
});
