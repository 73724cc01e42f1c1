/**
 * The GitHub secrets (App private key or PAT, webhook secret) as SSM SecureString parameters, from
 * the stack's secret config. Lambdas get only the parameter names and read the values at cold start.
 *
 * The first deploy of an App-mode stack has no App yet: the App is created afterwards against the
 * stack's live webhook URL (`npm run setup:github-app`), so it starts active and nobody has to tick
 * "Active" by hand. Until then there is no key parameter, and the webhook answers 503. The webhook
 * secret is generated here when the config sets none, so the setup (and token mode's webhooks) can
 * take it from the stack output.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { parameterNames, type StackContext } from "../config/stack-context";

export class GithubSecrets extends pulumi.ComponentResource {
  readonly webhookSecret: aws.ssm.Parameter;
  /** App mode: the private key; token mode: the PAT. Absent while an App-mode stack has no App yet. */
  readonly credential?: aws.ssm.Parameter;
  /** Name of the credential's parameter (known before deploy, for policies). */
  readonly credentialParameterName: string;
  /** The plain secret values (Pulumi secrets), for resources that need them (the token-mode webhook). */
  readonly webhookSecretValue: pulumi.Output<string>;
  readonly tokenValue?: pulumi.Output<string>;
  /** The parameters' versions, e.g. "3.1": changes whenever a secret does. */
  readonly revision: pulumi.Output<string>;

  constructor(name: string, args: { ctx: StackContext }, opts?: pulumi.ComponentResourceOptions) {
    super("runner-fleet:index:GithubSecrets", name, {}, opts);
    const { config } = args.ctx;
    const names = parameterNames(args.ctx);
    const secureString = (id: string, paramName: string, description: string, value: pulumi.Input<string>) =>
      new aws.ssm.Parameter(
        `${name}-${id}`,
        { name: paramName, type: "SecureString", description, value: pulumi.secret(value) },
        { parent: this },
      );
    this.webhookSecretValue = pulumi.secret(
      config.webhookSecret ??
        new random.RandomPassword(
          `${name}-generated-webhook-secret`,
          { length: 48, special: false },
          { parent: this },
        ).result,
    );
    this.webhookSecret = secureString(
      "webhook-secret",
      names.webhookSecret,
      "GitHub webhook secret (HMAC of workflow_job deliveries)",
      this.webhookSecretValue,
    );
    if (config.github.authMode === "app") {
      this.credentialParameterName = names.githubAppPrivateKey;
      if (config.githubAppPrivateKey !== undefined)
        this.credential = secureString(
          "app-private-key",
          names.githubAppPrivateKey,
          "GitHub App private key (PEM)",
          config.githubAppPrivateKey,
        );
    } else {
      this.credentialParameterName = names.githubToken;
      this.tokenValue = pulumi.secret(config.githubToken!);
      this.credential = secureString(
        "token",
        names.githubToken,
        "GitHub fine-grained PAT",
        config.githubToken!,
      );
    }
    this.revision = pulumi.interpolate`${this.webhookSecret.version}.${this.credential?.version ?? "none"}`;
    this.registerOutputs({});
  }
}
