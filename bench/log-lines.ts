/**
 * The query handler's log lines made comparable between runs (bench/query-golden.ts, the floor's check in
 * bench/query.ts): timestamps, latencies and cold-start flags blanked. No side effects on import.
 */
export function blankTimes(lines: string): string {
  return lines
    .replace(/"(timestamp|Timestamp)":("[^"]*"|\d+)/g, '"$1":T')
    .replace(/"(ms|RequestLatency)":[\d.e-]+/g, '"$1":M')
    .replace(/"cold_start":(true|false)/g, '"cold_start":C');
}
