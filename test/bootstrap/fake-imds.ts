/**
 * A fake EC2 instance metadata service (IMDSv2 only) on 127.0.0.1: a session token comes from
 * `PUT /latest/api/token` with a TTL header, and every GET without a valid token gets 401, as IMDSv2
 * with `HttpTokens: required` answers. Serves what the runner bootstrap reads.
 */
import { randomBytes } from "node:crypto";
import { type LocalServer, listen } from "../sandbox/http";

export interface ImdsCredentials {
  AccessKeyId: string;
  SecretAccessKey: string;
  Token: string;
}

export interface FakeImds extends LocalServer {
  /** Every request: method and path, in order. */
  readonly requests: { method: string; path: string; status: number }[];
  /** When set, `spot/instance-action` answers 200 with this notice (else 404, as without one). */
  spotNotice?: { action: "terminate" | "stop" | "hibernate"; time: string };
}

export async function startFakeImds(options: {
  instanceId: string;
  roleName: string;
  credentials: ImdsCredentials;
}): Promise<FakeImds> {
  const tokens = new Map<string, number>();
  const requests: FakeImds["requests"] = [];
  let fake: FakeImds | undefined;
  const server = await listen((req, res) => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    const answer = (status: number, body = "", type = "text/plain") => {
      requests.push({ method: req.method ?? "", path, status });
      res.writeHead(status, { "content-type": type });
      res.end(body);
    };
    if (path === "/latest/api/token") {
      const ttl = Number(req.headers["x-aws-ec2-metadata-token-ttl-seconds"]);
      if (req.method !== "PUT") return answer(405);
      // IMDS refuses token requests that went through a proxy, and TTLs outside 1..21600 s.
      if (req.headers["x-forwarded-for"] || !Number.isInteger(ttl) || ttl < 1 || ttl > 21_600)
        return answer(400);
      const token = randomBytes(24).toString("base64url");
      tokens.set(token, Date.now() + ttl * 1000);
      return answer(200, token);
    }
    const token = req.headers["x-aws-ec2-metadata-token"];
    const expiry = typeof token === "string" ? tokens.get(token) : undefined;
    if (expiry === undefined || expiry < Date.now()) return answer(401);
    if (req.method !== "GET") return answer(405);
    const role = `/latest/meta-data/iam/security-credentials/${options.roleName}`;
    switch (path) {
      case "/latest/meta-data/instance-id":
        return answer(200, options.instanceId);
      case "/latest/meta-data/iam/security-credentials/":
        return answer(200, options.roleName);
      case role:
        return answer(
          200,
          JSON.stringify({
            Code: "Success",
            LastUpdated: new Date().toISOString(),
            Type: "AWS-HMAC",
            ...options.credentials,
            Expiration: new Date(Date.now() + 6 * 3600_000).toISOString(),
          }),
          "application/json",
        );
      case "/latest/meta-data/spot/instance-action":
        return fake?.spotNotice
          ? answer(200, JSON.stringify(fake.spotNotice), "application/json")
          : answer(404);
      default:
        return answer(404);
    }
  });
  fake = Object.assign(server, { requests });
  return fake;
}
