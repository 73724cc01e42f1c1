/**
 * A proxy in front of the local DynamoDB that checks each request's AWS Signature V4 the way AWS does:
 * it recomputes the signature with @smithy/signature-v4 (the AWS SDK's signer) from the request as
 * received, the headers the request says it signed, and the credentials the test handed out, and
 * answers InvalidSignatureException on any difference. Dynalite itself checks only the header's form.
 */
import { createHash, createHmac, type Hash, type Hmac } from "node:crypto";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { SignatureV4 } from "@smithy/signature-v4";
import { type LocalServer, listen, readBody } from "../sandbox/http";
import type { ImdsCredentials } from "./fake-imds";

type SourceData = string | ArrayBuffer | ArrayBufferView;

function toBuffer(data: SourceData): Buffer {
  if (typeof data === "string") return Buffer.from(data, "utf8");
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}

/** The SHA-256 (and HMAC-SHA256, given a secret) checksum the signer expects, from node:crypto. */
class NodeSha256 {
  private hash: Hash | Hmac;
  constructor(private readonly secret?: SourceData) {
    this.hash = this.fresh();
  }
  private fresh() {
    return this.secret ? createHmac("sha256", toBuffer(this.secret)) : createHash("sha256");
  }
  update(data: SourceData) {
    this.hash.update(toBuffer(data));
  }
  async digest() {
    return new Uint8Array(this.hash.digest());
  }
  reset() {
    this.hash = this.fresh();
  }
}

export interface SignedRequestRecord {
  target: string;
  signedHeaders: string[];
  valid: boolean;
  problem?: string;
}

export interface SigV4Proxy extends LocalServer {
  readonly records: SignedRequestRecord[];
  /** Answer every request with InvalidSignatureException (as a strict service would to old curls). */
  rejectAll: boolean;
}

function parseAmzDate(value: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  return m ? new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z`) : undefined;
}

/** Why the request's signature is not valid, or undefined when it is. */
async function signatureProblem(
  req: IncomingMessage,
  body: Buffer,
  credentials: ImdsCredentials,
  region: string,
): Promise<{ problem?: string; signedHeaders: string[] }> {
  const auth =
    /^AWS4-HMAC-SHA256 Credential=([^,]+), ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(
      req.headers.authorization ?? "",
    );
  if (!auth) return { problem: "malformed Authorization header", signedHeaders: [] };
  const [, credential = "", signedList = "", signature] = auth;
  const signedHeaders = signedList.split(";");
  const [keyId, day, scopeRegion, service, terminator] = credential.split("/");
  if (keyId !== credentials.AccessKeyId) return { problem: `unknown access key ${keyId}`, signedHeaders };
  if (scopeRegion !== region || service !== "dynamodb" || terminator !== "aws4_request") {
    return { problem: `wrong credential scope ${credential}`, signedHeaders };
  }
  const date = parseAmzDate(String(req.headers["x-amz-date"] ?? ""));
  const dateDay = date?.toISOString().slice(0, 10).replace(/-/g, "");
  if (!date || dateDay !== day) {
    return { problem: "x-amz-date missing or not the scope's day", signedHeaders };
  }
  if (Math.abs(date.getTime() - Date.now()) > 5 * 60_000)
    return { problem: "signature expired", signedHeaders };
  for (const required of ["host", "x-amz-date"]) {
    if (!signedHeaders.includes(required)) return { problem: `${required} is not signed`, signedHeaders };
  }
  const headers: Record<string, string> = {};
  for (const name of signedHeaders) {
    const value = req.headers[name];
    if (value === undefined) return { problem: `signed header ${name} is absent`, signedHeaders };
    headers[name] = Array.isArray(value) ? value.join(",") : value;
  }
  const signer = new SignatureV4({
    credentials: {
      accessKeyId: credentials.AccessKeyId,
      secretAccessKey: credentials.SecretAccessKey,
      // The token is part of the signature only when the request signed it (curl < 7.86 does not).
      sessionToken: signedHeaders.includes("x-amz-security-token") ? credentials.Token : undefined,
    },
    region,
    service: "dynamodb",
    sha256: NodeSha256,
    applyChecksum: false,
  });
  const [pathname = "/", query = ""] = (req.url ?? "/").split("?");
  const signed = await signer.sign(
    {
      method: req.method ?? "POST",
      protocol: "http:",
      hostname: "127.0.0.1",
      path: pathname,
      query: Object.fromEntries(new URLSearchParams(query)),
      headers,
      body,
    },
    { signingDate: date, signableHeaders: new Set(signedHeaders) },
  );
  const expected = /Signature=([0-9a-f]{64})/.exec(String(signed.headers.authorization))?.[1];
  const expectedList = /SignedHeaders=([^,]+)/.exec(String(signed.headers.authorization))?.[1];
  if (expectedList !== signedList)
    return { problem: `signed headers ${signedList} ≠ ${expectedList}`, signedHeaders };
  if (expected !== signature) return { problem: "signature does not match", signedHeaders };
  return { signedHeaders };
}

export async function startSigV4Proxy(options: {
  target: string;
  credentials: ImdsCredentials;
  region: string;
}): Promise<SigV4Proxy> {
  const records: SignedRequestRecord[] = [];
  let proxy: SigV4Proxy | undefined;
  const server = await listen(async (req, res) => {
    const body = await readBody(req);
    const target = String(req.headers["x-amz-target"] ?? "");
    const { problem, signedHeaders } = proxy?.rejectAll
      ? { problem: "rejecting every signature", signedHeaders: [] }
      : await signatureProblem(req, body, options.credentials, options.region);
    records.push({ target, signedHeaders, valid: !problem, problem });
    if (problem) {
      res.writeHead(400, { "content-type": "application/x-amz-json-1.0" });
      res.end(
        JSON.stringify({ __type: "com.amazon.coral.service#InvalidSignatureException", message: problem }),
      );
      return;
    }
    const upstream = new URL(options.target);
    const forward = httpRequest(
      {
        hostname: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on("error", (error) => {
      res.writeHead(502);
      res.end(String(error));
    });
    forward.end(body);
  });
  proxy = Object.assign(server, { records, rejectAll: false });
  return proxy;
}
