// biome-ignore-all lint/suspicious/noExplicitAny: resource inputs under mocks are untyped JSON
/**
 * The first deploy of an App-mode stack: Pulumi.dev.yaml as it ships (no App id), and no secret set
 * at all. The stack deploys; the App is created afterwards against its live webhook URL.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { isSecretValue, type ProgramRun, plain, runProgram } from "./mocks";
import { devStackValues, withSecrets } from "./stack-config";

let run: ProgramRun;
beforeAll(async () => {
  const { config, secretKeys } = withSecrets(devStackValues(), {});
  run = await runProgram(config, secretKeys);
}, 600_000);

const parameters = () => run.ofType("aws:ssm/parameter:Parameter");

describe("the first deploy, before the GitHub App exists", () => {
  it("generates the webhook secret, stores it as a SecureString and exports it as a secret", () => {
    const [password] = run.ofType("random:index/randomPassword:RandomPassword");
    expect(password?.inputs).toMatchObject({ length: 48, special: false });
    const param = parameters().find((p) => p.inputs.name === "/runner-fleet/dev/github/webhook-secret");
    expect(param?.inputs.type).toBe("SecureString");
    expect(isSecretValue(param?.inputs.value)).toBe(true);
    expect(plain(param?.inputs.value)).toBe(password?.state.result);
    expect(run.secretOutputs).toEqual(["webhookSecret"]);
    expect(run.outputs.webhookSecret).toBe(password?.state.result);
  });

  it("declares no App key parameter and gives no Lambda App settings, so the webhook answers 503", () => {
    const names = parameters().map((p) => p.inputs.name);
    expect(names).not.toContain("/runner-fleet/dev/github/app-private-key");
    for (const name of ["webhook", "launcher", "reconciler", "ec2-events", "janitor"]) {
      const variables = run.fnNamed(name).inputs.environment.variables;
      expect(variables).not.toHaveProperty("GITHUB_APP_ID");
      expect(variables).not.toHaveProperty("GITHUB_PRIVATE_KEY_PARAM");
    }
    // Those that would ask GitHub learn the App is pending: the webhook answers 503, the others wait.
    for (const name of ["webhook", "reconciler", "janitor"])
      expect(plain(run.fnNamed(name).inputs.environment.variables.GITHUB_APP_STATE)).toBe("pending");
  });

  it("still deploys everything a job needs once the App arrives, and exports the webhook URL", () => {
    expect(plain(run.outputs.webhookUrl)).toBe("https://abc123.execute-api.eu-west-1.amazonaws.com/webhook");
    expect(run.ofType("aws:lambda/function:Function")).toHaveLength(5);
    expect(run.ofType("aws:ec2/launchTemplate:LaunchTemplate").length).toBeGreaterThan(0);
  });
});
