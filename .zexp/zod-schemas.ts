export * from '../functions/core/query';
export * from '../functions/core/release';
export const handler = () => 1;
