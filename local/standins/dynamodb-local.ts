/** The faithful DynamoDB stand-in: AWS's DynamoDB Local jar in a JVM child process. */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { createDynamoClient } from '../../functions/adapters/aws-clients';
import { acceptsConnections, collectTail, exitOf, freePort, terminate } from './child-process';
import { type DynamoStandIn, HOST, LOCAL_CREDENTIALS, LOCAL_REGION } from './common';

const DYNAMODB_LOCAL_START_TIMEOUT_MS = 30_000;

function emulatorDir(): string {
  const pkg = createRequire(import.meta.url).resolve('amplify-dynamodb-simulator/package.json');
  return join(dirname(pkg), 'emulator');
}

/**
 * AWS's DynamoDB Local (the jar shipped in amplify-dynamodb-simulator): slower to start than dynalite,
 * but it has TransactWriteItems and ReturnValuesOnConditionCheckFailure like AWS. Needs `java` on PATH.
 * It listens on all interfaces, not only 127.0.0.1.
 */
export async function startDynamoDbLocal(): Promise<DynamoStandIn> {
  const dir = emulatorDir();
  const jar = join(dir, 'DynamoDBLocal.jar');
  if (!existsSync(jar)) throw new Error(`DynamoDB Local jar not found at ${jar}`);
  // The free port is only probably free until java binds it: retry the rare collision.
  for (let attempt = 1; ; attempt++) {
    try {
      return await launchDynamoDbLocal(dir, jar, await freePort());
    } catch (err) {
      if (!(err instanceof PortInUseError) || attempt >= 3) throw err;
    }
  }
}

class PortInUseError extends Error {}

async function launchDynamoDbLocal(dir: string, jar: string, port: number): Promise<DynamoStandIn> {
  const child = spawn(
    'java',
    [
      // C1 only and the serial GC: roughly halves startup for a short-lived test server.
      '-XX:TieredStopAtLevel=1',
      '-XX:+UseSerialGC',
      `-Djava.library.path=${join(dir, 'DynamoDBLocal_lib')}`,
      '-jar',
      jar,
      '-inMemory',
      '-sharedDb',
      '-disableTelemetry',
      '-port',
      String(port),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const stdout = collectTail(child.stdout);
  const stderr = collectTail(child.stderr);
  const exited = exitOf(child);
  let spawnError: NodeJS.ErrnoException | undefined;
  child.on('error', (err: NodeJS.ErrnoException) => {
    spawnError = err;
  });

  const endpoint = `http://${HOST}:${port}`;
  const client = createDynamoClient({
    region: LOCAL_REGION,
    dynamodbEndpoint: endpoint,
    credentials: LOCAL_CREDENTIALS,
  });
  const deadline = Date.now() + DYNAMODB_LOCAL_START_TIMEOUT_MS;
  try {
    for (;;) {
      if (spawnError) {
        throw spawnError.code === 'ENOENT'
          ? new Error('DynamoDB Local needs a Java runtime (17+), but `java` was not found on PATH')
          : new Error(`could not start DynamoDB Local: ${spawnError.message}`);
      }
      if (child.exitCode !== null || child.signalCode !== null) {
        const out = stderr() + stdout();
        const message = `DynamoDB Local exited during startup (code ${child.exitCode}, signal ${child.signalCode}). java output:\n${out}`;
        throw /BindException|Address already in use/.test(out)
          ? new PortInUseError(message)
          : new Error(message);
      }
      // A bare TCP probe first: the SDK's own retry backoff on refused connections adds ~1 s.
      if (await acceptsConnections(port)) {
        try {
          await client.send(new ListTablesCommand({ Limit: 1 }), { abortSignal: AbortSignal.timeout(2_000) });
          break;
        } catch {
          // Listening but not answering yet.
        }
      }
      if (Date.now() > deadline) {
        throw new Error(
          `DynamoDB Local did not answer on ${endpoint} within ${DYNAMODB_LOCAL_START_TIMEOUT_MS} ms. ` +
            `java stderr:\n${stderr()}\njava stdout:\n${stdout()}`,
        );
      }
      await sleep(50);
    }
  } catch (err) {
    await terminate(child, exited, 'SIGKILL');
    throw err;
  } finally {
    client.destroy();
  }

  let stopped: Promise<void> | undefined;
  return {
    endpoint,
    port,
    stop() {
      stopped ??= terminate(child, exited, 'SIGTERM');
      return stopped;
    },
  };
}
