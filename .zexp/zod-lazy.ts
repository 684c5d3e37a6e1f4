export const handler = async (x: unknown) => (await import('../functions/core/query')).MAX_K;
