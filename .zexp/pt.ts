export * from '../functions/common/observability';
export const handler = () => 1;
