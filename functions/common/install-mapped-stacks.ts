/**
 * Injected by esbuild into every function's bundle (infra/constructs/vicinity-function.ts,
 * `bundleOptions`): stacks are source-mapped when formatted, not at load (mapped-stacks.ts).
 */
import { installMappedStacks } from './mapped-stacks';

installMappedStacks();
