import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { CfnElement } from 'aws-cdk-lib/core';
import type { IConstruct } from 'constructs';
import { configFromContext, type VicinityConfig } from '../../infra/config';
import { VicinityStack } from '../../infra/stacks/vicinity-stack';

export interface Synthesised {
  readonly stack: VicinityStack;
  readonly template: Template;
  readonly config: VicinityConfig;
  /** Logical ID of a construct's CloudFormation resource (e.g. a function's AWS::Lambda::Function). */
  readonly idOf: (c: IConstruct) => string;
}

/**
 * Synthesises the stack with bundling skipped (`aws:cdk:bundling-stacks: []`): no esbuild run, no
 * built layer needed. CDK's built-in CloudFormation schema validation (20+ s on a busy 2-core
 * machine) is left to `npm run synth`, which runs it on the real template. `context` takes
 * `vicinity:*` keys as on the CLI.
 */
export function synth(context: Record<string, unknown> = {}): Synthesised {
  const app = new App({
    context: { 'aws:cdk:bundling-stacks': [], ...context },
    builtinCloudFormationValidation: false,
  });
  const config = configFromContext((k) => app.node.tryGetContext(k));
  const stack = new VicinityStack(app, 'Test', { config });
  const template = Template.fromStack(stack);
  const idOf = (c: IConstruct): string => {
    const child = c.node.defaultChild;
    if (!child) throw new Error(`${c.node.path} has no default CloudFormation resource`);
    return Stack.of(c).getLogicalId(child as CfnElement);
  };
  return { stack, template, config, idOf };
}

export interface PolicyStatementJson {
  readonly Effect: string;
  readonly Action: string | string[];
  readonly Resource: unknown;
  readonly Condition?: Record<string, Record<string, unknown>>;
}

/** Every statement of the inline policies attached to a role (by the role's logical ID). */
export function statementsOfRole(template: Template, roleId: string): PolicyStatementJson[] {
  const policies = template.findResources('AWS::IAM::Policy');
  return Object.values(policies)
    .filter((p) => {
      const roles = (p.Properties?.Roles ?? []) as { Ref?: string }[];
      return roles.some((r) => r.Ref === roleId);
    })
    .flatMap((p) => p.Properties.PolicyDocument.Statement as PolicyStatementJson[]);
}

export function actionsOf(statements: readonly PolicyStatementJson[]): string[] {
  return [...new Set(statements.flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action])))].sort();
}
