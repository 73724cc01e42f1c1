import { describe, expect, it } from "vitest";
import { isArm64InstanceType } from "../../src/config/checks";
import { ConfigError, checkStackName, parseStackConfig } from "../../src/config/errors";
import { githubApiUrlOf } from "../../src/config/load";
import {
  APP_SECRETS,
  devStackValues,
  PROJECT,
  projectKeys,
  TEST_SECRETS,
  TOKEN_SECRETS,
  withAppId,
  withSecrets,
} from "./stack-config";

// biome-ignore lint/suspicious/noExplicitAny: the YAML fixture is mutated freely, by path
type Values = Record<string, any>;

function parse(
  mutate: (v: Values) => void = () => {},
  secrets: Partial<typeof TEST_SECRETS> = APP_SECRETS,
  plainTextSecretKeys: string[] = [],
) {
  const values = (secrets.githubAppPrivateKey ? withAppId(devStackValues()) : devStackValues()) as Values;
  mutate(values);
  const { config } = withSecrets(values, secrets);
  return parseStackConfig(projectKeys(config), {
    project: PROJECT,
    stackFile: "Pulumi.dev.yaml",
    plainTextSecretKeys,
  });
}

function problemsOf(
  mutate: (v: Values) => void,
  secrets: Partial<typeof TEST_SECRETS> = APP_SECRETS,
  plain: string[] = [],
): string[] {
  try {
    parse(mutate, secrets, plain);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain("Invalid stack config in Pulumi.dev.yaml");
    return (error as ConfigError).problems;
  }
  throw new Error("expected the config to be rejected");
}

const gh = (v: Values) => v[`${PROJECT}:github`];
const label = (v: Values, name: string) => v[`${PROJECT}:labelConfigs`][name];

describe("the example stack config (Pulumi.dev.yaml)", () => {
  it("deploys first without an App, an App key or a webhook secret (the setup adds them after)", () => {
    const c = parse(() => {}, {});
    expect(c.github.authMode).toBe("app");
    expect(c.github.appId).toBeUndefined();
    expect(c.githubAppPrivateKey).toBeUndefined();
    expect(c.webhookSecret).toBeUndefined();
  });

  it("is valid and gets the documented defaults", () => {
    const c = parse();
    expect(c.github).toMatchObject({ authMode: "app", appId: 123456, scope: "org", owner: "my-org" });
    expect(Object.keys(c.labelConfigs)).toEqual(["linux-x64-large", "linux-arm64-medium"]);
    expect(c.labelConfigs["linux-arm64-medium"]).toMatchObject({
      arch: "arm64",
      diskSizeGb: 50,
      spotFailuresBeforeOnDemand: 2,
      allocationStrategy: "price-capacity-optimized",
      retryOnInterruption: true,
    });
    expect(c.labelConfigs["linux-x64-large"]?.allocationStrategy).toBe("capacity-optimized");
    expect(c.network).toMatchObject({ natGateway: false, cidrBlock: "10.42.0.0/16", availabilityZones: 3 });
    expect(c.network.vpcId).toBeUndefined();
    expect(c.limits.maxRuntimeMinutes).toBe(360);
    expect(c.imagePipeline).toMatchObject({
      enabled: true,
      runnerVersionPolicy: "latest",
      extraComponents: [],
    });
    expect(c.logRetentionDays).toBe(30);
  });

  it("defaults an omitted section (limits) to the documented values", () => {
    const c = parse((v) => {
      delete v[`${PROJECT}:limits`];
      for (const l of Object.values(v[`${PROJECT}:labelConfigs`]) as Values[]) l.maxRunners = 5;
    });
    expect(c.limits).toEqual({
      maxRunnersTotal: 100,
      maxRuntimeMinutes: 360,
      idleTimeoutMinutes: 10,
      queueTimeoutMinutes: 60,
    });
  });

  it("accepts the commented pool example of Pulumi.dev.yaml, working days by default", () => {
    const c = parse((v) => {
      label(v, "linux-x64-large").pool = {
        size: 0,
        schedule: { timeZone: "Europe/Berlin", from: "08:00", to: "19:00", size: 3 },
      };
    });
    expect(c.labelConfigs["linux-x64-large"]!.pool).toEqual({
      size: 0,
      schedule: {
        timeZone: "Europe/Berlin",
        days: ["mon", "tue", "wed", "thu", "fri"],
        from: "08:00",
        to: "19:00",
        size: 3,
      },
    });
    expect(c.labelConfigs["linux-arm64-medium"]!.pool).toEqual({ size: 0 });
  });

  it("accepts an existing VPC and a GHES token-mode repo-scope setup", () => {
    const c = parse((v) => {
      v[`${PROJECT}:network`] = {
        vpcId: "vpc-0123456789abcdef0",
        subnetIds: ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"],
      };
      v[`${PROJECT}:github`] = {
        url: "https://ghes.example.com",
        authMode: "token",
        scope: "repo",
        owner: "platform",
        repositories: ["app"],
      };
    }, TOKEN_SECRETS);
    expect(c.network.subnetIds).toHaveLength(2);
    expect(c.github.authMode).toBe("token");
  });
});

describe("realistic config mistakes fail naming the key, the value and the expected shape", () => {
  const cases: [string, (v: Values) => void, RegExp, Partial<typeof TEST_SECRETS>?][] = [
    [
      "arch spelled arm",
      (v) => {
        label(v, "linux-arm64-medium").arch = "arm";
      },
      /^runner-fleet:labelConfigs\.linux-arm64-medium\.arch: got "arm"; expected "x64" or "arm64"$/,
    ],
    [
      "instance type with a dash",
      (v) => {
        label(v, "linux-x64-large").instanceTypes[1] = "m6i-xlarge";
      },
      /^runner-fleet:labelConfigs\.linux-x64-large\.instanceTypes\[1\]: got "m6i-xlarge"; m6i-xlarge is not an EC2 instance type; did you mean m6i\.xlarge\?$/,
    ],
    [
      "x64 instance type in an arm64 config",
      (v) => {
        label(v, "linux-arm64-medium").instanceTypes.push("m7i.large");
      },
      /^runner-fleet:labelConfigs\.linux-arm64-medium\.instanceTypes\[3\]: got "m7i.large"; expected an arm64 instance type \(arch is arm64; m7i.large is x64\)$/,
    ],
    [
      "unknown spot policy",
      (v) => {
        label(v, "linux-x64-large").spotPolicy = "spot";
      },
      /spotPolicy: got "spot"; expected "spotOnly", "spotPreferred" or "onDemandOnly"$/,
    ],
    [
      "app mode without the App id",
      (v) => {
        delete gh(v).appId;
      },
      /^runner-fleet:github\.appId: got nothing \(not set\); expected the GitHub App's id \(a number\) beside githubAppPrivateKey: `npm run setup:github-app -- create` stores both$/,
    ],
    [
      "App id as text",
      (v) => {
        gh(v).appId = "my-app";
      },
      /^runner-fleet:github\.appId: got "my-app"; expected a whole number from 1 to 2147483648$/,
    ],
    [
      "an App id without the private key (a setup stopped halfway)",
      (v) => {
        gh(v).appId = 123456;
      },
      /^runner-fleet:githubAppPrivateKey: got nothing \(not set\); expected the App's private key \(secret\) beside github\.appId: `npm run setup:github-app -- create` stores both, or remove github\.appId$/,
      { webhookSecret: TEST_SECRETS.webhookSecret },
    ],
    [
      "a too short webhook secret",
      () => {},
      /^runner-fleet:webhookSecret: got \[secret\]; expected a webhook secret of at least 20 characters/,
      { githubAppPrivateKey: TEST_SECRETS.githubAppPrivateKey, webhookSecret: "hunter2" },
    ],
    [
      "the API URL instead of the web URL",
      (v) => {
        gh(v).url = "https://ghes.example.com/api/v3";
      },
      /^runner-fleet:github\.url: got "https:\/\/ghes.example.com\/api\/v3"; expected the web URL without a path/,
    ],
    [
      "repo scope without repositories",
      (v) => {
        gh(v).scope = "repo";
      },
      /^runner-fleet:github\.repositories: got nothing \(not set\); expected at least one repository name in repo scope$/,
    ],
    [
      "an existing VPC without subnets",
      (v) => {
        v[`${PROJECT}:network`] = { vpcId: "vpc-0123456789abcdef0" };
      },
      /^runner-fleet:network\.subnetIds: got nothing \(not set\); expected both network\.vpcId and network\.subnetIds/,
    ],
    [
      "a subnet given by name",
      (v) => {
        v[`${PROJECT}:network`] = { vpcId: "vpc-0123456789abcdef0", subnetIds: ["private-a"] };
      },
      /^runner-fleet:network\.subnetIds\[0\]: got "private-a"; expected a subnet id like "subnet-0123456789abcdef0"$/,
    ],
    [
      "pinned runner version without a version",
      (v) => {
        v[`${PROJECT}:imagePipeline`].runnerVersionPolicy = "pinned";
      },
      /^runner-fleet:imagePipeline\.runnerVersion: got nothing \(not set\); expected a runner version like "2\.329\.0" when the policy is pinned$/,
    ],
    [
      "a log retention CloudWatch does not offer",
      (v) => {
        v[`${PROJECT}:logRetentionDays`] = 45;
      },
      /^runner-fleet:logRetentionDays: got 45; expected one of CloudWatch's retention periods: 1, 3, 5/,
    ],
    [
      "max runtime as a duration string",
      (v) => {
        v[`${PROJECT}:limits`].maxRuntimeMinutes = "6h";
      },
      /^runner-fleet:limits\.maxRuntimeMinutes: got "6h"; expected a whole number from 1 to 10080$/,
    ],
    [
      "an instance type with a typo",
      (v) => {
        label(v, "linux-x64-large").instanceTypes[0] = "m7i.xlargee";
      },
      /^runner-fleet:labelConfigs\.linux-x64-large\.instanceTypes\[0\]: got "m7i.xlargee"; m7i.xlargee is not an EC2 instance type; did you mean m7i\.xlarge\?$/,
    ],
    [
      "an instance type nothing resembles",
      (v) => {
        label(v, "linux-x64-large").instanceTypes[0] = "biggest";
      },
      /^runner-fleet:labelConfigs\.linux-x64-large\.instanceTypes\[0\]: got "biggest"; biggest is not an EC2 instance type; expected one like "m7i\.large" \(family\.size\)$/,
    ],
    [
      "an App id of 0",
      (v) => {
        gh(v).appId = 0;
      },
      /^runner-fleet:github\.appId: got 0; expected a whole number from 1 to 2147483648$/,
    ],
    [
      "a budget of 0",
      (v) => {
        v[`${PROJECT}:alarms`].monthlyBudgetUsd = 0;
      },
      /^runner-fleet:alarms\.monthlyBudgetUsd: got 0; expected a number greater than 0 and at most 1000000$/,
    ],
    [
      "a label config without labels",
      (v) => {
        label(v, "linux-x64-large").labels = [];
      },
      /^runner-fleet:labelConfigs\.linux-x64-large\.labels: got \[\]; expected a list of at least 1 item, each text of 1 to 100 characters$/,
    ],
    [
      "a section given as text",
      (v) => {
        v[`${PROJECT}:limits`] = "none";
      },
      /^runner-fleet:limits: got "none"; expected a map of settings \(maxRunnersTotal, maxRuntimeMinutes, idleTimeoutMinutes and queueTimeoutMinutes\)$/,
    ],
    [
      "no owner",
      (v) => {
        delete gh(v).owner;
      },
      /^runner-fleet:github\.owner: got nothing \(not set\); expected text, required \(Organization \(or user, repo scope\) that owns the repositories whose jobs run here\)$/,
    ],
    [
      "the GitHub URL without a scheme",
      (v) => {
        gh(v).url = "ghes.example.com";
      },
      /^runner-fleet:github\.url: got "ghes.example.com"; expected a URL starting with https:\/\/, e\.g\. "https:\/\/ghes\.example\.com"$/,
    ],
    [
      "the GitHub URL over http",
      (v) => {
        gh(v).url = "http://ghes.example.com";
      },
      /^runner-fleet:github\.url: got "http:\/\/ghes.example.com"; expected a URL starting with https:\/\/ \(not http:\/\/\)$/,
    ],
    [
      "the GitHub URL with a query",
      (v) => {
        gh(v).url = "https://ghes.example.com?org=x";
      },
      /^runner-fleet:github\.url: got "https:\/\/ghes.example.com\?org=x"; expected the web URL without a query \(\?…\) or fragment \(#…\)/,
    ],
    [
      "the GitHub URL with a fragment",
      (v) => {
        gh(v).url = "https://ghes.example.com/#settings";
      },
      /^runner-fleet:github\.url: got "https:\/\/ghes.example.com\/#settings"; expected the web URL without a query \(\?…\) or fragment \(#…\)/,
    ],
    [
      "a nested key set without --path",
      (v) => {
        v[`${PROJECT}:github.url`] = "https://ghes.example.com";
      },
      /^runner-fleet:github\.url: unknown key \(value "https:\/\/ghes.example.com"\); a nested key is set with --path: pulumi config set --path 'runner-fleet:github\.url' …$/,
    ],
    [
      "a key that resembles none",
      (v) => {
        v[`${PROJECT}:region`] = "eu-west-1";
      },
      /^runner-fleet:region: unknown key \(value "eu-west-1"\); expected one of github, githubAppPrivateKey, .*, logRetentionDays$/,
    ],
    [
      "a misspelt top-level key",
      (v) => {
        v[`${PROJECT}:labelConfig`] = v[`${PROJECT}:labelConfigs`];
      },
      /^runner-fleet:labelConfig: unknown key \(value \{.*\); did you mean labelConfigs\?$/,
    ],
    [
      "a misspelt label config key",
      (v) => {
        label(v, "linux-x64-large").instanceType = "m7i.large";
      },
      /^runner-fleet:labelConfigs\.linux-x64-large\.instanceType: unknown key \(value "m7i.large"\); did you mean instanceTypes\?$/,
    ],
    [
      "a config name with capitals",
      (v) => {
        v[`${PROJECT}:labelConfigs`]["Linux-X64"] = label(v, "linux-x64-large");
      },
      /^runner-fleet:labelConfigs\.Linux-X64: got the name "Linux-X64"; expected a config name of 2-40 lowercase letters/,
    ],
    [
      "pipeline off and no AMI",
      (v) => {
        v[`${PROJECT}:imagePipeline`] = { enabled: false };
        label(v, "linux-arm64-medium").amiId = "ami-0123456789abcdef0";
      },
      /^runner-fleet:labelConfigs\.linux-x64-large\.amiId: got nothing \(not set\); expected an AMI id: the image pipeline is disabled$/,
    ],
    [
      "a config allowed more runners than the total",
      (v) => {
        label(v, "linux-x64-large").maxRunners = 50;
      },
      /^runner-fleet:labelConfigs\.linux-x64-large\.maxRunners: got 50; expected at most limits\.maxRunnersTotal \(30\)$/,
    ],
    [
      "a pool larger than the config's runner limit",
      (v) => {
        label(v, "linux-x64-large").pool = { size: 25 };
      },
      /^runner-fleet:labelConfigs\.linux-x64-large\.pool\.size: got 25; expected a pool no larger than the config's maxRunners \(20\): warming members count against it$/,
    ],
    [
      "a pool on a spot-only config",
      (v) => {
        label(v, "linux-arm64-medium").pool = { size: 1 };
      },
      /^runner-fleet:labelConfigs\.linux-arm64-medium\.spotPolicy: got "spotOnly"; expected "spotPreferred" or "onDemandOnly" with a pool: pool members are on-demand \(a one-time spot instance cannot be stopped\)$/,
    ],
    [
      "a pool schedule in a time zone that does not exist",
      (v) => {
        label(v, "linux-x64-large").pool = {
          schedule: { timeZone: "Europe/Berlln", from: "08:00", to: "19:00", size: 3 },
        };
      },
      /^runner-fleet:labelConfigs\.linux-x64-large\.pool\.schedule\.timeZone: got "Europe\/Berlln"; expected an IANA time zone, e\.g\. "Europe\/Berlin" or "America\/New_York"$/,
    ],
    [
      "a pool schedule written in 12-hour time",
      (v) => {
        label(v, "linux-x64-large").pool = {
          schedule: { timeZone: "Europe/Berlin", from: "8am", to: "19:00", size: 3 },
        };
      },
      /^runner-fleet:labelConfigs\.linux-x64-large\.pool\.schedule\.from: got "8am"; expected the window's start as HH:MM on a 24-hour clock, e\.g\. "08:00"$/,
    ],
    [
      "a pool schedule ending before it starts",
      (v) => {
        label(v, "linux-x64-large").pool = {
          schedule: { timeZone: "Europe/Berlin", from: "19:00", to: "08:00", size: 3 },
        };
      },
      /^runner-fleet:labelConfigs\.linux-x64-large\.pool\.schedule\.to: got "08:00"; expected a time after from \(19:00\): the window is one day's \[from, to\)$/,
    ],
    [
      "an alarm email without domain",
      (v) => {
        v[`${PROJECT}:alarms`].email = "oncall";
      },
      /^runner-fleet:alarms\.email: got "oncall"; expected an email address$/,
    ],
    [
      "no label configs at all",
      (v) => {
        v[`${PROJECT}:labelConfigs`] = {};
      },
      /^runner-fleet:labelConfigs: got \{\}; expected at least one label config$/,
    ],
  ];

  it.each(cases)("%s", (_name, mutate, expected, secrets) => {
    const problems = problemsOf(mutate, secrets ?? APP_SECRETS);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(expected);
  });

  it("two label configs a job could match equally (the webhook's routing rule)", () => {
    const problems = problemsOf((v) => {
      label(v, "linux-arm64-medium").labels = ["Linux", "arm64", "self-hosted", "large"];
    });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(
      /^runner-fleet:labelConfigs: got \{"linux-x64-large":.*; expected label configs no job can match equally: /,
    );
    expect(problems[0]).toContain(
      'a job with runs-on: [self-hosted, linux, large] could go to "linux-x64-large" or "linux-arm64-medium"',
    );
  });

  it("never echoes a secret value, and refuses a secret stored in plain text", () => {
    const privateKey = "not a pem but a secret value 0123456789";
    const problems = problemsOf(
      () => {},
      { githubAppPrivateKey: privateKey, webhookSecret: TEST_SECRETS.webhookSecret },
      ["webhookSecret"],
    );
    expect(problems.join("\n")).not.toContain(privateKey);
    expect(problems.join("\n")).not.toContain(TEST_SECRETS.webhookSecret);
    expect(problems).toContain(
      "runner-fleet:webhookSecret: is stored in plain text; expected a secret: pulumi config set --secret runner-fleet:webhookSecret",
    );
    expect(
      problems.some((p) =>
        p.startsWith(
          "runner-fleet:githubAppPrivateKey: got [secret]; expected the App's private key in PEM form",
        ),
      ),
    ).toBe(true);
  });

  it("token mode needs the token, not the App key", () => {
    const problems = problemsOf(
      (v) => {
        gh(v).authMode = "token";
        delete gh(v).appId;
      },
      { webhookSecret: TEST_SECRETS.webhookSecret },
    );
    expect(problems).toEqual([
      "runner-fleet:githubToken: got nothing (not set); expected a fine-grained personal access token (secret): required in token mode",
    ]);
  });
});

describe("mistakes outside the schema's values", () => {
  it("refuses credentials in the GitHub URL without echoing them", () => {
    const problems = problemsOf((v) => {
      gh(v).url = "https://admin:hunter2@ghes.example.com";
    });
    expect(problems).toEqual([
      'runner-fleet:github.url: got "https://***@ghes.example.com"; expected a URL without credentials (user:password@): the App\'s key or the token authenticates',
    ]);
  });

  it("catches keys in a namespace one typo away from the project's, and leaves other namespaces alone", () => {
    const config = withSecrets(withAppId(devStackValues()), APP_SECRETS).config;
    const misplaced = ["runner_fleet:alarms", "runnerfleet:x", "runner-fleets:x", "Runner_Fleet:limits"];
    try {
      parseStackConfig(projectKeys(config), {
        project: PROJECT,
        stackFile: "Pulumi.dev.yaml",
        otherNamespaceKeys: ["aws:region", "pulumi:template", "runner:x", ...misplaced],
      });
      throw new Error("expected the config to be rejected");
    } catch (error) {
      expect((error as ConfigError).problems).toEqual(
        misplaced.map((key) => {
          const [namespace, name] = key.split(":");
          return `${key}: got the namespace "${namespace}", which this program does not read; did you mean runner-fleet:${name}? (expected every key of this project under "runner-fleet:")`;
        }),
      );
    }
  });

  it("words every kind of wrong value plainly, never in zod's words", () => {
    const leaves = (v: Values, replace: (leaf: unknown) => unknown) => {
      const walk = (node: Values) => {
        for (const [k, child] of Object.entries(node))
          if (child && typeof child === "object" && !Array.isArray(child)) walk(child);
          else node[k] = replace(child);
      };
      for (const key of Object.keys(v)) if (key.startsWith(`${PROJECT}:`)) walk({ [key]: v[key] });
    };
    const wrongValues: ((leaf: unknown) => unknown)[] = [
      () => ({ wrong: true }),
      (leaf) => (typeof leaf === "number" ? -1 : typeof leaf === "string" ? "" : []),
      (leaf) => (typeof leaf === "number" ? 1e12 : typeof leaf === "boolean" ? "yes" : [{}]),
    ];
    for (const wrong of wrongValues) {
      const problems = problemsOf((v) => leaves(v, wrong));
      expect(problems.length).toBeGreaterThan(10);
      for (const problem of problems) {
        expect(problem).toMatch(/^runner-fleet:[\w.[\]-]+: (got .*; |unknown key )/);
        expect(problem).not.toMatch(
          /Too (small|big)|Invalid|received|[<>]=|expected (number|string|int|array|object)\b/,
        );
      }
    }
  });
});

describe("derived values", () => {
  it("accepts stack names every resource name can carry", () => {
    expect(checkStackName("prod-eu_1")).toBe("prod-eu_1");
    expect(() => checkStackName("team.prod")).toThrow(/stack name: got "team.prod"; expected 1-30 letters/);
    expect(() => checkStackName("a".repeat(31))).toThrow(ConfigError);
  });

  it("derives the API URL of github.com, GHES and GHE.com tenants", () => {
    expect(githubApiUrlOf("https://github.com")).toBe("https://api.github.com");
    expect(githubApiUrlOf("https://ghes.example.com/")).toBe("https://ghes.example.com/api/v3");
    expect(githubApiUrlOf("https://acme.ghe.com")).toBe("https://api.acme.ghe.com");
  });

  it.each([
    ["m7g.large", true],
    ["c7gn.xlarge", true],
    ["t4g.nano", true],
    ["r8gd.2xlarge", true],
    ["a1.large", true],
    ["g5g.xlarge", true],
    ["im4gn.large", true],
    ["is4gen.xlarge", true],
    ["m7i.large", false],
    ["m7i-flex.large", false],
    ["g5.xlarge", false],
    ["g4dn.xlarge", false],
    ["c6a.large", false],
    ["m5dn.large", false],
  ])("%s is arm64: %s", (type, arm) => {
    expect(isArm64InstanceType(type)).toBe(arm);
  });
});
