/** The in-process side of a query that mixes a sharded and an unsharded collection (item in one, target the other). */
import { NotFoundError } from '../../core/errors';
import type { LoadedSegment } from '../../snapshot/cache';
import type { RequestContext, Resolved } from '../context';
import type { SearchOptions } from '../search-plan';
import type { ItemVector, LocalSide } from './router';

export interface LocalCollections {
  collection(
    r: Resolved,
    name: string,
    ctx: RequestContext,
  ): Promise<import('../../snapshot/cache').LoadedCollection>;
  search(
    c: import('../../snapshot/cache').LoadedCollection,
    vector: number[],
    params: SearchOptions,
    exclude: Set<string>,
    budget?: RequestContext['budget'],
  ): Promise<import('../../core/search').ScoredResult[]>;
}

export function localSide(service: LocalCollections): LocalSide {
  return {
    async item(r, collection, id, seenField, ctx): Promise<ItemVector> {
      const c = await service.collection(r, collection, ctx);
      const ref = c.lookup(id);
      if (!ref) {
        throw new NotFoundError(
          `No item ${JSON.stringify(id)} in ${r.space}/${collection} (version ${r.version})`,
          {
            extras: { version: r.version },
          },
        );
      }
      const seg = c.segments[ref.segment] as LoadedSegment;
      const metadata = seg.meta?.[ref.label] ?? null;
      const seen = seenField ? metadata?.[seenField] : undefined;
      return {
        vector: Array.from(seg.index.getVector(ref.label)),
        metadata,
        ...(Array.isArray(seen) ? { seen: seen.map(String) } : {}),
      };
    },
    async search(r, collection, vector, params, exclude, ctx) {
      const c = await service.collection(r, collection, ctx);
      return service.search(c, vector, params, exclude, ctx.budget);
    },
  };
}
