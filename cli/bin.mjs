#!/usr/bin/env node
// The `vicinity` command (package.json "bin"): runs the TypeScript CLI through tsx.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const { register } = await import('tsx/esm/api');
register();
const { runCli } = await import('./main.ts');
const code = await runCli(process.argv.slice(2));
process.exitCode = code;
// Idle keep-alive sockets must not hold the terminal; give pending writes a moment, then leave.
setTimeout(() => process.exit(code), 100).unref();
