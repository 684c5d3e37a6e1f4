/** Benches share docs/performance.md: each replaces only its own marked section. */
import { describe, expect, it } from 'vitest';
import { replaceSection } from '../../bench/doc-section';

describe('a bench section of docs/performance.md', () => {
  it('replaces only the text between its markers, leaving sections written by other benches', () => {
    const doc =
      '<!-- bench:query:start -->\nold query\n<!-- bench:query:end -->\n\n# Build performance\nbuild figures\n';
    const out = replaceSection(doc, 'query', '# Query performance\nnew');
    expect(out).toBe(
      '<!-- bench:query:start -->\n# Query performance\nnew\n<!-- bench:query:end -->\n\n# Build performance\nbuild figures\n',
    );
  });

  it('takes over its unmarked legacy heading up to the next heading of that level', () => {
    const doc =
      '# Query performance\nold\n## Reading\nold too\n# Build performance\nkept\n## Sub\nkept too\n';
    const out = replaceSection(doc, 'query', '# Query performance\nnew', {
      legacyHeading: '# Query performance',
    });
    expect(out).toBe(
      '<!-- bench:query:start -->\n# Query performance\nnew\n<!-- bench:query:end -->\n\n# Build performance\nkept\n## Sub\nkept too\n',
    );
  });

  it('appends a section the file does not have yet', () => {
    const out = replaceSection('# Build performance\nkept\n', 'query-sharded', '## Sharded\nx');
    expect(out).toBe(
      '# Build performance\nkept\n\n<!-- bench:query-sharded:start -->\n## Sharded\nx\n<!-- bench:query-sharded:end -->\n',
    );
    // Written again: replaced in place, not appended twice.
    expect(replaceSection(out, 'query-sharded', '## Sharded\ny')).toBe(out.replace('\nx\n', '\ny\n'));
  });
});
