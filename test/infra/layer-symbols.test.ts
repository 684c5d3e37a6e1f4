import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { builtAddonPath } from '../../infra/constructs/hnswlib-layer';
import { PROJECT_ROOT } from '../../infra/paths';
import { checkFile, checkSymbols, compareVersions } from '../../layers/hnswlib/check-symbols';

const ELF_HEADER =
  '  Class:                             ELF64\n  Machine:                           Advanced Micro Devices X86-64\n';
const objdump = (...lines: string[]) =>
  ['addon.node:     file format elf64-x86-64', '', 'DYNAMIC SYMBOL TABLE:', ...lines].join('\n');
const und = (version: string, name: string, flags = 'DF') =>
  `0000000000000000      ${flags} *UND*\t0000000000000000 ${version} ${name}`;
const needed = (...libs: string[]) =>
  libs.map((l) => ` 0x0000000000000001 (NEEDED)             Shared library: [${l}]`).join('\n');

describe('symbol check (Amazon Linux 2023: GLIBC <= 2.34, GLIBCXX <= 3.4.29)', () => {
  it('compares versions numerically', () => {
    expect(compareVersions('2.34', '2.36')).toBe(-1);
    expect(compareVersions('3.4.9', '3.4.29')).toBe(-1);
    expect(compareVersions('3.4.30', '3.4.29')).toBe(1);
    expect(compareVersions('2.34', '2.34.0')).toBe(0);
  });

  it('accepts what g++-11 with static libstdc++ produces (glibc 2.34, Node-API only)', () => {
    const r = checkSymbols({
      objdumpT: objdump(
        und('(GLIBC_2.2.5)', 'memcpy'),
        und('(GLIBC_2.34)', '__libc_start_main'),
        und(' Base       ', 'napi_create_function', 'D '),
        und(' Base       ', '__gmon_start__', 'w  D '),
      ),
      readelfD: needed('libm.so.6', 'libc.so.6', 'ld-linux-x86-64.so.2'),
      readelfH: ELF_HEADER,
      requireStatic: true,
    });
    expect(r.problems).toEqual([]);
    expect(r.maxVersions).toEqual({ GLIBC: '2.34' });
    expect(r.hostSymbols).toBe(1);
  });

  it('rejects glibc 2.36 (g++ 12 with static libstdc++) and GLIBCXX 3.4.30', () => {
    const r = checkSymbols({
      objdumpT: objdump(
        und('(GLIBC_2.36)', 'arc4random'),
        und('(GLIBCXX_3.4.30)', '_ZSt21__glibcxx_assert_failPKciS0_S0_'),
        und(' Base       ', 'napi_get_cb_info', 'D '),
      ),
      readelfD: needed('libc.so.6'),
      readelfH: ELF_HEADER,
      requireStatic: true,
    });
    expect(r.ok).toBe(false);
    expect(r.problems.join('\n')).toMatch(/GLIBC_2\.36.*arc4random/);
    expect(r.problems.join('\n')).toMatch(/GLIBCXX_3\.4\.30/);
  });

  it('rejects a dynamic libstdc++ in the layer, and non-Node-API host symbols (Node ABI-specific)', () => {
    const r = checkSymbols({
      objdumpT: objdump(und(' Base       ', '_ZN4node12AddEnvironmentCleanupHookE', 'DF')),
      readelfD: needed('libstdc++.so.6', 'libgcc_s.so.1', 'libc.so.6'),
      readelfH: ELF_HEADER,
      requireStatic: true,
    });
    expect(r.problems).toEqual([
      'unversioned symbol from the host process that is not Node-API: _ZN4node12AddEnvironmentCleanupHookE',
      'dynamically linked to libstdc++.so.6 (expected -static-libstdc++ -static-libgcc)',
      'dynamically linked to libgcc_s.so.1 (expected -static-libstdc++ -static-libgcc)',
    ]);
  });

  it('rejects an arm64 object', () => {
    const r = checkSymbols({
      objdumpT: objdump(und('(GLIBC_2.17)', 'memcpy')),
      readelfD: needed('libc.so.6'),
      readelfH: '  Class:                             ELF64\n  Machine:                           AArch64\n',
      requireStatic: true,
    });
    expect(r.problems).toEqual([
      'not an x86-64 ELF64 object (the layer is built for x86_64 Lambda functions)',
    ]);
  });

  it('on a real file: the host-compiled addon in node_modules links libstdc++ dynamically, so it is no layer', () => {
    const hostAddon = join(PROJECT_ROOT, 'node_modules', 'hnswlib-node', 'build', 'Release', 'addon.node');
    const r = checkFile(hostAddon, true);
    expect(r.needed).toContain('libstdc++.so.6');
    expect(r.ok).toBe(false);
    expect(r.hostSymbols).toBeGreaterThan(10);
  });

  // The layer is built by `npm run build:layer` (its own CI step); .ci/run then runs this file again
  // with VICINITY_REQUIRE_LAYER=1, where a missing build is a failure instead of a skip.
  const built = builtAddonPath(join(PROJECT_ROOT, 'layers', 'hnswlib', 'build'));
  it.runIf(existsSync(built) || process.env.VICINITY_REQUIRE_LAYER === '1')('the built layer passes', () => {
    expect(existsSync(built), `no built layer at ${built}: run npm run build:layer`).toBe(true);
    const r = checkFile(built, true);
    expect(r.problems).toEqual([]);
  });
});
