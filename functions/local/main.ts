import { join, resolve } from 'node:path';
import { DynamoRegistry } from '../adapters/dynamo-registry';
import { S3Store } from '../adapters/s3-store';
import { publishSyntheticDemo } from './demo';
import { startLocalStack } from './stack';

/** `npm start`: the whole system on this machine, no AWS account. */
async function main() {
  const home = resolve(process.env.VICINITY_HOME || '.vicinity');
  const port = Number(process.env.PORT || 3000);
  process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
  // Lambda runs Node 22; locally on Node 20 the SDK's deprecation notice is only noise.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
  const t0 = Date.now();
  const stack = await startLocalStack({ home, port, log: (l) => console.log(`[vicinity] ${l}`) });
  const { info } = stack;
  console.log(`Vicinity is running (started in ${Date.now() - t0} ms)
  API:        ${info.apiUrl}/v1
  S3:         ${info.s3Endpoint}  bucket ${info.bucket}
  DynamoDB:   ${info.dynamodbEndpoint}  table ${info.table}
  Region:     ${info.region}, credentials ${info.accessKeyId}/${info.secretAccessKey}
  Data:       ${home} (connection details in ${join(home, 'local.json')})`);

  const registry = new DynamoRegistry(stack.deps.dynamo, info.table);
  if ((await registry.listSpaces()).length === 0) {
    console.log('First start: publishing the demo release…');
    const published = Date.now();
    const { space } = await publishSyntheticDemo(new S3Store(stack.deps.s3, info.bucket));
    await stack.idle();
    const pointer = await registry.getPointer(space);
    console.log(
      `Demo space "${space}" is live at ${pointer.version} (${Date.now() - published} ms from upload to READY).`,
    );
  }
  console.log(`Try:
  curl -s '${info.apiUrl}/v1/spaces/demo/collections/tracks/items/t1/similar?k=5'
  curl -s '${info.apiUrl}/v1/spaces/demo/collections/users/items/u1/similar?target=tracks&k=5&excludeSeen=true'`);

  const shutdown = async () => {
    console.log('Stopping…');
    await stack.stop();
    process.exit(0);
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

main().catch((err) => {
  console.error(`vicinity: could not start: ${(err as Error).message}`);
  if ((err as { code?: string }).code === 'EADDRINUSE')
    console.error('hint: set PORT to a free port, e.g. PORT=3100 npm start');
  process.exit(1);
});
