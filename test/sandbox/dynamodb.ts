/**
 * DynamoDB: the real dynalite implementation (in memory), reached through a sandbox server that
 * applies the fault rules and records calls before handing each request to dynalite's own handler.
 * Tables are created from lambda/shared/tables.ts, the key schema the stack deploys.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { PassThrough } from "node:stream";
import {
  type AttributeDefinition,
  CreateTableCommand,
  DeleteItemCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ResourceInUseException,
  ScanCommand,
} from "@aws-sdk/client-dynamodb";
import dynalite from "dynalite";
import { HANDOFF_TABLE, JOBS_TABLE, POOL_TABLE, type TableSchema } from "../../lambda/shared/tables";
import type { FaultError, Faults } from "./faults";
import { ApiError, type Clock, type LocalServer, listen, readBody, send, sleep } from "./http";

const THROTTLE: FaultError = {
  code: "ThrottlingException",
  message: "Rate of requests exceeds the allowed throughput.",
  status: 400,
};
const STATUS: Record<string, number> = { InternalServerError: 500, ServiceUnavailable: 503 };

export interface DynamoFakeOptions {
  faults: Faults;
  clock: Clock;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

export interface SandboxTables {
  jobs: string;
  handoff: string;
  pool: string;
}

export type DynamoFake = Awaited<ReturnType<typeof startDynamoFake>>;

export async function startDynamoFake({ faults, clock, region, credentials }: DynamoFakeOptions) {
  const tables = new Map<string, TableSchema>();
  // Index replication lag (`indexLag`): when each item was last written, by table and hash key.
  let indexLagMs = 0;
  const lastWrite = new Map<string, number>();
  const itemKey = (table: unknown, item: unknown): string | undefined => {
    const schema = typeof table === "string" ? tables.get(table) : undefined;
    const value = schema && (item as Record<string, { S?: string }> | undefined)?.[schema.hashKey]?.S;
    return value === undefined ? undefined : `${table}\u0000${value}`;
  };

  // Tables become ACTIVE at once; dynalite's default keeps them CREATING for 500 ms.
  const db = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  const dynaliteHandler = db.listeners("request")[0] as (req: IncomingMessage, res: ServerResponse) => void;

  const server: LocalServer = await listen(async (req, res) => {
    const body = await readBody(req);
    const operation = String(req.headers["x-amz-target"] ?? "").split(".")[1] ?? "";
    let params: unknown;
    try {
      params = JSON.parse(body.toString("utf8") || "{}");
    } catch {
      params = undefined;
    }
    const fault = await faults.intercept(
      { service: "dynamodb", operation, params },
      { mutating: !/^(Get|BatchGet|Query|Scan|Describe|List)/.test(operation), throttleError: THROTTLE },
    );
    if (fault) {
      const error = ApiError.fromFault(fault, STATUS);
      faults.record({ service: "dynamodb", operation, params, status: error.status, errorCode: error.code });
      const payload = { __type: `com.amazonaws.dynamodb.v20120810#${error.code}`, message: error.message };
      send(res, error.status, JSON.stringify(payload), {
        "content-type": "application/x-amz-json-1.0",
        ...fault.headers,
      });
      return;
    }
    const request = params as
      | { TableName?: string; Item?: unknown; Key?: unknown; IndexName?: string }
      | undefined;
    if (/^(PutItem|UpdateItem|DeleteItem)$/.test(operation)) {
      const key = itemKey(request?.TableName, request?.Item ?? request?.Key);
      if (key) lastWrite.set(key, clock.now());
    }
    const lagged = operation === "Query" && request?.IndexName !== undefined && indexLagMs > 0;
    // Record the outcome as dynalite answers it (status, and the error's __type).
    const end = res.end.bind(res) as (chunk?: unknown) => ServerResponse;
    res.end = ((chunk?: unknown) => {
      if (lagged && res.statusCode === 200 && chunk) {
        // The index has not caught up with the latest writes: they are not in it yet.
        const page = JSON.parse(String(chunk)) as { Items?: unknown[]; Count?: number };
        const seenBefore = clock.now() - indexLagMs;
        page.Items = (page.Items ?? []).filter((item) => {
          const key = itemKey(request?.TableName, item);
          return !key || (lastWrite.get(key) ?? 0) <= seenBefore;
        });
        page.Count = page.Items.length;
        chunk = JSON.stringify(page);
        res.removeHeader("x-amz-crc32");
        res.setHeader("Content-Length", Buffer.byteLength(String(chunk)));
      }
      let errorCode: string | undefined;
      if (res.statusCode >= 400 && chunk) {
        try {
          errorCode = String((JSON.parse(String(chunk)) as { __type?: string }).__type ?? "").split("#")[1];
        } catch {}
      }
      faults.record({ service: "dynamodb", operation, params, status: res.statusCode, errorCode });
      return end(chunk);
    }) as typeof res.end;
    // dynalite reads the body from the request stream: hand it a replay of what we read.
    const replay = Object.assign(new PassThrough(), {
      headers: req.headers,
      method: req.method,
      url: req.url,
    });
    dynaliteHandler(replay as unknown as IncomingMessage, res);
    replay.end(body);
  });

  const client = new DynamoDBClient({ region, endpoint: server.url, credentials, maxAttempts: 1 });

  const createTable = async (name: string, schema: TableSchema) => {
    const attributeDefinitions: AttributeDefinition[] = schema.attributes.map((a) => ({
      AttributeName: a,
      AttributeType: "S",
    }));
    try {
      await client.send(
        new CreateTableCommand({
          TableName: name,
          BillingMode: "PAY_PER_REQUEST",
          AttributeDefinitions: attributeDefinitions,
          KeySchema: [
            { AttributeName: schema.hashKey, KeyType: "HASH" },
            ...(schema.rangeKey ? [{ AttributeName: schema.rangeKey, KeyType: "RANGE" as const }] : []),
          ],
          GlobalSecondaryIndexes: schema.indexes.length
            ? schema.indexes.map((index) => ({
                IndexName: index.name,
                KeySchema: [
                  { AttributeName: index.hashKey, KeyType: "HASH" as const },
                  ...(index.rangeKey ? [{ AttributeName: index.rangeKey, KeyType: "RANGE" as const }] : []),
                ],
                Projection: { ProjectionType: "ALL" as const },
              }))
            : undefined,
        }),
      );
    } catch (error) {
      // Same prefix twice: keep the existing table (and its items).
      if (!(error instanceof ResourceInUseException)) throw error;
    }
    for (let attempt = 0; attempt < 100; attempt++) {
      const { Table } = await client.send(new DescribeTableCommand({ TableName: name }));
      const indexesActive = (Table?.GlobalSecondaryIndexes ?? []).every((i) => i.IndexStatus === "ACTIVE");
      if (Table?.TableStatus === "ACTIVE" && indexesActive) break;
      await sleep(5);
    }
    tables.set(name, schema);
  };

  return {
    url: server.url,
    /** A client on the sandbox (explicit endpoint and credentials: independent of process.env). */
    client,
    /**
     * Creates the jobs and hand-off tables (`<prefix>-jobs`, `<prefix>-handoff`) with the stack's key
     * schema and indexes, and returns their names. Calling it again with the same prefix keeps the
     * existing tables.
     */
    async createTables(prefix = "runner-fleet"): Promise<SandboxTables> {
      const names = { jobs: `${prefix}-jobs`, handoff: `${prefix}-handoff`, pool: `${prefix}-pool` };
      await Promise.all([
        createTable(names.jobs, JOBS_TABLE),
        createTable(names.handoff, HANDOFF_TABLE),
        createTable(names.pool, POOL_TABLE),
      ]);
      return names;
    },
    /**
     * Global secondary indexes replicate `ms` (sandbox clock) behind the table, as DynamoDB's may: an
     * index query leaves out the items written within the last `ms`. 0 (the default) turns it off.
     */
    indexLag(ms: number): void {
      indexLagMs = ms;
    },
    /** Deletes every item of every table created through `createTables`, keeping the tables; no index lag. */
    async reset(): Promise<void> {
      indexLagMs = 0;
      lastWrite.clear();
      for (const [table, { hashKey, rangeKey }] of tables) {
        let startKey: Record<string, import("@aws-sdk/client-dynamodb").AttributeValue> | undefined;
        const keys = rangeKey ? [hashKey, rangeKey] : [hashKey];
        do {
          const page = await client.send(
            new ScanCommand({
              TableName: table,
              ProjectionExpression: keys.map((_, i) => `#k${i}`).join(", "),
              ExpressionAttributeNames: Object.fromEntries(keys.map((k, i) => [`#k${i}`, k])),
              ExclusiveStartKey: startKey,
            }),
          );
          await Promise.all(
            (page.Items ?? []).map((Key) => client.send(new DeleteItemCommand({ TableName: table, Key }))),
          );
          startKey = page.LastEvaluatedKey;
        } while (startKey);
      }
    },
    async close(): Promise<void> {
      client.destroy();
      // dynalite's own server never listened (we call its handler) and its in-memory store holds
      // no handle: closing ours is enough.
      await server.close();
    },
  };
}
