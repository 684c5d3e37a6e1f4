import * as z from 'zod';
export const handler = () => z;
