/**
 * Small pieces shared by the sandbox's wire-level fakes: a loopback HTTP server that closes cleanly
 * (no handle keeps vitest alive), body reading, the sandbox clock, ids.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { FaultError } from "./faults";

export interface LocalServer {
  /** `http://127.0.0.1:<port>` */
  url: string;
  close(): Promise<void>;
}

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

/** Listens on 127.0.0.1 on a random port. `close()` also drops idle keep-alive connections. */
export async function listen(handler: RequestHandler): Promise<LocalServer> {
  const server: Server = createServer((req, res) => {
    Promise.resolve(handler(req, res)).catch((error: unknown) => {
      // A bug in a fake must surface in the test, not hang the client.
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
      res.end(`sandbox fake failed: ${error instanceof Error ? error.stack : String(error)}`);
    });
  });
  // Idle keep-alive connections stay open until close(). With a timeout, a client that reuses a
  // socket just as the server drops it gets ECONNRESET; the Lambdas' clients retry that (tested in
  // aws-json.test.ts), but the harness's own no-retry clients (table reset) would fail a test at random.
  server.keepAliveTimeout = 0;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export function send(
  res: ServerResponse,
  status: number,
  body: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    "content-length": String(Buffer.byteLength(body)),
    "x-amzn-requestid": randomUUID(),
    ...headers,
  });
  res.end(body);
}

/**
 * An error a fake answers with. Each fake renders it in its service's wire format, so the SDK turns
 * `code` into the exception class of that name.
 */
export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }

  /** An injected fault as an error; its status defaults to `statuses[code]`, else 400. */
  static fromFault(fault: FaultError, statuses: Record<string, number> = {}): ApiError {
    return new ApiError(fault.code, fault.message ?? fault.code, fault.status ?? statuses[fault.code] ?? 400);
  }
}

/**
 * The sandbox's notion of now: wall time plus an offset that tests can advance, so visibility
 * timeouts, delays and instance ages can be tested without sleeping.
 */
export class Clock {
  private offsetMs = 0;
  private frozenAt?: number;
  private readonly listeners = new Set<() => void>();

  now(): number {
    return (this.frozenAt ?? Date.now()) + this.offsetMs;
  }

  /** Stops wall time (only `advance` moves the clock), e.g. to count tokens of a throttle exactly. */
  freeze(): void {
    this.frozenAt ??= Date.now();
  }

  /** Wall time runs again, from where the frozen clock stood. */
  resume(): void {
    if (this.frozenAt === undefined) return;
    this.offsetMs += this.frozenAt - Date.now();
    this.frozenAt = undefined;
  }

  advance(ms: number): void {
    this.offsetMs += ms;
    for (const listener of this.listeners) listener();
  }

  /** Called after every advance (e.g. to wake long polls). Returns the unsubscribe function. */
  onAdvance(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Lowercase hex of `bytes` random bytes (EC2-style ids: `i-` + 17 hex digits). */
export function randomHex(length: number): string {
  return randomBytes(Math.ceil(length / 2))
    .toString("hex")
    .slice(0, length);
}

export const ACCOUNT_ID = "123456789012";
