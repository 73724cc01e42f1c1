/**
 * DynamoDB, called over its JSON protocol (aws-json.ts explains why not the SDK client). Inputs and
 * outputs are the SDK's types; items go in and out through @aws-sdk/util-dynamodb's marshall. The
 * base client of the table adapters (jobs-table, job-queries, reserved-items, claims-register,
 * handoff, github-budget): what every one of them writes and reads the same way is here.
 */
import type {
  DeleteItemInput,
  DeleteItemOutput,
  GetItemInput,
  GetItemOutput,
  PutItemInput,
  PutItemOutput,
  QueryInput,
  QueryOutput,
  ScanInput,
  ScanOutput,
  UpdateItemInput,
  UpdateItemOutput,
} from "@aws-sdk/client-dynamodb";
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import { settings } from "../shared/settings";
import { isServiceError, jsonService } from "./aws-json";

export type DynamoDBOperations = {
  GetItem: [GetItemInput, GetItemOutput];
  PutItem: [PutItemInput, PutItemOutput];
  UpdateItem: [UpdateItemInput, UpdateItemOutput];
  DeleteItem: [DeleteItemInput, DeleteItemOutput];
  Query: [QueryInput, QueryOutput];
  Scan: [ScanInput, ScanOutput];
};

/** `dynamodb("PutItem", input)`: one DynamoDB call. */
export const dynamodb = jsonService<DynamoDBOperations>({
  signingName: "dynamodb",
  targetPrefix: "DynamoDB_20120810",
  jsonVersion: "1.0",
});

export const marshallOptions = { removeUndefinedValues: true, convertClassInstanceToMap: false };

/** Epoch seconds at which an item of the jobs table last changed at `now` expires. */
export function expiryFor(now: Date, ttlDays = settings().jobTtlDays): number {
  return Math.floor(now.getTime() / 1000) + ttlDays * 86_400;
}

/** The item under `key`, read consistently, or undefined when there is none. */
export async function getItem<T>(table: string, key: Record<string, string>): Promise<T | undefined> {
  const { Item } = await dynamodb("GetItem", { TableName: table, Key: marshall(key), ConsistentRead: true });
  return Item ? (unmarshall(Item) as T) : undefined;
}

/** A conditional write whose condition did not hold (someone else got there first). */
export function isConditionalCheckFailed(error: unknown): boolean {
  return isServiceError(error, "ConditionalCheckFailedException");
}

/** A conditional write's answer, or undefined when its condition did not hold; other errors throw. */
export async function unlessConditionFailed<T>(write: Promise<T>): Promise<T | undefined> {
  try {
    return await write;
  } catch (error) {
    if (isConditionalCheckFailed(error)) return undefined;
    throw error;
  }
}
