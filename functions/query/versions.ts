import { NotFoundError, SnapshotUnavailableError } from '../core/errors';
import { assertName } from '../core/names';
import type { Pointer } from '../core/pointer';
import type { Log, Registry } from '../core/ports';
import type { SearchParams } from '../core/query';
import { type RequestContext, type Resolved, releaseHeld } from './context';

export type VersionChoice = Pick<SearchParams, 'version' | 'consistency'>;

/**
 * Which version a request reads: the pointer (cached for pointerTtlMs), a pinned READY version, or —
 * when the active snapshot cannot be served — the last version this instance served for the space.
 */
export class VersionResolver {
  private readonly pointers = new Map<string, { pointer: Pointer; at: number }>();
  private readonly lastGood = new Map<string, string>();

  constructor(
    private readonly deps: {
      registry: Registry;
      pointerTtlMs: number;
      log: Log;
      /** The pointer moved on and the new version serves: the old version's memory may go. */
      superseded: (space: string, version: string) => void;
    },
  ) {}

  /** The pointer, from a cache trusted for pointerTtlMs; never moves back to a generation older than one seen. */
  async pointer(space: string, strong = false): Promise<Pointer> {
    const cached = this.pointers.get(space);
    if (!strong && cached && Date.now() - cached.at < this.deps.pointerTtlMs) return cached.pointer;
    const fresh = await this.deps.registry.getPointer(space, strong);
    const keep = cached && cached.pointer.generation > fresh.generation ? cached.pointer : fresh;
    this.pointers.set(space, { pointer: keep, at: Date.now() });
    return keep;
  }

  /** Resolves the one version a request will read, once. */
  async resolve(space: string, params: VersionChoice): Promise<Resolved> {
    assertName('space', space);
    if (params.version) {
      const v = await this.deps.registry.getVersion(space, params.version);
      if (!v || v.status === 'DELETED') {
        throw new NotFoundError(
          `Space ${space} has no version ${params.version}${v ? ' (its snapshot was deleted)' : ''}`,
        );
      }
      if (v.status !== 'READY')
        throw new NotFoundError(`Version ${params.version} of space ${space} is ${v.status}, not READY`);
      return { space, version: v.version };
    }
    const p = await this.pointer(space, params.consistency === 'strong');
    if (!p.version) {
      const any = await this.deps.registry.listVersions(space, 1);
      throw new NotFoundError(
        any.versions.length ? `Space ${space} has no active version yet` : `Unknown space ${space}`,
      );
    }
    return { space, version: p.version, generation: p.generation };
  }

  /**
   * Runs `fn` on the one version the request resolves to. When the active version's snapshot cannot be
   * served (checksum or load failure) an unpinned request is answered from the last version this
   * instance served for the space — never a mix — and the broken one is only a 503 for pinned requests.
   */
  async onVersion<T>(
    space: string,
    params: VersionChoice,
    ctx: RequestContext,
    fn: (r: Resolved) => Promise<T>,
  ): Promise<T> {
    try {
      const r = await this.resolve(space, params);
      try {
        const out = await fn(r);
        if (!params.version) {
          const before = this.lastGood.get(space);
          this.lastGood.set(space, r.version);
          // Its files stay for a rollback; only its memory goes.
          if (before && before !== r.version) this.deps.superseded(space, before);
        }
        return out;
      } catch (err) {
        // A cold instance has served nothing yet: the pointer's previous version is the one that was serving.
        const fallback =
          this.lastGood.get(space) ?? (r.generation ? (await this.pointer(space)).previous : undefined);
        if (
          !(err instanceof SnapshotUnavailableError) ||
          params.version ||
          !fallback ||
          fallback === r.version
        )
          throw err;
        this.deps.log.warn('active snapshot unavailable; serving the last good version', {
          space,
          version: fallback,
          broken: r.version,
        });
        return await fn({ space, version: fallback });
      }
    } finally {
      releaseHeld(ctx);
    }
  }
}
