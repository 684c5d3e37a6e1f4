// local/: the embedded default `npm start` runs — stand-ins, HTTP adapter, the same handlers as Lambda.
// It may import functions/ and examples/als (the demo's trainer), never cli/; cli/ reads only info.ts.
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DynamoRegistry } from '../functions/adapters/dynamo-registry';
import { S3Store } from '../functions/adapters/s3-store';
import {
  DEMO_ARTIST,
  DEMO_USER,
  publishMusicDemo,
  publishShardedMusicDemo,
  SHARDED_MUSIC_ARTIST_SHARDS,
  SHARDED_MUSIC_SPACE,
} from './demo';
import type { AdminAuth } from './info';
import { demoSlots } from './sharded-demo';
import { startLocalStack } from './stack';
import { createStaticHandler } from './static';

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/**
 * VICINITY_ADMIN_AUTH / VICINITY_READ_AUTH: `iam` makes the admin (read) routes check SigV4 as API
 * Gateway does in AWS; default `none`.
 */
function authOf(name: string, value: string | undefined): AdminAuth {
  if (value === undefined || value === '' || value === 'none') return 'none';
  if (value === 'iam') return 'iam';
  throw new Error(`${name} must be iam or none, not ${JSON.stringify(value)}`);
}

/** `npm start`: the whole system on this machine, no AWS account. */
async function main() {
  const home = resolve(process.env.VICINITY_HOME || '.vicinity');
  const port = Number(process.env.PORT || 3000);
  const adminAuth = authOf('VICINITY_ADMIN_AUTH', process.env.VICINITY_ADMIN_AUTH);
  const readAuth = authOf('VICINITY_READ_AUTH', process.env.VICINITY_READ_AUTH);
  process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
  // Lambda runs Node 22; locally on Node 20 the SDK's deprecation notice is only noise.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
  const t0 = Date.now();
  const stack = await startLocalStack({
    home,
    port,
    // Stable stand-in ports (API port + 1 and + 2) so a saved AWS profile keeps working; 0 = any free.
    s3Port: Number(process.env.VICINITY_S3_PORT ?? (port ? port + 1 : 0)),
    dynamoPort: Number(process.env.VICINITY_DYNAMODB_PORT ?? (port ? port + 2 : 0)),
    adminAuth,
    readAuth,
    staticHandler: createStaticHandler(),
    log: (l) => console.log(`[vicinity] ${l}`),
    // VICINITY_DEMO=sharded: shard-slot functions serve sharded collections by scatter-gather.
    slots: demoSlots(),
  });
  const { info } = stack;
  // A ready-to-use AWS CLI v2 profile: AWS_CONFIG_FILE=.vicinity/aws-config aws --profile vicinity s3 ls
  const creds = `aws_access_key_id = ${info.accessKeyId}\naws_secret_access_key = ${info.secretAccessKey}`;
  const services = `s3 =\n  endpoint_url = ${info.s3Endpoint}\ndynamodb =\n  endpoint_url = ${info.dynamodbEndpoint}`;
  await writeFile(
    join(home, 'aws-config'),
    `[profile vicinity]\nregion = ${info.region}\n${creds}\nservices = vicinity\n\n[services vicinity]\n${services}\n`,
  );
  console.log(`Vicinity is running (started in ${Date.now() - t0} ms)
  Explorer:   ${info.apiUrl}/
  API:        ${info.apiUrl}/v1
  S3:         ${info.s3Endpoint}  bucket ${info.bucket}
  DynamoDB:   ${info.dynamodbEndpoint}  table ${info.table}
  Region:     ${info.region}, credentials ${info.accessKeyId}/${info.secretAccessKey}
${adminAuth === 'iam' ? '  Admin:      activate/rollback need a SigV4 signature with these credentials (VICINITY_ADMIN_AUTH=iam)\n' : ''}${readAuth === 'iam' ? '  Reads:      need a SigV4 signature too (VICINITY_READ_AUTH=iam; the vicinity CLI signs, the explorer page cannot)\n' : ''}  Data:       ${home} (connection details in ${join(home, 'local.json')})`);

  const registry = new DynamoRegistry(stack.deps.dynamo, info.table);
  // First start (or a home from before the music demo): train and publish it, unless VICINITY_DEMO=0.
  if (process.env.VICINITY_DEMO !== '0' && !(await registry.listSpaces()).includes('music')) {
    console.log(
      'First start: training ALS on the Last.fm plays (examples/lastfm) and publishing space "music"…',
    );
    const published = Date.now();
    const demo = await publishMusicDemo(new S3Store(stack.deps.s3, info.bucket), {
      workDir: join(home, 'demo'),
    });
    const uploaded = Date.now();
    await stack.idle();
    const pointer = await registry.getPointer(demo.space);
    const record = pointer.version ? await registry.getVersion(demo.space, pointer.version) : undefined;
    if (!pointer.version) {
      const failed = stack.outcomes.find((o) => o.status === 'FAILED');
      throw new Error(
        `the demo release did not go live${failed && 'reason' in failed ? `: ${failed.reason}` : ''}`,
      );
    }
    console.log(
      `Demo space "${demo.space}" is live at ${pointer.version}: ${demo.users} users, ${demo.artists} artists ` +
        `(ALS trained in ${seconds(demo.trainMs)}, files written in ${seconds(demo.writeMs)}, ` +
        `uploaded in ${seconds(demo.uploadMs)}, built in ${seconds(record?.timings?.totalMs ?? Date.now() - uploaded)}; ` +
        `${seconds(Date.now() - published)} for the demo, ${seconds(Date.now() - t0)} from start).`,
    );
  }
  // VICINITY_DEMO=sharded: the music demo again, its artists in 4 shards over the shard slots.
  if (demoSlots() && !(await registry.listSpaces()).includes(SHARDED_MUSIC_SPACE)) {
    console.log(
      `Publishing space "${SHARDED_MUSIC_SPACE}" (the music demo with its artists in ${SHARDED_MUSIC_ARTIST_SHARDS} shards over the shard slots)…`,
    );
    await publishShardedMusicDemo(new S3Store(stack.deps.s3, info.bucket), { workDir: join(home, 'demo') });
    await stack.idle(300_000);
    const pointer = await registry.getPointer(SHARDED_MUSIC_SPACE);
    if (!pointer.version) {
      const failed = stack.outcomes.find((o) => o.status === 'FAILED');
      throw new Error(
        `the sharded demo release did not go live${failed && 'reason' in failed ? `: ${failed.reason}` : ''}`,
      );
    }
    console.log(
      `Space "${SHARDED_MUSIC_SPACE}" is live at ${pointer.version}. Try: curl -s '${info.apiUrl}/v1/spaces/${SHARDED_MUSIC_SPACE}/collections/artists/items/${DEMO_ARTIST}/similar?k=5'`,
    );
  }
  const spaces = await registry.listSpaces();
  const api = `${info.apiUrl}/v1/spaces/music`;
  console.log(
    spaces.includes('music')
      ? `Try:
  curl -s '${api}/collections/artists/items/${DEMO_ARTIST}/similar?k=5'        # artists like Radiohead
  curl -s '${api}/collections/users/items/${DEMO_USER}/similar?target=artists&k=5&excludeSeen=true'   # for user ${DEMO_USER}
  npx vicinity similar music artists ${DEMO_ARTIST}
  npx vicinity status music`
      : `Spaces: ${spaces.join(', ') || 'none'} (\`npx vicinity spaces\`)`,
  );

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
