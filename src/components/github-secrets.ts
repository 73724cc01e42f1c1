/**
 * The GitHub secrets (App private key or PAT, webhook secret) as SSM SecureString parameters, from
 * the stack's secret config. Lambdas get only the parameter names and read the values at cold start.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { parameterNames, type StackContext } from "../config/stack-context";

export class GithubSecrets extends pulumi.ComponentResource {
  readonly webhookSecret: aws.ssm.Parameter;
  /** App mode: the private key; token mode: the PAT. */
  readonly credential: aws.ssm.Parameter;
  /** Name of `credential` (known before deploy, for policies). */
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
    const secureString = (id: string, paramName: string, description: string, value: string) =>
      new aws.ssm.Parameter(
        `${name}-${id}`,
        { name: paramName, type: "SecureString", description, value: pulumi.secret(value) },
        { parent: this },
      );
    this.webhookSecretValue = pulumi.secret(config.webhookSecret);
    this.webhookSecret = secureString(
      "webhook-secret",
      names.webhookSecret,
      "GitHub webhook secret (HMAC of workflow_job deliveries)",
      config.webhookSecret,
    );
    if (config.github.authMode === "app") {
      this.credentialParameterName = names.githubAppPrivateKey;
      this.credential = secureString(
        "app-private-key",
        names.githubAppPrivateKey,
        "GitHub App private key (PEM)",
        config.githubAppPrivateKey!,
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
    this.revision = pulumi.interpolate`${this.webhookSecret.version}.${this.credential.version}`;
    this.registerOutputs({});
  }
}
