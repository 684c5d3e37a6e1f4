/**
 * Checks that a native addon loads on AWS Lambda's Node.js runtime (Amazon Linux 2023, x86_64):
 *
 * - no GLIBC symbol version above 2.34 and no GLIBCXX above 3.4.29 (read with `objdump -T`);
 * - no CXXABI above 1.3.13 and no GCC (libgcc_s) above 7.0.0 (what AL2023's GCC 11 runtime provides);
 * - with `requireStatic` (the layer build), no dynamic libstdc++/libgcc_s at all (`readelf -d`);
 * - every symbol it takes from the host process unversioned is Node-API (`napi_*`, `node_api_*`), so a
 *   build against the Node 20 headers loads on Node 22;
 * - an x86-64 ELF (`readelf -h`).
 *
 * Usage: tsx layers/hnswlib/check-symbols.ts <addon.node> [--allow-dynamic-libstdcxx]
 */
import { execFileSync } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Highest symbol versions Amazon Linux 2023 provides (glibc 2.34, GCC 11 runtime). */
export const LAMBDA_AL2023_LIMITS: Readonly<Record<string, string>> = Object.freeze({
  GLIBC: '2.34',
  GLIBCXX: '3.4.29',
  CXXABI: '1.3.13',
  GCC: '7.0.0',
});

/** Shared libraries an addon may need on Lambda when its C++ runtime is linked statically. */
export const ALLOWED_NEEDED_STATIC: readonly string[] = Object.freeze([
  'libc.so.6',
  'libm.so.6',
  'libpthread.so.0',
  'libdl.so.2',
  'librt.so.1',
  'ld-linux-x86-64.so.2',
]);

export interface SymbolCheckInput {
  /** Output of `objdump -T <file>`. */
  readonly objdumpT: string;
  /** Output of `readelf -d <file>`. */
  readonly readelfD: string;
  /** Output of `readelf -h <file>`. */
  readonly readelfH: string;
  /** Require libstdc++ and libgcc to be linked statically (true for the layer). */
  readonly requireStatic: boolean;
  readonly limits?: Readonly<Record<string, string>>;
}

export interface SymbolCheckReport {
  readonly ok: boolean;
  readonly problems: readonly string[];
  /** Highest version seen per prefix (GLIBC, GLIBCXX, ...). */
  readonly maxVersions: Readonly<Record<string, string>>;
  readonly needed: readonly string[];
  readonly hostSymbols: number;
}

/** Compares dotted versions numerically: 2.34 < 2.36, 3.4.9 < 3.4.29. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

const VERSIONED = /\(?\b(GLIBCXX|GLIBC|CXXABI|GCC)_([0-9]+(?:\.[0-9]+)*)\b/;
// objdump -T: "0000000000000000      D  *UND*\t0000000000000000  Base        napi_create_object"
const UNDEFINED = /^[0-9a-f]+\s+(\S*)\s*(\S*)\s+\*UND\*\s+[0-9a-f]+\s+(\S+)\s+(\S+)\s*$/;

export function checkSymbols(input: SymbolCheckInput): SymbolCheckReport {
  const limits = input.limits ?? LAMBDA_AL2023_LIMITS;
  const problems: string[] = [];
  const maxVersions: Record<string, string> = {};
  const tooNew = new Map<string, Set<string>>();
  let hostSymbols = 0;

  for (const line of input.objdumpT.split('\n')) {
    const version = VERSIONED.exec(line);
    if (version) {
      const [, prefix, ver] = version as unknown as [string, string, string];
      const seen = maxVersions[prefix];
      if (seen === undefined || compareVersions(ver, seen) > 0) maxVersions[prefix] = ver;
      const limit = limits[prefix];
      if (limit !== undefined && compareVersions(ver, limit) > 0) {
        const key = `${prefix}_${ver}`;
        const symbol = line.trim().split(/\s+/).pop() ?? '?';
        const set = tooNew.get(key) ?? new Set<string>();
        set.add(symbol);
        tooNew.set(key, set);
      }
      continue;
    }
    const und = UNDEFINED.exec(line.trim());
    if (und) {
      const [, flags, , ver, name] = und as unknown as [string, string, string, string, string];
      if (flags.includes('w')) continue; // weak: resolved if present, harmless if not
      if (ver !== 'Base' && ver !== '') continue;
      hostSymbols++;
      if (!/^(napi_|node_api_)/.test(name)) {
        problems.push(`unversioned symbol from the host process that is not Node-API: ${name}`);
      }
    }
  }
  for (const [key, symbols] of tooNew) {
    const prefix = key.split('_')[0] ?? key;
    problems.push(
      `needs ${key} (Lambda AL2023 provides ${prefix} <= ${limits[prefix]}): ${[...symbols].slice(0, 5).join(', ')}`,
    );
  }

  const needed = [...input.readelfD.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map(
    (m) => m[1] ?? '',
  );
  if (input.requireStatic) {
    for (const lib of needed) {
      if (!ALLOWED_NEEDED_STATIC.includes(lib)) {
        problems.push(`dynamically linked to ${lib} (expected -static-libstdc++ -static-libgcc)`);
      }
    }
  }

  if (
    !/Class:\s+ELF64/.test(input.readelfH) ||
    !/Machine:\s+Advanced Micro Devices X86-64/.test(input.readelfH)
  ) {
    problems.push('not an x86-64 ELF64 object (the layer is built for x86_64 Lambda functions)');
  }
  if (!/\*UND\*/.test(input.objdumpT)) {
    problems.push('objdump -T listed no dynamic symbols: is this a shared object?');
  }

  return { ok: problems.length === 0, problems, maxVersions, needed, hostSymbols };
}

function run(cmd: string, args: readonly string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
}

/** Runs objdump/readelf on a file and checks it. */
export function checkFile(file: string, requireStatic = true): SymbolCheckReport {
  return checkSymbols({
    objdumpT: run('objdump', ['-T', file]),
    readelfD: run('readelf', ['-d', file]),
    readelfH: run('readelf', ['-h', file]),
    requireStatic,
  });
}

export function formatReport(file: string, r: SymbolCheckReport): string {
  const versions = Object.entries(r.maxVersions)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  const lines = [
    `${r.ok ? 'OK  ' : 'FAIL'} ${file}`,
    `     max versions: ${versions || '(none)'}; limits GLIBC <= ${LAMBDA_AL2023_LIMITS.GLIBC}, GLIBCXX <= ${LAMBDA_AL2023_LIMITS.GLIBCXX}`,
    `     needs: ${r.needed.join(', ') || '(nothing)'}; ${r.hostSymbols} Node-API symbols from the host`,
    ...r.problems.map((p) => `     problem: ${p}`),
  ];
  return lines.join('\n');
}

function isMain(): boolean {
  const argv1 = process.argv[1];
  if (!argv1) return false;
  try {
    return realpathSync(argv1) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  const args = process.argv.slice(2);
  const files = args.filter((a) => !a.startsWith('--'));
  const requireStatic = !args.includes('--allow-dynamic-libstdcxx');
  if (files.length === 0) {
    console.error('usage: check-symbols.ts <addon.node>... [--allow-dynamic-libstdcxx]');
    process.exit(2);
  }
  let ok = true;
  for (const file of files) {
    const report = checkFile(file, requireStatic);
    console.log(formatReport(file, report));
    ok &&= report.ok;
  }
  process.exit(ok ? 0 : 1);
}
