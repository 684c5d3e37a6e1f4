/**
 * The contract's floor: the least any query handler must do per request to answer the bench's
 * `POST …/query` (a cosine collection, k 10 with metadata) as Vicinity answers it — the body's
 * JSON.parse and its check, the query's normalisation, the index search, the answer's objects and JSON
 * (the same bytes), the response headers, and the same access line and EMF line written in one call
 * (the bench checks the bytes and the lines, times aside, before timing it). No router, no middy, no Powertools, no use case: what is left when every
 * layer the service adds is taken away. `bench:query` measures it beside the handler, so the gap between
 * the two is what the service's structure costs, and the floor is what no structure can remove.
 */
import type * as Hnsw from 'hnswlib-node';
import type { HttpEvent } from '../functions/common/http';
import { parseQueryRequest } from '../functions/core/query';
import { normalisedArray } from '../functions/core/search';

export interface FloorTarget {
  space: string;
  version: string;
  collection: string;
  index: Hnsw.HierarchicalNSW;
  ids: readonly string[];
  meta: readonly (Record<string, unknown> | null)[] | undefined;
  /** The function's Lambda context fields the access line carries. */
  fn: { arn: string; memory: string; name: string; requestId: string };
  /** The timed index search (the bench subtracts what it took). */
  search: (vector: number[], k: number) => Hnsw.SearchResult;
}

export function floorHandler(t: FloorTarget) {
  const head =
    `"service":"vicinity-query","cold_start":false,"function_arn":${JSON.stringify(t.fn.arn)},` +
    `"function_memory_size":${JSON.stringify(t.fn.memory)},"function_name":${JSON.stringify(t.fn.name)},` +
    `"function_request_id":${JSON.stringify(t.fn.requestId)},"sampling_rate":0,` +
    `"space":${JSON.stringify(t.space)},"version":${JSON.stringify(t.version)},"collection":${JSON.stringify(t.collection)}`;
  const emfHead = '{"_aws":{"Timestamp":';
  const emfTail =
    ',"CloudWatchMetrics":[{"Namespace":"Vicinity","Dimensions":[["service"]],"Metrics":[{"Name":"CacheHit","Unit":"Count"},{"Name":"RequestLatency","Unit":"Milliseconds"}]}]},"service":"vicinity-query","CacheHit":1,"RequestLatency":';
  return (event: HttpEvent) => {
    const t0 = performance.now();
    const q = parseQueryRequest(JSON.parse(event.body ?? ''));
    if (q instanceof Promise) throw new Error('the floor takes only bodies the fast check passes');
    const s0 = performance.now();
    // Cosine queries are normalised in float64 first, as the service does (huge or tiny vectors keep their direction).
    const r = t.search(normalisedArray(q.vector), q.params.k);
    const s1 = performance.now();
    const results = new Array(r.neighbors.length);
    for (let i = 0; i < r.neighbors.length; i++) {
      const label = r.neighbors[i] as number;
      const distance = r.distances[i] as number;
      results[i] = { id: t.ids[label], score: 1 - distance, distance, metadata: t.meta?.[label] ?? null };
    }
    const body = JSON.stringify({ space: t.space, version: t.version, collection: t.collection, results });
    const ms = performance.now() - t0;
    const path = event.rawPath;
    process.stdout.write(
      `{"level":"INFO","message":"request","timestamp":"${new Date().toISOString()}",${head},"k":${q.params.k},"cache":"hit","method":"POST","path":${JSON.stringify(path)},"status":200,"ms":${Math.round(ms * 1000) / 1000},"requestId":${JSON.stringify(event.requestContext.requestId)}}\n` +
        `${emfHead}${Date.now()}${emfTail}${Math.round(ms * 1000) / 1000}}\n`,
    );
    return {
      statusCode: 200,
      headers: {
        'content-type': 'application/json',
        'vicinity-version': t.version,
        'server-timing': `search;dur=${(s1 - s0).toFixed(2)}, total;dur=${ms.toFixed(2)}`,
      },
      body,
    };
  };
}
