/**
 * Injected by esbuild into every function's bundle (infra/constructs/vicinity-function.ts,
 * `bundleOptions`), which is minified without `keepNames`, so classes are renamed. The SDK tells its
 * default logger from a real one by class name (`logger.constructor.name === "NoOpLogger"`, in
 * @smithy/core and @aws-sdk/*): renamed, the SDK would hand that no-op logger to the HTTP handler, and
 * the warnings it now prints with console.warn (e.g. node-http-handler's sockets at capacity) would
 * be dropped. The SDK's other checks of names compare built-ins (Set, Map, Uint8Array,
 * ReadableStream) or exceptions' `name` strings, which minification does not touch
 * (test/infra/error-names.test.ts).
 */
import { NoOpLogger } from '@smithy/core/client';

Object.defineProperty(NoOpLogger, 'name', { value: 'NoOpLogger', configurable: true });
