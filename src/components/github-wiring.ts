/**
 * Token (PAT) mode: the program itself points GitHub at the webhook URL — an organization webhook
 * (org scope) or one per repository (repo scope), for `workflow_job` only, signed with the stack's
 * secret — so `pulumi up` is the whole setup. Their ids go to the reconciler, which redelivers their
 * failed deliveries (lambda/core/redelivery.ts). App mode needs nothing here: the App's own webhook
 * is set by the App setup tooling.
 */
import * as github from "@pulumi/github";
import * as pulumi from "@pulumi/pulumi";
import type { GitHubWebhook } from "../../lambda/shared/settings";
import type { StackContext } from "../config/stack-context";

function hookIdOf(id: string): number {
  const hookId = Number(id);
  if (!Number.isSafeInteger(hookId) || hookId <= 0) throw new Error(`unexpected GitHub webhook id "${id}"`);
  return hookId;
}

export class GithubWiring extends pulumi.ComponentResource {
  /** The reconciler's GITHUB_WEBHOOKS setting: each webhook's owner, repository and id, as JSON. */
  readonly webhooksSetting: pulumi.Output<string>;

  constructor(
    name: string,
    args: {
      ctx: StackContext;
      webhookUrl: pulumi.Output<string>;
      webhookSecret: pulumi.Output<string>;
      token: pulumi.Output<string>;
    },
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super("runner-fleet:index:GithubWiring", name, {}, opts);
    const { ctx } = args;
    const provider = new github.Provider(
      name,
      {
        token: args.token,
        owner: ctx.config.github.owner,
        // The provider wants the API URL with a trailing slash (GHES: https://HOST/api/v3/).
        baseUrl: `${ctx.settings.githubApiUrl}/`,
      },
      { parent: this },
    );
    const configuration = {
      url: args.webhookUrl,
      contentType: "json",
      secret: args.webhookSecret,
      insecureSsl: false,
    };
    const { owner } = ctx.config.github;
    // A webhook's resource id is GitHub's hook id (the provider sets it so).
    const refs: pulumi.Output<GitHubWebhook>[] = [];
    if (ctx.config.github.scope === "org") {
      const hook = new github.OrganizationWebhook(
        name,
        { active: true, events: ["workflow_job"], configuration },
        { parent: this, provider },
      );
      refs.push(hook.id.apply((id) => ({ owner, hookId: hookIdOf(id) })));
    } else {
      for (const repository of ctx.config.github.repositories) {
        const hook = new github.RepositoryWebhook(
          `${name}-${repository}`,
          { repository, active: true, events: ["workflow_job"], configuration },
          { parent: this, provider },
        );
        refs.push(hook.id.apply((id) => ({ owner, repo: repository, hookId: hookIdOf(id) })));
      }
    }
    this.webhooksSetting = pulumi.all(refs).apply((list) => JSON.stringify(list));
    this.registerOutputs({ webhooksSetting: this.webhooksSetting });
  }
}
