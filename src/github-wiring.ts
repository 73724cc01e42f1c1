/**
 * Token (PAT) mode: the program itself points GitHub at the webhook URL — an organization webhook
 * (org scope) or one per repository (repo scope), for `workflow_job` only, signed with the stack's
 * secret — so `pulumi up` is the whole setup. App mode needs nothing here: the App's own webhook is
 * set by the App setup tooling.
 */
import * as github from "@pulumi/github";
import * as pulumi from "@pulumi/pulumi";
import type { StackContext } from "./context";

export class GithubWiring extends pulumi.ComponentResource {
  readonly webhooks: (github.OrganizationWebhook | github.RepositoryWebhook)[] = [];

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
    if (ctx.config.github.scope === "org") {
      this.webhooks.push(
        new github.OrganizationWebhook(
          name,
          { active: true, events: ["workflow_job"], configuration },
          { parent: this, provider },
        ),
      );
    } else {
      for (const repository of ctx.config.github.repositories) {
        this.webhooks.push(
          new github.RepositoryWebhook(
            `${name}-${repository}`,
            { repository, active: true, events: ["workflow_job"], configuration },
            { parent: this, provider },
          ),
        );
      }
    }
    this.registerOutputs({});
  }
}
