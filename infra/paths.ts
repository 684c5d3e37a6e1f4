import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (where package.json, package-lock.json and cdk.json live). */
export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
