/**
 * The CDK app: one stack, configured from context (`vicinity:*` keys, see infra/config.ts).
 *
 * The stack is environment-agnostic (no `env`): synth performs no account or region lookups and
 * works offline; `cdk deploy` targets the account and region of the AWS profile in use.
 */
import { App } from 'aws-cdk-lib';
import { configFromContext } from './config';
import { addNagChecks } from './nag';
import { VicinityStack } from './stacks/vicinity-stack';

const app = new App();
const config = configFromContext((key) => app.node.tryGetContext(key));
new VicinityStack(app, config.stackName, {
  config,
  description: 'Vicinity: serverless similarity service (S3 releases → HNSW snapshots → HTTP API)',
});
// cdk-nag's AWS Solutions and Serverless packs: an unacknowledged finding fails the synth.
addNagChecks(app);
app.synth();
