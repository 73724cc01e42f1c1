/**
 * DynamoDB, called over its JSON protocol (aws-json.ts explains why not the SDK client). Inputs and
 * outputs are the SDK's types; items go in and out through @aws-sdk/util-dynamodb's marshall.
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
